"""Workbench configuration (``workbench.yml`` beside the data, or passed explicitly).

Everything has a working default, so a dataset with no config file loads. The file holds the
funnel (stage names mapped to the seven canonical steps, with optional default win
probabilities), the fiscal-year start month, the company time zone, the reporting currency,
working days and holidays, scorecard weights and benchmarks, custom metrics and dimensions.

An invalid file raises :class:`~analysis.errors.ConfigError` with one line naming the key,
the bad value and the fix.
"""

from __future__ import annotations

import difflib
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from analysis.data.schema import STEPS, normalize_token
from analysis.errors import ConfigError

CONFIG_NAMES = ("workbench.yml", "workbench.yaml")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Stage names that CRMs use for closed deals; read as statuses, not funnel steps.
STATUS_STAGES = {
    "closedwon": "won",
    "won": "won",
    "closedlost": "lost",
    "lost": "lost",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(_Model):
    """One CRM stage and the canonical step it belongs to."""

    name: str
    step: str
    probability: float | None = Field(default=None, ge=0, le=1)

    @field_validator("step")
    @classmethod
    def _known_step(cls, v: str) -> str:
        n = normalize_token(v)
        for s in STEPS:
            if normalize_token(s) == n:
                return s
        if n in STATUS_STAGES:
            return STATUS_STAGES[n]
        close = difflib.get_close_matches(v, STEPS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown step {v!r}{hint}; use one of {', '.join(STEPS)}, won, lost")


class Scorecard(_Model):
    """Points per unit of each metric and the benchmark (target) per rep and period."""

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "opportunities_created": 15.0,
            "deals_won": 50.0,
            "calls": 1.0,
            "emails": 0.5,
            "meetings": 5.0,
            "demos": 10.0,
        }
    )
    benchmarks: dict[str, float] = Field(default_factory=dict)


class Forecast(_Model):
    """Forecast settings: forecast categories, history needed, backtest and simulation."""

    commit_probability: float = Field(default=0.7, gt=0, le=1)
    best_case_probability: float = Field(default=0.4, gt=0, le=1)
    min_history_deals: int = Field(default=20, ge=1)
    history_months: int = Field(default=24, ge=3, le=120)
    backtest_periods: int = Field(default=4, ge=1, le=24)
    simulations: int = Field(default=10_000, ge=100, le=1_000_000)
    seed: int = 0

    @model_validator(mode="after")
    def _ordered(self) -> "Forecast":
        if self.best_case_probability > self.commit_probability:
            raise ValueError(
                "best_case_probability must not exceed commit_probability "
                f"({self.best_case_probability} > {self.commit_probability})"
            )
        return self


class Coaching(_Model):
    """Coaching flags: significance level and smallest sample worth a flag."""

    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    min_closed_deals: int = Field(default=8, ge=1)
    min_activities: int = Field(default=30, ge=1)


class Experiment(_Model):
    """A change to evaluate: a metric before vs after a date, or between two groups of reps.

    Give ``change_date`` for before/after (``window_days`` each side, default 90), or ``group_a``
    and ``group_b`` as lists of rep_ids or team names for a group comparison.
    """

    name: str
    metric: str
    change_date: date | None = None
    window_days: int = Field(default=90, ge=7, le=730)
    group_a: tuple[str, ...] = ()
    group_b: tuple[str, ...] = ()
    reps: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_design(self) -> "Experiment":
        groups = bool(self.group_a) or bool(self.group_b)
        if (self.change_date is None) == (not groups):
            raise ValueError(
                f"experiment {self.name!r}: give either change_date (before/after) "
                "or group_a and group_b (two groups), not both and not neither"
            )
        if groups and not (self.group_a and self.group_b):
            raise ValueError(f"experiment {self.name!r}: a group comparison needs both group_a and group_b")
        return self


