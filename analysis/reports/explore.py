"""The metric explorer: pick metrics, periods, a dimension and filters; see a chart, a table and
the deals or activities behind any figure.

``Explorer(ds).view(...)`` returns static display objects (an offline SVG chart, an HTML table and
a caption), so a headless run or a rendered notebook keeps them; ``Explorer(ds).widget()`` wraps
the same view in ipywidgets controls for a live JupyterLab session (widget output is not kept by
nbconvert, which is why the notebook also displays a static default view).

Rules (tested in tests/test_explore.py)
---------------------------------------
* Periods never reach before the data's first day or after its last
  (:func:`analysis.semantic.engine.data_bounds`); a period the data covers only in part is
  marked, in the table ("2026 (to 30 Sep)") and in the chart (hollow points, dashed line).
* A dimension or filter is offered only when every picked metric can be split by it; the rest
  are listed with the engine's reason (:meth:`Explorer.dimension_support`).
* "Others" (the groups after the top N) is computed by the engine over those groups together,
  never added up or averaged here: counts and sums equal the total less the top N, ratios are
  recomputed from their parts. A group without a value (a deal without an account has no
  segment) cannot be selected by a filter, so it is shown on its own, never in "Others".
* :func:`drill_down` lists the rows behind a figure through the engine's own source tables,
  filters and definitions: they add up to the figure exactly.
* Money carries the reporting currency (``ds.config.numbers``); names, not ids, label reps and
  managers; the caption states definitions, periods, filters and currency.
"""

from __future__ import annotations

import contextlib
import html
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import altair as alt
import ibis
import pandas as pd

from analysis.data import schema, timeline
from analysis.data.loading import Dataset
from analysis.data.periods import GRAINS, Period, parse_period, period_of, periods_between
from analysis.errors import WorkbenchError
from analysis.paths import REPORTS
from analysis.reports import charts
from analysis.reports.export import write_csv
from analysis.semantic.catalog import SOURCES, Catalog, Metric, build_catalog, eval_expr, safe_divide
from analysis.semantic.engine import Engine, data_bounds, dimensions, metrics, where_condition, wilson_interval

DEFAULT_METRICS = ("revenue", "win_rate", "deals_won")
#: Periods shown by default at each grain (ending with the data's last period).
TREND = {"day": 31, "week": 13, "month": 12, "quarter": 8, "half": 6, "year": 4}
#: Rows of a table page.
PAGE_ROWS = 25
#: Most periods one view may hold (a chart of more is unreadable and slow).
MAX_PERIODS = 120
#: Choices of "top N" (0: every group).
TOP_CHOICES = (5, 8, 10, 15, 20, 0)
DEFAULT_TOP = 8
#: Columns a rate carries beside its value (see analysis.semantic.engine.metrics).
RATE_PARTS = ("numerator", "denominator", "low", "high")
#: Most groups a chart draws besides "Others" (with top = every group, the table has them all).
CHART_GROUPS = 20

DIMENSION_LABELS = {
    "rep_id": "Rep",
    "team": "Team",
    "region": "Region",
    "manager_id": "Manager",
    "product": "Product",
    "segment": "Segment",
    "industry": "Industry",
    "deal_type": "Deal type",
    "lead_source": "Lead source",
    "activity_type": "Activity type",
    "customer_type": "Customer type",
}

#: Filters the explorer offers, and the table and column holding their values.
FILTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "team": (("reps", "team"),),
    "region": (("reps", "region"),),
    "rep_id": (("reps", "rep_id"),),
    "segment": (("accounts", "segment"),),
    "product": (("opportunities", "product"),),
    "lead_source": (("opportunities", "lead_source"), ("leads", "source")),
}

#: Metric families, in the order the picker lists them.
FAMILIES = (
    "Revenue & deals",
    "Pipeline",
    "Conversion & win rates",
    "Sales cycle",
    "Leads",
    "Activity",
    "Quota & targets",
    "Cost & profit",
    "Customers & retention",
    "People",
)

#: Canonical columns a drill-down shows first for each table (the rest follow).
DRILL_COLUMNS = {
    "opportunities": ("opportunity_id", "owner_id", "account_id", "status", "created_at", "close_date", "amount"),
    "activities": ("activity_id", "rep_id", "type", "outcome", "occurred_at", "duration_s", "opportunity_id"),
    "leads": ("lead_id", "owner_id", "created_at", "status", "source", "first_response_at"),
    "pulse": ("rep_id", "team", "answered_at", "score"),
    "spend": ("period_start", "period_end", "category", "amount"),
}

#: Rep column of each table (names shown beside it).
REP_COLUMNS = {"opportunities": "owner_id", "leads": "owner_id", "activities": "rep_id", "pulse": "rep_id"}


#: CSS classes of the widget (``wb-explorer-<name>``): the whole widget, the metric picker and one
#: checkbox per metric (``metric-<id>``), the controls, and the output areas.
CLASSES = (
    "root", "search", "metric", "metric-option", "metric-<id>", "clear", "chart-metric", "grain", "from", "to",
    "all-data", "by", "by-note", "top", "filter", "filter-team", "filter-region", "filter-rep", "filter-segment",
    "filter-product", "filter-lead-source", "filter-note", "output", "message", "chart", "chart-title", "table",
    "prev", "next", "page", "caption", "drill", "drill-output", "drill-prev", "drill-next", "export",
    "export-note",
)


class ExplorerError(WorkbenchError, ValueError):
    """A view the explorer cannot show as asked (says what, and how to fix it)."""


def dimension_label(dim: str | None) -> str:
    """``rep_id`` -> "Rep": the header of a dimension."""
    if not dim:
        return ""
    return DIMENSION_LABELS.get(dim, dim.replace("_", " ").capitalize())


def family(catalog: Catalog, m: Metric) -> str:
    """The picker's family of a metric (revenue & deals, conversion, cycle, activity, quota, cost...),
    from what the catalog says of it: its tables, unit, type and parts."""
    tables = catalog.tables_needed(m.id) | set(m.rows)
    parts = set(catalog.dependencies(m.id))
    if "quotas" in tables or m.id == "revenue_target":
        return "Quota & targets"
    if m.unit == "days" and "opportunities" in tables:
        return "Sales cycle"
    if "spend" in tables or m.column == "cost" or "won_cost" in parts:
        return "Cost & profit"
    if "pulse" in tables:
        return "People"
    if "subscriptions" in tables or "subscriptions" in m.rows or m.column == "account_id" or "accounts_won" in parts \
            or m.id == "new_customers":
        return "Customers & retention"
    if "activities" in tables or "reps" in tables:
        return "Activity"
    if "leads" in tables:
        return "Leads"
    if m.type == "growth":
        return "Revenue & deals"
    if m.unit == "percent":
        return "Conversion & win rates"
    if m.source == "deals_created" or m.type == "function":
        return "Pipeline"
    return "Revenue & deals"


def _day(d: date) -> str:
    return f"{d.day} {d:%b}"


def _day_year(d: date) -> str:
    return f"{d.day} {d:%b} {d.year}"


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    try:
        return isinstance(v, float) and math.isnan(v)
    except TypeError:  # pragma: no cover - exotic scalars
        return False


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _bundle(obj: Any) -> dict[str, Any]:
    """A display object as an output of an ipywidgets Output (its mime bundle)."""
    data: Any = None
    if hasattr(obj, "_repr_mimebundle_"):
        data = obj._repr_mimebundle_()
        if isinstance(data, tuple):
            data = data[0]
    if not data and hasattr(obj, "_repr_html_"):
        data = {"text/html": obj._repr_html_()}
    data = dict(data or {})
    data.setdefault("text/plain", str(obj))
    return {"output_type": "display_data", "data": data, "metadata": {}}


# -- drill-down ----------------------------------------------------------------------------------


def _time_literal(value: date, col: Any) -> Any:
    if col.type().is_timestamp():
        return ibis.literal(datetime.combine(value, datetime.min.time()))
    return ibis.literal(value)


def _drill_parts(catalog: Catalog, m: Metric) -> tuple[list[Metric], str]:
    """The simple metrics whose rows make up ``m``, and a sentence saying how."""
    if m.source:
        return [m], ""
    if m.type == "ratio":
        num, den = catalog.get(m.numerator), catalog.get(m.denominator)
        if num.source and den.source and num.source == den.source:
            return [num, den], (f"{m.label} = {num.label} / {den.label}; the rows are those of {den.label}, "
                                f"flagged where they count in {num.label}")
        part = num if num.source else den if den.source else None
        if part is not None:
            other = den if part is num else num
            return [part], (f"{m.label} = {num.label} / {den.label}; the rows are those of {part.label} "
                            f"({other.label} is not made of rows)")
    if m.type in ("derived", "growth"):
        deps = [catalog.get(d) for d in catalog.dependencies(m.id)]
        if deps and all(d.source for d in deps) and len({d.source for d in deps}) == 1:
            how = f"{m.label} = {m.formula}" if m.type == "derived" else f"{m.label} compares {deps[0].label} with the previous period"
            return deps, how + "; the rows are those of its parts"
    raise ExplorerError(
        f"the rows behind {m.label} ({m.id}) cannot be listed: it is computed by a {m.type} "
        f"({m.formula}); drill into one of its parts instead"
    )


