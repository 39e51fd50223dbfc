"""Why deals are lost, how won and lost deals were worked, and the lead funnel (SPEC section 5).

Three analyses of one period ``P`` each, computed row by row in the engine (ibis on DuckDB) so
that a 50-million-row activities table is scanned once and only aggregated rows reach pandas:

* :func:`lead_funnel` / :func:`lead_response`: the cohort of leads created in P through
  lead -> qualified -> opportunity -> won, with conversions, Wilson intervals and response times;
* :func:`loss_analysis` / :func:`top_loss_pattern`: deals lost in P by loss reason, by the step
  they were lost at, by rep, product or team;
* :func:`engagement` / :func:`won_vs_lost`: activities per deal and touches per week for won
  against lost deals, with a Welch 95% interval for the difference of means and a verdict.

Every function takes the dataset first and its options keyword-only, and returns a tidy pandas
DataFrame whose numbers stay numbers (sentences are only in ``verdict`` and
:func:`top_loss_pattern`). A zero denominator gives NA ("not available"), never 0.

>>> import analysis
>>> from analysis import losses
>>> ds = analysis.load("data/sample")                        # doctest: +SKIP
>>> losses.lead_funnel(ds, "2026-Q3", by="source")          # doctest: +SKIP
>>> losses.top_loss_pattern(losses.loss_analysis(ds, "2026-Q3"))  # doctest: +SKIP
'No urgency is the top loss reason (21% of 1,305 lost deals, $52.3M)'
>>> losses.won_vs_lost(losses.engagement(ds, "2026-Q3"))   # doctest: +SKIP
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Sequence

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd

from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.data.periods import Period
from analysis.data.schema import ACTIVITY_TYPES, LOSS_REASONS, STEPS
from analysis.errors import UnknownNameError
from analysis.format import Numbers
from analysis.semantic.engine import (
    MetricError,
    dimension_reachable,
    dimensions,
    outer_merge,
    wilson_interval,
    with_dimensions,
)

__all__ = [
    "FUNNEL_STAGES",
    "CHAIN_STEPS",
    "NOT_GIVEN",
    "UNKNOWN_STEP",
    "lead_funnel",
    "lead_response",
    "loss_analysis",
    "top_loss_pattern",
    "engagement",
    "won_vs_lost",
    "welch_interval",
    "t_quantile",
    "t_cdf",
]

#: Stages of the lead funnel, in order.
FUNNEL_STAGES = ("lead", "qualified", "opportunity", "won")

#: The ordered chain of funnel steps a deal moves through (nurturing is off the chain).
CHAIN_STEPS = tuple(s for s in STEPS if s != "nurturing")

#: Category of a lost deal without a loss_reason.
NOT_GIVEN = "(not given)"

#: Step of a lost deal whose history and current stage name no canonical step.
UNKNOWN_STEP = "(unknown)"

#: Name of the "every type" row of :func:`engagement`.
ALL_TYPES = "all"

OUTCOMES = ("won", "lost")

REP_NAME = "rep_name"

# plural nouns for verdicts
_TYPE_NOUNS = {
    ALL_TYPES: "activities",
    "call": "calls",
    "email": "emails",
    "meeting": "meetings",
    "demo": "demos",
    "message": "messages",
    "other": "other activities",
}


# -- shared helpers ----------------------------------------------------------------------------




def _ts(d: Any) -> Any:
    return ibis.literal(datetime.combine(d, datetime.min.time()))


def _by_list(by: Sequence[str] | str | None) -> list[str]:
    if by is None:
        return []
    out = [by] if isinstance(by, str) else list(by)
    if len(set(out)) != len(out):
        raise MetricError(f"a dimension is listed twice in by={out}; list each once")
    return out


def _group(
    ds: Dataset,
    t: ibis.Table,
    table: str,
    by: list[str],
    *,
    native: Sequence[str] = (),
    special: Sequence[str] = (),
) -> ibis.Table:
    """Add the ``by`` columns to rows of ``table``.

    ``native`` names columns of the table itself that may be grouped on as they are
    (``source``, ``owner_id``); ``special`` names groupings the caller adds itself (``step``);
    everything else must be an engine dimension (:data:`analysis.DIMENSIONS` or a custom one)
    that ``table`` reaches.
    """
    for d in by:
        if d in native or d in special or (d in dimensions(ds) and dimension_reachable(ds, table, d)):
            continue
        known = [*native, *special, *[k for k in dimensions(ds) if dimension_reachable(ds, table, k)]]
        if d in dimensions(ds):
            raise MetricError(
                f"cannot group {table} by {d!r}: {table} does not link to it; "
                f"group by one of {', '.join(known)}"
            )
        import difflib

        close = difflib.get_close_matches(d, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown grouping {d!r} for {table}{hint} Valid: {', '.join(known)}")
    dims = [d for d in by if d not in native and d not in special]
    if dims:
        t = with_dimensions(ds, t, table, dims)
    casts = {d: t[d].cast("string") for d in by if d in native}
    return t.mutate(**casts) if casts else t


def _with_rep_names(ds: Dataset, frame: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Add ``rep_name`` right after a rep column of ``by`` (``owner_id`` or ``rep_id``)."""
    rep_cols = [c for c in by if c in ("owner_id", "rep_id")]
    if not rep_cols:
        return frame, by
    col = rep_cols[0]
    r = ds.table("reps")
    names = r.select(_rid=r.rep_id, **{REP_NAME: r.name}).to_pandas().drop_duplicates("_rid")
    mapping = dict(zip(names["_rid"], names[REP_NAME]))
    frame = frame.copy()
    frame[REP_NAME] = frame[col].map(lambda v: mapping.get(v) if isinstance(v, str) else None).astype("string")
    i = by.index(col)
    keys = [*by[: i + 1], REP_NAME, *by[i + 1 :]]
    return frame, keys