class CustomMetric(_Model):
    """A user KPI declared in the config; the same fields as the built-in catalog entries.

    Examples: a filtered count (``type: count, source: activities, where: {type: call,
    duration_s: {gt: 300}}``), a ratio of existing metrics (``type: ratio, numerator: demos,
    denominator: deals_won``), or arithmetic over metrics (``type: derived, expr: ...``).
    Deeper checks (unknown sources, columns, metric ids) are made by :mod:`analysis.catalog`.
    """

    id: str
    label: str | None = None
    description: str = ""
    formula: str | None = None
    type: Literal["count", "sum", "nunique", "mean", "median", "ratio", "derived", "growth"]
    source: str | None = None
    table: str | None = None
    column: str | None = None
    where: dict[str, Any] | None = None
    numerator: str | None = None
    denominator: str | None = None
    expr: str | None = None
    of: str | None = None
    proportion: bool = False
    unit: str = "number"
    format: str | None = None
    direction: Literal["higher", "lower"] = "higher"
    kind: Literal["lead", "lag"] = "lead"

    @model_validator(mode="after")
    def _shape(self) -> "CustomMetric":
        need = {
            "ratio": ("numerator", "denominator"),
            "derived": ("expr",),
            "growth": ("of",),
            "sum": ("column",),
            "nunique": ("column",),
            "mean": ("column",),
            "median": ("column",),
        }.get(self.type, ())
        missing = [n for n in need if not getattr(self, n)]
        if missing:
            raise ValueError(f"{self.type} metric {self.id!r} needs {' and '.join(missing)}")
        if self.type in ("count", "sum", "nunique", "mean", "median") and not (self.source or self.table):
            raise ValueError(f"{self.type} metric {self.id!r} needs a source (or a table)")
        return self


class CustomDimension(_Model):
    """An extra grouping column: ``table.column`` (e.g. reps.tier)."""

    table: str
    column: str


class Limits(_Model):
    """Plausibility bounds: values outside them are problems, excluded from every figure.

    ``max_amount`` bounds money (deal amounts, costs, targets, spend) in the reporting currency;
    dates before ``earliest_date`` or more than ``years_ahead`` years after the data's snapshot
    day are read as errors; ``max_unparseable_share`` is the share of a column's values that may
    fail to parse before the column (a required one: the whole data) is unusable.
    """

    max_amount: float = Field(default=1e12, gt=0)
    earliest_date: date = date(1990, 1, 1)
    years_ahead: int = Field(default=10, ge=0, le=100)
    max_unparseable_share: float = Field(default=0.05, ge=0, le=1)


