"""Workbench configuration (``workbench.yml`` beside the data, or passed explicitly).

Everything has a working default, so a dataset with no config file loads. The file holds the
funnel (stage names mapped to the seven canonical steps, with optional default win
probabilities), the fiscal-year start month, the company time zone, the reporting currency,
working days and holidays, scorecard weights and benchmarks, custom metrics and dimensions.

An invalid file raises :class:`~analysis.errors.ConfigError` with one line naming the key,
the bad value and the fix.
"""

from __future__ import annotations

import codecs
import difflib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


#: every date in the config (as_of, holidays, experiments' change_date, limits.earliest_date) lies
#: in this range: real sales data does, and the code adds years and days to these dates (a
#: forecast horizon, limits.years_ahead of at most 100 years), which must stay within year 9999
DATE_RANGE = (date(1900, 1, 1), date(2999, 12, 31))


def _in_range(v: date) -> date:
    lo, hi = DATE_RANGE
    if not lo <= v <= hi:
        raise ValueError(f"{v.isoformat()} is outside {lo.isoformat()} .. {hi.isoformat()}; give a date in that range")
    return v


#: a date within :data:`DATE_RANGE`
ConfigDate = Annotated[date, AfterValidator(_in_range)]


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
        raise ValueError(f"unknown step {_clip(v)}{hint}; use one of {', '.join(STEPS)}, won, lost")


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
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _ordered(self) -> "Forecast":
        if self.best_case_probability > self.commit_probability:
            raise ValueError(
                "best_case_probability must not exceed commit_probability "
                f"({self.best_case_probability} > {self.commit_probability})"
            )
        return self


