"""The pipeline over time: as of a past day, by expected close period, its flows and the cycle.

Functions take a :class:`~analysis.loading.Dataset`, do the row-level work in ibis (DuckDB by
default) and return small tidy pandas DataFrames.

* :func:`pipeline_as_of` / :func:`pipeline_by_step`: the open pipeline reconstructed as it stood
  at a past moment, each deal in the step it was in then (from ``stage_history``).
* :func:`open_pipeline_by_close_period`: open deals by step and expected close period, overdue
  expected dates flagged.
* :func:`created_vs_closed`: pipeline created against won and lost per period, with velocity,
  coverage and open pipeline (all from :func:`analysis.metrics`, so figures agree).
* :func:`pipeline_waterfall`: open pipeline at the start of a period + created − won − lost
  (± moves and amount changes) = open pipeline at the end, checked to the cent per group.
* :func:`cycle_survival` / :func:`cycle_summary`: the sales cycle as a Kaplan-Meier curve (open
  and lost deals censored) beside the mean and median days of won deals.

Rules shared by every function
-----------------------------
* Which deals are open at a moment, and in which step, is the deal timeline's answer
  (:mod:`analysis.timeline`): a date means the end of that day, "now" is the data's snapshot
  day, the stage history decides while it covers the moment and the final record after it.
* Amounts are the deal's current amount in the reporting currency (the data model has no
  amount history), summed exactly in decimal and returned as float64.
* Groups (``by``) are today's attributes (a deal's owner, its owner's team...): the data model
  has no ownership history.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable, Sequence

import ibis
import numpy as np
import pandas as pd

from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.data.periods import Period, grain_of, period_label_expr
from analysis.data.schema import STEPS
from analysis.errors import WorkbenchError
from analysis.semantic.engine import metrics, outer_merge, with_dimensions

CLOSED = timeline.CLOSED
PERIOD = "period"

#: Waterfall amount columns, in output order (signs in :data:`WATERFALL_SIGNS`).
WATERFALL_LINES = ("start", "created", "won", "lost", "moved_in", "moved_out", "amount_change", "reopened", "end")
#: +1 adds to the pipeline, -1 takes away; start + sum(sign * line) must equal end.
WATERFALL_SIGNS = {"created": 1, "moved_in": 1, "won": -1, "lost": -1, "moved_out": -1, "amount_change": 1,
                   "reopened": 1}
#: Lines with a deal count (amount changes move money, not deals).
COUNTED_LINES = ("start", "created", "moved_in", "won", "lost", "moved_out", "reopened", "end")


class PipelineError(WorkbenchError):
    """A pipeline request that cannot be answered (bad date, period or option)."""


# -- shared helpers ------------------------------------------------------------------------------


def _by(by: Sequence[str] | str | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def placed_deals(ds: Dataset) -> ibis.Table:
    """The deals the timeline places (:func:`analysis.timeline.deals`, created_at and status
    known), with ``_created``, the creation day."""
    o = timeline.deals(ds)
    o = o.filter(timeline.placed(o))
    return o.mutate(_created=o.created_at.date())


def _step_order(steps: pd.Series) -> pd.Series:
    order = {s: i for i, s in enumerate([*STEPS, *CLOSED])}
    return steps.map(order).fillna(len(order)).astype(int)


def _execute(t: ibis.Table, keys: list[str], **aggs: Any) -> pd.DataFrame:
    return (t.group_by(keys).aggregate(**aggs) if keys else t.aggregate(**aggs)).to_pandas()


# -- pipeline as of a past moment ------------------------------------------------------------------


def _as_of_table(ds: Dataset, when: Any, by: list[str]) -> tuple[ibis.Table, timeline.Moment]:
    m = timeline.moment(ds, when, "when", error=PipelineError)
    o = timeline.open_deals(ds, m, steps=True)
    o = with_dimensions(ds, o, "opportunities", by)
    return o.select("opportunity_id", "owner_id", *by, "step", "stage", "step_source", "amount", "close_date"), m


def pipeline_as_of(ds: Dataset, when: Any, *, by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """The open pipeline as it stood at a past moment, one row per deal.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    when
        A date (the end of that day), a datetime (company-local wall time if naive; an aware
        one is converted to the company time zone), a pandas Timestamp or an ISO string.
    by
        Dimensions to add as columns (``team``, ``region``, ``product``...): today's values.

    Returns
    -------
    pandas.DataFrame
        ``opportunity_id``, ``owner_id``, the ``by`` columns, ``step``, ``stage``,
        ``step_source``, ``amount``, ``close_date``; sorted by ``opportunity_id``.

    Notes
    -----
    * Which deals are open at ``when`` and their ``step`` / ``stage`` come from the deal
      timeline (:mod:`analysis.timeline`): the stage history decides while it covers the
      moment (a closing row with no later re-opening means closed), the final record after
      it; the step is the last history row's at or before ``when`` (at the snapshot day or
      later: the current stage of a deal open today). ``step_source`` says which rule
      applied: history, first_history, current or none.
    * ``amount`` is the current amount (no amount history in the data model) and
      ``close_date`` the final record's date: the actual close date for deals closed since
      ``when``, the current expected close date for deals still open.
    """
    by = _by(by)
    t, _ = _as_of_table(ds, when, by)
    out = t.order_by("opportunity_id").to_pandas()
    out["amount"] = out["amount"].astype("float64")
    return out.reset_index(drop=True)


def pipeline_by_step(ds: Dataset, when: Any, *, by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """The pipeline as of ``when`` summed by step: ``by`` columns, ``step``, ``deals``, ``amount``.

    Every funnel step appears for every group (0 deals where none sat there); deals of unknown
    step (stage not mapped, or no step known) appear as a NULL step, last. Rules as in
    :func:`pipeline_as_of`; ``amount`` is an exact decimal sum returned as float64.
    """
    by = _by(by)
    t, _ = _as_of_table(ds, when, by)
    agg = _execute(t, [*by, "step"], deals=t.count(), amount=timeline.money_sum(t.amount))
    agg["amount"] = agg["amount"].map(timeline.to_decimal).astype("float64")
    groups = agg[by].drop_duplicates() if by else pd.DataFrame(index=[0])
    if by and groups.empty:
        groups = pd.DataFrame(columns=by)
    grid = groups.merge(pd.DataFrame({"step": list(STEPS)}), how="cross")
    extra = agg.loc[~agg["step"].isin(STEPS), [*by, "step"]]
    grid = pd.concat([grid, extra], ignore_index=True)
    out = grid.merge(agg, on=[*by, "step"], how="left")
    out["deals"] = out["deals"].fillna(0).astype("int64")
    out["amount"] = out["amount"].fillna(0.0).astype("float64")
    out = out.assign(_o=_step_order(out["step"])).sort_values([*by, "_o"], na_position="last")
    return out.drop(columns="_o")[[*by, "step", "deals", "amount"]].reset_index(drop=True)


# -- open pipeline by expected close period --------------------------------------------------------


def open_pipeline_by_close_period(
    ds: Dataset,
    *,
    as_of: Any = None,
    grain: str = "quarter",
    by: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """Open pipeline by step and expected close period.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    as_of
        None (default): the open pipeline at the data's snapshot day
        (:func:`analysis.timeline.now`). A date or datetime: the pipeline reconstructed as of
        then (:func:`pipeline_as_of`).
    grain
        Grain of the close periods (month, quarter, ... on the configured fiscal year).
    by
        Dimensions to group by.

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``close_period``, ``step``, ``deals``, ``amount``; ordered overdue first,
        then periods in time order, then undated; steps in funnel order.

    Notes
    -----
    ``close_period`` is the period label of the expected close date, ``"overdue"`` when that
    date is before the as-of day (a deal expected to close on the as-of day is not overdue),
    ``"undated"`` when the deal has none. Amounts are exact decimal sums as float64.
    """
    by = _by(by)
    grain = grain_of(grain)
    o, m = _as_of_table(ds, as_of, by)
    day = m.day
    label = period_label_expr(o.close_date, grain, fiscal_start_month=ds.config.fiscal_year_start_month)
    o = o.mutate(close_period=ibis.cases(
        (o.close_date.isnull(), "undated"), (o.close_date < ibis.literal(day), "overdue"), else_=label
    ))
    out = _execute(o, [*by, "close_period", "step"], deals=o.count(), amount=timeline.money_sum(o.amount))
    out["amount"] = out["amount"].map(timeline.to_decimal).astype("float64")
    out["deals"] = out["deals"].astype("int64")
    rank = out["close_period"].map(lambda p: 0 if p == "overdue" else (2 if p == "undated" else 1))
    out = out.assign(_r=rank, _o=_step_order(out["step"]))
    out = out.sort_values([*by, "_r", "close_period", "_o"], na_position="last")
    out = out.drop(columns=["_r", "_o"])[[*by, "close_period", "step", "deals", "amount"]].reset_index(drop=True)
    out.attrs["as_of"] = day
    return out


# -- created vs closed ------------------------------------------------------------------------------

CREATED_VS_CLOSED = (
    "opportunities_created",
    "pipeline_created",
    "deals_won",
    "revenue",
    "deals_lost",
    "lost_amount",
    "open_pipeline",
    "pipeline_velocity",
    "pipeline_coverage",
)


def created_vs_closed(
    ds: Dataset,
    *,
    grain: str = "month",
    periods: Iterable[str | Period] | str | Period | None = None,
    by: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """Pipeline created against pipeline closed (won and lost) per period, with velocity history.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    grain, periods, by
        As for :func:`analysis.metrics` (default: every month of the data).

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``period``, ``opportunities_created``, ``pipeline_created``,
        ``deals_won``, ``revenue``, ``deals_lost``, ``lost_amount``, ``net_created``,
        ``open_pipeline``, ``pipeline_velocity``, ``pipeline_coverage``.
        ``attrs["unavailable"]`` gives the reason for any metric that could not be computed
        (coverage needs revenue quotas).

    Notes
    -----
    Every figure is the catalog metric of the same id, computed by :func:`analysis.metrics`,
    so it matches the rest of the workbench. ``net_created = pipeline_created - revenue -
    lost_amount``: pipeline added minus pipeline closed in the period. It equals the
    :func:`pipeline_waterfall`'s end - start except for deals with a missing or impossible
    close date (or an unknown status), which the waterfall places differently.
    """
    frame = metrics(ds, list(CREATED_VS_CLOSED), by=by, grain=grain, periods=periods)
    keys = [*_by(by), PERIOD]
    out = frame[[*keys, *CREATED_VS_CLOSED]].copy()
    out["net_created"] = out["pipeline_created"] - out["revenue"] - out["lost_amount"]
    cols = [*keys, *CREATED_VS_CLOSED[:6], "net_created", *CREATED_VS_CLOSED[6:]]
    out = out[cols]
    out.attrs = dict(frame.attrs)
    return out


# -- the waterfall ---------------------------------------------------------------------------------


def pipeline_waterfall(ds: Dataset, period: str | Period, *, by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """Open pipeline at the start of a period, what came in and went out, and the end: reconciled.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    period
        A period label (``2025-Q3``, ``2025-07``, ``FY2026-H1``) or :class:`~analysis.periods.Period`.
    by
        Dimensions to group by (today's values: ``team``, ``rep_id``, ``product``...).

    Returns
    -------
    pandas.DataFrame
        One row per group: ``by`` columns, ``period``, ``start``, ``created``, ``won``,
        ``lost``, ``moved_in``, ``moved_out``, ``amount_change``, ``reopened``, ``end``
        (amounts, float64), then ``start_deals``, ``created_deals``, ``won_deals``,
        ``lost_deals``, ``moved_in_deals``, ``moved_out_deals``, ``reopened_deals``,
        ``end_deals`` (counts). Groups with no deal in any line are left out.

    Raises
    ------
    AssertionError
        When ``start + created + moved_in - won - lost - moved_out + amount_change + reopened``
        differs from ``end`` for a group (amounts compared exactly in decimal, counts exactly);
        the message names the group. This is a check of the rules below, never expected to fire.

    Notes
    -----
    For P = [P.start, P.end) and the deal timeline of the module docstring:

    * start: deals open as of the end of the day before P.start (``pipeline_as_of``).
    * created: deals created in P. Every deal is open when created, so this includes deals
      created and closed within P (they appear again under won or lost); it equals the
      ``pipeline_created`` metric.
    * won / lost: deals that were in the pipeline at some time in P (start, created or
      reopened) and are closed at its end, by their outcome then
      (:func:`analysis.timeline.states`). A deal closed on the last
      day of P is won in P and not in the end pipeline. Where the stage history and the final
      record agree (and close dates are not before creation) these equal the ``revenue`` /
      ``lost_amount`` metrics; a deal lost in P by its history and won later counts as lost
      here and as revenue in the period of its final close.
    * moved_in / moved_out: deals whose group changed during P. The data model has no
      ownership history (groups are today's), so these are always 0; the columns are kept so
      the shape does not change when history arrives.
    * amount_change: value changes of deals open through P; always 0 without amount history
      (a deal counts at its current amount on every line).
    * reopened: deals closed at the start of P (by their stage history) that were open again
      during P: open at its end, or with a history row into an open stage in P.
    * end: deals open as of the end of P's last day (``pipeline_as_of``); equals the
      ``open_pipeline`` metric of P, as start equals that of the previous period.

    Deals with a status other than open / won / lost are left out of every line, while the
    metric engine counts them in ``pipeline_created`` (and in ``open_pipeline`` when their
    close_date is after the period): the only other source of difference from the metrics.
    """
    p = ds.period(period)
    by = _by(by)
    before_start, at_end = timeline.period_start(p), timeline.period_end(p)
    o = placed_deals(ds)
    for key, m in (("_s", before_start), ("_e", at_end)):
        st = timeline.states(ds, m)
        st = st.select(**{f"{key}_id": st.opportunity_id, key: st.state})
        o = o.left_join(st, o.opportunity_id == st[f"{key}_id"]).drop(f"{key}_id")
    moved = timeline.open_stage_entries(ds, before_start, at_end)
    moved = moved.select(_mv_id=moved.opportunity_id)
    o = o.left_join(moved, o.opportunity_id == moved._mv_id)
    start = (o._s == "open").fill_null(False)
    end = (o._e == "open").fill_null(False)
    created = (o._created >= ibis.literal(p.start)) & (o._created < ibis.literal(p.end))
    reopened = o._s.isin(list(CLOSED)).fill_null(False) & (end | o._mv_id.notnull())
    was_in = start | created | reopened
    left = was_in & ~end
    flags = {
        "start": start,
        "created": created,
        "won": left & (o._e == "won").fill_null(False),
        "lost": left & (o._e == "lost").fill_null(False),
        "reopened": reopened,
        "end": end,
    }
    t = o.mutate(**{f"_f_{k}": v for k, v in flags.items()})
    t = t.filter(t._f_start | t._f_created | t._f_reopened | t._f_end)
    t = with_dimensions(ds, t, "opportunities", by)
    aggs: dict[str, Any] = {}
    for k in flags:
        aggs[k] = timeline.money_sum(t.amount, t[f"_f_{k}"])
        aggs[f"{k}_deals"] = t.count(where=t[f"_f_{k}"])
    raw = _execute(t, by, **aggs)
    if by:
        raw = raw[raw[[f"{k}_deals" for k in flags]].sum(axis=1) > 0]
    for k in flags:
        raw[k] = raw[k].map(timeline.to_decimal)
        raw[f"{k}_deals"] = raw[f"{k}_deals"].fillna(0).astype("int64")
    for k in ("moved_in", "moved_out", "amount_change"):
        raw[k] = [Decimal(0)] * len(raw)
    for k in ("moved_in", "moved_out"):
        raw[f"{k}_deals"] = np.zeros(len(raw), dtype="int64")
    _assert_reconciles(raw, by, p.label)
    raw[PERIOD] = p.label
    amounts = list(WATERFALL_LINES)
    counts = [f"{k}_deals" for k in WATERFALL_LINES if k in COUNTED_LINES]
    out = raw[[*by, PERIOD, *amounts, *counts]].copy()
    for k in amounts:
        out[k] = out[k].map(float).astype("float64")
    if by:
        out = out.sort_values(by, na_position="last")
    out = out.reset_index(drop=True)
    out.attrs["period"] = p.label
    out.attrs["start_as_of"] = before_start.day
    out.attrs["end_as_of"] = at_end.day
    return out


def _assert_reconciles(frame: pd.DataFrame, by: list[str], label: str) -> None:
    """Raise AssertionError naming the group where the waterfall's lines do not add up.

    Amount columns hold :class:`decimal.Decimal` values (compared exactly), count columns
    integers.
    """
    amounts = {k: [timeline.to_decimal(v) for v in frame[k]] for k in WATERFALL_LINES}
    counts = {k: frame[f"{k}_deals"].astype("int64").to_numpy() for k in COUNTED_LINES}
    for i in range(len(frame)):
        total = amounts["start"][i] + sum(sign * amounts[k][i] for k, sign in WATERFALL_SIGNS.items())
        n = counts["start"][i] + sum(sign * counts[k][i] for k, sign in WATERFALL_SIGNS.items() if k in counts)
        if total == amounts["end"][i] and n == counts["end"][i]:
            continue
        group = {d: frame[d].iloc[i] for d in by} if by else "all deals"
        if total != amounts["end"][i]:
            raise AssertionError(
                f"pipeline waterfall {label} does not reconcile for {group}: start + flows = {total} "
                f"but end = {amounts['end'][i]} (difference {total - amounts['end'][i]})"
            )
        raise AssertionError(
            f"pipeline waterfall {label} deal counts do not reconcile for {group}: "
            f"start + flows = {n} deals but end = {counts['end'][i]}"
        )


# -- the sales cycle as a survival curve -----------------------------------------------------------


def _cycle_counts(ds: Dataset, period: str | Period | None, by: list[str], as_of: Any) -> pd.DataFrame:
    """Deals of the cohort counted per group and observed duration: ``_days``, ``_n``, ``events``
    (won by the as-of day), ``_lost`` (lost by then). One aggregate query."""
    day = timeline.moment(ds, as_of, "as_of", error=PipelineError).day
    o = placed_deals(ds)
    o = o.filter(o._created <= ibis.literal(day))
    if period is not None:
        p = ds.period(period)
        o = o.filter((o._created >= ibis.literal(p.start)) & (o._created < ibis.literal(p.end)))
    closed = (o.closed_on.notnull() & (o.closed_on <= ibis.literal(day))).fill_null(False)
    until = ibis.cases((closed, o.closed_on), else_=ibis.literal(day))
    o = o.mutate(
        _days=until.delta(o._created, unit="day").cast("int64"),
        _won=closed & (o.status == "won"),
        _is_lost=closed & (o.status == "lost"),
    )
    o = with_dimensions(ds, o, "opportunities", by)
    out = _execute(o, [*by, "_days"], _n=o.count(), events=o.count(where=o._won), _lost=o.count(where=o._is_lost))
    return out.astype({"_days": "int64", "_n": "int64", "events": "int64", "_lost": "int64"})


def _km_medians(km: pd.DataFrame, by: list[str]) -> pd.DataFrame | float:
    """First ``days`` where survival <= 0.5, per group (NaN where the curve stays above)."""
    below = km[km["survival"] <= 0.5]
    if not by:
        return float(below["days"].iloc[0]) if len(below) else np.nan
    groups = km[by].drop_duplicates()
    first = below.groupby(by, dropna=False, sort=False)["days"].first().rename("km_median_days").reset_index()
    return groups.merge(first, on=by, how="left")


def cycle_survival(
    ds: Dataset,
    *,
    period: str | Period | None = None,
    by: Sequence[str] | str | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """The sales cycle as a Kaplan-Meier survival curve: the share of deals not yet won after N days.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    period
        Cohort: deals created in this period (label or Period); default every deal.
    by
        Dimensions to group by; one curve per group.
    as_of
        The day the curve is observed (default the data's snapshot day,
        :meth:`Dataset.last_date`); deals created after it are left out, and a deal closed
        after it counts as still open.

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``days``, ``at_risk``, ``events``, ``censored``, ``survival``: one row
        per distinct duration (plus a first row at day 0 with survival 1 when no duration is 0).
        ``attrs["share_won"]`` (no ``by``) or a per-group dict gives won / cohort deals.

    Notes
    -----
    * Duration: whole days from the creation date to the close date (closed deals) or to the
      as-of day (open deals). A close date before the creation date counts as day 0.
    * The event is **won**. Lost deals are censored at their loss (the usual competing-risk
      simplification: the curve reads "not yet won, among deals still able to be won") and
      open deals at the as-of day: neither is dropped.
    * S(t) = prod over durations t_i <= t of (1 - events_i / at_risk_i), where at_risk_i counts
      deals whose duration is at least t_i (deals censored at t_i are at risk at t_i). The KM
      median is the first t with S(t) <= 0.5 (NaN when the curve never gets there).
    * ``share_won`` = won / all cohort deals, so far (open deals count in the denominator).
    """
    by = _by(by)
    return _survival(_cycle_counts(ds, period, by, as_of), by)


def _survival(counts: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Kaplan-Meier tables of every group at once from :func:`_cycle_counts`.

    Sets ``attrs["share_won"]``. Vectorised over groups (cumulative sums and products per
    group), so a thousand reps cost no more than one.
    """
    cols = [*by, "days", "at_risk", "events", "censored", "survival"]
    if counts.empty:
        out = pd.DataFrame(columns=cols)
        out.attrs["share_won"] = np.nan if not by else {}
        return out
    c = counts.assign(censored=counts["_n"] - counts["events"])
    c["_g"] = c.groupby(by, dropna=False, sort=True).ngroup() if by else 0
    # a first row at day 0 (survival 1) for every group that has no duration 0
    firsts = c.sort_values(["_g", "_days"]).drop_duplicates("_g")
    zero = firsts[firsts["_days"] > 0].assign(_days=0, _n=0, events=0, censored=0, _lost=0)
    c = pd.concat([c, zero], ignore_index=True).sort_values(["_g", "_days"], kind="stable", ignore_index=True)
    per_group = c.groupby("_g", sort=False)
    total = per_group["_n"].transform("sum")
    at_risk = total - (per_group["_n"].cumsum() - c["_n"])  # deals whose duration is >= days
    factor = 1.0 - c["events"] / at_risk
    c["survival"] = factor.groupby(c["_g"], sort=False).cumprod().astype("float64")
    c["at_risk"] = at_risk.astype("int64")
    out = c.rename(columns={"_days": "days"})[cols].astype(
        {"days": "int64", "at_risk": "int64", "events": "int64", "censored": "int64"}
    )
    sums = per_group[["events", "_n"]].sum()
    share = (sums["events"] / sums["_n"]).astype("float64")
    if by:
        keys = firsts.set_index("_g")[by]
        named = {}
        for gid, value in share.items():
            key = tuple(keys.loc[gid])
            named[key if len(key) > 1 else key[0]] = float(value)
        out.attrs["share_won"] = named
    else:
        out.attrs["share_won"] = float(share.iloc[0])
    return out


def cycle_summary(
    ds: Dataset,
    *,
    period: str | Period | None = None,
    by: Sequence[str] | str | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """Mean and median days of won deals beside the Kaplan-Meier median of a creation cohort.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    period
        The period (label or Period); default all time.
    by
        Dimensions to group by.
    as_of
        As for :func:`cycle_survival`.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``by`` columns, ``period`` (label, or ``"all"``), ``won_deals``,
        ``mean_days``, ``median_days`` (deals **won in** the period: equal to the
        ``sales_cycle_days`` and ``sales_cycle_days_median`` metrics), then for the deals
        **created in** the period: ``cohort_deals``, ``cohort_won``, ``cohort_lost``,
        ``cohort_open``, ``share_won`` (won / cohort deals) and ``km_median_days`` (from
        :func:`cycle_survival`).

    Notes
    -----
    The two halves answer different questions and use different deals: the mean and median
    describe the deals that closed won in the period (what the metric engine reports, days
    from created_at's date to close_date, bad close dates included as they are); the KM
    median describes how long deals created in the period take to be won, counting open and
    lost deals as censored instead of dropping them. NA where a half has no deal.
    """
    by = _by(by)
    label = ds.period(period).label if period is not None else "all"
    o = timeline.deals(ds)
    won = o.filter((o.status == "won") & o.close_date.notnull())
    if period is not None:
        p = ds.period(period)
        won = won.filter((won.close_date >= ibis.literal(p.start)) & (won.close_date < ibis.literal(p.end)))
    won = with_dimensions(ds, won, "opportunities", by)
    a = _execute(won, by, won_deals=won.count(), mean_days=won.cycle_days.mean(),
                 median_days=won.cycle_days.median())
    counts = _cycle_counts(ds, period, by, as_of)
    cohort = counts.groupby(by, dropna=False) if by else counts.assign(_all=0).groupby("_all")
    b = cohort.agg(cohort_deals=("_n", "sum"), cohort_won=("events", "sum"), cohort_lost=("_lost", "sum"))
    b = b.reset_index() if by else b.reset_index(drop=True)
    km = _survival(counts, by)
    km.attrs = {}
    if by:
        c = _km_medians(km, by) if not km.empty else pd.DataFrame(columns=[*by, "km_median_days"])
        out = outer_merge(a, b, by).merge(c, on=by, how="left")
    else:
        if b.empty:
            b = pd.DataFrame({"cohort_deals": [0], "cohort_won": [0], "cohort_lost": [0]})
        out = pd.concat([a, b], axis=1)
        out["km_median_days"] = _km_medians(km, by) if not km.empty else np.nan
    for c_ in ("won_deals", "cohort_deals", "cohort_won", "cohort_lost"):
        out[c_] = out[c_].fillna(0).astype("int64")
    out["cohort_open"] = out["cohort_deals"] - out["cohort_won"] - out["cohort_lost"]
    out["share_won"] = (out["cohort_won"] / out["cohort_deals"].where(out["cohort_deals"] > 0)).astype("float64")
    for c_ in ("mean_days", "median_days", "km_median_days"):
        out[c_] = pd.to_numeric(out[c_], errors="coerce").astype("float64")
    out[PERIOD] = label
    cols = [*by, PERIOD, "won_deals", "mean_days", "median_days", "cohort_deals", "cohort_won", "cohort_lost",
            "cohort_open", "share_won", "km_median_days"]
    out = out[cols]
    if by:
        out = out.sort_values(by, na_position="last")
    return out.reset_index(drop=True)