def drill_down(
    ds: Dataset,
    metric_id: str,
    period: str | Period,
    *,
    by: str | None = None,
    group: Any = None,
    filters: Mapping[str, Any] | None = None,
    catalog: Catalog | None = None,
) -> pd.DataFrame:
    """The deals (or activities, leads, pulse answers, spend rows) behind one figure.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    metric_id
        A catalog metric with a source (counts, sums, means, medians, distinct counts), a
        ratio, derived or growth metric made of such parts, or open deals / open pipeline (the
        deals open at the end of the period). Other function metrics (ARR, churn, velocity,
        coverage...) raise ExplorerError naming them.
    period
        The period label of the figure (``2026-Q3``) or a :class:`Period`.
    by, group
        The dimension of the view and the group of the figure: one value, a list of values
        (the groups in "Others"), or None with ``by`` set for the rows without a value.
    filters
        The view's filters (``{dimension: value or [values]}``), as passed to the engine.

    Returns
    -------
    pandas.DataFrame
        One row per source row in the period, with the source's canonical columns, the
        dimension, ``rep`` (the rep's name) where the table has a rep, and one boolean column
        ``in_<part>`` per part of a ratio or derived metric. Money columns are exact decimals.
        ``attrs``: ``metric``, ``period``, ``table``, ``how`` (how the rows make the figure),
        ``figure`` (the metric recomputed from these rows for simple metrics and ratios of one
        source; None otherwise).

    Notes
    -----
    The rows come from the engine's own source tables (:meth:`Engine.source_table`): the same
    fixed filters (closed deals for ``deals_closed``), the same dimension joins, the same view
    filters and the same ``where`` of each metric, in ``[period.start, period.end)`` of the
    source's time column. So a count is their number and a sum their exact total.
    """
    catalog = catalog or build_catalog(ds.config)
    m = catalog.get(metric_id)
    fsm = ds.config.fiscal_year_start_month
    p = period if isinstance(period, Period) else parse_period(period, fiscal_start_month=fsm)
    filters = dict(filters or {})
    if m.type == "function" and m.function in OPEN_FUNCTIONS:
        return _open_rows(ds, catalog, m, p, by, group, filters)
    parts, how = _drill_parts(catalog, m)
    if by is not None and group is not None and not isinstance(group, (list, tuple, set)):
        values: list[str] | None = [str(group)]
    elif by is not None and group is not None:
        values = [str(g) for g in group]
    else:
        values = None
    eng = Engine(ds, catalog, [by] if by else [], p.grain, fsm, filters)
    for part in [m, *parts]:
        reason = eng.reason_unavailable(part.id)
        if reason:
            raise ExplorerError(f"{part.label} is not available here: {reason}")
    source = parts[0].source
    table = SOURCES[source]["table"]
    t, time_col = eng.source_table(source)
    col = t[time_col]
    t = t.filter(col.notnull() & (col >= _time_literal(p.start, col)) & (col < _time_literal(p.end, col)))
    if by is not None and values is not None:
        t = t.filter(t[by].isin(values))
    elif by is not None and group is None:
        t = t.filter(t[by].isnull())
    flags = {f"in_{part.id}": where_condition(t, part.where) for part in parts if part.where}
    if len(parts) == 1 or len({tuple(sorted(part.where.items(), key=str)) for part in parts}) == 1:
        if parts[0].where:
            t = t.filter(where_condition(t, parts[0].where))
        flags = {}
    else:
        keep = ibis.literal(False)
        for part in parts:
            keep |= where_condition(t, part.where) if part.where else ibis.literal(True)
        t = t.filter(keep)
    money = {part.column for part in parts if part.type == "sum" and part.column}
    cols = [c for c in DRILL_COLUMNS.get(table, ()) if c in t.columns]
    cols += [c for c in schema.TABLES[table].column_names if c in t.columns and c not in cols]
    cols += [part.column for part in parts if part.column and part.column in t.columns and part.column not in cols]
    if by and by not in cols:
        cols.append(by)
    exprs = {c: (t[c].cast(timeline.MONEY) if c in money else t[c]) for c in cols}
    exprs.update({k: v.fill_null(False) for k, v in flags.items()})
    order = list(dict.fromkeys(c for c in (time_col, DRILL_COLUMNS.get(table, ("",))[0]) if c in t.columns))
    out = t.select(**exprs).order_by(order).to_pandas()
    rep_col = REP_COLUMNS.get(table)
    if rep_col and rep_col in out.columns and ds.has("reps"):
        names = rep_names(ds)
        out.insert(out.columns.get_loc(rep_col) + 1, "rep", out[rep_col].map(lambda r: names.get(str(r), r)))
    out.attrs.update(metric=m.id, period=p.label, table=table, how=how, figure=_figure(m, parts, out))
    return out


#: Function metrics whose rows are the deals open at the end of the period (analysis.data.timeline).
OPEN_FUNCTIONS = ("open_deals", "open_pipeline")


def _open_rows(ds: Dataset, catalog: Catalog, m: Metric, p: Period, by: str | None, group: Any,
               filters: dict[str, Any]) -> pd.DataFrame:
    """The deals open at the end of ``p`` (as the engine's open deals and open pipeline count them:
    :func:`analysis.data.timeline.open_deals` at :func:`~analysis.data.timeline.period_end`)."""
    eng = Engine(ds, catalog, [by] if by else [], p.grain, ds.config.fiscal_year_start_month, filters)
    reason = eng.reason_unavailable(m.id)
    if reason:
        raise ExplorerError(f"{m.label} is not available here: {reason}")
    o = eng.filtered(eng.with_dims(eng.opportunities(), "opportunities", [*eng.by, *filters]), "opportunities")
    if by is not None and group is not None:
        o = o.filter(o[by].isin([str(g) for g in (group if isinstance(group, (list, tuple, set)) else [group])]))
    elif by is not None:
        o = o.filter(o[by].isnull())
    t = timeline.open_deals(ds, {p.label: timeline.period_end(p)}, table=o)
    cols = [c for c in DRILL_COLUMNS["opportunities"] if c in t.columns]
    cols += [c for c in schema.TABLES["opportunities"].column_names if c in t.columns and c not in cols]
    if by and by not in cols:
        cols.append(by)
    exprs = {c: (t[c].cast(timeline.MONEY) if c == "amount" else t[c]) for c in cols}
    out = t.select(**exprs).order_by(["created_at", "opportunity_id"]).to_pandas()
    names = rep_names(ds)
    out.insert(out.columns.get_loc("owner_id") + 1, "rep", out["owner_id"].map(lambda r: names.get(str(r), r)))
    if m.function == "open_deals":
        figure: Any = len(out)
    else:
        figure = float(sum(out["amount"].dropna(), start=timeline.to_decimal(0)))
    how = f"{m.label}: the deals open at the end of {p.label} ({m.formula})"
    out.attrs.update(metric=m.id, period=p.label, table="opportunities", how=how, figure=figure)
    return out


def _figure(m: Metric, parts: list[Metric], rows: pd.DataFrame) -> Any:
    """The metric recomputed from its drill-down rows (simple metrics and one-source ratios)."""

    def simple(part: Metric) -> Any:
        sub = rows[rows[f"in_{part.id}"]] if f"in_{part.id}" in rows.columns else rows
        if part.type == "count":
            return len(sub)
        values = sub[part.column].dropna()
        if part.type == "sum":
            return float(sum(values, start=timeline.to_decimal(0))) if len(values) else 0.0
        if part.type == "nunique":
            return int(values.nunique())
        if not len(values):
            return None
        return float(values.astype(float).median() if part.type == "median" else values.astype(float).mean())

    if m.source:
        return simple(m)
    if m.type == "ratio" and len(parts) == 2:
        num, den = simple(parts[0]), simple(parts[1])
        return None if not den or num is None else num / den
    if m.type == "derived":  # the catalog's own arithmetic over the parts' figures (x / 0 is n/a)
        value = eval_expr(m.expr, {part.id: simple(part) for part in parts})
        return None if _missing(value) else float(value)
    return None


def rep_names(ds: Dataset) -> dict[str, str]:
    """Rep id -> the rep's name (with the id beside names two reps share); the id without a name."""
    if not ds.has("reps"):
        return {}
    reps = ds.table("reps")
    cols = ["rep_id", *(["name"] if "name" in reps.columns else [])]
    df = reps.select(*cols).to_pandas()
    df["rep_id"] = df["rep_id"].astype(str)
    if "name" not in df:
        return dict(zip(df.rep_id, df.rep_id))
    name = df["name"].astype("string").str.strip()
    twice = name.duplicated(keep=False) & name.notna()
    label = name.where(~twice, name + " (" + df.rep_id + ")").fillna(df.rep_id)
    return dict(zip(df.rep_id, label.astype(str)))


# -- the explorer ----------------------------------------------------------------------------------


def _filter_key(filters: Mapping[str, Any] | None) -> tuple:
    out = []
    for d, v in sorted((filters or {}).items()):
        vals = v if isinstance(v, (list, tuple, set)) else [v]
        out.append((d, tuple(sorted(str(x) for x in vals))))
    return tuple(out)


