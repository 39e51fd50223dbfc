"""The metric engine: any catalog metric, by any dimension, at any period grain.

``metrics(ds, ["win_rate", "revenue"], by=["team"], grain="quarter")`` returns a tidy pandas
DataFrame: one row per group and period, one column per metric. The work happens in the
engine: every simple metric of one source is one ibis aggregate (one scan of its table),
executed by DuckDB (or any ibis backend); only the aggregated rows come back to pandas, where
ratios, derived metrics, growth and intervals are finished.

Rules (tested in tests/test_metrics.py)
---------------------------------------
* Counts and sums are additive: a team's value equals the sum over its reps, a quarter's the sum
  of its months; groups and periods with no rows get 0.
* A zero or missing denominator gives NA ("not available"), never 0 or an exception.
* Rates (``proportion: true``) come with ``<id>_numerator``, ``<id>_denominator`` and a 95%
  Wilson interval ``<id>_low`` / ``<id>_high``.
* A metric whose tables or columns are missing, or that cannot be split by the requested
  dimension, is returned as an NA column; the reason is in ``df.attrs["unavailable"]``.
* Deals count for their owner's team even after the owner left (reps keep their team).
* Amounts and costs arrive in the reporting currency: :mod:`analysis.loading` converts them at the
  rate in force on the close date and leaves out deals without a rate.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Sequence

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd

from analysis.data import schema, timeline
from analysis.data.loading import Dataset
from analysis.data.periods import GRAINS, Period, grain_of, parse_period, period_of, period_start_expr, periods_between
from analysis.data.timeline import employed_working_days
from analysis.errors import UnknownNameError, WorkbenchError
from analysis.semantic.catalog import SOURCES, Catalog, Metric, build_catalog, eval_expr, safe_divide

#: Built-in dimensions and how each table reaches them.
DIMENSIONS = (
    "rep_id",
    "team",
    "region",
    "manager_id",
    "product",
    "segment",
    "industry",
    "deal_type",
    "lead_source",
    "activity_type",
    "customer_type",
)

REP_DIMS = ("team", "region", "manager_id")
DEAL_DIMS = ("product", "deal_type", "lead_source", "customer_type")
ACCOUNT_DIMS = ("segment", "industry")

#: Column holding the rep of each table.
REP_COLUMN = {"opportunities": "owner_id", "leads": "owner_id", "activities": "rep_id", "pulse": "rep_id"}
ACCOUNT_COLUMN = {"opportunities": "account_id", "leads": "account_id", "activities": "account_id"}
OPPORTUNITY_COLUMN = {"leads": "opportunity_id", "activities": "opportunity_id"}

Z95 = 1.959963984540054

PERIOD = "period"


class MetricError(WorkbenchError):
    """A metric request that cannot be answered (bad grain, dimension or period)."""


# -- public API ------------------------------------------------------------------------------


def metrics(
    ds: Dataset,
    metric_ids: Sequence[str] | str,
    *,
    by: Sequence[str] | str | None = None,
    grain: str = "month",
    periods: Iterable[str | Period] | str | Period | None = None,
    filters: dict[str, Any] | None = None,
    catalog: Catalog | None = None,
) -> pd.DataFrame:
    """Compute catalog metrics by dimension and period.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    metric_ids
        Metric ids of the catalog (``python -m analysis metrics --list``).
    by
        Dimensions to group by (see :data:`DIMENSIONS` and the config's custom dimensions).
    grain
        day, week, month, quarter, half or year (calendar or fiscal per the config).
    periods
        Period labels (``2025-Q3``) or :class:`Period` objects; default every period from the
        first deal created to the last deal closed or activity logged.
    filters
        ``{dimension: value or [values]}`` restricting every metric (e.g. ``{"team": "East"}``).

    Returns
    -------
    pandas.DataFrame
        One row per group and period: the ``by`` columns, ``period``, then one column per
        metric (rates also ``_numerator``, ``_denominator``, ``_low``, ``_high``).
        ``attrs["unavailable"]`` maps metric ids to the reason they could not be computed.

    Notes
    -----
    A zero denominator yields NA. Counts and sums are 0 for groups and periods without rows.
    """
    catalog = catalog or build_catalog(ds.config)
    ids = [metric_ids] if isinstance(metric_ids, str) else list(dict.fromkeys(metric_ids))
    for mid in ids:
        catalog.get(mid)
    by = resolve_dims(ds, by)
    grain = grain_of(grain)
    if grain not in GRAINS:
        raise MetricError(f"grain {grain!r} is not one of {', '.join(GRAINS)}")
    fsm = ds.config.fiscal_year_start_month
    wanted = _periods(ds, periods, grain, fsm)
    engine = Engine(ds, catalog, by, grain, fsm, filters or {})
    return engine.run(ids, wanted)


def compare(
    ds: Dataset,
    metric_ids: Sequence[str] | str,
    period: str | Period,
    *,
    by: Sequence[str] | str | None = None,
    filters: dict[str, Any] | None = None,
    catalog: Catalog | None = None,
) -> pd.DataFrame:
    """A period against the previous period, the same period last year and the target.

    Returns one row per group and metric with ``value``, ``previous``, ``change``,
    ``change_pct``, ``year_ago``, ``yoy_change``, ``yoy_change_pct``, ``target`` and
    ``attainment`` (target and attainment where a quota for that metric exists).
    """
    catalog = catalog or build_catalog(ds.config)
    ids = [metric_ids] if isinstance(metric_ids, str) else list(dict.fromkeys(metric_ids))
    fsm = ds.config.fiscal_year_start_month
    p = _parse(period, fsm)
    prev, ago = p.previous(), p.year_ago()
    by = resolve_dims(ds, by)
    frame = metrics(ds, ids, by=by, grain=p.grain, periods=[p, prev, ago], filters=filters, catalog=catalog)
    long = frame[[*by, PERIOD, *ids]].melt(id_vars=[*by, PERIOD], var_name="metric", value_name="v")
    keys = [*by, "metric"]

    def at(q: Period, name: str) -> pd.DataFrame:
        return long[long[PERIOD] == q.label].drop(columns=PERIOD).rename(columns={"v": name})

    # every group seen in any of the three periods gets a row (0 for counts, else NA)
    out = long[keys].drop_duplicates()
    for q, name in ((p, "value"), (prev, "previous"), (ago, "year_ago")):
        out = out.merge(at(q, name), on=keys, how="left")
    for name in ("value", "previous", "year_ago"):
        out[name] = pd.to_numeric(out[name], errors="coerce").astype("Float64")
    gone = frame.attrs.get("unavailable", {})
    additive = {m for m in ids if catalog.get(m).additive and m not in gone}  # never a 0 for "not available"
    for name in ("value", "previous", "year_ago"):
        fill = out["metric"].isin(additive) & out[name].isna()
        out.loc[fill, name] = 0
    engine = Engine(ds, catalog, by, p.grain, fsm, filters or {})
    quota_metrics = set()
    if ds.has("quotas"):
        q = ds.table("quotas")
        quota_metrics = set(q.select("metric").distinct().to_pandas()["metric"].dropna())
    targets = []
    for mid in ids:
        if mid in quota_metrics:
            t = engine.targets(mid, [p])
            if not t.empty:
                targets.append(t.drop(columns=PERIOD).assign(metric=mid))
    if targets:
        tf = pd.concat(targets, ignore_index=True)
        out = out.merge(tf, on=keys, how="left")
    else:
        out["target"] = pd.NA
    out["target"] = pd.to_numeric(out["target"], errors="coerce").astype("Float64")
    out["change"] = out.value - out.previous
    out["change_pct"] = safe_divide(out.change, out.previous.abs())
    out["yoy_change"] = out.value - out.year_ago
    out["yoy_change_pct"] = safe_divide(out.yoy_change, out.year_ago.abs())
    out["attainment"] = safe_divide(out.value, out.target)
    meta = {m: catalog.get(m) for m in ids}
    out["label"] = out.metric.map({k: m.label for k, m in meta.items()})
    out["direction"] = out.metric.map({k: m.direction for k, m in meta.items()})
    out["unit"] = out.metric.map({k: m.unit for k, m in meta.items()})
    out[PERIOD] = p.label
    out["previous_period"] = prev.label
    out["year_ago_period"] = ago.label
    order = {m: i for i, m in enumerate(ids)}
    out = out.assign(_o=out.metric.map(order)).sort_values([*by, "_o"], na_position="last").drop(columns="_o")
    cols = [*by, "metric", "label", PERIOD, "value", "previous_period", "previous", "change", "change_pct",
            "year_ago_period", "year_ago", "yoy_change", "yoy_change_pct", "target", "attainment", "direction", "unit"]
    out = out[cols].reset_index(drop=True)
    out.attrs["unavailable"] = frame.attrs.get("unavailable", {})
    return out


def wilson_interval(successes: Any, trials: Any, z: float = Z95) -> tuple[Any, Any]:
    """95% Wilson score interval for a proportion; NA where trials is 0.

    Notes
    -----
    center = (p + z²/2n) / (1 + z²/n), half width = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
    It stays within [0, 1] and is honest for small n: 2 of 3 gives [0.21, 0.94].
    """
    if np.isscalar(successes) and np.isscalar(trials):  # one proportion: plain floats, NaN for n <= 0
        k, n = float(successes), float(trials)
        if not n > 0:
            return float("nan"), float("nan")
        ph = k / n
        centre = (ph + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(max(ph * (1 - ph) / n + z * z / (4 * n * n), 0.0)) / (1 + z * z / n)
        return max(centre - half, 0.0), min(centre + half, 1.0)
    k = pd.to_numeric(pd.Series(successes), errors="coerce").astype("Float64")
    n = pd.to_numeric(pd.Series(trials), errors="coerce").astype("Float64")
    n = n.mask(n <= 0)
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    low, high = (center - half).clip(lower=0), (center + half).clip(upper=1)
    return low, high


def dimensions(ds: Dataset) -> list[str]:
    """Dimensions available for grouping (built-in plus the config's custom ones)."""
    return [*DIMENSIONS, *ds.config.dimensions]


# -- helpers ---------------------------------------------------------------------------------


def _num(v: Any) -> bool:
    return v is not None and v is not pd.NA and not (isinstance(v, float) and math.isnan(v))


def _sub(a: Any, b: Any) -> Any:
    return a - b if _num(a) and _num(b) else pd.NA


def _empty_value(m: Metric) -> Any:
    return 0 if m.additive else pd.NA


def _parse(p: str | Period, fsm: int) -> Period:
    return p if isinstance(p, Period) else parse_period(p, fiscal_start_month=fsm)


def resolve_dims(ds: Dataset, by: Sequence[str] | str | None) -> list[str]:
    if by is None:
        return []
    by = [by] if isinstance(by, str) else list(by)
    known = dimensions(ds)
    for d in by:
        if d not in known:
            import difflib

            close = difflib.get_close_matches(d, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"unknown dimension {d!r}{hint} Dimensions: {', '.join(known)}")
    if len(set(by)) != len(by):
        raise MetricError(f"dimension listed twice in by={by}")
    return by


def _periods(ds: Dataset, periods: Any, grain: str, fsm: int) -> list[Period] | None:
    if periods is None:
        return None
    if isinstance(periods, (str, Period, int)):
        periods = [periods]
    out = []
    for p in periods:
        q = _parse(p, fsm)
        if q.grain != grain:
            raise MetricError(f"period {q.label} is a {q.grain}, but grain is {grain}; pass grain={q.grain!r}")
        out.append(q)
    return sorted(set(out))


def where_condition(t: ibis.Table, where: dict[str, Any]) -> Any:
    cond = ibis.literal(True)
    for col, want in where.items():
        c = t[col]
        if want is None:
            cond &= c.isnull()
        elif isinstance(want, bool):
            cond &= c == want
        elif isinstance(want, (list, tuple)):
            cond &= c.isin(list(want))
        elif isinstance(want, dict):
            for op, v in want.items():
                cond &= {"gt": c > v, "ge": c >= v, "lt": c < v, "le": c <= v, "ne": c != v}[op]
        else:
            cond &= c == want
    return cond


def _filter_values(value: Any) -> list[str]:
    """A filter's values as text: ``"East"`` or ``["East", "West"]``."""
    return [str(x) for x in (value if isinstance(value, (list, tuple, set)) else [value])]


def _keep(frame: pd.DataFrame, filters: dict[str, Any]) -> pd.DataFrame:
    """Rows of a small frame whose filter columns hold one of the filter values (absent columns skipped)."""
    for d, v in filters.items():
        if d in frame.columns:
            frame = frame[frame[d].astype("string").isin(_filter_values(v))]
    return frame


def _where_frame(frame: pd.DataFrame, where: dict[str, Any]) -> pd.Series:
    """The pandas twin of :func:`where_condition` (SQL semantics: a NULL never matches)."""
    keep = pd.Series(True, index=frame.index)
    for col, want in where.items():
        c = frame[col]
        if want is None:
            keep &= c.isna()
        elif isinstance(want, (list, tuple)):
            keep &= c.isin(list(want)) & c.notna()
        elif isinstance(want, dict):
            for op, v in want.items():
                cmp = {"gt": c > v, "ge": c >= v, "lt": c < v, "le": c <= v, "ne": c != v}[op]
                keep &= cmp.fillna(False).astype(bool) & c.notna()
        else:
            keep &= (c == want).fillna(False).astype(bool) & c.notna()
    return keep


def _in_ranges(col: Any, periods: list[Period]) -> Any:
    """col within any of the periods (adjacent periods merged into one range)."""
    ranges: list[list[date]] = []
    for p in sorted(periods):
        if ranges and ranges[-1][1] >= p.start:
            ranges[-1][1] = max(ranges[-1][1], p.end)
        else:
            ranges.append([p.start, p.end])
    cond = ibis.literal(False)
    for lo, hi in ranges:
        cond |= (col >= _lit(lo, col)) & (col < _lit(hi, col))
    return cond


def _lit(value: date, like: Any) -> Any:
    """A date bound as a literal comparable with column ``like`` (date or timestamp)."""
    if like.type().is_timestamp():
        return ibis.literal(datetime.combine(value, datetime.min.time()))
    return ibis.literal(value)


class Engine:
    """One metrics request: the dataset, catalog, grouping and grain."""

    def __init__(self, ds: Dataset, catalog: Catalog, by: list[str], grain: str, fsm: int, filters: dict):
        self.ds = ds
        self.catalog = catalog
        self.by = by
        self.grain = grain
        self.fsm = fsm
        self.filters = filters
        self.unavailable: dict[str, str] = {}
        for d in filters:
            resolve_dims(ds, [d])

    # -- availability ---------------------------------------------------------------------

    def reason_unavailable(self, mid: str) -> str | None:
        m = self.catalog.get(mid)
        for t in sorted(self.catalog.tables_needed(mid)):
            if not self.ds.has(t):
                return f"needs the {t} table, which is not in the data"
        for tc in sorted(self.catalog.columns_needed(mid)):
            t, c = tc.split(".")
            if self.ds.has(t) and not self.ds.has_column(t, c):
                return self.ds.column_problem(t, c) or f"needs column {c} of {t}, which the data does not have"
        if m.id == "arr" and not self.ds.has("subscriptions") and not self.ds.has_column("opportunities", "contract_months"):
            return "needs the subscriptions table or opportunities.contract_months"
        for dim in [*self.by, *self.filters]:
            for table in self._tables_of(mid):
                if not self.reachable(table, dim):
                    return f"cannot be split by {dim}: {table} does not link to it"
        for dep in self.catalog.dependencies(mid):
            r = self.reason_unavailable(dep)
            if r:
                return r
        return None

    def _tables_of(self, mid: str) -> set[str]:
        m = self.catalog.get(mid)
        if m.source:
            return {SOURCES[m.source]["table"]}
        if m.type == "function":  # the table whose rows it splits: the first of its rows present
            present = [t for t in m.rows if self.ds.has(t)]
            return {present[0]} if present else set(m.rows[:1])
        out: set[str] = set()
        for dep in self.catalog.dependencies(mid):
            out |= self._tables_of(dep)
        return out

    def reachable(self, table: str, dim: str) -> bool:
        custom = self.ds.config.dimensions.get(dim)
        if custom is not None:
            if custom.table == table:
                return True
            if custom.table == "reps":
                return table in REP_COLUMN or table == "reps"
            if custom.table == "accounts":
                return table in ACCOUNT_COLUMN or table == "subscriptions"
            if custom.table == "opportunities":
                return table in OPPORTUNITY_COLUMN
            return False
        if dim == "rep_id" or dim in REP_DIMS:
            return table in REP_COLUMN or table == "reps" or (dim == "team" and table == "quotas")
        if dim in ACCOUNT_DIMS:
            return table in ACCOUNT_COLUMN or table in ("subscriptions", "accounts")
        if dim == "customer_type":
            return table == "opportunities"
        if dim in DEAL_DIMS:
            return table == "opportunities" or table in OPPORTUNITY_COLUMN
        if dim == "activity_type":
            return table == "activities"
        return False

    # -- enriched tables --------------------------------------------------------------------

    def opportunities(self) -> ibis.Table:
        """Opportunities with their derived fields (:func:`analysis.timeline.deals`)."""
        return timeline.deals(self.ds)

    def base(self, table: str) -> ibis.Table:
        if table == "opportunities":
            return self.opportunities()
        t = self.ds.table(table)
        if table == "leads":
            conv = (t.status == "converted") | t.opportunity_id.notnull() | t.converted_at.notnull()
            minutes = timeline.elapsed(t.first_response_at, t.created_at, 60)
            t = t.mutate(converted=conv.fill_null(False), response_minutes=minutes)
        elif table == "activities":
            t = t.mutate(duration_min=(t.duration_s / 60).cast("float64"))
        return t

    def with_dims(self, t: ibis.Table, table: str, dims: Sequence[str]) -> ibis.Table:
        """Add a column per dimension (named after it) to rows of ``table``."""
        dims = [d for d in dims if d not in t.columns or d in REP_DIMS or d in ("segment", "industry")]
        adds: dict[str, Any] = {}
        rep_col = REP_COLUMN.get(table)
        need_rep = [d for d in dims if d in REP_DIMS or self._custom_table(d) == "reps"]
        if need_rep and rep_col:
            reps = self.ds.table("reps")
            cols = {f"_r_{d}": reps[self._custom_col(d) or d] for d in need_rep}
            r = reps.select(_r_id=reps.rep_id, **cols)
            t = t.left_join(r, t[rep_col] == r._r_id).drop("_r_id")
            for d in need_rep:
                if d == "team" and table == "pulse":
                    adds[d] = t[f"_r_{d}"].coalesce(t.team) if "team" in t.columns else t[f"_r_{d}"]
                else:
                    adds[d] = t[f"_r_{d}"]
        need_acct = [d for d in dims if d in ACCOUNT_DIMS or self._custom_table(d) == "accounts"]
        acct_col = ACCOUNT_COLUMN.get(table) or ("account_id" if table == "subscriptions" else None)
        if need_acct and acct_col and self.ds.has("accounts"):
            acc = self.ds.table("accounts")
            cols = {f"_a_{d}": acc[self._custom_col(d) or d] for d in need_acct}
            a = acc.select(_a_id=acc.account_id, **cols)
            t = t.left_join(a, t[acct_col] == a._a_id).drop("_a_id")
            for d in need_acct:
                adds[d] = t[f"_a_{d}"]
        elif need_acct:
            for d in need_acct:
                adds[d] = ibis.null(dt.string)
        need_deal = [d for d in dims if d in DEAL_DIMS or self._custom_table(d) == "opportunities"]
        if need_deal and table == "opportunities":
            for d in need_deal:
                col = self._custom_col(d) or d
                adds[d] = t[col]
        elif need_deal and table in OPPORTUNITY_COLUMN:
            o = self.opportunities()
            cols = {f"_o_{d}": o[self._custom_col(d) or d] for d in need_deal}
            o = o.select(_o_id=o.opportunity_id, **cols)
            t = t.left_join(o, t[OPPORTUNITY_COLUMN[table]] == o._o_id).drop("_o_id")
            for d in need_deal:
                if d == "lead_source" and table == "leads":
                    adds[d] = t.source.coalesce(t[f"_o_{d}"])
                else:
                    adds[d] = t[f"_o_{d}"]
        for d in dims:
            if d in adds:
                continue
            if d == "rep_id" and (rep_col or table == "reps"):
                adds[d] = t[rep_col or "rep_id"]
            elif d == "activity_type" and table == "activities":
                adds[d] = t.type
            elif self._custom_table(d) == table:
                adds[d] = t[self._custom_col(d)]
        t = t.mutate(**{d: v.cast("string") for d, v in adds.items()})
        return t.drop(*[c for c in t.columns if c.startswith(("_r_", "_a_", "_o_"))])

    def _custom_table(self, dim: str) -> str | None:
        c = self.ds.config.dimensions.get(dim)
        return c.table if c else None

    def _custom_col(self, dim: str) -> str | None:
        c = self.ds.config.dimensions.get(dim)
        return c.column if c else None

    def filtered(self, t: ibis.Table, table: str) -> ibis.Table:
        """Rows of ``t`` (with dims) passing the request's filters."""
        if not self.filters:
            return t
        cond = ibis.literal(True)
        for d, v in self.filters.items():
            cond &= t[d].isin(_filter_values(v))
        return t.filter(cond)

    def source_table(self, source: str) -> tuple[ibis.Table, str]:
        spec = SOURCES[source]
        table = spec["table"]
        t = self.base(table)
        if spec["where"]:
            t = t.filter(where_condition(t, spec["where"]))
        t = self.with_dims(t, table, [*self.by, *self.filters])
        return self.filtered(t, table), spec["time"]

    # -- the run ---------------------------------------------------------------------------------

    def run(self, ids: list[str], wanted: list[Period] | None) -> pd.DataFrame:
        needed = self._closure(ids)
        available = [m for m in needed if not self._mark(m)]
        universe = list(wanted) if wanted is not None else self.data_periods()
        # growth needs the previous period of each wanted one
        compute = set(universe)
        if any(self.catalog.get(m).type == "growth" for m in available):
            compute |= {p.previous() for p in universe}
        compute_list = sorted(compute)
        frames = []
        simple = [m for m in available if self.catalog.get(m).source]
        by_source: dict[str, list[Metric]] = {}
        for mid in simple:
            m = self.catalog.get(mid)
            by_source.setdefault(m.source, []).append(m)
        for source, ms in by_source.items():
            frames.append(self.simple(source, ms, compute_list))
        done: set = set()
        for mid in available:
            m = self.catalog.get(mid)
            fn = FUNCTIONS.get(m.function) if m.type == "function" else None
            if fn is not None and fn not in done:
                # one function may fill several metrics (won and lost, days and weeks)
                frames.append(fn(self, m, compute_list))
                done.add(fn)
        keys = [*self.by, PERIOD]
        grid = self._grid(frames, compute_list)
        out = grid
        for f in frames:
            if f is not None and not f.empty:
                out = out.merge(f, on=keys, how="left")
        for mid in available:
            m = self.catalog.get(mid)
            if mid not in out.columns and (m.source or m.type == "function"):
                out[mid] = pd.NA
            if m.additive and mid in out.columns:
                out[mid] = out[mid].astype("Float64").fillna(0)
        out = self._finish(out, available)
        out = out[out[PERIOD].isin([p.label for p in universe])]
        cols = list(keys)
        for mid in ids:
            m = self.catalog.get(mid)
            if mid not in out.columns:
                out[mid] = pd.Series(pd.NA, index=out.index, dtype="Float64")
            cols.append(mid)
            if m.is_rate:
                for suffix in ("numerator", "denominator", "low", "high"):
                    c = f"{mid}_{suffix}"
                    if c not in out.columns:
                        out[c] = pd.Series(pd.NA, index=out.index, dtype="Float64")
                    cols.append(c)
        order = {p.label: i for i, p in enumerate(sorted(universe))}
        out = out.assign(_o=out[PERIOD].map(order)).sort_values(["_o", *self.by], na_position="last")
        out = out[cols].reset_index(drop=True)
        for mid in ids:
            m = self.catalog.get(mid)
            if m.unit == "count" and m.additive:
                out[mid] = out[mid].round().astype("Int64")
            else:
                out[mid] = out[mid].astype("Float64")
        out.attrs["unavailable"] = {k: v for k, v in self.unavailable.items() if k in ids}
        out.attrs["grain"] = self.grain
        out.attrs["catalog_version"] = self.catalog.version
        return out

    def _closure(self, ids: list[str]) -> list[str]:
        out: list[str] = []

        def visit(mid: str) -> None:
            for dep in self.catalog.dependencies(mid):
                visit(dep)
            if mid not in out:
                out.append(mid)

        for mid in ids:
            visit(mid)
        return out

    def _mark(self, mid: str) -> bool:
        reason = self.reason_unavailable(mid)
        if reason:
            self.unavailable[mid] = reason
            return True
        return False

    def _grid(self, frames: list[pd.DataFrame | None], periods: list[Period]) -> pd.DataFrame:
        labels = [p.label for p in periods]
        if not self.by:
            return pd.DataFrame({PERIOD: labels})
        groups = pd.concat(
            [f[self.by] for f in frames if f is not None and not f.empty], ignore_index=True
        ).drop_duplicates() if any(f is not None and not f.empty for f in frames) else pd.DataFrame(columns=self.by)
        grid = groups.merge(pd.DataFrame({PERIOD: labels}), how="cross")
        return grid

    def data_periods(self) -> list[Period]:
        """Every period from the first deal created to the last deal closed or activity."""
        bounds = data_bounds(self.ds)
        if bounds is None:
            return []
        return periods_between(*bounds, self.grain, fiscal_start_month=self.fsm)

    def simple(self, source: str, ms: list[Metric], periods: list[Period]) -> pd.DataFrame:
        """Every simple metric of one source from one scan of its table.

        Counts, sums and means filtered only on category columns (call type, outcome,
        direction...) are computed in two stages: one GROUP BY over the period, the groups and
        those few low-cardinality columns in the engine, then the filters on the small result.
        This keeps the scan of a 50-million-row activities table to a single pass instead of a
        filtered aggregate per metric. Other metrics are aggregated directly in the same scan.
        """
        t, time_col = self.source_table(source)
        t = t.filter(t[time_col].notnull())
        if periods:
            t = t.filter(_in_ranges(t[time_col], periods))
        # group by the period's start date (cheap date arithmetic), label the few result rows after
        t = t.mutate(**{PERIOD: period_start_expr(t[time_col], self.grain, fiscal_start_month=self.fsm)})
        table = SOURCES[source]["table"]
        cats = {c.name for c in schema.TABLES[table].columns if c.type == "category"}
        staged = [m for m in ms if m.type in ("count", "sum", "mean") and set(m.where) <= cats]
        direct = [m for m in ms if m not in staged]
        keys = [*self.by, PERIOD]
        frames = []
        if staged and self._use_cube(source, staged):
            frames.append(self._from_cube(staged, periods, keys))
        elif staged:
            frames.append(self._staged(t, staged, keys, sorted({c for m in staged for c in m.where})))
        if direct:
            aggs = {}
            for m in direct:
                cond = where_condition(t, m.where) if m.where else None
                col = t[m.column] if m.column else None
                if m.type == "count":
                    aggs[m.id] = t.count(where=cond) if cond is not None else t.count()
                elif m.type == "sum":
                    aggs[m.id] = timeline.money_total(col, cond)
                elif m.type == "nunique":
                    aggs[m.id] = col.nunique(where=cond)
                elif m.type == "mean":
                    aggs[m.id] = col.mean(where=cond)
                elif m.type == "median":
                    # median(where=) does not compile on Spark: the values outside cond become NULL instead
                    kept = col if cond is None else ibis.ifelse(cond, col, ibis.null(col.type()))
                    aggs[m.id] = kept.median()
            frames.append(t.group_by(keys).aggregate(**aggs).to_pandas())
        out = frames[0]
        for f in frames[1:]:
            out = outer_merge(out, f, keys)
        out = self._labelled(out)
        if periods:
            out = out[out[PERIOD].isin([p.label for p in periods])]
        return out

    # -- the activity cube: activities pre-aggregated once per rep, month and category ----------

    CUBE_CATS = ("type", "outcome", "direction")
    CUBE_DIMS = ("rep_id", "team", "region", "manager_id", "activity_type")

    def _use_cube(self, source: str, ms: list[Metric]) -> bool:
        """The cube answers activity counts and call-length means at month grain or coarser,
        grouped or filtered by rep attributes and activity type only."""
        if source != "activities" or self.grain in ("day", "week"):
            return False
        dims = [*self.by, *self.filters]
        if any(d not in self.CUBE_DIMS and self._custom_table(d) != "reps" for d in dims):
            return False
        return all(set(m.where) <= set(self.CUBE_CATS) and m.column in (None, "duration_min") for m in ms)

    def _cube(self, periods: list[Period]) -> ibis.Table:
        """The cube, holding at least the months of ``periods``: months are added as they are
        first asked for, so a one-quarter query scans one quarter of activities (without
        periods: every month of the data)."""
        if periods:
            months = sorted({m.start for p in periods for m in periods_between(p.start, p.last_day, "month")})
        else:
            bounds = data_bounds(self.ds)
            months = [m.start for m in periods_between(*bounds, "month")] if bounds else []

        def build(part: list[date]) -> ibis.Table:
            a = self.ds.table("activities")
            a = a.filter(a.occurred_at.notnull())
            a = a.filter(_in_ranges(a.occurred_at, [period_of(m, "month") for m in part]))
            month = period_start_expr(a.occurred_at, "month")
            return a.group_by(["rep_id", month.name("_month"), *self.CUBE_CATS]).aggregate(
                _n=a.count(),
                _sum_duration_min=a[SCALED["duration_min"][0]].cast(dt.Decimal(38, 6)).sum(),  # seconds
                _cnt_duration_min=a[SCALED["duration_min"][0]].count(),
            )

        return self.ds.cached_parts("activity_cube", months, build, "_month")

    def _from_cube(self, ms: list[Metric], periods: list[Period], keys: list[str]) -> pd.DataFrame:
        c = self._cube(periods)
        c = self.filtered(self.with_dims(c, "activities", [*self.by, *self.filters]), "activities")
        if periods:
            c = c.filter(_in_ranges(c._month, periods))
        c = c.mutate(**{PERIOD: period_start_expr(c._month, self.grain, fiscal_start_month=self.fsm)})
        return self._staged(c, ms, keys, sorted({col for m in ms for col in m.where}), cube=True)

    def _staged(self, t: ibis.Table, ms: list[Metric], keys: list[str], cats: list[str],
                cube: bool = False) -> pd.DataFrame:
        cols = sorted({m.column for m in ms if m.column})
        if cube:
            aggs: dict[str, Any] = {"_n": t._n.sum()}
            for c in cols:
                aggs[f"_sum_{c}"] = t[f"_sum_{c}"].sum()
                aggs[f"_cnt_{c}"] = t[f"_cnt_{c}"].sum()
        else:
            aggs = {"_n": t.count()}
            for c in cols:
                source = SCALED[c][0] if c in SCALED else c
                aggs[f"_sum_{c}"] = t[source].cast(dt.Decimal(38, 6)).sum()
                aggs[f"_cnt_{c}"] = t[source].count()
        pre = t.group_by([*keys, *cats]).aggregate(**aggs).to_pandas()
        out = pre[keys].drop_duplicates().reset_index(drop=True)
        for m in ms:
            rows = pre[_where_frame(pre, m.where)] if m.where else pre
            g = rows.groupby(keys, dropna=False, sort=False)
            if m.type == "count":
                v = g["_n"].sum()
            else:
                v = g[f"_sum_{m.column}"].sum().astype("float64")
                if m.column in SCALED:
                    v = v / SCALED[m.column][1]
                if m.type != "sum":
                    v = v / g[f"_cnt_{m.column}"].sum().replace(0, np.nan)
            out = out.merge(v.rename(m.id).reset_index(), on=keys, how="left")
        return out

    def _labelled(self, out: pd.DataFrame) -> pd.DataFrame:
        """Replace period start dates by period labels."""
        starts = {d: period_of(pd.Timestamp(d).date(), self.grain, fiscal_start_month=self.fsm).label
                  for d in out[PERIOD].dropna().unique()}
        return out.assign(**{PERIOD: out[PERIOD].map(starts)})

    def _finish(self, out: pd.DataFrame, available: list[str]) -> pd.DataFrame:
        """Ratios, derived metrics, growth and intervals, in dependency order."""
        for mid in available:
            m = self.catalog.get(mid)
            if m.type == "ratio":
                num, den = out[m.numerator].astype("Float64"), out[m.denominator].astype("Float64")
                out[mid] = safe_divide(num, den)
                if m.is_rate:
                    out[f"{mid}_numerator"] = num
                    out[f"{mid}_denominator"] = den
                    low, high = wilson_interval(num, den)
                    out[f"{mid}_low"], out[f"{mid}_high"] = low.values, high.values
            elif m.type == "derived":
                values = {d: out[d].astype("Float64") for d in self.catalog.dependencies(mid)}
                out[mid] = eval_expr(m.expr, values)
            elif m.type == "growth":
                prev = self._previous_values(out, m.of)
                out[mid] = safe_divide(out[m.of].astype("Float64") - prev, prev.abs())
            elif m.type == "function" and m.is_rate and f"{mid}_numerator" in out.columns:
                low, high = wilson_interval(out[f"{mid}_numerator"], out[f"{mid}_denominator"])
                out[f"{mid}_low"], out[f"{mid}_high"] = low.values, high.values
        return out

    def _previous_values(self, out: pd.DataFrame, mid: str) -> pd.Series:
        """Value of ``mid`` for the same group in the previous period (NA when not computed)."""
        nxt = {lab: parse_period(lab, fiscal_start_month=self.fsm).next().label for lab in out[PERIOD].unique()}
        prev = out[[*self.by, PERIOD, mid]].rename(columns={mid: "_prev"})
        prev[PERIOD] = prev[PERIOD].map(nxt)
        merged = out[[*self.by, PERIOD]].merge(prev, on=[*self.by, PERIOD], how="left")
        return pd.Series(merged["_prev"].astype("Float64").values, index=out.index)

    # -- targets ----------------------------------------------------------------------------------

    def targets(self, metric_id: str, periods: list[Period]) -> pd.DataFrame:
        """Quota targets of ``metric_id`` by group and period (quota periods within P).

        Rep groups use rep quotas; teams and the company use team quotas when any exist for
        that period, else the sum of their reps' quotas. Returns columns by + period + target.
        """
        cols = [*self.by, PERIOD, "target"]
        if not self.ds.has("quotas"):
            return pd.DataFrame(columns=cols)
        q = self.ds.table("quotas")
        quotas = q.filter(q.metric == metric_id).to_pandas()  # quotas and reps are small tables
        reps = self.ds.table("reps")
        extra = {d: reps[self._custom_col(d) or d].cast("string") for d in ["team", *self.by, *self.filters]
                 if d in REP_DIMS or self._custom_table(d) == "reps"}
        reps_df = reps.select("rep_id", **extra).to_pandas()
        team_names = set(reps.filter(reps.team.notnull()).team.to_pandas()) - set(reps_df.rep_id)
        frames = []
        for p in periods:
            inside = quotas[
                (pd.to_datetime(quotas.period_start) >= pd.Timestamp(p.start))
                & (pd.to_datetime(quotas.period_end) <= pd.Timestamp(p.last_day))
            ]
            rep_df = inside.merge(reps_df, left_on="owner", right_on="rep_id")[[*reps_df.columns, "target"]]
            team_df = inside[inside.owner.isin(team_names)].rename(columns={"owner": "team"})[["team", "target"]]
            frames.append(self._combine_targets(rep_df, team_df, p))
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
        return out[cols] if not out.empty else pd.DataFrame(columns=cols)

    def _combine_targets(self, rep_df: pd.DataFrame, team_df: pd.DataFrame, p: Period) -> pd.DataFrame:
        rep_df = _keep(rep_df, self.filters)
        team_df = _keep(team_df, self.filters)
        if any(d != "team" for d in self.filters):
            team_df = team_df.iloc[0:0]  # team quotas cannot be filtered by a rep attribute
        if self.by and self.by != ["team"]:
            # reps and rep attributes: the reps' own quotas
            out = rep_df.groupby(self.by, dropna=False)["target"].sum().reset_index()
        else:
            # teams: the team quota where one exists, else the sum of its reps' quotas;
            # the company: the sum over teams, plus reps without a team
            by_team = team_df.groupby("team")["target"].sum()
            rep_team = rep_df["team"] if "team" in rep_df else pd.Series(pd.NA, index=rep_df.index)
            from_reps = rep_df.assign(team=rep_team).groupby("team", dropna=False)["target"].sum()
            teams = list(dict.fromkeys([*by_team.index, *from_reps.index]))
            values = [by_team[t] if t in by_team.index else from_reps[t] for t in teams]
            out = pd.DataFrame({"team": teams, "target": values})
            if not self.by:
                has_any = len(team_df) or len(rep_df)
                out = pd.DataFrame({"target": [out.target.sum() if has_any else np.nan]})
        out[PERIOD] = p.label
        return out


# -- function metrics ---------------------------------------------------------------------------

def data_bounds(ds: Dataset) -> tuple[date, date] | None:
    """The first and last day the data covers (deals created or closed, activities logged),
    queried once per dataset: every metric call without explicit periods needs them."""
    memo = ds.__dict__.setdefault("_data_bounds", {})
    if "bounds" not in memo:
        o = ds.table("opportunities")
        closed = o.filter(o.status.isin(["won", "lost"]))
        lo_hi = [
            o.aggregate(lo=o.created_at.min().date(), hi=o.created_at.max().date()),
            closed.aggregate(lo=closed.close_date.min(), hi=closed.close_date.max()),
        ]
        if ds.has("activities"):
            a = ds.table("activities")
            lo_hi.append(a.aggregate(lo=a.occurred_at.min().date(), hi=a.occurred_at.max().date()))
        bounds = [r for e in lo_hi for r in e.to_pyarrow().to_pylist()]
        los = [r["lo"] for r in bounds if r["lo"] is not None]
        his = [r["hi"] for r in bounds if r["hi"] is not None]
        memo["bounds"] = (min(los), max(his)) if los else None
    return memo["bounds"]


#: Columns derived by a division (call minutes = seconds / 60): sums and means add up the stored
#: column exactly and divide once at the end, so no row is rounded before it is added.
SCALED: dict[str, tuple[str, int]] = {"duration_min": ("duration_s", 60)}


def _periods_table(periods: list[Period]) -> ibis.Table:
    return ibis.memtable(
        {
            "_p": [p.label for p in periods],
            "_start": [p.start for p in periods],
            "_end": [p.end for p in periods],
            "_last": [p.last_day for p in periods],
        },
        schema={"_p": "string", "_start": "date", "_end": "date", "_last": "date"},
    )


def _with_periods(eng: Engine, t: ibis.Table, periods: list[Period], cond) -> ibis.Table:
    """Cross ``t`` with the periods table, keep pairs where ``cond(row, periods)`` holds."""
    pt = _periods_table(periods)
    j = t.cross_join(pt)
    j = j.filter(cond(j))
    return j.mutate(**{PERIOD: j._p})


def outer_merge(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``a.merge(b, on=keys, how="outer")`` that also works when both sides are empty.

    pandas 3 cannot factorize two empty Arrow-backed string keys (``ArrowInvalid: cannot
    construct ChunkedArray from empty vector``): periods without any row hit it.
    """
    if a.empty and b.empty:
        cols = [*a.columns, *[c for c in b.columns if c not in a.columns]]
        return pd.DataFrame({c: pd.Series(dtype=(a if c in a.columns else b)[c].dtype) for c in cols})
    return a.merge(b, on=keys, how="outer")


def _agg(eng: Engine, t: ibis.Table, **aggs: Any) -> pd.DataFrame:
    return t.group_by([*eng.by, PERIOD]).aggregate(**aggs).to_pandas()


def _fn_open(eng: Engine, m: Metric, periods: list[Period]) -> pd.DataFrame:
    """Deals open at the end of each period (:func:`analysis.timeline.open_deals`)."""
    o = eng.filtered(eng.with_dims(eng.opportunities(), "opportunities", [*eng.by, *eng.filters]), "opportunities")
    j = timeline.open_deals(eng.ds, {p.label: timeline.period_end(p) for p in periods}, table=o)
    j = j.mutate(**{PERIOD: j.moment})
    return _agg(eng, j, open_deals=j.count(), open_pipeline=timeline.money_total(j.amount))


def _fn_new_customers(eng: Engine, m: Metric, periods: list[Period]) -> pd.DataFrame:
    o = eng.opportunities()
    won = o.filter((o.status == "won") & o.account_id.notnull() & o.close_date.notnull())
    rank = ibis.row_number().over(group_by=won.account_id, order_by=[won.close_date, won.opportunity_id])
    first = won.mutate(_rank=rank).filter(lambda s: s._rank == 0).drop("_rank")
    first = eng.filtered(eng.with_dims(first, "opportunities", [*eng.by, *eng.filters]), "opportunities")
    j = _with_periods(eng, first, periods, lambda j: (j.close_date >= j._start) & (j.close_date < j._end))
    return _agg(eng, j, new_customers=j.count())


def _subs(eng: Engine) -> ibis.Table:
    s = eng.ds.table("subscriptions")
    return eng.filtered(eng.with_dims(s, "subscriptions", [*eng.by, *eng.filters]), "subscriptions")


def _fn_arr(eng: Engine, m: Metric, periods: list[Period]) -> pd.DataFrame:
    if eng.ds.has("subscriptions"):
        s = _subs(eng)
        j = _with_periods(eng, s, periods, lambda j: (j.start_date <= j._last) & (j.end_date >= j._last))
        return _agg(eng, j, arr=timeline.money_total(j.annual_value))
    o = eng.filtered(eng.with_dims(eng.opportunities(), "opportunities", [*eng.by, *eng.filters]), "opportunities")
    o = o.filter((o.status == "won") & (o.contract_months > 0) & o.close_date.notnull())
    # contract covers [close_date, close_date + contract_months months)
    months = o.contract_months.round().cast("int64")
    o = o.mutate(_until=o.close_date + months.as_interval("M"), _annual=o.amount / (o.contract_months / 12))
    j = _with_periods(eng, o, periods, lambda j: (j.close_date <= j._last) & (j._until > j._last))
    return _agg(eng, j, arr=timeline.money_total(j._annual))


def _fn_churn(eng: Engine, m: Metric, periods: list[Period]) -> pd.DataFrame:
    s = _subs(eng)
    keys = [*eng.by]
    start = _with_periods(eng, s, periods, lambda j: (j.start_date <= j._start) & (j.end_date >= j._start))
    start = start.group_by([*keys, PERIOD, "account_id"]).aggregate(_value=timeline.money_total(start.annual_value))
    end = _with_periods(eng, eng.ds.table("subscriptions"), periods,
                        lambda j: (j.start_date <= j._last) & (j.end_date >= j._last))
    end = end.select(end.account_id.name("_acct"), end[PERIOD].name("_per")).distinct()
    j = start.left_join(end, (start.account_id == end._acct) & (start[PERIOD] == end._per))
    churned = j._acct.isnull()
    out = _agg(
        eng, j,
        _n=j.count(), _churned=j.count(where=churned),
        _v=timeline.money_total(j._value), _vc=timeline.money_total(j._value, churned),
    )
    out["churn_rate"] = safe_divide(out["_churned"].astype("Float64"), out["_n"].astype("Float64"))
    out["churn_rate_numerator"] = out["_churned"].astype("Float64")
    out["churn_rate_denominator"] = out["_n"].astype("Float64")
    out["revenue_churn_rate"] = safe_divide(out["_vc"].astype("Float64"), out["_v"].astype("Float64"))
    return out.drop(columns=["_n", "_churned", "_v", "_vc"])


def _fn_velocity(eng: Engine, m: Metric, periods: list[Period]) -> pd.DataFrame:
    window = eng.ds.config.velocity_window_months
    o = eng.filtered(eng.with_dims(eng.opportunities(), "opportunities", [*eng.by, *eng.filters]), "opportunities")
    pt = _periods_table(periods)
    pt = pt.mutate(_wstart=(pt._end - ibis.interval(months=window)))
    closed = o.filter(o.status.isin(["won", "lost"]) & o.close_date.notnull()).cross_join(pt)
    closed = closed.filter((closed.close_date >= closed._wstart) & (closed.close_date < closed._end))
    closed = closed.mutate(**{PERIOD: closed._p})
    won = closed.status == "won"
    w = _agg(
        eng, closed,
        _won=closed.count(where=won), _closed=closed.count(),
        _rev=timeline.money_total(closed.amount, won), _cycle=closed.cycle_days.mean(where=won),
    )
    open_ = _fn_open(eng, Metric("open_deals", "", "", "", "function", "count", "higher", "lead"), periods)
    keys = [*eng.by, PERIOD]
    j = outer_merge(open_, w, keys)
    n_open = j["open_deals"].astype("Float64").fillna(0)
    size = safe_divide(j["_rev"].astype("Float64"), j["_won"].astype("Float64"))
    rate = safe_divide(j["_won"].astype("Float64"), j["_closed"].astype("Float64"))
    j["pipeline_velocity"] = safe_divide(n_open * size * rate, j["_cycle"].astype("Float64"))
    return j[[*keys, "pipeline_velocity"]]


def coverage_day(ds: Dataset, p: Period) -> date:
    """The first day of "the rest of P" that pipeline coverage looks at: the day after the
    snapshot day when P is under way at the snapshot, else P's first day."""
    day = timeline.snapshot_day(ds)
    return day + timedelta(days=1) if p.start <= day < p.last_day else p.start


def _fn_coverage(eng: Engine, m: Metric, periods: list[Period]) -> pd.DataFrame:
    o = eng.filtered(eng.with_dims(eng.opportunities(), "opportunities", [*eng.by, *eng.filters]), "opportunities")
    rows = []
    targets = eng.targets("revenue", periods)
    keys = [*eng.by, PERIOD]
    for p in periods:
        d = coverage_day(eng.ds, p)
        dl = ibis.literal(d)
        # open at the start of d and expected to close from d to the end of P
        open_at = timeline.open_deals(eng.ds, timeline.end_of_day(d - timedelta(days=1)), table=o)
        open_at = open_at.filter((open_at.close_date >= dl) & (open_at.close_date < ibis.literal(p.end)))
        won_so_far = o.filter((o.status == "won") & (o.close_date >= ibis.literal(p.start)) & (o.close_date < dl))
        label = ibis.literal(p.label)
        a = _agg(eng, open_at.mutate(**{PERIOD: label}), _open=timeline.money_total(open_at.amount))
        b = _agg(eng, won_so_far.mutate(**{PERIOD: label}), _won=timeline.money_total(won_so_far.amount))
        rows.append(outer_merge(a, b, [*eng.by, PERIOD]))
    f = pd.concat(rows, ignore_index=True)
    if not eng.by:  # the company has a row in every period, even with no open deal (coverage 0)
        f = pd.DataFrame({PERIOD: [p.label for p in periods]}).merge(f, on=PERIOD, how="left")
    f = f.merge(targets, on=keys, how="left") if not targets.empty else f.assign(target=pd.NA)
    remaining = f["target"].astype("Float64") - f["_won"].astype("Float64").fillna(0)
    remaining = remaining.mask(remaining <= 0)
    f["pipeline_coverage"] = safe_divide(f["_open"].astype("Float64").fillna(0), remaining)
    return f[[*keys, "pipeline_coverage"]]


def _fn_working_days(eng: Engine, m: Metric, periods: list[Period]) -> pd.DataFrame:
    reps = eng.ds.table("reps")
    dims = [d for d in [*eng.by, *eng.filters] if d != "rep_id"]
    cols = {d: reps[eng._custom_col(d) or d].cast("string") for d in dims}
    r = reps.select("rep_id", "role", "hire_date", "end_date", **cols).to_pandas()
    r = r[r.role.fillna("") != "manager"]
    r = _keep(r, eng.filters)
    cfg = eng.ds.config
    frames = [r.assign(**{PERIOD: p.label, "_days": employed_working_days(r, p, cfg)}) for p in periods]
    f = pd.concat(frames, ignore_index=True)
    out = f.groupby([*eng.by, PERIOD], dropna=False)["_days"].sum().reset_index()
    per_week = max(1, len(cfg.working_days))
    out["rep_working_days"] = out["_days"].astype("float64")
    out["rep_working_weeks"] = out["_days"] / per_week
    return out[[*eng.by, PERIOD, "rep_working_days", "rep_working_weeks"]]


def _deal_activity_counts(eng: Engine) -> ibis.Table:
    """Activities linked to each closed deal and logged on or before its close date."""
    o = eng.ds.table("opportunities")
    o = o.filter(o.status.isin(["won", "lost"]) & o.close_date.notnull())
    a = eng.ds.table("activities")
    a = a.filter(a.opportunity_id.notnull())
    deals = o.select(_oid=o.opportunity_id, _close=o.close_date)
    counts = a.join(deals, a.opportunity_id == deals._oid)
    counts = counts.filter(counts.occurred_at.date() <= counts._close)
    return counts.group_by(counts._oid.name("_cid")).aggregate(_n=lambda s: s.count())


def _fn_activities_per_deal(eng: Engine, m: Metric, periods: list[Period]) -> pd.DataFrame:
    """Mean activities linked to each deal closed in P and logged up to its close date,
    for won (``activities_per_won_deal``) and lost (``activities_per_lost_deal``) deals."""
    o = eng.filtered(eng.with_dims(eng.opportunities(), "opportunities", [*eng.by, *eng.filters]), "opportunities")
    o = o.filter(o.status.isin(["won", "lost"]) & o.close_date.notnull())
    lo, hi = periods[0].start, max(p.end for p in periods)
    o = o.filter((o.close_date >= lo) & (o.close_date < hi))
    counts = eng.ds.cached("deal_activity_counts", lambda: _deal_activity_counts(eng))
    j = o.left_join(counts, o.opportunity_id == counts._cid)
    j = j.mutate(**{PERIOD: period_start_expr(j.close_date, eng.grain, fiscal_start_month=eng.fsm)}, _n=j._n.fill_null(0))
    return eng._labelled(_agg(
        eng, j,
        activities_per_won_deal=j._n.mean(where=j.status == "won"),
        activities_per_lost_deal=j._n.mean(where=j.status == "lost"),
    ))


def _fn_revenue_target(eng: Engine, m: Metric, periods: list[Period]) -> pd.DataFrame:
    t = eng.targets("revenue", periods)
    return t.rename(columns={"target": "revenue_target"})


FUNCTIONS = {
    "open_pipeline": _fn_open,
    "open_deals": _fn_open,
    "new_customers": _fn_new_customers,
    "arr": _fn_arr,
    "churn_rate": _fn_churn,
    "revenue_churn_rate": _fn_churn,
    "pipeline_velocity": _fn_velocity,
    "pipeline_coverage": _fn_coverage,
    "rep_working_days": _fn_working_days,
    "rep_working_weeks": _fn_working_days,
    "activities_per_won_deal": _fn_activities_per_deal,
    "activities_per_lost_deal": _fn_activities_per_deal,
    "revenue_target": _fn_revenue_target,
}


def with_dimensions(ds: Dataset, table: ibis.Table, table_name: str, dims: Sequence[str]) -> ibis.Table:
    """Add one column per dimension (named after it) to rows of a canonical table.

    ``table`` is an ibis expression over rows of ``table_name`` (opportunities, leads,
    activities, pulse, subscriptions or reps) that still has that table's link columns
    (owner_id / rep_id, account_id, opportunity_id). Dimensions the table cannot reach come
    back as NULL; :func:`dimension_reachable` tells which.
    """
    eng = Engine(ds, build_catalog(ds.config), list(dims), "month", ds.config.fiscal_year_start_month, {})
    dims = resolve_dims(ds, dims)
    if table_name == "opportunities" and "customer_type" in dims and "customer_type" not in table.columns:
        enriched = eng.opportunities()
        ct = enriched.select(_ct_id=enriched.opportunity_id, customer_type=enriched.customer_type)
        table = table.left_join(ct, table.opportunity_id == ct._ct_id).drop("_ct_id")
    return eng.with_dims(table, table_name, dims)


def dimension_reachable(ds: Dataset, table_name: str, dim: str) -> bool:
    """True when rows of ``table_name`` link to dimension ``dim``."""
    eng = Engine(ds, build_catalog(ds.config), [], "month", ds.config.fiscal_year_start_month, {})
    return eng.reachable(table_name, dim)