def _keys_frame(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Distinct group keys of ``frame`` (one empty-key row when not grouped)."""
    if not by:
        return pd.DataFrame(index=[0])
    return frame[by].drop_duplicates().reset_index(drop=True)


def _cross(keys: pd.DataFrame, name: str, values: Sequence[str]) -> pd.DataFrame:
    other = pd.DataFrame({name: pd.array(list(values), dtype="string")})
    if keys.shape[1] == 0:
        return other
    return keys.merge(other, how="cross")


def _string_keys(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """String dtype for the group columns (missing values stay NA: their own group)."""
    for c in by:
        frame[c] = frame[c].astype("string")
    return frame


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    num = num.astype("Float64")
    den = den.astype("Float64")
    return (num / den.mask(den <= 0)).astype("Float64")


def _wilson(num: pd.Series, den: pd.Series) -> tuple[pd.Series, pd.Series]:
    if len(num) == 0:
        empty = pd.Series([], dtype="Float64")
        return empty, empty
    k = num.astype("Float64").reset_index(drop=True)
    n = den.astype("Float64").reset_index(drop=True)
    low, high = wilson_interval(k, n)
    as_series = lambda v: pd.Series(v.values, index=num.index, dtype="Float64")  # noqa: E731
    return as_series(low), as_series(high)


# -- lead funnel -------------------------------------------------------------------------------


def _lead_counts(ds: Dataset, p: Period, by: list[str]) -> pd.DataFrame:
    """One engine query: per group, the cohort's stage counts and response figures."""
    ds.table("leads")  # a clear error when the data has no leads
    l = ds.table("leads")
    l = l.filter(l.created_at.notnull() & (l.created_at >= _ts(p.start)) & (l.created_at < _ts(p.end)))
    o = ds.table("opportunities")
    won_ids = o.filter(o.status == "won").select(_wid=o.opportunity_id).distinct()
    l = l.left_join(won_ids, l.opportunity_id == won_ids._wid)
    l = _group(ds, l, "leads", by, native=("source", "owner_id"))
    is_opp = ((l.status == "converted") | l.opportunity_id.notnull() | l.converted_at.notnull()).fill_null(False)
    is_qual = (is_opp | (l.status == "qualified")).fill_null(False)
    is_won = l._wid.notnull()
    minutes = timeline.elapsed(l.first_response_at, l.created_at, 60)
    aggs = dict(
        lead=l.count(),
        qualified=l.count(where=is_qual),
        opportunity=l.count(where=is_opp),
        won=l.count(where=is_won),
        responded=l.count(where=l.first_response_at.notnull()),
        unanswered=l.count(where=l.first_response_at.isnull()),
        median_response_minutes=minutes.median(),
    )
    out = (l.group_by(by).aggregate(**aggs) if by else l.aggregate(**aggs)).to_pandas()
    out = _string_keys(out, by)
    if not by and out.empty:
        out = pd.DataFrame({k: [0] for k in aggs}).assign(median_response_minutes=np.nan)
    return out.sort_values(by, na_position="last").reset_index(drop=True) if by else out


def lead_funnel(ds: Dataset, period: str | Period, *, by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """The lead funnel of the cohort of leads created in a period.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load` with a ``leads`` table.
    period
        A period label (``"2026-Q3"``, ``"2026-07"``, ``"FY2026"``) or :class:`~analysis.Period`.
    by
        Groupings: ``"source"`` (the lead's own source), ``"owner_id"`` (the SDR working the lead;
        a ``rep_name`` column is added), or any engine dimension leads reach (``rep_id``,
        ``team``, ``region``, ``manager_id``, ``segment``, ``lead_source``, custom ones).

    Returns
    -------
    pandas.DataFrame
        One row per group and stage (``lead``, ``qualified``, ``opportunity``, ``won``, in that
        order): the ``by`` columns, ``stage``, ``leads`` (leads of the cohort that reached the
        stage), ``conversion_from_previous``, ``conversion_from_lead`` and for each a 95% Wilson
        interval (``_low`` / ``_high``). Groups without leads in P have no rows.

    Notes
    -----
    Cohort: leads whose ``created_at`` falls in P; every later stage is counted whenever it was
    reached, up to the data snapshot. Stages are nested, so conversions never exceed 1:

    * qualified: status ``qualified`` or ``converted``, or ``converted_at`` or
      ``opportunity_id`` set;
    * opportunity: ``opportunity_id`` or ``converted_at`` set, or status ``converted`` (the
      definition of the ``lead_conversion_rate`` metric);
    * won: the lead's opportunity (``opportunity_id``) has status ``won``.

    conversion_from_previous = leads at the stage / leads at the previous stage;
    conversion_from_lead = leads at the stage / leads in the cohort. A zero denominator gives NA.
    The ``lead`` row has no previous stage (NA) and converts from the cohort at exactly 1.
    Response times are in :func:`lead_response`.
    """
    p = ds.period(period)
    by = _by_list(by)
    counts = _lead_counts(ds, p, by)
    counts, keys = _with_rep_names(ds, counts, by)
    frames = []
    for i, stage in enumerate(FUNNEL_STAGES):
        f = counts[keys].copy()
        f["stage"] = stage
        n = counts[stage].astype("Int64")
        f["leads"] = n
        first = counts["lead"]
        if i == 0:
            f["conversion_from_previous"] = pd.array([pd.NA] * len(f), dtype="Float64")
            f["conversion_from_previous_low"] = pd.array([pd.NA] * len(f), dtype="Float64")
            f["conversion_from_previous_high"] = pd.array([pd.NA] * len(f), dtype="Float64")
            one = _ratio(n, first)
            f["conversion_from_lead"] = one
            f["conversion_from_lead_low"] = one
            f["conversion_from_lead_high"] = one
        else:
            prev = counts[FUNNEL_STAGES[i - 1]]
            f["conversion_from_previous"] = _ratio(n, prev)
            f["conversion_from_previous_low"], f["conversion_from_previous_high"] = _wilson(n, prev)
            f["conversion_from_lead"] = _ratio(n, first)
            f["conversion_from_lead_low"], f["conversion_from_lead_high"] = _wilson(n, first)
        f["_g"] = range(len(f))
        f["_s"] = i
        frames.append(f)
    out = pd.concat(frames, ignore_index=True).sort_values(["_g", "_s"]).drop(columns=["_g", "_s"])
    out["stage"] = out["stage"].astype("string")
    out = out.reset_index(drop=True)
    out.attrs["period"] = p.label
    return out


def lead_response(ds: Dataset, period: str | Period, *, by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """Response times of the leads created in a period, per group.

    Parameters
    ----------
    ds, period, by
        As for :func:`lead_funnel`.

    Returns
    -------
    pandas.DataFrame
        One row per group: the ``by`` columns (plus ``rep_name`` for ``owner_id`` / ``rep_id``),
        ``leads``, ``responded``, ``median_response_minutes``, ``unanswered``,
        ``unanswered_share`` and its 95% Wilson interval (``_low`` / ``_high``).

    Notes
    -----
    response minutes = (first_response_at - created_at) in minutes. The median is over the
    leads that got a response (the ``lead_response_minutes`` metric); leads never responded to
    are not dropped silently but counted in ``unanswered``, and
    unanswered_share = unanswered / leads (NA for a group without leads).
    """
    p = ds.period(period)
    by = _by_list(by)
    counts = _lead_counts(ds, p, by)
    counts, keys = _with_rep_names(ds, counts, by)
    out = counts[keys].copy()
    out["leads"] = counts["lead"].astype("Int64")
    out["responded"] = counts["responded"].astype("Int64")
    out["median_response_minutes"] = pd.to_numeric(counts["median_response_minutes"], errors="coerce").astype("Float64")
    out["unanswered"] = counts["unanswered"].astype("Int64")
    out["unanswered_share"] = _ratio(out["unanswered"], out["leads"])
    out["unanswered_share_low"], out["unanswered_share_high"] = _wilson(out["unanswered"], out["leads"])
    out.attrs["period"] = p.label
    return out.reset_index(drop=True)


# -- loss analysis -----------------------------------------------------------------------------


def _opportunities(ds: Dataset) -> ibis.Table:
    """Opportunities as the metric engine sees them (:func:`analysis.data.timeline.deals`)."""
    return timeline.deals(ds)


def _closed_in(o: ibis.Table, p: Period, statuses: Sequence[str]) -> ibis.Table:
    return o.filter(
        o.status.isin(list(statuses))
        & o.close_date.notnull()
        & (o.close_date >= ibis.literal(p.start))
        & (o.close_date < ibis.literal(p.end))
    )


def _lost_at_step(ds: Dataset, lost: ibis.Table) -> ibis.Table:
    """Add ``step``: the furthest chain step each lost deal reached (see :func:`loss_analysis`)."""
    rank = {s: i for i, s in enumerate(CHAIN_STEPS)}
    fallback = ibis.cases((lost.step.isin(list(STEPS)), lost.step), else_=ibis.literal(UNKNOWN_STEP))
    if not ds.has("stage_history"):
        return lost.mutate(step=fallback)
    sh = ds.table("stage_history")
    sh = sh.filter(sh.step.isin(list(CHAIN_STEPS)) & sh.entered_at.notnull())
    ids = lost.select(_lid=lost.opportunity_id, _lclose=lost.close_date).distinct()
    sh = sh.join(ids, sh.opportunity_id == ids._lid)
    sh = sh.filter(sh.entered_at.date() <= sh._lclose)
    step_rank = sh.step.substitute(rank, else_=ibis.null(dt.int64)).cast("int64")
    furthest = sh.group_by(_fid=sh.opportunity_id).aggregate(_rank=step_rank.max())
    j = lost.left_join(furthest, lost.opportunity_id == furthest._fid)
    by_rank = j._rank.substitute({i: s for s, i in rank.items()}, else_=ibis.null(dt.string))
    fallback = ibis.cases((j.step.isin(list(STEPS)), j.step), else_=ibis.literal(UNKNOWN_STEP))
    return j.mutate(step=by_rank.coalesce(fallback)).drop("_fid", "_rank")


def loss_analysis(ds: Dataset, period: str | Period, *, by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """Deals lost in a period by loss reason, optionally by step, rep, product or team.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    period
        A period label or :class:`~analysis.Period`; a deal is lost in P when its status is
        ``lost`` and its ``close_date`` falls in P.
    by
        ``"step"`` (the step the deal was lost at), ``"owner_id"``, or any engine dimension of
        opportunities (``rep_id``, ``team``, ``region``, ``manager_id``, ``product``,
        ``segment``, ``deal_type``, ``lead_source``, custom ones); several may be combined.
        Rep columns get a ``rep_name`` beside them.

    Returns
    -------
    pandas.DataFrame
        One row per group and loss reason: the ``by`` columns, ``loss_reason``, ``lost_deals``,
        ``share`` (of the group's lost deals) with its 95% Wilson interval (``share_low`` /
        ``share_high``), ``amount_lost`` and ``amount_share`` (of the group's amount lost).
        Every group lists the seven canonical reasons (0 when none), plus any other reason
        found and ``(not given)`` when some deals have no reason; within a group rows run from
        the most to the least frequent reason. Groups without lost deals have no rows.
        ``attrs`` holds ``period``, ``currency`` and ``lost_deals`` (the total).

    Notes
    -----
    * A missing ``loss_reason`` is its own category, ``(not given)``: counted, never dropped.
    * share = lost deals with the reason / lost deals of the group; amount_share likewise on
      ``amount`` (in the reporting currency, converted like the metric engine does). A zero
      denominator gives NA.
    * Lost-at step: the furthest step of the chain prospecting -> qualification -> research ->
      demo -> objection_handling -> closing that the deal entered (``stage_history``, entries
      up to its close date); when its history has none, the deal's own ``step`` if it is a
      canonical step (e.g. ``nurturing``); otherwise ``(unknown)``. Steps are listed in chain
      order.
    """
    p = ds.period(period)
    by = _by_list(by)
    o = _closed_in(_opportunities(ds), p, ["lost"])
    if "step" in by:
        o = _lost_at_step(ds, o)
    o = _group(ds, o, "opportunities", by, native=("owner_id",), special=("step",))
    o = o.mutate(loss_reason=o.loss_reason.fill_null(NOT_GIVEN))
    keys = [*by, "loss_reason"]
    agg = o.group_by(keys).aggregate(lost_deals=o.count(), amount_lost=timeline.money_total(o.amount)).to_pandas()
    agg = _string_keys(agg, keys)
    agg["amount_lost"] = pd.to_numeric(agg["amount_lost"], errors="coerce").astype("Float64").fillna(0.0)
    groups = _keys_frame(agg, by)
    found = [r for r in agg["loss_reason"].dropna().unique() if r not in LOSS_REASONS and r != NOT_GIVEN]
    reasons = [*LOSS_REASONS, *sorted(found), *([NOT_GIVEN] if (agg["loss_reason"] == NOT_GIVEN).any() else [])]
    # every group with a lost deal gets every reason; ungrouped there is always one group
    out = _cross(groups, "loss_reason", reasons).merge(agg, on=keys, how="left")
    out["lost_deals"] = out["lost_deals"].astype("Float64").fillna(0).round().astype("Int64")
    out["amount_lost"] = out["amount_lost"].astype("Float64").fillna(0.0)
    if by:
        tot = out.groupby(by, dropna=False, sort=False)[["lost_deals", "amount_lost"]].transform("sum")
    else:
        tot = pd.DataFrame({c: [out[c].sum()] * len(out) for c in ("lost_deals", "amount_lost")}, index=out.index)
    out["share"] = _ratio(out["lost_deals"], tot["lost_deals"])
    out["share_low"], out["share_high"] = _wilson(out["lost_deals"], tot["lost_deals"])
    out["amount_share"] = _ratio(out["amount_lost"], tot["amount_lost"])
    # order: groups (steps in chain order), then reasons by frequency, amount, canonical order
    canon = {r: i for i, r in enumerate(reasons)}
    order = out.assign(
        _r=out["loss_reason"].map(canon),
        _n=-out["lost_deals"].astype("float64"),
        _a=-out["amount_lost"].astype("float64"),
    )
    sort_keys = []
    if "step" in by:
        steps = {s: i for i, s in enumerate([*CHAIN_STEPS, "nurturing", UNKNOWN_STEP])}
        order["_step"] = order["step"].map(lambda s: steps.get(s, len(steps)))
    for c in by:
        sort_keys.append("_step" if c == "step" else c)
    order = order.sort_values([*sort_keys, "_n", "_a", "_r"], na_position="last", kind="stable")
    out = order.drop(columns=[c for c in ("_r", "_n", "_a", "_step") if c in order.columns])
    out, gkeys = _with_rep_names(ds, out, by)
    cols = [*gkeys, "loss_reason", "lost_deals", "share", "share_low", "share_high", "amount_lost", "amount_share"]
    out = out[cols].reset_index(drop=True)
    out.attrs["period"] = p.label
    out.attrs["currency"] = ds.config.currency
    out.attrs["numbers"] = ds.config.numbers
    out.attrs["lost_deals"] = int(out["lost_deals"].sum())
    return out


def _reason_text(reason: str) -> str:
    if reason == NOT_GIVEN:
        return "No reason given"
    text = str(reason).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def top_loss_pattern(frame: pd.DataFrame) -> str:
    """One sentence naming the most frequent loss reason of a :func:`loss_analysis` frame.

    Parameters
    ----------
    frame
        The result of :func:`loss_analysis`; a grouped frame is summed over its groups first.

    Returns
    -------
    str
        ``"Price is the top loss reason (34% of 120 lost deals, $1.2M)"``; reasons tied on
        count are named together; ``"No deals were lost in the period."`` without lost deals.

    Notes
    -----
    The top reason has the most lost deals (a tie is broken by the amount lost); the share is
    its lost deals / all lost deals; the amount is the amount lost with that reason.
    """
    if frame.empty or int(frame["lost_deals"].sum()) == 0:
        return "No deals were lost in the period."
    g = frame.groupby("loss_reason", sort=False)[["lost_deals", "amount_lost"]].sum()
    total = int(g["lost_deals"].sum())
    g = g.sort_values(["lost_deals", "amount_lost"], ascending=False)
    best = int(g["lost_deals"].iloc[0])
    top = g[g["lost_deals"] == best]
    nb = frame.attrs.get("numbers") or Numbers(frame.attrs.get("currency") or "USD")
    share = nb.percent(best / total, digits=0)
    deals = f"{nb.number(total)} lost deal{'s' if total != 1 else ''}"
    if len(top) == 1:
        reason = top.index[0]
        amount = nb.money(top["amount_lost"].iloc[0])
        return f"{_reason_text(reason)} is the top loss reason ({share} of {deals}, {amount})"
    names = [_reason_text(r) if i == 0 else _reason_text(r).lower() if r != NOT_GIVEN else "no reason given"
             for i, r in enumerate(top.index)]
    joined = ", ".join(names[:-1]) + " and " + names[-1]
    amounts = ", ".join(nb.money(a) for a in top["amount_lost"])
    return f"{joined} are the top loss reasons ({share} each of {deals}; {amounts})"


# -- won vs lost engagement --------------------------------------------------------------------


def engagement(ds: Dataset, period: str | Period, *, by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """Activities per deal and touches per week of the deals won and lost in a period.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load` with an ``activities`` table.
    period
        A period label or :class:`~analysis.Period`; deals whose status is ``won`` or ``lost``
        and whose ``close_date`` falls in P.
    by
        ``"owner_id"`` or any engine dimension of opportunities (``rep_id``, ``team``,
        ``product``, ``segment``...). Rep columns get a ``rep_name`` beside them.

    Returns
    -------
    pandas.DataFrame
        One row per group, ``outcome`` (``won``, ``lost``) and ``activity_type`` (``all``, then
        each canonical type and any other type found): ``deals``, ``activities`` (total),
        ``mean_activities`` and ``sd_activities`` per deal, ``touch_deals`` (deals with a known
        cycle), ``mean_touches_per_week`` and ``sd_touches_per_week``. Standard deviations are
        sample ones (n - 1). Both outcomes are listed for every group (0 deals, NA means).
        Feed it to :func:`won_vs_lost` for the comparison.

    Notes
    -----
    * Activities of a deal: rows of ``activities`` whose ``opportunity_id`` is the deal and
      whose ``occurred_at`` date is on or before its ``close_date`` (the definition of the
      ``activities_per_won_deal`` / ``activities_per_lost_deal`` metrics); a deal without any
      counts as 0, for every type as for ``all``.
    * touches per week of a deal = activities / max(1, cycle weeks), cycle weeks =
      (close_date - created_at date) in days / 7; the mean is over deals (``touch_deals``: a deal
      whose created_at is missing has no cycle and is left out of the touches mean only).
    * mean = sum / n and variance = (sum of squares - sum² / n) / (n - 1) are computed from
      per-group sums and sums of squares aggregated in the engine, so no per-deal rows reach
      pandas; a group with fewer than 2 deals has NA deviation, with 0 deals NA means.
    """
    p = ds.period(period)
    by = _by_list(by)
    if "activity_type" in by:
        raise MetricError("engagement is already split by activity type; remove 'activity_type' from by")
    ds.table("activities")  # a clear error when the data has no activities
    o = _closed_in(_opportunities(ds), p, OUTCOMES)
    o = _group(ds, o, "opportunities", by, native=("owner_id",))
    # max(1, cycle weeks); NULL (not 1) when the cycle is unknown: DuckDB's greatest() skips NULLs
    weeks = ibis.cases(
        (o.cycle_days.isnull(), ibis.null(dt.float64)),
        else_=ibis.greatest(ibis.literal(1.0), o.cycle_days / 7.0),
    )
    deals = o.select(_oid=o.opportunity_id, _close=o.close_date, outcome=o.status, _weeks=weeks, *by)

    a = ds.table("activities")
    a = a.filter(a.opportunity_id.notnull())
    ids = deals.select(_aid=deals._oid, _aclose=deals._close)
    j = a.join(ids, a.opportunity_id == ids._aid)
    j = j.filter(j.occurred_at.date() <= j._aclose)
    per_type = j.group_by(_pid=j._aid, activity_type=j.type.fill_null(NOT_GIVEN)).aggregate(_n=j.count())
    # one scan, one aggregate: each deal's total rides on its first type row, so summing those
    # per group gives the "all" moments without a second pass over the activities
    per_type = per_type.mutate(
        _tot=per_type._n.sum().over(group_by=per_type._pid),
        _first=ibis.row_number().over(group_by=per_type._pid, order_by=per_type.activity_type) == 0,
    )
    rows = per_type.join(deals, per_type._pid == deals._oid)
    n, tot = rows._n.cast("float64"), rows._tot.cast("float64")
    touch, touch_tot = n / rows._weeks, tot / rows._weeks
    first = rows._first
    moments = rows.group_by([*by, "outcome", "activity_type"]).aggregate(
        _s1=rows._n.sum(), _s2=(rows._n * rows._n).sum(), _t1=touch.sum(), _t2=(touch * touch).sum(),
        _a1=rows._tot.sum(where=first), _a2=(rows._tot * rows._tot).sum(where=first),
        _b1=touch_tot.sum(where=first), _b2=(touch_tot * touch_tot).sum(where=first),
    ).to_pandas()
    counts = deals.group_by([*by, "outcome"]).aggregate(
        deals=deals.count(), touch_deals=deals.count(where=deals._weeks.notnull()),
    ).to_pandas()
    moments = _string_keys(moments, [*by, "outcome", "activity_type"])
    for c in ("_s1", "_s2", "_t1", "_t2", "_a1", "_a2", "_b1", "_b2"):
        moments[c] = pd.to_numeric(moments[c], errors="coerce").astype("float64").fillna(0.0)
    every = moments.groupby([*by, "outcome"], dropna=False, sort=False)[["_a1", "_a2", "_b1", "_b2"]].sum()
    every = every.reset_index().rename(columns={"_a1": "_s1", "_a2": "_s2", "_b1": "_t1", "_b2": "_t2"})
    every["activity_type"] = ALL_TYPES
    sums = [*by, "outcome", "activity_type", "_s1", "_s2", "_t1", "_t2"]
    moments = pd.concat([moments[sums], every[sums]], ignore_index=True)
    moments = _string_keys(moments, [*by, "outcome", "activity_type"])
    counts = _string_keys(counts, [*by, "outcome"])

    # every group with a closed deal, both outcomes, every type; ungrouped: always one group
    groups = _keys_frame(counts, by)
    found = [t for t in moments["activity_type"].dropna().unique() if t not in ACTIVITY_TYPES and t != ALL_TYPES]
    types = [ALL_TYPES, *ACTIVITY_TYPES, *sorted(found)]
    grid = _cross(groups, "outcome", OUTCOMES)
    grid = grid.merge(pd.DataFrame({"activity_type": pd.array(types, dtype="string")}), how="cross")
    out = grid.merge(counts, on=[*by, "outcome"], how="left")
    out = out.merge(moments, on=[*by, "outcome", "activity_type"], how="left")
    for c in ("deals", "touch_deals"):
        out[c] = out[c].astype("Float64").fillna(0).round().astype("Int64")
    for c in ("_s1", "_s2", "_t1", "_t2"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
        out[c] = out[c].fillna(0.0)
    out["activities"] = out["_s1"].round().astype("Int64")
    out["mean_activities"], out["sd_activities"] = _mean_sd(out["_s1"], out["_s2"], out["deals"])
    out["mean_touches_per_week"], out["sd_touches_per_week"] = _mean_sd(out["_t1"], out["_t2"], out["touch_deals"])
    out, keys = _with_rep_names(ds, out, by)
    cols = [*keys, "outcome", "activity_type", "deals", "activities", "mean_activities", "sd_activities",
            "touch_deals", "mean_touches_per_week", "sd_touches_per_week"]
    out = out[cols].reset_index(drop=True)
    out.attrs["period"] = p.label
    out.attrs["by"] = keys
    return out


def _mean_sd(s1: pd.Series, s2: pd.Series, n: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Mean and sample standard deviation from sum, sum of squares and count."""
    s1 = s1.astype("float64").to_numpy()
    s2 = s2.astype("float64").to_numpy()
    nn = n.astype("float64").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(nn > 0, s1 / nn, np.nan)
        var = np.where(nn > 1, (s2 - s1 * s1 / nn) / (nn - 1), np.nan)
    var = np.where(var < 0, 0.0, var)  # rounding below zero
    return _floats(mean, n.index), _floats(np.sqrt(var), n.index)


def _floats(x: np.ndarray, index: Any = None) -> Any:
    """A nullable Float64 array (Series with ``index``) with NaN read as NA."""
    arr = pd.array(np.where(np.isnan(x), None, x), dtype="Float64")
    return arr if index is None else pd.Series(arr, index=index)


_MEASURES = {
    "activities_per_deal": ("mean_activities", "sd_activities", "deals"),
    "touches_per_week": ("mean_touches_per_week", "sd_touches_per_week", "touch_deals"),
}


def won_vs_lost(frame: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Won against lost deals: difference of means with a Welch interval and a verdict.

    Parameters
    ----------
    frame
        The result of :func:`engagement` (per-group means, deviations and deal counts).
    level
        Confidence level of the interval, 0.95 by default.

    Returns
    -------
    pandas.DataFrame
        One row per group, ``activity_type`` and ``measure`` (``activities_per_deal``,
        ``touches_per_week``): ``won_deals``, ``lost_deals``, ``won_mean``, ``lost_mean``,
        ``difference`` (won - lost), ``ci_low``, ``ci_high``, ``df`` (Welch-Satterthwaite degrees
        of freedom) and ``verdict``, e.g. ``"Won deals had 17.2 more activities than lost ones
        (95% CI 15.1 to 19.3)"``.

    Notes
    -----
    Welch's interval: difference ± t(1 - (1 - level) / 2, df) · se, with
    se = sqrt(s_won² / n_won + s_lost² / n_lost) and
    df = se⁴ / ((s_won² / n_won)² / (n_won - 1) + (s_lost² / n_lost)² / (n_lost - 1)).
    The t quantile is computed by :func:`t_quantile` (scipy). With fewer than 2 won or 2
    lost deals the interval is NA and the verdict says there are too few deals. When both
    deviations are 0, se is 0 and the interval is the difference itself. The verdict reports
    "no clear difference" when the interval contains 0.
    """
    by = [c for c in frame.attrs.get("by", []) if c in frame.columns]
    if not by:
        known = {"outcome", "activity_type", *_MEASURES, "deals", "activities", "touch_deals",
                 *[c for cols in _MEASURES.values() for c in cols]}
        by = [c for c in frame.columns if c not in known]
    keys = [*by, "activity_type"]
    won = frame[frame["outcome"] == "won"]
    lost = frame[frame["outcome"] == "lost"]
    rows = []
    for measure, (mcol, scol, ncol) in _MEASURES.items():
        w = won[[*keys, mcol, scol, ncol]].rename(columns={mcol: "won_mean", scol: "_sw", ncol: "won_deals"})
        l_ = lost[[*keys, mcol, scol, ncol]].rename(columns={mcol: "lost_mean", scol: "_sl", ncol: "lost_deals"})
        m = outer_merge(w, l_, keys)
        m.insert(len(keys), "measure", measure)
        rows.append(m)
    out = pd.concat(rows, ignore_index=True)
    n1 = out["won_deals"].astype("float64").fillna(0).to_numpy()
    n2 = out["lost_deals"].astype("float64").fillna(0).to_numpy()
    m1 = out["won_mean"].astype("float64").to_numpy(na_value=np.nan)
    m2 = out["lost_mean"].astype("float64").to_numpy(na_value=np.nan)
    s1 = out["_sw"].astype("float64").to_numpy(na_value=np.nan)
    s2 = out["_sl"].astype("float64").to_numpy(na_value=np.nan)
    diff, low, high, df = welch_interval(m1, s1, n1, m2, s2, n2, level=level)
    out["difference"], out["ci_low"], out["ci_high"], out["df"] = (_floats(v) for v in (diff, low, high, df))
    out["verdict"] = [
        _verdict(t, meas, a, b, d, lo, hi, x, y, level)
        for t, meas, a, b, d, lo, hi, x, y in zip(out["activity_type"], out["measure"], m1, m2, diff, low, high, n1, n2)
    ]
    out["verdict"] = out["verdict"].astype("string")
    out["measure"] = out["measure"].astype("string")
    for c in ("won_deals", "lost_deals"):
        out[c] = out[c].astype("Float64").fillna(0).round().astype("Int64")
    cols = [*keys, "measure", "won_deals", "lost_deals", "won_mean", "lost_mean", "difference",
            "ci_low", "ci_high", "df", "verdict"]
    order = {t: i for i, t in enumerate(frame["activity_type"].drop_duplicates())}
    out = out.assign(_t=out["activity_type"].map(order), _m=out["measure"].map({k: i for i, k in enumerate(_MEASURES)}))
    out = out.sort_values([*by, "_m", "_t"], na_position="last", kind="stable")
    out = out[cols].reset_index(drop=True)
    out.attrs.update({k: v for k, v in frame.attrs.items() if k in ("period", "by")})
    out.attrs["level"] = level
    return out


def welch_interval(
    mean1: Any, sd1: Any, n1: Any, mean2: Any, sd2: Any, n2: Any, *, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Welch interval of mean1 - mean2 from summary statistics (arrays or scalars).

    Returns ``(difference, low, high, df)`` as float arrays; NA (NaN) where a side has fewer
    than 2 observations. When both standard deviations are 0 the interval is the difference
    and df is NaN.
    """
    m1, s1, k1, m2, s2, k2 = (np.atleast_1d(np.asarray(x, dtype="float64")) for x in (mean1, sd1, n1, mean2, sd2, n2))
    ok = (k1 >= 2) & (k2 >= 2) & ~np.isnan(m1) & ~np.isnan(m2) & ~np.isnan(s1) & ~np.isnan(s2)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(ok, m1 - m2, np.nan)
        v1 = np.where(ok, s1 * s1 / k1, np.nan)
        v2 = np.where(ok, s2 * s2 / k2, np.nan)
        se = np.sqrt(v1 + v2)
        df = (v1 + v2) ** 2 / (v1 * v1 / (k1 - 1) + v2 * v2 / (k2 - 1))
    df = np.where(ok & (se > 0), df, np.nan)
    tq = np.zeros_like(diff)
    pos = ~np.isnan(df)
    if pos.any():
        tq[pos] = t_quantile(1 - (1 - level) / 2, df[pos])
    half = np.where(ok, tq * np.where(np.isnan(se), 0.0, se), np.nan)
    return diff, diff - half, diff + half, df


def _decimals(*values: float) -> int:
    """Decimals that show the smallest non-zero of ``values`` with two significant digits
    (1 at least, 4 at most): 17.2, 0.35, 0.023."""
    small = min((abs(v) for v in values if v and not np.isnan(v)), default=1.0)
    return 1 if small >= 1 else int(min(4, 1 - math.floor(math.log10(small))))


def _num_text(x: float, decimals: int) -> str:
    text = f"{x:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _verdict(atype: str, measure: str, m1: float, m2: float, diff: float, low: float, high: float,
             n1: float, n2: float, level: float) -> str:
    noun = _TYPE_NOUNS.get(atype, f"{atype} activities")
    if measure == "touches_per_week":
        noun = "touches per week" if atype == ALL_TYPES else f"{noun} per week"
    pct = f"{level:.0%}"
    if np.isnan(diff):
        return f"Not enough deals to compare {noun} (won {int(n1)}, lost {int(n2)}; at least 2 of each needed)"
    places = _decimals(diff, low, high)
    f = lambda v: _num_text(v, places)  # noqa: E731
    ci = f"{pct} CI {f(low)} to {f(high)}"
    if low <= 0 <= high:
        return f"No clear difference in {noun} between won and lost deals (won {f(m1)} vs lost {f(m2)}; {ci})"
    word = "more" if diff > 0 else "fewer"
    return f"Won deals had {f(abs(diff))} {word} {noun} than lost ones ({ci})"


# -- Student's t (scipy) -------------------------------------------------------------------------


def t_cdf(t: Any, df: Any) -> np.ndarray:
    """Cumulative distribution function of Student's t with ``df`` degrees of freedom
    (``scipy.stats.t.cdf``)."""
    from scipy import stats

    return stats.t.cdf(np.asarray(t, dtype="float64"), np.asarray(df, dtype="float64"))


def t_quantile(q: float, df: Any) -> np.ndarray | float:
    """Quantile of Student's t: the t with P(T <= t) = q, for real ``df`` > 0
    (``scipy.stats.t.ppf``; fractional degrees of freedom, as from Welch, are fine).

    ``t_quantile(0.975, 10)`` is 2.2281388519863.
    """
    from scipy import stats

    if not 0 < q < 1:
        raise ValueError(f"q must lie strictly between 0 and 1, got {q!r}")
    v = np.asarray(df, dtype="float64")
    if np.any(~(v > 0)):
        raise ValueError("degrees of freedom must be positive")
    out = stats.t.ppf(q, v)
    return float(out) if np.ndim(df) == 0 else np.asarray(out, dtype="float64")
