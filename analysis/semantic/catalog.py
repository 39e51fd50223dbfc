"""The metric catalog: metrics declared as data (``catalog.yml`` plus the config's own KPIs).

Every metric has an id, label, description, formula in words, unit and display format,
direction (higher or lower is better), kind (lag = outcome, lead = activity or pipeline that
predicts outcomes) and the tables it needs. Reports draw their glossary from here; the engine
(:mod:`analysis.engine`) computes from here. Custom metrics in ``workbench.yml`` are merged
in and validated by the same rules, which collect every problem with the metric's id and the fix.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis.data import schema
from analysis.errors import ConfigError, UnknownNameError
from analysis.format import NA, Numbers

CATALOG_FILE = Path(__file__).with_name("catalog.yml")

#: Event sources: table, time column assigning rows to periods, and a fixed filter.
SOURCES: dict[str, dict[str, Any]] = {
    "deals_closed": {"table": "opportunities", "time": "close_date", "where": {"status": ["won", "lost"]}},
    "deals_created": {"table": "opportunities", "time": "created_at", "where": {}},
    "leads_created": {"table": "leads", "time": "created_at", "where": {}},
    "activities": {"table": "activities", "time": "occurred_at", "where": {}},
    "pulse": {"table": "pulse", "time": "answered_at", "where": {}},
    "spend": {"table": "spend", "time": "period_start", "where": {}},
}

#: Derived columns a source offers beside the canonical ones (computed in analysis.engine).
DERIVED_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "opportunities": {"cycle_days": ("created_at", "close_date"), "customer_type": ()},
    "leads": {"response_minutes": ("created_at", "first_response_at"), "converted": ()},
    "activities": {"duration_min": ("duration_s",)},
}

#: Default source when a custom metric names a table instead of a source.
TABLE_SOURCES = {"leads": "leads_created", "activities": "activities", "pulse": "pulse", "spend": "spend"}

SIMPLE_TYPES = ("count", "sum", "nunique", "mean", "median")
TYPES = (*SIMPLE_TYPES, "ratio", "derived", "growth", "function")
ADDITIVE_TYPES = ("count", "sum")

UNIT_FORMATS = {
    "money": "{:,.0f}",
    "money_per_day": "{:,.0f}/day",
    "count": "{:,.0f}",
    "percent": "{:.1%}",
    "days": "{:.1f} d",
    "minutes": "{:.1f} min",
    "number": "{:,.2f}",
    "multiple": "{:.2f}x",
    "score": "{:+.0f}",
}

WHERE_OPS = ("gt", "ge", "lt", "le", "ne")


def unit_text(unit: str, value: Any, numbers: Numbers) -> str:
    """A value of ``unit`` as text through the report's one formatter (full figures, with the
    currency for money; "n/a" when not available). ``UNIT_FORMATS`` are the same rules as
    plain format strings, for callers without a :class:`~analysis.format.Numbers`."""
    n = numbers
    if unit in ("money", "money_per_day"):
        text = n.money(value, compact=False)
        return text + ("/day" if unit == "money_per_day" and text != NA else "")
    suffix, digits, signed = {
        "count": ("", 0, False), "percent": (None, 1, False), "days": (" d", 1, False),
        "minutes": (" min", 1, False), "multiple": ("x", 2, False), "score": ("", 0, True),
    }.get(unit, ("", 2, False))
    if suffix is None:
        return n.percent(value, digits=digits)
    text = n.number(value, digits=digits, signed=signed)
    return text if text == NA else text + suffix


@dataclass(frozen=True)
class Metric:
    """One catalog entry."""

    id: str
    label: str
    description: str
    formula: str
    type: str
    unit: str
    direction: str
    kind: str
    source: str | None = None
    column: str | None = None
    where: dict = field(default_factory=dict)
    numerator: str | None = None
    denominator: str | None = None
    expr: str | None = None
    of: str | None = None
    function: str | None = None
    proportion: bool = False
    format: str | None = None
    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()
    custom: bool = False

    @property
    def is_rate(self) -> bool:
        """Ratios of counts carry numerator, denominator and a Wilson interval."""
        return self.proportion

    @property
    def additive(self) -> bool:
        """Counts and sums add up across groups and periods."""
        return self.type in ADDITIVE_TYPES

    @property
    def display_format(self) -> str:
        return self.format or UNIT_FORMATS.get(self.unit, "{:,.2f}")

    def fmt(self, value: Any, numbers: Numbers | None = None) -> str:
        """Format a value for display ("n/a" when not available).

        With ``numbers`` (a dataset's ``config.numbers``) the value goes through the report's one
        formatter: money with its currency, the display locale's separators. A metric's own
        ``format`` string (custom metrics) is used as given.
        """
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
            return NA
        if numbers is not None and not self.format:
            return unit_text(self.unit, value, numbers)
        return self.display_format.format(value)

    def formatter(self, numbers: Numbers | None = None):
        """``fmt`` as a one-argument function (a table column's format)."""
        return lambda value: self.fmt(value, numbers)


class Catalog:
    """All metrics, built-in and custom, by id."""

    def __init__(self, metrics: dict[str, Metric], version: str, numbers: Numbers | None = None):
        self.metrics = metrics
        self.version = version
        #: the config's one formatter (currency, display locale); None: plain format strings
        self.numbers = numbers

    def fmt(self, metric_id: str, value: Any) -> str:
        """``value`` of metric ``metric_id`` as text, through the catalog's formatter."""
        return self.get(metric_id).fmt(value, self.numbers)

    def __contains__(self, metric_id: str) -> bool:
        return metric_id in self.metrics

    def __iter__(self):
        return iter(self.metrics.values())

    def __len__(self) -> int:
        return len(self.metrics)

    def get(self, metric_id: str) -> Metric:
        """The metric ``metric_id``, or UnknownNameError with a did-you-mean suggestion."""
        try:
            return self.metrics[metric_id]
        except KeyError:
            close = difflib.get_close_matches(metric_id, list(self.metrics), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown metric {metric_id!r}{hint} (list them with: python -m analysis metrics --list)"
            ) from None

    def dependencies(self, metric_id: str) -> list[str]:
        """Metric ids this metric is computed from (direct)."""
        m = self.get(metric_id)
        if m.type == "ratio":
            return [m.numerator, m.denominator]
        if m.type == "derived":
            return expr_names(m.expr)
        if m.type == "growth":
            return [m.of]
        return []

    def tables_needed(self, metric_id: str) -> set[str]:
        """Every table a metric needs, through its dependencies."""
        m = self.get(metric_id)
        out = set(m.tables)
        if m.source:
            out.add(SOURCES[m.source]["table"])
        for dep in self.dependencies(metric_id):
            out |= self.tables_needed(dep)
        return out

    def columns_needed(self, metric_id: str) -> set[str]:
        """Optional ``table.column`` a metric needs, through its dependencies."""
        m = self.get(metric_id)
        out = set(m.columns)
        if m.source:
            table = SOURCES[m.source]["table"]
            cols = [m.column] if m.column else []
            cols += list(m.where)
            cols.append(SOURCES[m.source]["time"])  # the column that places a row in a period
            for c in cols:
                derived = DERIVED_COLUMNS.get(table, {})
                for real in derived.get(c, (c,) if c not in derived else ()):
                    out.add(f"{table}.{real}")
        for dep in self.dependencies(metric_id):
            out |= self.columns_needed(dep)
        return out

    def to_frame(self) -> pd.DataFrame:
        """The catalog as a table: the glossary of reports and ``metrics --list``."""
        rows = [
            {
                "id": m.id,
                "label": m.label,
                "kind": m.kind,
                "unit": m.unit,
                "direction": f"{m.direction} is better",
                "formula": m.formula,
                "description": m.description,
                "tables": ", ".join(sorted(self.tables_needed(m.id))) or " or ".join(m.rows),
                "custom": m.custom,
            }
            for m in self
        ]
        return pd.DataFrame(rows)


def expr_names(expr: str) -> list[str]:
    """Metric ids used in a derived expression."""
    return list(dict.fromkeys(n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)))


_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant,
                  ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)