@dataclass
class View:
    """One computed view: what is shown and how it was asked for."""

    metric_ids: tuple[str, ...]
    chart_metric: str
    by: str | None
    grain: str
    periods: tuple[str, ...]
    filters: dict[str, Any]
    top: int
    frame: pd.DataFrame  # shown rows: [group, group_label,] period, period_label, partial, metrics
    full: pd.DataFrame  # every group (the engine's frame, names added)
    others: int = 0  # groups in "Others"
    ranked_by: str = ""
    chart_frame: pd.DataFrame | None = None  # the chart's rows: at most CHART_GROUPS groups and Others
    chart_top: int = 0
    chart_others: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.frame) // PAGE_ROWS))


class Explorer:
    """Metric explorer over one dataset (the catalog comes from its config)."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.catalog = build_catalog(ds.config)
        self.fsm = ds.config.fiscal_year_start_month
        self.numbers = ds.config.numbers
        self.currency = ds.config.currency
        bounds = data_bounds(ds)
        if bounds is None:
            raise ExplorerError(f"{ds.source.location}: no dated deals or activities to explore")
        lo, hi = bounds
        try:
            hi = min(hi, ds.last_date())
        except WorkbenchError:
            pass
        self.bounds: tuple[date, date] = (lo, hi)
        self.last = hi
        self.seconds: float | None = None
        self._frames: dict[tuple, pd.DataFrame] = {}  # (metric, by, grain, periods, filters) -> columns
        self._support: dict[tuple, str | None] = {}
        self._values: dict[str, list[tuple[str, str]]] = {}
        self._names: dict[str, dict[str, str]] = {}
        self._charts: dict[tuple, Any] = {}
        self.queries = 0  # engine calls made (the widget's cache is measured by it)

    # -- catalog and dimensions ----------------------------------------------------------------

    def label(self, metric_id: str) -> str:
        return self.catalog.get(metric_id).label

    def metric_groups(self) -> dict[str, list[Metric]]:
        """Metrics by family, in picker order; within a family, by label."""
        out: dict[str, list[Metric]] = {f: [] for f in FAMILIES}
        for m in self.catalog:
            out.setdefault(family(self.catalog, m), []).append(m)
        return {f: sorted(ms, key=lambda m: m.label.lower()) for f, ms in out.items() if ms}

    def support(self, metric_id: str, dim: str | None = None, *, as_filter: bool = False) -> str | None:
        """None when ``metric_id`` can be computed (split or filtered by ``dim``), else why not."""
        key = (metric_id, dim, as_filter)
        if key not in self._support:
            eng = Engine(self.ds, self.catalog, [dim] if dim and not as_filter else [], "month", self.fsm,
                         {dim: "x"} if dim and as_filter else {})
            reason = eng.reason_unavailable(metric_id)
            if reason and dim:
                reason = reason.replace(f"by {dim}:", f"by {dimension_label(dim).lower()}:")
            if reason and as_filter:
                reason = reason.replace("cannot be split by", "cannot be filtered by")
            if reason is None and dim and not self.dimension_values(dim, probe=True):
                reason = f"the data has no {dimension_label(dim).lower()} values"
            self._support[key] = reason
        return self._support[key]

    def dimension_support(self, metric_ids: Sequence[str], *, as_filter: bool = False,
                          dims: Sequence[str] | None = None) -> dict[str, str | None]:
        """Each dimension -> None when every metric can be split (or filtered) by it, else the reason
        naming the first metric that cannot ("Customer acquisition cost cannot be split by team:
        spend does not link to it")."""
        out: dict[str, str | None] = {}
        for dim in dims if dims is not None else dimensions(self.ds):
            out[dim] = None
            for mid in metric_ids:
                reason = self.support(mid, dim, as_filter=as_filter)
                if reason:
                    out[dim] = f"{self.label(mid)}: {reason}"
                    break
        return out

    def dimension_values(self, dim: str, *, probe: bool = False) -> list[tuple[str, str]]:
        """(label, value) of a dimension's values in the data, by label (filters offer them)."""
        if dim not in self._values:
            sources = FILTERS.get(dim)
            if sources is None:
                if probe:
                    return [("?", "?")]  # dimensions without a filter: the engine decides
                raise ExplorerError(f"no filter on {dim!r}; filters: {', '.join(FILTERS)}")
            values: set[str] = set()
            for table, column in sources:
                if self.ds.has(table) and column in self.ds.table(table).columns and (
                        table == "reps" or self.ds.has_column(table, column)):
                    t = self.ds.table(table)
                    if dim == "rep_id" and "role" in t.columns:
                        t = t.filter(t.role.fill_null("") != "manager")
                    col = t[column].cast("string")
                    values |= set(t.select(v=col).filter(col.notnull()).distinct().to_pandas()["v"])
            names = self.names(dim)
            self._values[dim] = sorted(((names.get(v, v), v) for v in values if str(v).strip()),
                                       key=lambda lv: lv[0].lower())
        return self._values[dim]

    def names(self, dim: str | None) -> dict[str, str]:
        """Value -> display name of a dimension (rep and manager ids -> names)."""
        if dim not in ("rep_id", "manager_id"):
            return {}
        if "reps" not in self._names:
            self._names["reps"] = rep_names(self.ds)
        return self._names["reps"]

    def group_label(self, dim: str, value: Any) -> str:
        if _missing(value):
            return f"(no {dimension_label(dim).lower()})"
        return self.names(dim).get(str(value), str(value))

    # -- periods ---------------------------------------------------------------------------

    def periods(self, grain: str, n: int | None = None, *, start: date | None = None,
                end: date | None = None) -> list[str]:
        """Period labels of a grain within the data, oldest first.

        Without ``start``/``end``: the last ``n`` (default :data:`TREND`) periods ending with the
        data's last day, none before its first day. With them: every period overlapping
        ``[start, end]`` (both inclusive) clipped to the data.
        """
        if grain not in GRAINS:
            raise ExplorerError(f"grain {grain!r} is not one of {', '.join(GRAINS)}")
        lo, hi = self.bounds
        if start is None and end is None:
            last = period_of(hi, grain, fiscal_start_month=self.fsm)
            n = n or TREND[grain]
            out = [last.shift(-i) for i in range(n - 1, -1, -1)]
            return [p.label for p in out if p.end > lo]
        asked = (_as_day(start) if start else lo, _as_day(end) if end else hi)
        start, end = max(asked[0], lo), min(asked[1], hi)
        if start > end:
            raise ExplorerError(
                f"the date range {_day_year(asked[0])} to {_day_year(asked[1])} holds no data: the data covers "
                f"{_day_year(lo)} to {_day_year(hi)}; pick dates within it")
        out = periods_between(start, end, grain, fiscal_start_month=self.fsm)
        if len(out) > MAX_PERIODS:
            raise ExplorerError(
                f"{len(out)} {grain}s from {_day_year(start)} to {_day_year(end)} are more than the {MAX_PERIODS} "
                f"a view shows: narrow the date range or pick a coarser grain")
        return [p.label for p in out]

    def bounded(self, grain: str, periods: Sequence[str] | None) -> tuple[list[str], list[str]]:
        """The periods within the data (default: :meth:`periods`) and the ones dropped as outside it."""
        if periods is None:
            return self.periods(grain), []
        lo, hi = self.bounds
        keep, dropped = [], []
        for lab in periods:
            p = parse_period(lab, fiscal_start_month=self.fsm)
            if p.grain != grain:
                raise ExplorerError(f"period {p.label} is a {p.grain}, but the grain is {grain}; pick grain {p.grain!r}")
            (keep if p.end > lo and p.start <= hi else dropped).append(p.label)
        if not keep:
            raise ExplorerError(
                f"periods {', '.join(dropped)} hold no data: the data covers {_day_year(lo)} to {_day_year(hi)}")
        if len(keep) > MAX_PERIODS:
            raise ExplorerError(f"{len(keep)} periods are more than the {MAX_PERIODS} a view shows: ask for fewer")
        return sorted(set(keep), key=lambda lab: parse_period(lab, fiscal_start_month=self.fsm)), dropped

    def partial(self, label: str) -> str | None:
        """How the data covers a period only in part ("to 30 Sep", "from 1 Apr"), else None."""
        p = parse_period(label, fiscal_start_month=self.fsm)
        lo, hi = self.bounds
        head, tail = p.start < lo, p.last_day > hi
        if head and tail:
            return f"{_day(lo)} to {_day(hi)}"
        if head:
            return f"from {_day(lo)}"
        if tail:
            return f"to {_day(hi)}"
        return None

    def period_label(self, label: str) -> str:
        """A period as the view shows it: ``2026 (to 30 Sep)`` when the data covers it in part."""
        part = self.partial(label)
        return f"{label} ({part})" if part else label

    # -- numbers ---------------------------------------------------------------------------

    def frame(
        self,
        metric_ids: Sequence[str] = DEFAULT_METRICS,
        *,
        by: str | None = None,
        grain: str = "quarter",
        periods: Sequence[str] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """The numbers behind the view, as the engine computes them (tidy: by, period, one column
        per metric; ``attrs["unavailable"]``). Each metric is computed once per query and kept:
        adding a metric to a view computes only that metric."""
        ids = list(dict.fromkeys(metric_ids))
        for mid in ids:
            self.catalog.get(mid)
        labels = tuple(periods if periods is not None else self.periods(grain))
        fkey = _filter_key(filters)
        keys = [*([by] if by else []), "period"]
        t = time.perf_counter()
        missing = [mid for mid in ids if (mid, by, grain, labels, fkey) not in self._frames]
        if missing:
            got = metrics(self.ds, missing, by=[by] if by else None, grain=grain, periods=list(labels),
                          filters=dict(filters or {}) or None, catalog=self.catalog)
            self.queries += 1
            gone = got.attrs.get("unavailable", {})
            for mid in missing:
                cols = [c for c in got.columns if c == mid or c.startswith(f"{mid}_") and c[len(mid) + 1:] in
                        ("numerator", "denominator", "low", "high")]
                part = got[[*keys, *cols]].copy()
                part.attrs = {"unavailable": {mid: gone[mid]} if mid in gone else {}}
                self._frames[(mid, by, grain, labels, fkey)] = part
        parts = [self._frames[(mid, by, grain, labels, fkey)] for mid in ids]
        while len(self._frames) > 2_000:  # a long session: the oldest queries go first
            self._frames.pop(next(iter(self._frames)))
        out = parts[0]
        unavailable: dict[str, str] = dict(parts[0].attrs.get("unavailable", {}))
        for part in parts[1:]:
            unavailable.update(part.attrs.get("unavailable", {}))
            out = out.merge(part, on=keys, how="outer") if by else out.merge(part, on=keys, how="left")
        for mid in ids:  # a group missing from one metric's rows has none of its rows: 0 for counts and sums
            if self.catalog.get(mid).additive and mid not in unavailable:
                out[mid] = out[mid].fillna(0)
        order = {lab: i for i, lab in enumerate(labels)}
        out = out.assign(_o=out["period"].map(order)).sort_values(["_o", *([by] if by else [])],
                                                                  na_position="last").drop(columns="_o")
        out = out.reset_index(drop=True)
        out.attrs = {"unavailable": unavailable, "grain": grain}
        self.seconds = time.perf_counter() - t
        return out

    def compute(
        self,
        metric_ids: Sequence[str] = DEFAULT_METRICS,
        *,
        by: str | None = None,
        grain: str = "quarter",
        periods: Sequence[str] | None = None,
        filters: dict[str, Any] | None = None,
        top: int = DEFAULT_TOP,
        chart_metric: str | None = None,
    ) -> View:
        """The view's rows: every group ranked by the chart metric (counts and sums by their total
        over the periods, other metrics by their latest value), the top ``top`` (0: all) and
        "Others" (the rest together, see :meth:`others`), names and partial periods marked."""
        t0 = time.perf_counter()
        ids = tuple(dict.fromkeys(metric_ids))
        if not ids:
            raise ExplorerError("no metric picked: pick one or more metrics")
        chart_metric = chart_metric if chart_metric in ids else ids[0]
        filters = {d: v for d, v in (filters or {}).items() if v not in (None, "", [], ())}
        labels, dropped = self.bounded(grain, periods)
        notes = []
        if dropped:
            lo, hi = self.bounds
            notes.append(f"Left out {', '.join(dropped)}: the data covers {_day_year(lo)} to {_day_year(hi)}.")
        # with a dimension, the counts and sums the metrics are made of come in the same query: "Others"
        # is computed from them (see others())
        extra = [x for mid in ids for x in (self.additive_parts(mid) or []) if x not in ids] if by else []
        parts = self.frame([*ids, *dict.fromkeys(extra)], by=by, grain=grain, periods=labels, filters=filters)
        full = parts[[*([by] if by else []), "period", *self.columns_of(ids)]].copy()
        full.attrs = {**parts.attrs, "unavailable": {k: v for k, v in parts.attrs["unavailable"].items() if k in ids}}
        frame, others, ranked = full, 0, ""
        chart_frame, chart_top, chart_others = full, 0, 0
        if by:
            frame, others, ranked = self._top(full, ids, by, grain, labels, filters, top, chart_metric, parts)
            # a chart draws at most CHART_GROUPS lines and at most MAX_MARKS points
            chart_top = min(top or CHART_GROUPS, CHART_GROUPS, max(1, charts.MAX_MARKS // len(labels) - 2))
            if chart_top == top:
                chart_frame, chart_others = frame, others
            else:
                chart_frame, chart_others, ranked = self._top(full, ids, by, grain, labels, filters, chart_top,
                                                              chart_metric, parts)
        elif len(labels) > charts.MAX_MARKS:  # pragma: no cover - MAX_PERIODS is far below
            raise ExplorerError(f"{len(labels)} periods are too many to chart")
        view = View(ids, chart_metric, by, grain, tuple(labels), filters, top, self._dress(frame, by),
                    self._dress(full, by), others=others, ranked_by=ranked, notes=notes,
                    chart_frame=self._dress(chart_frame, by), chart_top=chart_top, chart_others=chart_others)
        view.frame.attrs = dict(frame.attrs)
        for mid, why in full.attrs.get("unavailable", {}).items():
            for d in [*([by] if by else []), *filters]:
                why = why.replace(f"by {d}:", f"by {dimension_label(d).lower()}:")
            view.notes.append(f"{self.label(mid)} is n/a: it {why}.")
        view.seconds = time.perf_counter() - t0
        return view

    def _rank(self, full: pd.DataFrame, by: str, mid: str, labels: Sequence[str]) -> tuple[list[Any], str]:
        m = self.catalog.get(mid)
        data = full[full[by].notna()]
        values = pd.to_numeric(data[mid], errors="coerce").astype(float)
        if m.additive:
            score = values.groupby(data[by]).sum()
            how = f"total {m.label.lower()} over the periods shown"
        else:
            latest = None
            for lab in reversed(labels):
                sub = data[data["period"] == lab]
                if pd.to_numeric(sub[mid], errors="coerce").notna().any():
                    latest = lab
                    break
            sub = data[data["period"] == latest] if latest else data.iloc[0:0]
            score = pd.to_numeric(sub[mid], errors="coerce").astype(float).groupby(sub[by]).first()
            score = score.reindex(data[by].unique())
            how = f"{m.label.lower()} in {latest}" if latest else f"{m.label.lower()} (no value in any period)"
        ordered = score.sort_values(ascending=False, na_position="last", kind="stable")
        return list(ordered.index), how

    def _top(self, full: pd.DataFrame, ids: Sequence[str], by: str, grain: str, labels: Sequence[str],
             filters: dict[str, Any], top: int, chart_metric: str,
             parts: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int, str]:
        ranked, how = self._rank(full, by, chart_metric, labels)
        if not top or len(ranked) <= top + 1:  # "Others" of one group is that group
            return full, 0, how
        keep, rest = ranked[:top], ranked[top:]
        shown = full[full[by].isin(keep) | full[by].isna()].copy()
        order = {g: i for i, g in enumerate(keep)}
        shown["_g"] = shown[by].map(order).astype("Float64").fillna(len(keep) + 1)
        other = self.others(parts if parts is not None else full, ids, by, grain, labels, filters, rest)
        other = other.assign(**{by: "__others__", "_g": float(len(keep))})
        gone = other.attrs.get("unavailable", {})
        frame = pd.concat([shown, other[shown.columns]], ignore_index=True)
        periods = {lab: i for i, lab in enumerate(labels)}
        frame = frame.assign(_o=frame["period"].map(periods)).sort_values(["_o", "_g"], kind="stable")
        frame = frame.drop(columns=["_o", "_g"]).reset_index(drop=True)
        frame.attrs = dict(full.attrs)
        frame.attrs["others_unavailable"] = gone
        frame.attrs["others"] = len(rest)
        return frame, len(rest), how

    def additive_parts(self, metric_id: str) -> list[str] | None:
        """The counts and sums a metric is computed from (itself when it is one), through its ratios
        and arithmetic; None when it is not made of them (means, medians, distinct counts,
        functions, growth): those are not additive over groups."""
        m = self.catalog.get(metric_id)
        if m.additive:
            return [m.id]
        if m.type not in ("ratio", "derived"):
            return None
        out: list[str] = []
        for dep in self.catalog.dependencies(m.id):
            sub = self.additive_parts(dep)
            if sub is None:
                return None
            out += sub
        return list(dict.fromkeys(out))

    def columns_of(self, metric_ids: Sequence[str]) -> list[str]:
        """A frame's columns of these metrics (rates also numerator, denominator, interval)."""
        out = []
        for mid in metric_ids:
            out.append(mid)
            if self.catalog.get(mid).is_rate:
                out += [f"{mid}_{s}" for s in RATE_PARTS]
        return out

    def others(self, full: pd.DataFrame, metric_ids: Sequence[str], by: str, grain: str, labels: Sequence[str],
               filters: dict[str, Any], rest: Sequence[Any], *, through: str = "parts") -> pd.DataFrame:
        """The groups ``rest`` of ``by`` together, one row per period.

        Counts and sums are added up over the groups, and a ratio or arithmetic of them is
        computed from those totals with the catalog's own rules (a zero denominator is n/a):
        never an average of the groups' ratios. That needs the parts' columns in ``full`` (see
        :meth:`additive_parts`); other metrics (means, medians, distinct counts, functions, and
        every metric with ``through="engine"``) are computed by the engine over the rows of those
        groups together (a filter on them). ``attrs["unavailable"]`` says why a metric is n/a.
        """
        labels = list(labels)
        gone = full.attrs.get("unavailable", {})
        by_parts: list[str] = []
        if through == "parts":
            for mid in metric_ids:
                leaves = self.additive_parts(mid)
                if leaves and mid not in gone and not set(leaves) & set(gone) and set(leaves) <= set(full.columns):
                    by_parts.append(mid)
        out = pd.DataFrame({"period": labels})
        unavailable: dict[str, str] = {}
        if by_parts:
            leaves = list(dict.fromkeys(x for mid in by_parts for x in self.additive_parts(mid) or []))
            sub = full[full[by].isin(list(rest))]
            sums = sub.groupby("period")[leaves].sum().reindex(labels)
            values: dict[str, pd.Series] = {x: sums[x].astype("Float64").fillna(0) for x in leaves}

            def value(mid: str) -> pd.Series:
                if mid not in values:
                    m = self.catalog.get(mid)
                    if m.type == "ratio":
                        values[mid] = safe_divide(value(m.numerator), value(m.denominator))
                    else:
                        values[mid] = eval_expr(m.expr, {d: value(d) for d in self.catalog.dependencies(mid)})
                return values[mid]

            for mid in by_parts:
                m = self.catalog.get(mid)
                v = value(mid)
                counts = m.unit == "count" and m.additive
                out[mid] = v.round().astype("Int64").values if counts else v.astype("Float64").values
                if m.is_rate:
                    num, den = value(m.numerator), value(m.denominator)
                    low, high = wilson_interval(num, den)
                    out[f"{mid}_numerator"], out[f"{mid}_denominator"] = num.values, den.values
                    out[f"{mid}_low"], out[f"{mid}_high"] = low.values, high.values
        engine_ids = [mid for mid in metric_ids if mid not in by_parts]
        if engine_ids:
            other = self.frame(engine_ids, grain=grain, periods=labels, filters={**filters, by: [str(g) for g in rest]})
            out = out.merge(other, on="period", how="left")
            unavailable = dict(other.attrs.get("unavailable", {}))
        out = out[["period", *self.columns_of(metric_ids)]]
        out.attrs["unavailable"] = unavailable
        return out

    def _dress(self, frame: pd.DataFrame, by: str | None) -> pd.DataFrame:
        out = frame.copy()
        if by:
            n_others = frame.attrs.get("others", 0)
            plural = dimension_label(by).lower() + ("s" if n_others != 1 else "")
            out.insert(1, "group_label", [f"Others ({n_others} {plural})" if v == "__others__" else
                                          self.group_label(by, v) for v in out[by]])
            out[by] = out[by].astype("object").where(out[by].notna(), None)
        labels = {lab: self.period_label(lab) for lab in out["period"].unique()}
        pos = out.columns.get_loc("period") + 1
        out.insert(pos, "period_label", out["period"].map(labels))
        out.insert(pos + 1, "partial", out["period"].map(lambda lab: self.partial(lab) is not None))
        out.attrs = dict(frame.attrs)
        return out

    # -- presentation -------------------------------------------------------------------------

    def formatter(self, metric_id: str, *, compact: bool = False) -> Callable[[Any], str]:
        """Text of a metric's value through the catalog's one formatter (:meth:`Metric.fmt` with
        ``ds.config.numbers``): money with the reporting currency, rates as percentages, "n/a"
        when not available. ``compact``: money abbreviated (``$27.1M``), for chart tooltips."""
        m = self.catalog.get(metric_id)
        numbers = self.numbers
        if compact and m.unit in ("money", "money_per_day") and not m.format:
            per_day = "/day" if m.unit == "money_per_day" else ""
            return lambda v: "n/a" if _missing(v) else numbers.money(float(v), compact=True) + per_day
        return lambda v: m.fmt(v, numbers)

    def header(self, metric_id: str) -> str:
        m = self.catalog.get(metric_id)
        return f"{m.label} ({self.currency})" if m.unit in ("money", "money_per_day") and self.currency else m.label

    def caption(self, view: View) -> str:
        """What the view shows: definitions, periods, grouping, filters and currency."""
        lo, hi = self.bounds
        first, last = view.periods[0], view.periods[-1]
        span = f"{self.period_label(first)}" if first == last else \
            f"{self.period_label(first)} to {self.period_label(last)}"
        grain = view.grain if len(view.periods) == 1 else view.grain + "s"
        parts = [f"{len(view.periods)} {grain}: {span}"]
        if view.by:
            parts.append(f"by {dimension_label(view.by).lower()}")
        if view.filters:
            parts.append("filters: " + "; ".join(
                f"{dimension_label(d).lower()} = " + ", ".join(self.group_label(d, x) for x in
                                                             (v if isinstance(v, (list, tuple)) else [v]))
                for d, v in view.filters.items()))
        else:
            parts.append("no filters")
        parts.append(f"money in {self.currency}" if self.currency else "money without a currency")
        parts.append(f"data from {_day_year(lo)} to {_day_year(hi)}")
        return "; ".join(parts) + "."

    def definitions(self, view: View) -> str:
        return " ".join(f"{self.catalog.get(m).label}: {self.catalog.get(m).formula}." for m in view.metric_ids)

    def _axis(self, m: Metric) -> alt.Axis:
        """The value axis, labelled as the text writes values (:func:`charts.axis`): money compact
        with the currency, rates as percentages; the currency also in the axis title."""
        kind = {"money": "money", "money_per_day": "money", "percent": "percent", "count": "count"}.get(m.unit, "number")
        return charts.axis(self.numbers, kind, digits=1 if kind != "number" else 2, title=self.header(m.id))

    def chart(self, view: View) -> charts.HTMLBlock | None:
        """The chart for a report or a rendered notebook (:func:`charts.show`); None without values."""
        c = self.altair_chart(view)
        if c is None:
            return None
        key = ("show", self._chart_key(view))
        if key not in self._charts:
            self._charts[key] = charts.show(c)
        return self._charts[key]

    def live_chart(self, view: View) -> dict[str, Any] | None:
        """The chart as a live output (JupyterLab's Vega-Lite renderer: tooltips, zoom), with the
        title as text above it; None without values. Cheap: nothing is drawn here."""
        c = self.altair_chart(view)
        if c is None:
            return None
        key = ("live", self._chart_key(view))
        if key not in self._charts:
            spec = charts.live_spec(c)
            title = spec.get("title", {})
            text = title.get("text") if isinstance(title, dict) else title
            text = " ".join(text) if isinstance(text, list) else str(text or "")
            self._charts[key] = {"output_type": "display_data",
                                 "data": {charts.VEGALITE_MIME: spec, "text/plain": f"[chart] {text}"},
                                 "metadata": {charts.VEGALITE_MIME: {"embed_options": charts.EMBED_OPTIONS}}}
        return self._charts[key]

    def _chart_key(self, view: View) -> tuple:
        """What a view's chart depends on (its metric, rows, periods and the currency)."""
        return (view.chart_metric, view.by, view.grain, view.periods, _filter_key(view.filters), view.chart_top,
                self.currency)

    def altair_chart(self, view: View) -> alt.TopLevelMixin | None:
        """The chart metric over the periods (a line per group), or bars for one period; partial
        periods hollow and dashed. None when the metric has no value to draw (the notes say why)."""
        mid = view.chart_metric
        m = self.catalog.get(mid)
        frame = view.chart_frame if view.chart_frame is not None else view.frame
        key = ("altair", self._chart_key(view))
        if key in self._charts:
            return self._charts[key]
        values = pd.to_numeric(frame[mid], errors="coerce").astype(float)
        if values.notna().sum() == 0:
            self._charts[key] = None
            return None
        text = self.formatter(mid, compact=True)
        data = pd.DataFrame({
            "period": frame["period_label"].astype(str),
            "value": values,
            "shown": [text(v) for v in frame[mid]],
            "partial": frame["partial"].astype(bool),
        })
        group = dimension_label(view.by) if view.by else None
        if view.by:
            data[group] = frame["group_label"].astype(str).values
        data = data[data["value"].notna()]
        order = list(dict.fromkeys(frame["period_label"].astype(str)))
        enc: dict[str, Any] = {}
        if view.by:
            domain = list(dict.fromkeys(frame["group_label"].astype(str)))
            enc["color"] = alt.Color(f"{group}:N", title=group, sort=domain,
                                     scale=alt.Scale(domain=domain, range=list(charts.PALETTE) * 3))
        tips = [alt.Tooltip("period:N", title=view.grain.capitalize()),
                *([alt.Tooltip(f"{group}:N")] if group else []), alt.Tooltip("shown:N", title=m.label)]
        y = alt.Y("value:Q", title=self.header(mid), axis=self._axis(m))
        where = f"by {dimension_label(view.by).lower()}" if view.by else ""
        sub = [self.caption(view)]
        if view.chart_others:
            sub.append(f"Top {view.chart_top} by {view.ranked_by}; Others: the other {view.chart_others}, "
                       "computed together.")
        if data["partial"].any():
            sub.append("Hollow points and dashed lines: periods the data covers only in part.")
        title = alt.Title(f"{m.label} {where}".strip(), subtitle=sub)
        if len(order) == 1:
            x = alt.X(f"{group}:N" if group else "period:N", title=group or view.grain.capitalize(), sort=None)
            chart = alt.Chart(data, title=title).mark_bar().encode(
                x=x, y=y, tooltip=tips, opacity=alt.condition("datum.partial", alt.value(0.45), alt.value(1)), **enc)
        else:
            x = alt.X("period:N", title=view.grain.capitalize(), sort=order, axis=alt.Axis(labelAngle=-30))
            idx = {lab: i for i, lab in enumerate(order)}
            near = {i for lab, i in idx.items() if data.loc[data.period == lab, "partial"].any()}
            near |= {i + 1 for i in near} | {i - 1 for i in near}
            data["near"] = data["period"].map(idx).isin(near)
            base = alt.Chart(data)  # one dataset, every layer a filter of it
            layers = [
                base.transform_filter("!datum.partial").mark_line().encode(x=x, y=y, **enc),
                base.transform_filter("datum.near").mark_line(strokeDash=[4, 3]).encode(x=x, y=y, **enc),
                base.transform_filter("!datum.partial").mark_point(filled=True, size=45).encode(
                    x=x, y=y, tooltip=tips, **enc),
                base.transform_filter("datum.partial").mark_point(filled=False, size=70, strokeWidth=2).encode(
                    x=x, y=y, tooltip=tips, **enc),
            ]
            chart = alt.layer(*layers, title=title)
        chart = chart.properties(width=480, height=260)
        self._charts[key] = chart
        while len(self._charts) > 96:
            self._charts.pop(next(iter(self._charts)))
        return chart

    def table(self, view: View, page: int = 1) -> charts.HTMLBlock:
        """One page of the view's rows (names, period labels, formatted values), with the row span."""
        pages = view.pages
        page = min(max(1, int(page)), pages)
        start = (page - 1) * PAGE_ROWS
        rows = view.frame.iloc[start:start + PAGE_ROWS]
        cols = {"period_label": "Period"}
        if view.by:
            cols = {"group_label": dimension_label(view.by), **cols}
        for mid in view.metric_ids:
            cols[mid] = self.header(mid)
        shown = rows[list(cols)].rename(columns=cols)
        formats = {self.header(mid): self.formatter(mid) for mid in view.metric_ids}
        span = f"rows {start + 1}-{start + len(rows)} of {view.rows}" if view.rows else "no rows"
        what = ", ".join(self.label(m) for m in view.metric_ids)
        cap = f"{what} by {view.grain}" + (f" and {dimension_label(view.by).lower()}" if view.by else "") + f": {span}"
        if pages > 1:
            cap += f" (page {page} of {pages})"
        return charts.table(shown, formats=formats, index=False, caption=cap)

    def notes(self, view: View) -> list[str]:
        out = list(view.notes)
        gone = view.frame.attrs.get("others_unavailable", {})
        for mid, why in gone.items():
            if mid not in view.frame.attrs.get("unavailable", {}):
                out.append(f"{self.label(mid)} cannot be computed for Others: it {why}.")
        return out

    def view(
        self,
        metric_ids: Sequence[str] = DEFAULT_METRICS,
        *,
        by: str | None = None,
        grain: str = "quarter",
        periods: Sequence[str] | None = None,
        filters: dict[str, Any] | None = None,
        top: int = DEFAULT_TOP,
        chart_metric: str | None = None,
        page: int = 1,
    ) -> list[Any]:
        """Static display objects: the chart of one metric (default the first), one page of the
        table, the notes and a caption that says what is shown. nbconvert keeps them."""
        v = self.compute(metric_ids, by=by, grain=grain, periods=periods, filters=filters, top=top,
                         chart_metric=chart_metric)
        return self.blocks(v, page=page)

    def blocks(self, view: View, *, page: int = 1) -> list[Any]:
        out: list[Any] = []
        notes = self.notes(view)
        if notes:
            out.append(_note_block(notes))
        fig = self.chart(view)
        if fig is None:
            why = view.frame.attrs.get("unavailable", {}).get(view.chart_metric, "no value in these periods")
            out.append(_note_block([f"No chart of {self.label(view.chart_metric)}: {why}."]))
        else:
            out.append(fig)
        out.append(self.table(view, page))
        out.append(self.caption_block(view))
        return out

    def caption_block(self, view: View) -> charts.HTMLBlock:
        text = f"{self.caption(view)} {self.definitions(view)}"
        foot = f"Computed in {view.seconds:.2f} s." if view.seconds else ""
        body = (f'<p class="wb-explorer-caption" style="font-size:0.9em">{html.escape(self.caption(view))}<br>'
                f'{html.escape(self.definitions(view))}'
                + (f'<br><span style="color:#52606D;font-size:0.85em">{foot}</span>' if foot else "") + "</p>")
        return charts.HTMLBlock(body, text=text)

    def export_frame(self, view: View) -> pd.DataFrame:
        """The view's rows for a CSV: ids and names of groups, period, partial, metric values."""
        cols = [*([view.by, "group_label"] if view.by else []), "period", "partial"]
        out = view.frame[cols + [c for c in view.frame.columns if any(
            c == m or c.startswith(m + "_") for m in view.metric_ids) and c not in cols]].copy()
        if view.by:
            out = out.rename(columns={"group_label": f"{view.by}_name"})
            out[view.by] = out[view.by].replace("__others__", "others")
        return out

    def export_csv(self, view: View, path: str | Path) -> Path:
        """Write the view's rows (every page) to a formula-safe CSV (:func:`write_csv`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(self.export_frame(view), path)
        return path

    def drill(self, view: View, period: str, group: Any = None, metric_id: str | None = None) -> pd.DataFrame:
        """The rows behind one figure of a view (``group``: a value of its dimension, ``"__others__"``
        for Others, None for the rows without a value); see :func:`drill_down`."""
        mid = metric_id or view.chart_metric
        if view.by and group == "__others__":
            ranked, _ = self._rank(view.full, view.by, view.chart_metric, view.periods)
            group = [str(g) for g in ranked[view.top:]]
        return drill_down(self.ds, mid, period, by=view.by, group=group, filters=view.filters, catalog=self.catalog)

    def drill_table(self, rows: pd.DataFrame, page: int = 1) -> charts.HTMLBlock:
        """One page of drill-down rows (:meth:`drill`), captioned with what they make up."""
        pages = max(1, -(-len(rows) // PAGE_ROWS))
        page = min(max(1, int(page)), pages)
        start = (page - 1) * PAGE_ROWS
        m = self.catalog.get(rows.attrs["metric"])
        fig = rows.attrs.get("figure")
        what = f"{len(rows):,} {rows.attrs['table']} rows behind {m.label} in {self.period_label(rows.attrs['period'])}"
        if fig is not None:
            what += f": together {self.formatter(m.id)(fig)}"
        if rows.attrs.get("how"):
            what += f" ({rows.attrs['how']})"
        span = f"rows {start + 1}-{min(start + PAGE_ROWS, len(rows))} of {len(rows)}" if len(rows) else "no rows"
        page_rows = rows.iloc[start:start + PAGE_ROWS]
        money = {c: (lambda v: self.numbers.money(v, compact=False)) for c in ("amount", "cost", "annual_value")
                 if c in page_rows.columns}
        return charts.table(page_rows, formats=money, index=False, caption=f"{what}; {span}")

    def widget(self, **state: Any) -> ExplorerWidget:
        """ipywidgets controls around the view (see :class:`ExplorerWidget`)."""
        return ExplorerWidget(self, **state)


def _as_day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _note_block(lines: Sequence[str]) -> charts.HTMLBlock:
    body = "".join(f"<p class=\"wb-explorer-note\"><em>{html.escape(x)}</em></p>" for x in lines)
    return charts.HTMLBlock(body, text=" ".join(lines))


# -- the widget --------------------------------------------------------------------------------------


class ExplorerWidget:
    """The explorer's live controls: a metric picker (grouped by family, searchable, a click adds
    or removes a metric), the charted metric, grain and date range, dimension and top N,
    filters, a paged table, a drill-down and a CSV export.

    Every control has a stable ``description`` and a CSS class ``wb-explorer-<name>`` (the names
    are :data:`CLASSES`; browser tests find controls by them). Each user action makes one update
    (``with w.batch(): ...`` makes several changes one update); numbers are cached per query, so
    picking a metric computes only it, and a page turn or a change of the charted metric queries
    nothing. An error shows as one line in the message area, never as a traceback, and clears
    the figures of the previous view. CSV exports go to ``export_dir`` (default
    ``reports/explore/``).
    """

    def __init__(self, explorer: Explorer, *, metrics: Sequence[str] = DEFAULT_METRICS, by: str | None = None,
                 grain: str = "quarter", top: int = DEFAULT_TOP, export_dir: str | Path | None = None):
        import ipywidgets as w

        self.explorer = ex = explorer
        self.export_dir = Path(export_dir) if export_dir else REPORTS / "explore"
        self.updates = 0
        self.timings: list[float] = []
        self.view: View | None = None
        self._quiet = 0
        self._held = 0
        self._pending = False
        self._page = 1
        self._drill_page = 1
        self._drill_rows: pd.DataFrame | None = None
        self._range_auto = True
        lo, hi = ex.bounds

        def cls(widget: Any, *names: str) -> Any:
            for n in names:
                widget.add_class(f"wb-explorer-{n}")
            return widget

        # metric picker
        self.search = cls(w.Text(value="", placeholder="type to filter metrics", description="Find",
                                 continuous_update=True), "search")
        self.checks: dict[str, Any] = {}
        self.headings: dict[str, Any] = {}
        rows: list[Any] = []
        self._family_of: dict[str, str] = {}
        for fam, ms in ex.metric_groups().items():
            head = w.HTML(f"<b>{html.escape(fam)}</b>")
            self.headings[fam] = head
            rows.append(head)
            for m in ms:
                problem = ex.support(m.id)
                box = cls(w.Checkbox(value=m.id in metrics, description=m.label, indent=False,
                                     disabled=problem is not None,
                                     tooltip=f"{m.label}: {problem}" if problem else f"{m.label}: {m.formula}"),
                          "metric-option", f"metric-{m.id}")
                box.layout.width = "260px"
                self.checks[m.id] = box
                self._family_of[m.id] = fam
                rows.append(box)
        self.picker = cls(w.VBox(rows, layout=w.Layout(height="360px", overflow="auto", width="290px")), "metric")
        self.clear = cls(w.Button(description="Clear metrics", tooltip="untick every metric"), "clear")
        self._picked: list[str] = [m for m in metrics if m in self.checks]

        # chart metric, grain, range
        self.chart_metric = cls(w.Dropdown(options=self._chart_options(), description="Chart"), "chart-metric")
        if self._picked:
            self.chart_metric.value = self._picked[0]
        self.grain = cls(w.Dropdown(options=[(g.capitalize(), g) for g in GRAINS], value=grain, description="Grain"),
                         "grain")
        first = parse_period(ex.periods(grain)[0], fiscal_start_month=ex.fsm)
        self.start = cls(w.DatePicker(value=max(first.start, lo), description="From", min=lo, max=hi), "from")
        self.end = cls(w.DatePicker(value=hi, description="To", min=lo, max=hi), "to")
        self.whole = cls(w.Button(description="All data", tooltip=f"{_day_year(lo)} to {_day_year(hi)}"), "all-data")

        # grouping
        self.by = cls(w.Dropdown(options=self._by_options(by), value=by or "", description="By"), "by")
        self.by_note = cls(w.HTML(""), "by-note")
        self.top = cls(w.Dropdown(options=[(str(n) if n else "All", n) for n in TOP_CHOICES], value=top,
                                  description="Top"), "top")

        # filters
        self.filters: dict[str, Any] = {}
        for dim in FILTERS:
            values = ex.dimension_values(dim)
            if not values:
                continue
            dd = cls(w.Dropdown(options=[("(all)", ""), *values], value="", description=dimension_label(dim)),
                     "filter", f"filter-{dim.replace('_id', '').replace('_', '-')}")
            self.filters[dim] = dd
        self.filter_note = cls(w.HTML(""), "filter-note")

        # output: message, chart, table and pager, drill-down, export
        self.message = cls(w.HTML(""), "message")
        self.chart_out = cls(w.Output(), "chart")
        self.table_out = cls(w.Output(), "table")
        self.prev = cls(w.Button(description="Previous", disabled=True, tooltip="previous page"), "prev")
        self.next = cls(w.Button(description="Next", disabled=True, tooltip="next page"), "next")
        self.page_label = cls(w.HTML(""), "page")
        self.caption = cls(w.HTML(""), "caption")
        self.drill = cls(w.Dropdown(options=[("(pick a figure)", "")], value="", description="Drill into",
                                    layout=w.Layout(width="420px")), "drill")
        self.drill_out = cls(w.Output(), "drill-output")
        self.drill_prev = cls(w.Button(description="Previous", disabled=True), "drill-prev")
        self.drill_next = cls(w.Button(description="Next", disabled=True), "drill-next")
        self.export = cls(w.Button(description="Export CSV", tooltip="the view's rows, every page"), "export")
        self.export_note = cls(w.HTML(""), "export-note")

        for box in self.checks.values():
            box.observe(self._on_check, names="value")
        self.search.observe(self._on_search, names="value")
        self.clear.on_click(self._on_clear)
        self.chart_metric.observe(self._on_change, names="value")
        self.grain.observe(self._on_grain, names="value")
        self.start.observe(self._on_range, names="value")
        self.end.observe(self._on_range, names="value")
        self.whole.on_click(self._on_whole)
        self.by.observe(self._on_by, names="value")
        self.top.observe(self._on_change, names="value")
        for dd in self.filters.values():
            dd.observe(self._on_filter, names="value")
        self.prev.on_click(lambda _: self._turn(-1))
        self.next.on_click(lambda _: self._turn(1))
        self.drill.observe(self._on_drill, names="value")
        self.drill_prev.on_click(lambda _: self._turn_drill(-1))
        self.drill_next.on_click(lambda _: self._turn_drill(1))
        self.export.on_click(self._on_export)

        left = w.VBox([self.search, self.picker, self.clear], layout=w.Layout(min_width="300px", flex="0 0 300px"))
        controls = w.VBox([
            w.HBox([self.chart_metric, self.grain]),
            w.HBox([self.start, self.end, self.whole]),
            w.HBox([self.by, self.top]),
            self.by_note,
            w.HBox(list(self.filters.values())[:3]),
            w.HBox(list(self.filters.values())[3:]),
            self.filter_note,
        ])
        self.output = cls(w.VBox([
            self.message, self.chart_out, self.table_out, w.HBox([self.prev, self.next, self.page_label]),
            self.caption, w.HBox([self.drill]), self.drill_out, w.HBox([self.drill_prev, self.drill_next]),
            w.HBox([self.export, self.export_note]),
        ]), "output")
        self.box = cls(w.HBox([left, w.VBox([controls, self.output])]), "root")
        self._sync_controls()
        self.update()

    # -- display ----------------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    # -- state -------------------------------------------------------------------------------------

    @property
    def picked(self) -> list[str]:
        """The ticked metrics, in the order they were ticked."""
        return list(self._picked)

    def state(self) -> dict[str, Any]:
        """The view's parameters as the controls hold them."""
        filters = {d: dd.value for d, dd in self.filters.items() if dd.value and not dd.disabled}
        return {
            "metric_ids": self.picked,
            "chart_metric": self.chart_metric.value or None,
            "by": self.by.value or None,
            "grain": self.grain.value,
            "periods": self.explorer.periods(self.grain.value, start=self.start.value, end=self.end.value),
            "filters": filters,
            "top": self.top.value,
        }

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Change several controls with one update at the end."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self._pending:
                self._pending = False
                self.update()

    @contextlib.contextmanager
    def _silently(self) -> Iterator[None]:
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def _request(self) -> None:
        if self._quiet:
            return
        if self._held:
            self._pending = True
            return
        self.update()

    # -- control handlers ---------------------------------------------------------------------------

    def _chart_options(self) -> list[tuple[str, str]]:
        return [(self.explorer.label(m), m) for m in self._picked] or [("(no metric)", "")]

    def _by_options(self, current: str | None) -> list[tuple[str, str | None]]:
        support = self.explorer.dimension_support(self._picked)
        opts = [("(none)", "")] + [(dimension_label(d), d) for d, why in support.items() if why is None]
        if current and support.get(current):
            opts.append((f"{dimension_label(current)} (n/a)", current))
        return opts

    def _on_check(self, change: Any) -> None:
        if self._quiet:
            return
        mid = next(k for k, box in self.checks.items() if box is change["owner"])
        with self._silently():
            if change["new"] and mid not in self._picked:
                self._picked.append(mid)
                self._page = 1
            elif not change["new"] and mid in self._picked:
                self._picked.remove(mid)
            self._sync_controls(chart=mid if change["new"] else None)
        self._request()

    def _on_clear(self, _: Any) -> None:
        with self._silently():
            for mid in list(self._picked):
                self.checks[mid].value = False
            self._picked.clear()
            self._sync_controls()
        self._request()

    def _on_search(self, change: Any) -> None:
        text = (change["new"] or "").strip().lower()
        shown: set[str] = set()
        for mid, box in self.checks.items():
            m = self.explorer.catalog.get(mid)
            hit = not text or text in m.label.lower() or text in mid.lower() or text in self._family_of[mid].lower()
            display = "" if hit else "none"
            if box.layout.display != display:
                box.layout.display = display
            if hit:
                shown.add(self._family_of[mid])
        for fam, head in self.headings.items():
            display = "" if fam in shown else "none"
            if head.layout.display != display:
                head.layout.display = display

    def _on_change(self, change: Any) -> None:
        if self._quiet:
            return
        self._page = 1
        self._request()

    def _on_grain(self, change: Any) -> None:
        if self._quiet:
            return
        if self._range_auto:
            with self._silently():
                self._default_range()
        self._page = 1
        self._request()

    def _default_range(self) -> None:
        ex = self.explorer
        first = parse_period(ex.periods(self.grain.value)[0], fiscal_start_month=ex.fsm)
        self.start.value = max(first.start, ex.bounds[0])
        self.end.value = ex.bounds[1]

    def _on_range(self, change: Any) -> None:
        if self._quiet:
            return
        self._range_auto = False
        self._page = 1
        self._request()

    def _on_whole(self, _: Any) -> None:
        with self._silently():
            self.start.value, self.end.value = self.explorer.bounds
        self._range_auto = False
        self._page = 1
        self._request()

    def _on_by(self, change: Any) -> None:
        if self._quiet:
            return
        with self._silently():
            self._sync_controls()
        self._page = 1
        self._request()

    def _on_filter(self, change: Any) -> None:
        if self._quiet:
            return
        with self._silently():
            self._sync_controls()
        self._page = 1
        self._request()

    def _sync_controls(self, chart: str | None = None) -> None:
        """Offer what the picked metrics support: chart choices, dimensions, filters, metrics."""
        ex = self.explorer
        with self._silently():
            opts = self._chart_options()
            if list(self.chart_metric.options) != opts:
                keep = self.chart_metric.value
                self.chart_metric.options = opts
                self.chart_metric.value = keep if keep in self._picked else (self._picked[-1] if self._picked else "")
            if chart and chart in self._picked:
                self.chart_metric.value = chart
            if self.top.disabled != (not self.by.value):
                self.top.disabled = not self.by.value  # top N of what: only with a dimension
            by_opts = self._by_options(self.by.value)
            if list(self.by.options) != by_opts:
                keep = self.by.value
                self.by.options = by_opts
                self.by.value = keep if keep in [v for _, v in by_opts] else ""
            dims = ex.dimension_support(self._picked)
            off = [f"{dimension_label(d)} ({why})" for d, why in dims.items() if why]
            note = ("<span style='color:#7B8794'>Not offered for the picked metrics: "
                    + html.escape("; ".join(off)) + "</span>") if off else ""
            if self.by_note.value != note:
                self.by_note.value = note
            fsup = ex.dimension_support(self._picked, as_filter=True, dims=list(self.filters))
            fnote = []
            for d, dd in self.filters.items():
                why = fsup.get(d)
                disabled = bool(why) and not dd.value
                if dd.disabled != disabled:
                    dd.disabled = disabled
                tip = f"not offered: {why}" if why else f"show only one {dimension_label(d).lower()}"
                if dd.tooltip != tip:
                    dd.tooltip = tip
                if why:
                    fnote.append(f"{dimension_label(d)} ({why})")
            note = ("<span style='color:#7B8794'>Filters not offered: " + html.escape("; ".join(fnote))
                    + "</span>") if fnote else ""
            if self.filter_note.value != note:
                self.filter_note.value = note
            # a metric that cannot be split or filtered as the view is: greyed, with the reason
            active = [self.by.value] if self.by.value else []
            active_f = [d for d, dd in self.filters.items() if dd.value]
            for mid, box in self.checks.items():
                m = ex.catalog.get(mid)
                why = ex.support(mid)
                for d in active:
                    why = why or ex.support(mid, d)
                for d in active_f:
                    why = why or ex.support(mid, d, as_filter=True)
                disabled = bool(why) and mid not in self._picked
                if box.disabled != disabled:
                    box.disabled = disabled
                tip = f"{m.label}: {why}" if why else f"{m.label}: {m.formula}"
                if box.tooltip != tip:
                    box.tooltip = tip

    def _turn(self, step: int) -> None:
        if self.view is None:
            return
        self._page = min(max(1, self._page + step), self.view.pages)
        self._show_table()

    def _turn_drill(self, step: int) -> None:
        if self._drill_rows is None:
            return
        pages = max(1, -(-len(self._drill_rows) // PAGE_ROWS))
        self._drill_page = min(max(1, self._drill_page + step), pages)
        self._show_drill()

    def _on_drill(self, change: Any) -> None:
        if self._quiet:
            return
        self._drill_page = 1
        self._drill_rows = None
        try:
            if change["new"] and self.view is not None:
                period, group = change["new"]
                self._drill_rows = self.explorer.drill(self.view, period, group)
            self._show_drill()
        except Exception as err:  # noqa: BLE001 - one line in the widget, never a traceback
            self._set(self.drill_out, [_note_block([f"No drill-down: {_one_line(err)}"])])

    def _on_export(self, _: Any) -> None:
        if self.view is None:
            self.export_note.value = "Nothing to export: pick a metric."
            return
        v = self.view
        name = "-".join(["explore", *v.metric_ids[:3], v.by or "all", v.grain, v.periods[0], v.periods[-1]])
        try:
            path = self.explorer.export_csv(v, self.export_dir / f"{name}.csv")
            self.export_note.value = f"Wrote {html.escape(str(path))} ({v.rows} rows)."
        except Exception as err:  # noqa: BLE001
            self.export_note.value = html.escape(f"Could not export: {_one_line(err)}")

    # -- output --------------------------------------------------------------------------------------

    @staticmethod
    def _set(out: Any, items: Sequence[Any]) -> None:
        outputs = tuple(x if isinstance(x, dict) and "output_type" in x else _bundle(x) for x in items)
        if tuple(out.outputs) != outputs:
            out.outputs = outputs

    def _show_table(self) -> None:
        v = self.view
        if v is None:
            self._set(self.table_out, [])
            self.page_label.value = ""
            self.prev.disabled = self.next.disabled = True
            return
        self._page = min(max(1, self._page), v.pages)
        self._set(self.table_out, [self.explorer.table(v, self._page)])
        start = (self._page - 1) * PAGE_ROWS
        self.page_label.value = f"rows {start + 1}-{min(start + PAGE_ROWS, v.rows)} of {v.rows}" if v.rows else "no rows"
        self.prev.disabled = self._page <= 1
        self.next.disabled = self._page >= v.pages

    def _show_drill(self) -> None:
        rows = self._drill_rows
        if rows is None:
            self._set(self.drill_out, [])
            self.drill_prev.disabled = self.drill_next.disabled = True
            return
        pages = max(1, -(-len(rows) // PAGE_ROWS))
        self._drill_page = page = min(max(1, self._drill_page), pages)
        self._set(self.drill_out, [self.explorer.drill_table(rows, page)])
        self.drill_prev.disabled = page <= 1
        self.drill_next.disabled = page >= pages

    def _drill_options(self, v: View) -> list[tuple[str, Any]]:
        """One choice per row of the view (period and group), at most 400."""
        opts: list[tuple[str, Any]] = [("(pick a figure)", "")]
        cols = ["period", "period_label", *([v.by, "group_label"] if v.by else [])]
        for row in v.frame[cols].head(400).to_dict("records"):
            if v.by:
                group = None if _missing(row[v.by]) else row[v.by]
                opts.append((f"{row['period_label']} · {row['group_label']}", (row["period"], group)))
            else:
                opts.append((row["period_label"], (row["period"], None)))
        return opts

    def update(self) -> None:
        """Recompute what the controls ask for (from the caches) and show it: one update."""
        t0 = time.perf_counter()
        self.updates += 1
        try:
            st = self.state()
            if not st["metric_ids"]:
                self.view = None
                self.message.value = ("<b>No metric picked.</b> Tick one or more metrics on the left "
                                      "(nothing is shown until you do).")
                self._set(self.chart_out, [])
                self._show_table()
                self.caption.value = ""
                with self._silently():
                    self.drill.options = [("(pick a figure)", "")]
                self._drill_rows = None
                self._show_drill()
                return
            ex = self.explorer
            v = ex.compute(**st)
            self.view = v
            notes = ex.notes(v)
            msg = " ".join(notes)
            self.message.value = f"<em>{html.escape(msg)}</em>" if msg else ""
            fig = ex.live_chart(v)
            if fig is None:
                why = v.frame.attrs.get("unavailable", {}).get(v.chart_metric, "no value in these periods")
                self._set(self.chart_out, [_note_block([f"No chart of {ex.label(v.chart_metric)}: {why}."])])
            else:
                title = fig["data"]["text/plain"].removeprefix("[chart] ")
                head = charts.HTMLBlock(f'<div class="wb-explorer-chart-title"><b>{html.escape(title)}</b></div>', title)
                self._set(self.chart_out, [head, fig])
            self._show_table()
            cap = ex.caption_block(replace(v, seconds=0.0))
            if self.caption.value != cap._repr_html_():
                self.caption.value = cap._repr_html_()
            opts = self._drill_options(v)
            if list(self.drill.options) != opts:
                with self._silently():
                    self.drill.options = opts
                    self.drill.value = ""
                self._drill_rows = None
                self._show_drill()
        except Exception as err:  # noqa: BLE001 - one line in the widget, never a traceback
            # no figure of an earlier view stays beside controls that ask for another one
            self.view = None
            self._set(self.chart_out, [])
            self._show_table()
            self.caption.value = ""
            self._drill_rows = None
            self._show_drill()
            self.message.value = f"<b>Cannot show this view:</b> {html.escape(_one_line(err))}"
        finally:
            self.timings.append(time.perf_counter() - t0)