class Coaching(_Model):
    """Coaching flags: significance level and smallest sample worth a flag (the samples also
    say who "does the work" a measure is about); and the "worth a look" notes: a large gap
    (the rep at most ``worth_a_look_ratio`` of the peers' value) whose q value lies above
    ``alpha`` and at most ``worth_a_look_q``. ``worth_a_look_q`` equal to ``alpha`` lists none."""

    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    min_closed_deals: int = Field(default=8, ge=1)
    min_activities: int = Field(default=30, ge=1)
    worth_a_look_q: float = Field(default=0.2, gt=0, lt=1)
    worth_a_look_ratio: float = Field(default=0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _look_above_alpha(self) -> "Coaching":
        if self.worth_a_look_q < self.alpha:
            raise ValueError(f"coaching.worth_a_look_q ({self.worth_a_look_q}) must be at least coaching.alpha "
                             f"({self.alpha}): worth-a-look notes are the gaps not yet significant at alpha; set it "
                             "equal to alpha to list none")
        return self


class ReviewLayout(_Model):
    """How a review lists reps, teams and deals: a list up to ``list_all_up_to`` rows is shown
    whole; a longer one shows its first and last ``top`` rows, summarises the rest and attaches
    the full table as a CSV beside the report."""

    top: int = Field(default=10, ge=1, le=100)
    list_all_up_to: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _no_overlap(self) -> "ReviewLayout":
        if self.list_all_up_to < 2 * self.top:
            raise ValueError(f"review.list_all_up_to ({self.list_all_up_to}) must be at least twice review.top "
                             f"({self.top}), or the first and last rows of a long list would overlap")
        return self


class Experiment(_Model):
    """A change to evaluate: a metric before vs after a date, or between two groups of reps.

    Give ``change_date`` for before/after (``window_days`` each side, default 90), or ``group_a``
    and ``group_b`` as lists of rep_ids or team names for a group comparison.
    """

    name: str
    metric: str
    change_date: ConfigDate | None = None
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
    earliest_date: ConfigDate = date(1990, 1, 1)
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
    #: how figures are written in reports, notebooks and chart axes: separators, abbreviations
    #: (en-US K/M/B/T, id-ID rb/jt/M/T), the currency symbol and where it goes; any CLDR locale
    #: tag (en-US, id-ID, de-DE ...). Not ``locale``, which says how the input files write numbers.
    display_locale: str = "en-US"
    #: how money shows ``currency``: ``symbol`` ("$27.1M", "Rp 22,5 M"; a currency without a
    #: symbol in the display locale is written with its code, "56.1M IDR") or ``code`` ("27.1M USD")
    currency_display: Literal["symbol", "code"] = "symbol"
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    working_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    holidays: tuple[ConfigDate, ...] = ()
    stages: tuple[Stage, ...] = ()
    scorecard: Scorecard = Field(default_factory=Scorecard)
    benchmarks: dict[str, float] = Field(default_factory=dict)
    metrics: tuple[CustomMetric, ...] = ()
    dimensions: dict[str, CustomDimension] = Field(default_factory=dict)
    leaderboards_public: bool = False
    forecast: Forecast = Field(default_factory=Forecast)
    coaching: Coaching = Field(default_factory=Coaching)
    experiments: tuple[Experiment, ...] = ()
    review: ReviewLayout = Field(default_factory=ReviewLayout)
    stalled_quantile: float = Field(default=0.75, gt=0, lt=1)
    velocity_window_months: int = Field(default=12, ge=1, le=60)
    duplicate_check_max_rows: int = Field(default=5_000_000, ge=0)
    #: the compute engine for a folder or DuckDB source (``--engine`` overrides it): ``duckdb``
    #: in-process (the default) or ``spark`` (ibis's PySpark backend; ``pip install -e '.[spark]'``
    #: and a Java runtime). A ``postgresql://`` source always computes in PostgreSQL.
    engine: Literal["duckdb", "spark"] = "duckdb"
    #: Spark master for ``engine: spark`` (default ``local[*]``; e.g. ``spark://host:7077``)
    spark_master: str | None = None
    #: Spark Connect address for ``engine: spark`` (``sc://host:15002``; default: ``SPARK_REMOTE``)
    spark_remote: str | None = None
    #: the engine's own share of the memory (the rest is pandas'): a review stays under 2 GB at 5,000
    #: reps. DuckDB's memory_limit; with ``engine: spark`` in local mode, the driver's memory (the
    #: whole engine there). PostgreSQL's memory is the server's setting.
    memory_limit: str = Field(default="1GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    as_of: ConfigDate | None = Field(
        default=None,
        description=(
            "The data's snapshot day (default: worked out from the data). Between 1900-01-01 and "
            "2999-12-31, like every date in the config: the workbench adds years and days to it (forecast "
            "horizons, limits.years_ahead up to 100 years) and the result must stay a valid date."
        ),
    )
    name: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            if len(v) > 100:  # longer than any zone name; also too long a file name to look up
                raise ValueError(v)
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as America
            close = difflib.get_close_matches(v[:100], sorted(available_timezones()), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown time zone {_clip(v)}{hint}; use an IANA name such as Europe/Berlin") from None
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        from analysis.data.mapping import preset_names

        name = v.strip().lower()
        known = ["auto", "canonical", *preset_names()]
        if name not in known:
            close = difflib.get_close_matches(name[:100], known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown source {_clip(v)}{hint}; use one of {', '.join(known)}, or map your files with columns:"
            )
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

    @field_validator("display_locale")
    @classmethod
    def _display_locale(cls, v: str) -> str:
        from analysis.format import check_locale

        check_locale(v)  # raises ValueError naming the tag, close ones and how to write one
        return v.strip()

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str | None) -> str | None:
        import codecs

        if v is None:
            return v
        try:
            return codecs.lookup(v).name
        except LookupError:
            raise ValueError(
                f"unknown encoding {_clip(v)}; use utf-8, utf-16, cp1252 (Excel on Windows) or latin-1"
            ) from None

    @field_validator("working_days")
    @classmethod
    def _days(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for d in v:
            key = str(d).strip().lower()[:3]
            if key not in WEEKDAYS:
                raise ValueError(f"unknown weekday {_clip(d)}; use {', '.join(WEEKDAYS)}")
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
                raise ValueError(f"stage {_clip(s.name)} is listed twice")
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
    def numbers(self):
        """The :class:`analysis.format.Numbers` of the reporting currency, ``display_locale`` and
        ``currency_display``: the one formatter of every figure shown for this dataset."""
        from analysis.format import Numbers

        return Numbers(self.currency, self.display_locale, self.currency_display)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def weekday_numbers(self) -> list[int]:
        """Working days as Python weekday numbers (Monday = 0)."""
        return [WEEKDAYS.index(d) for d in self.working_days]


#: problems listed at most in one config error (the rest are counted)
MAX_REPORTED = 10


def _format_error(err: ValidationError, origin: str) -> str:
    parts = []
    errors = err.errors()
    for e in errors[:MAX_REPORTED]:
        loc = ".".join(_short(str(p)) for p in e["loc"])
        loc = loc or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        inp = e.get("input")
        if isinstance(inp, str) and len(inp) > 60:  # a huge value quoted by a validator: shorten it
            msg = msg.replace(repr(inp), _clip(inp)).replace(inp, _clip(inp))
        if e["type"] == "extra_forbidden":
            field_name = str(e["loc"][-1])[:100]
            known = _known_keys(e["loc"][:-1])
            close = difflib.get_close_matches(field_name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"unknown key{hint} Known keys: {', '.join(known)}" if known else "unknown key"
        elif "input" in e and e["type"] not in ("missing",):
            msg = f"{msg} (got {_clip(e['input'])})"
        parts.append(f"{loc}: {msg}")
    if len(errors) > MAX_REPORTED:
        parts.append(f"and {len(errors) - MAX_REPORTED:,} more problems")
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


# -- reading workbench.yml -------------------------------------------------------------------
#
# The file is untrusted input: it is read with YAML's safe loader (no Python objects), and the
# loader is bounded so that no file can take more than a moment or a little memory to refuse:
#
# * at most MAX_CONFIG_BYTES bytes and MAX_NODES values; UTF-8 text (a UTF-8 byte-order mark is skipped; UTF-16 and
#   UTF-32 with a byte-order mark are decoded; anything else, Latin-1 or binary, is refused);
# * aliases (``*name``) repeat at most MAX_ALIAS_NODES values in all: a few hundred bytes of
#   aliases otherwise expand to billions of values ("billion laughs") when the config is
#   validated; a shipped preset copied under ``columns:`` repeats a handful with one alias;
# * at most MAX_DEPTH levels of nested lists and mappings, counting what aliases repeat
#   (deeper input would exhaust Python's recursion limit);
# * no merge keys (``<<``): they override keys silently, which the duplicate-key rule forbids;
# * no key twice in one mapping, at any depth;
# * dates that exist (2026-02-30 is refused with its key) and numbers Python can read.

#: largest workbench.yml read, in bytes (a full config with a column mapping is ~10 KB)
MAX_CONFIG_BYTES = 1_000_000
#: deepest nesting of lists and mappings (a shipped preset under ``columns:`` nests 11 levels)
MAX_DEPTH = 50
#: values that aliases may repeat in all (the pipedrive preset's one alias repeats 6)
MAX_ALIAS_NODES = 10_000
#: values (keys, list items, settings) in one file; bounds the time (~1 s) and memory (~50 MB)
#: of reading it: the sample config has ~200 and 100 years of holidays ~1,000
MAX_NODES = 50_000


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML the workbench refuses (an alias, too deep, a bad date): message has the fix."""

    def __init__(self, message: str, mark: Any, node: Any = None):
        super().__init__(problem=message, problem_mark=mark)
        self.node = node


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, bounded: at most MAX_NODES values, nesting at most MAX_DEPTH levels
    (counting what aliases repeat), aliases repeating at most MAX_ALIAS_NODES values in all and
    never a value that contains them, no merge keys, no key given twice in one mapping (YAML
    would keep the last)."""

    _depth = 0
    _alias_nodes = 0
    _nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined alias is YAML's own error
                self._check_alias(event, target)
            return super().compose_node(parent, index)
        self._depth += 1
        self._nodes += 1
        try:
            if self._nodes > MAX_NODES:
                raise _Refused(
                    f"more than {MAX_NODES:,} values (keys, list items, settings); a workbench.yml holds a few "
                    "hundred, so check that this is the right file",
                    event.start_mark,
                )
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    f"lists and mappings are nested more than {MAX_DEPTH} levels deep; "
                    "a workbench.yml needs far fewer, so check the brackets and indentation",
                    event.start_mark,
                )
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        # size (values, counting repeats by aliases) and height of what the node expands to
        if isinstance(node, yaml.MappingNode):
            parts = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            parts = node.value
        else:
            parts = []
        sizes = [n.__dict__.get("_wb_size", (1, 1)) for n in parts]
        node._wb_size = (1 + sum(s for s, _ in sizes), 1 + max((h for _, h in sizes), default=0))
        return node

    def _check_alias(self, event: Any, target: Any) -> None:
        name = f"*{_short(event.anchor)}"
        size = target.__dict__.get("_wb_size")
        if size is None:
            raise _Refused(f"alias {name} is used inside the value it names; an alias can only repeat a "
                           "finished value", event.start_mark)
        self._alias_nodes += size[0]
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise _Refused(
                f"alias {name}: aliases repeat more than {MAX_ALIAS_NODES:,} values in all; they may repeat a "
                "few values, not build huge structures (a 'billion laughs' file), so write the values out",
                event.start_mark,
            )
        if self._depth + size[1] > MAX_DEPTH:
            raise _Refused(
                f"alias {name}: with what the aliases repeat, lists and mappings are nested more than "
                f"{MAX_DEPTH} levels deep; a workbench.yml needs far fewer, so write the values out",
                event.start_mark,
            )


def _no_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise _Refused("merge keys (<<) are not allowed in workbench.yml; write the keys out in full",
                           key_node.start_mark)
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise _Refused("a key must be a plain name, not a list or mapping", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {_clip(key)} is given twice in one mapping; keep one", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _checked(construct: Any, what: str, fix: str) -> Any:
    """Wrap a scalar constructor so a value YAML recognises but Python cannot build (2026-02-30,
    an integer of 5,000 digits) is refused with the value and the fix instead of crashing."""

    def wrapper(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as err:
            reason = " ".join(str(err).split(":")[0].split())[:80]
            raise _Refused(f"{_clip(node.value, 40)} is not {what} ({reason}); {fix}", node.start_mark, node) from None

    return wrapper


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)
_StrictLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    _checked(yaml.SafeLoader.construct_yaml_timestamp, "a real date",
             "write a calendar date as YYYY-MM-DD"),
)
_StrictLoader.add_constructor(
    "tag:yaml.org,2002:int",
    _checked(yaml.SafeLoader.construct_yaml_int, "a usable number", "write a smaller number or quote it"),
)


def _clip(value: Any, limit: int = 60) -> str:
    """``repr(value)``, shortened to ``limit`` characters so a huge value keeps a message short."""
    text = value.isoformat() if isinstance(value, date) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _short(name: str, limit: int = 40) -> str:
    """A key or anchor name, cut to ``limit`` characters."""
    return name if len(name) <= limit else f"{name[:limit]}..."


def _key_path(root: Any, target: Any) -> str:
    """The dotted key path (``holidays.0``) of ``target`` under ``root`` in a composed YAML tree."""
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                name = k.value if isinstance(k, yaml.ScalarNode) else "?"
                stack.append((v, f"{path}.{name}" if path else str(name)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node.value))
    return ""


def _looks_utf16(data: bytes) -> bool:
    """Whether BOM-less bytes with NULs read as text in UTF-16 (to say so rather than "binary")."""
    for enc in ("utf-16-le", "utf-16-be"):
        try:
            text = data[: len(data) // 2 * 2].decode(enc)
        except UnicodeDecodeError:
            continue
        if text and sum(c.isprintable() or c in "\t\r\n" for c in text) >= 0.95 * len(text):
            return True
    return False


def _read_text(path: Path) -> str:
    """The text of a config file: at most MAX_CONFIG_BYTES, UTF-8 (or UTF-16/32 with a BOM)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(
            f"{path}: cannot be read ({err.strerror or err}); check the file and its permissions"
        ) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes; a workbench.yml is a few KB of "
                          "settings, so check that this is the right file")
    boms = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
            (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    encoding = next((enc for bom, enc in boms if data.startswith(bom)), "utf-8")
    if encoding == "utf-8" and b"\x00" in data:
        kind = "UTF-16 text without a byte-order mark" if _looks_utf16(data) else "a binary file, not YAML text"
        raise ConfigError(f"{path}: {kind}; save workbench.yml as UTF-8 text")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} line {line}: not {encoding.removesuffix('-sig').upper()} text (byte 0x{data[err.start]:02x}); "
            "save workbench.yml as UTF-8 (Latin-1, Windows-1252 and binary files are not read)"
        ) from None


def _parse_yaml(text: str, path: Path) -> Any:
    """YAML text -> Python values with :class:`_StrictLoader`; every failure is one ConfigError line."""
    loader: _StrictLoader | None = None
    root = None
    try:
        loader = _StrictLoader(text)  # checks the characters already
        root = loader.get_single_node()
        return None if root is None else loader.construct_document(root)
    except _Refused as err:
        key = _key_path(root, err.node) if root is not None and err.node is not None else ""
        mark = err.problem_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: {key + ': ' if key else ''}{err.problem}") from None
    except yaml.reader.ReaderError as err:
        where = f" line {text[: err.position].count(chr(10)) + 1}" if isinstance(err.position, int) else ""
        char = f"U+{err.character:04X}" if isinstance(err.character, int) else repr(err.character)
        raise ConfigError(f"{path}{where}: character {char} is not allowed in YAML ({err.reason}); "
                          "remove it or save workbench.yml as plain UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        context = getattr(err, "context", None)
        if context and not context.startswith("while"):  # "expected a single document ... but found ..."
            problem = f"{context} {problem}"
        raise ConfigError(f"{path}{where}: not valid YAML ({' '.join(str(problem).split())})") from None
    except RecursionError:  # MAX_DEPTH keeps this out of reach; never an internal error though
        raise ConfigError(f"{path}: nested too deeply to read; a workbench.yml needs a few levels") from None
    finally:
        if loader is not None:
            loader.dispose()


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
    raw = _parse_yaml(_read_text(path), path)
    return parse_config(raw or {}, origin=str(path))