class Config(_Model):
    """The workbench configuration with its defaults."""

    #: where the files come from: ``auto`` (a recognised CRM export, else the canonical model),
    #: ``canonical``, a preset name (``salesforce``, ``hubspot``, ``pipedrive``)
    source: str = "auto"
    #: a user-written mapping of files and columns onto canonical tables (see analysis.mapping)
    columns: dict[str, Any] | None = None
    #: number and date conventions of the files: a name (``id-ID``) or explicit separators
    locale: Any = None
    #: text encoding of CSV files (default: detected; UTF-8, UTF-16 and Windows-1252)
    encoding: str | None = None
    limits: Limits = Field(default_factory=Limits)
    timezone: str = "UTC"
    currency: str = "USD"
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    working_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    holidays: tuple[date, ...] = ()
    stages: tuple[Stage, ...] = ()
    scorecard: Scorecard = Field(default_factory=Scorecard)
    benchmarks: dict[str, float] = Field(default_factory=dict)
    metrics: tuple[CustomMetric, ...] = ()
    dimensions: dict[str, CustomDimension] = Field(default_factory=dict)
    leaderboards_public: bool = False
    forecast: Forecast = Field(default_factory=Forecast)
    coaching: Coaching = Field(default_factory=Coaching)
    experiments: tuple[Experiment, ...] = ()
    stalled_quantile: float = Field(default=0.75, gt=0, lt=1)
    velocity_window_months: int = Field(default=12, ge=1, le=60)
    duplicate_check_max_rows: int = Field(default=5_000_000, ge=0)
    memory_limit: str = Field(default="2GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    as_of: date | None = None
    name: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(v, sorted(available_timezones()), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown time zone {v!r}{hint}; use an IANA name such as Europe/Berlin") from None
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        from analysis.data.mapping import preset_names

        name = v.strip().lower()
        known = ["auto", "canonical", *preset_names()]
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown source {v!r}{hint}; use one of {', '.join(known)}, or map your files with columns:")
        return name

    @field_validator("locale")
    @classmethod
    def _locale(cls, v: Any) -> Any:
        from analysis.data.locale import resolve_locale

        if v is not None and not isinstance(v, (str, dict)):
            raise ValueError("give a locale name such as id-ID or en-US, or a mapping of decimal, thousands, "
                             "day_first and currency_prefixes")
        resolve_locale(v)  # raises ValueError with the fix
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str | None) -> str | None:
        import codecs

        if v is None:
            return v
        try:
            return codecs.lookup(v).name
        except LookupError:
            raise ValueError(f"unknown encoding {v!r}; use utf-8, utf-16, cp1252 (Excel on Windows) or latin-1") from None

    @field_validator("working_days")
    @classmethod
    def _days(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for d in v:
            key = str(d).strip().lower()[:3]
            if key not in WEEKDAYS:
                raise ValueError(f"unknown weekday {d!r}; use {', '.join(WEEKDAYS)}")
            out.append(key)
        if not out:
            raise ValueError("at least one working day is needed")
        return tuple(dict.fromkeys(out))

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, v: tuple[Stage, ...]) -> tuple[Stage, ...]:
        seen: set[str] = set()
        for s in v:
            k = normalize_token(s.name)
            if k in seen:
                raise ValueError(f"stage {s.name!r} is listed twice")
            seen.add(k)
        return v

    # -- derived helpers -------------------------------------------------------------------

    def step_of(self, stage: str | None) -> str | None:
        """Canonical step of a CRM stage name, ``won``/``lost`` for closed stages, else None.

        Configured stages win; without a config, names that match a canonical step ignoring
        case, spaces and underscores map to it, and ``Closed Won`` / ``Closed Lost`` are read as
        statuses.
        """
        if stage is None:
            return None
        n = normalize_token(stage)
        for s in self.stages:
            if normalize_token(s.name) == n:
                return s.step
        for step in STEPS:
            if normalize_token(step) == n:
                return step
        return STATUS_STAGES.get(n)

    def stage_order(self) -> list[str]:
        """Configured stage names in funnel order (empty without config)."""
        return [s.name for s in self.stages]

    def default_probability(self, step: str) -> float | None:
        """Config default win probability of a step (first stage of that step that sets one)."""
        for s in self.stages:
            if s.step == step and s.probability is not None:
                return s.probability
        return None

    @property
    def parsed_locale(self):
        """The :class:`analysis.locale.Locale` of ``locale`` (None without one)."""
        from analysis.data.locale import resolve_locale

        return resolve_locale(self.locale)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def weekday_numbers(self) -> list[int]:
        """Working days as Python weekday numbers (Monday = 0)."""
        return [WEEKDAYS.index(d) for d in self.working_days]


def _format_error(err: ValidationError, origin: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            field_name = str(e["loc"][-1])
            known = _known_keys(e["loc"][:-1])
            close = difflib.get_close_matches(field_name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"unknown key{hint} Known keys: {', '.join(known)}" if known else "unknown key"
        elif "input" in e and e["type"] not in ("missing",):
            msg = f"{msg} (got {e['input']!r})"
        parts.append(f"{loc}: {msg}")
    return f"{origin}: invalid config: " + "; ".join(parts)


def _known_keys(loc: tuple) -> list[str]:
    model: Any = Config
    for p in loc:
        if isinstance(p, int):
            continue
        f = model.model_fields.get(str(p)) if hasattr(model, "model_fields") else None
        if f is None:
            return []
        ann = f.annotation
        inner = getattr(ann, "__args__", None)
        model = next((a for a in (inner or ()) if isinstance(a, type) and issubclass(a, BaseModel)), ann)
    return list(getattr(model, "model_fields", {}))


def parse_config(data: dict | None, origin: str = "config") -> Config:
    """Build a :class:`Config` from a mapping, raising ConfigError with one line per problem."""
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the config must be a mapping of keys to values, got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(err, origin)) from None


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (YAML keeps the last)."""


def _no_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in one mapping; keep one", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def load_config(config: "Config | dict | str | Path | None" = None, data_dir: str | Path | None = None) -> Config:
    """Resolve a config: a Config, a mapping, a YAML path, or ``workbench.yml`` beside the data."""
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    path: Path | None = None
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found; pass the path of a workbench.yml or omit it")
    elif data_dir is not None and Path(data_dir).is_dir():
        for name in CONFIG_NAMES:
            if (Path(data_dir) / name).is_file():
                path = Path(data_dir) / name
                break
    if path is None:
        return Config()
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    return parse_config(raw or {}, origin=str(path))