def check_expr(expr: str) -> str | None:
    """None when ``expr`` is plain arithmetic over names and numbers, else the problem."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as err:
        return f"expr {expr!r} is not an arithmetic expression ({err.msg})"
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            return f"expr {expr!r} may only use metric ids, numbers, + - * / and parentheses"
    return None


def eval_expr(expr: str, values: dict[str, Any]) -> Any:
    """Evaluate a checked arithmetic expression over columns (Series); x / 0 is NA."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        left, right = ev(node.left), ev(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        return safe_divide(left, right)

    return ev(ast.parse(expr, mode="eval"))


def safe_divide(num: Any, den: Any) -> Any:
    """num / den with NA wherever den is 0 or missing (never 0, never inf)."""
    num = pd.to_numeric(num) if isinstance(num, pd.Series) else num
    den = pd.to_numeric(den) if isinstance(den, pd.Series) else den
    if isinstance(den, pd.Series):
        den = den.astype("Float64").mask(den == 0)
        return (num / den).astype("Float64")
    if den is None or pd.isna(den) or den == 0:
        return pd.NA
    return num / den


def _entry(mid: str, raw: dict, custom: bool) -> tuple[Metric | None, list[str]]:
    """Build one Metric and collect every problem of its definition."""
    problems: list[str] = []
    where_ = f"metric {mid!r}"
    raw = dict(raw)
    mtype = raw.get("type")
    if mtype not in TYPES:
        return None, [f"{where_}: type {mtype!r} is not one of {', '.join(TYPES)}"]
    source = raw.get("source")
    table = raw.pop("table", None)
    if mtype in SIMPLE_TYPES:
        if not source and table:
            source = TABLE_SOURCES.get(table)
            if source is None:
                problems.append(
                    f"{where_}: table {table!r} needs an explicit source "
                    f"({', '.join(s for s, v in SOURCES.items() if v['table'] == table) or 'none'})"
                )
        if source and source not in SOURCES:
            close = difflib.get_close_matches(source, SOURCES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where_}: unknown source {source!r}{hint}; use one of {', '.join(SOURCES)}")
        elif source:
            tname = SOURCES[source]["table"]
            known = set(schema.TABLES[tname].column_names) | set(DERIVED_COLUMNS.get(tname, {}))
            for col in [raw.get("column"), *(raw.get("where") or {})]:
                if col and col not in known:
                    close = difflib.get_close_matches(col, sorted(known), n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    problems.append(f"{where_}: {tname} has no column {col!r}{hint}")
            for col, cond in (raw.get("where") or {}).items():
                if isinstance(cond, dict):
                    bad = [k for k in cond if k not in WHERE_OPS]
                    if bad:
                        problems.append(f"{where_}: where.{col} uses {bad[0]!r}; use {', '.join(WHERE_OPS)}")
    if mtype == "derived" and raw.get("expr"):
        p = check_expr(str(raw["expr"]))
        if p:
            problems.append(f"{where_}: {p}")
    if problems:
        return None, problems
    label = raw.get("label") or mid.replace("_", " ").capitalize()
    metric = Metric(
        id=mid,
        label=label,
        description=raw.get("description") or label,
        formula=raw.get("formula") or raw.get("expr") or raw.get("description") or label,
        type=mtype,
        unit=raw.get("unit", "number"),
        direction=raw.get("direction", "higher"),
        kind=raw.get("kind", "lead"),
        source=source,
        column=raw.get("column"),
        where=dict(raw.get("where") or {}),
        numerator=raw.get("numerator"),
        denominator=raw.get("denominator"),
        expr=raw.get("expr"),
        of=raw.get("of"),
        function=raw.get("function"),
        proportion=bool(raw.get("proportion", False)),
        format=raw.get("format"),
        tables=tuple(raw.get("tables") or ()),
        columns=tuple(raw.get("columns") or ()),
        rows=tuple(raw.get("rows") or ()),
        custom=custom,
    )
    return metric, []


@lru_cache(maxsize=1)
def _builtin() -> tuple[dict, str]:
    data = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    return data["metrics"], str(data["version"])


def build_catalog(config: Any = None) -> Catalog:
    """The built-in catalog plus the config's custom metrics, validated together.

    Raises ConfigError listing every problem (unknown types, sources, columns, metric ids,
    cycles), each with the metric's id.
    """
    raw_metrics, version = _builtin()
    metrics: dict[str, Metric] = {}
    problems: list[str] = []
    for mid, raw in raw_metrics.items():
        m, p = _entry(mid, raw, custom=False)
        problems += p
        if m:
            metrics[mid] = m
    custom = list(getattr(config, "metrics", ()) or ())
    for cm in custom:
        raw = cm.model_dump(exclude_none=True) if hasattr(cm, "model_dump") else dict(cm)
        mid = raw.pop("id")
        if mid in metrics and not metrics[mid].custom:
            problems.append(f"metric {mid!r}: a built-in metric has this id; choose another id")
            continue
        m, p = _entry(mid, raw, custom=True)
        problems += p
        if m:
            metrics[mid] = m
    catalog = Catalog(metrics, version + (f"+{len(custom)}custom" if custom else ""),
                      numbers=getattr(config, "numbers", None))
    for m in list(metrics.values()):
        for dep in _deps_or_none(m):
            if dep not in metrics:
                close = difflib.get_close_matches(dep, list(metrics), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"metric {m.id!r}: refers to unknown metric {dep!r}{hint}")
    if not problems:
        for m in metrics.values():
            _check_cycle(catalog, m.id, [], problems)
    if problems:
        raise ConfigError("invalid metric definitions: " + "; ".join(dict.fromkeys(problems)))
    return catalog


def _deps_or_none(m: Metric) -> list[str]:
    if m.type == "ratio":
        return [d for d in (m.numerator, m.denominator) if d]
    if m.type == "derived" and m.expr:
        return expr_names(m.expr)
    if m.type == "growth" and m.of:
        return [m.of]
    return []


def _check_cycle(catalog: Catalog, mid: str, path: list[str], problems: list[str]) -> None:
    if mid in path:
        problems.append(f"metric {path[0]!r}: circular definition {' -> '.join([*path, mid])}")
        return
    for dep in catalog.dependencies(mid):
        _check_cycle(catalog, dep, [*path, mid], problems)


def catalog_version() -> str:
    """Version of the built-in catalog (shown in every report's provenance)."""
    return _builtin()[1]
