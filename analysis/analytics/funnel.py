"""The deal funnel from stage history: cohort conversion, snapshot, time in stage, stalled
deals and stage-to-stage transitions (SPEC section 5).

Every function takes a :class:`~analysis.loading.Dataset` and returns a tidy pandas DataFrame.
The row-level work over ``stage_history`` (millions of rows at scale) is done by the engine
(ibis expressions run by DuckDB); only aggregated rows reach pandas. Two derived tables are
computed once per dataset and reused: the ordered stage history (:func:`_history`) and each
deal's first pass of each funnel step (:func:`first_passes`).

Vocabulary
----------
funnel order
    :data:`FUNNEL_STEPS`: prospecting, qualification, research, demo, objection_handling,
    closing, then ``won``. ``nurturing`` is a parking step outside the chain; ``lost`` is an
    exit. Both are reported but never count as progress.
stage history order
    A deal's ``stage_history`` rows ordered by ``entered_at``; rows entered at the same instant
    are ordered by step (prospecting ... closing, nurturing, won, lost, unknown). Rows whose
    stage maps to no step (``unknown``) are kept as stage boundaries but never count as a
    step (the data-quality report lists them). Rows without a deal or a time are ignored.
pass
    A deal *passes* step k when it enters k, or when it skips k: a forward jump from its
    furthest chain step so far to a step beyond k (``qualification -> demo`` passes research).
    A deal's first chain step is where it entered the funnel; the steps before it are not
    passed (a deal created at qualification never was at prospecting).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.data.periods import Period
from analysis.data.schema import STEPS, step_label
from analysis.errors import UnknownNameError, WorkbenchError
from analysis.semantic.engine import resolve_dims, wilson_interval, with_dimensions

#: The funnel chain, in order: the first six canonical steps, then won.
FUNNEL_STEPS: tuple[str, ...] = (*STEPS[:6], "won")
#: The parking step outside the chain.
PARKING_STEP = "nurturing"
#: Step name given to stage_history rows whose stage maps to no step.
UNKNOWN = timeline.UNKNOWN_STEP
#: Every step a stage_history row can have, in display order (the timeline's).
ALL_STEPS: tuple[str, ...] = timeline.HISTORY_STEPS

#: Chain position of each funnel step (won = 6); nurturing, lost and unknown have none.
POSITION = {s: i for i, s in enumerate(FUNNEL_STEPS)}
#: Integer code of each step in the derived tables (its index in ALL_STEPS); also the tie-break
#: order of rows entered at the same instant.
CODE = timeline.STEP_CODE
_CLOSING = POSITION["closing"]
NURTURING_K = len(FUNNEL_STEPS)  # the pseudo position of nurturing in the passes table

#: Transition kinds (see :func:`transitions`); the last three are out of order.
KINDS = ("forward", "repeat", "unknown", "skipped", "backward", "reopened")
OUT_OF_ORDER = ("skipped", "backward", "reopened")

FUNNEL_COLUMNS = [
    "step", "entered", "advanced", "won", "lost", "open",
    "conversion", "conversion_low", "conversion_high", "leakage", "won_rate",
]  # fmt: skip
#: Minimum cohort size for :func:`biggest_leak` to trust a step's conversion.
MIN_LEAK_VOLUME = 20

DAY_SECONDS = 86_400.0


class FunnelError(WorkbenchError):
    """A funnel request that cannot be answered (bad step, quantile or date)."""


# -- public API ------------------------------------------------------------------------------


def stage_funnel(
    ds: Dataset,
    period: str | Period | None,
    *,
    by: Sequence[str] | str | None = None,
    steps: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Cohort funnel: of the deals that passed each step in ``period``, how many went further.

    Parameters
    ----------
    ds
        A dataset with ``opportunities`` and ``stage_history``.
    period
        A period label (``2025-Q3``) or :class:`~analysis.periods.Period`; ``None`` for all of
        the history.
    by
        Dimensions to split by (``team``, ``rep_id``, ``product``, ``segment``...); the
        deal's owner and attributes decide its group.
    steps
        Funnel steps to return (default all of :data:`FUNNEL_STEPS`); the cohorts are the same
        whichever steps are shown.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``step``, ``entered``, ``advanced``, ``won``, ``lost``, ``open``,
        ``conversion``, ``conversion_low``, ``conversion_high``, ``leakage``, ``won_rate``;
        one row per group and step in funnel order (steps with no deals included, with 0).
        ``attrs["nurturing"]``: deals parked in nurturing in the period (their first entry
        into nurturing falls in it); with ``by``, ``attrs["nurturing_by"]`` maps each group (a
        tuple of the ``by`` values) to its count. ``attrs["period"]`` and
        ``attrs["label"]`` describe the view.

    Notes
    -----
    The cohort of step k in period P holds every deal whose **first pass** of k (see the
    module doc) falls in P: it entered k for the first time in P, or skipped k in P by jumping
    from an earlier chain step to a later one (a skipped step counts as passed).

    * ``entered``: deals in the cohort.
    * ``advanced``: of those, deals that reached a later chain step (or won) at the time of
      their pass or later, or whose final status is won. A skipped step is always advanced.
    * ``won``: final status won. ``lost`` / ``open``: final status lost / open without having
      advanced: lost at k, or still open with k as their furthest step.
      ``entered = advanced + lost + open`` (deals with a missing status aside).
    * ``conversion = advanced / entered``, with its 95% Wilson interval; ``leakage =
      1 - conversion``; ``won_rate = won / entered``. A step with no deals has ``entered`` 0
      and NA rates ("not available", never 0). For the ``won`` row ``advanced`` and the
      conversion columns are NA (nothing follows won); its ``lost`` and ``open`` count deals
      re-opened after winning.

    Rules: a deal re-entering a step is counted once, at its first pass (re-entries in the
    same or a later period add nothing), so cohorts of consecutive periods add up to the
    cohort of the whole span; a deal passing several steps in one period is in each of those
    cohorts; a re-opened deal (lost or won, then back into a chain step) is judged by its
    final status; a backward move never undoes ``advanced`` once a later step was reached.
    """
    by = _by(ds, by)
    shown = _steps(steps)
    p = None if period is None else ds.period(period)
    j = first_passes(ds)
    if p:
        j = j.filter(_within(j.pass_at, p))
    if by:
        deals = _deals(ds, by).select("opportunity_id", *by)
        j = j.left_join(deals, j.opportunity_id == deals.opportunity_id)
    agg = j.group_by([*by, "k"]).aggregate(
        entered=j.count(),
        advanced=j.advanced.sum(),
        won=(j.status == "won").sum(),
        lost=(~j.advanced & (j.status == "lost")).sum(),
        open=(~j.advanced & (j.status == "open")).sum(),
    )
    counts = agg.to_pandas()
    parked = counts.k == NURTURING_K
    nurt = counts[parked].rename(columns={"entered": "parked"})[[*by, "parked"]]
    counts = counts[~parked].copy()
    counts["step"] = counts.pop("k").astype(int).map(dict(enumerate(FUNNEL_STEPS)))
    out = _funnel_frame(counts, by, nurt)
    out = out[out.step.isin(shown)].reset_index(drop=True)
    out.attrs["nurturing"] = int(nurt["parked"].sum())
    if by:
        out.attrs["nurturing_by"] = {
            tuple(r[:-1]): int(r[-1]) for r in nurt[[*by, "parked"]].itertuples(index=False, name=None)
        }
    out.attrs["period"] = p.label if p else "all"
    out.attrs["label"] = f"Cohort funnel: deals passing each step in {p.label if p else 'the whole history'}"
    return out


def biggest_leak(funnel: pd.DataFrame, *, min_entered: int = MIN_LEAK_VOLUME) -> dict[str, Any]:
    """The step where the funnel loses most: the lowest conversion to the next step.

    Parameters
    ----------
    funnel
        A :func:`stage_funnel` frame (grouped frames are summed over their groups first).
    min_entered
        Only steps with at least this many deals compete; when none has, every step with
        deals does.

    Returns
    -------
    dict
        ``{"from": step, "to": next step, "conversion": x, "entered": n, "text": ...}`` with
        the text ``The biggest leak is Demo → Objection handling: 58% of 412 deals advanced``.
        When no step had deals: ``from``/``to`` None, ``conversion`` None, ``entered`` 0 and a
        text saying so.

    Notes
    -----
    Only chain steps before won compete. Ties go to the larger cohort, then the earlier step.
    """
    chain = list(FUNNEL_STEPS[:-1])
    f = funnel[funnel.step.isin(chain)]
    f = f.assign(**{c: pd.to_numeric(f[c], errors="coerce").astype("float64") for c in ("entered", "advanced")})
    tot = f.groupby("step", sort=False)[["entered", "advanced"]].sum().reindex(chain).fillna(0)
    tot = tot[tot.entered > 0]
    if tot.empty:
        return {"from": None, "to": None, "conversion": None, "entered": 0,
                "text": "No deals passed any funnel step in this period."}
    tot["conversion"] = tot.advanced / tot.entered
    big = tot[tot.entered >= min_entered]
    pool = big if len(big) else tot
    pool = pool.assign(_order=[chain.index(s) for s in pool.index])
    best = pool.sort_values(["conversion", "entered", "_order"], ascending=[True, False, True]).iloc[0]
    step = str(best.name)
    nxt = FUNNEL_STEPS[FUNNEL_STEPS.index(step) + 1]
    conv, n = float(best.conversion), int(best.entered)
    text = (
        f"The biggest leak is {step_label(step)} → {step_label(nxt)}: "
        f"{conv:.0%} of {n:,} deals advanced"
    )
    return {"from": step, "to": nxt, "conversion": conv, "entered": n, "text": text}


def funnel_snapshot(
    ds: Dataset,
    *,
    as_of: date | datetime | str | None = None,
    by: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """Where open deals sit: deals and amount per step, now or as of a past date.

    Parameters
    ----------
    ds
        A dataset with ``opportunities`` (and ``stage_history`` for a past ``as_of``).
    as_of
        The moment of the snapshot (:func:`analysis.timeline.moment`): a date means the end
        of that day, a datetime that instant; ``None`` (default) the data's snapshot day.
    by
        Dimensions to split by.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``step``, ``deals``, ``amount``: one row per group and step
        (:data:`~analysis.schema.STEPS` order, nurturing last; an ``unknown`` row only when
        some open deal's step is not known). ``attrs["label"]`` is
        ``Snapshot of open deals as of <date>``.

    Notes
    -----
    The deals open at the moment, each in its step then, as the deal timeline reads them
    (:mod:`analysis.timeline`: the same deals as ``open_deals`` and
    :func:`analysis.pipeline.pipeline_as_of`). ``amount`` is the deal's amount today (the
    history does not keep amounts) in the reporting currency, summed exactly. A snapshot is a
    state, not a cohort: it is not comparable with :func:`stage_funnel` conversions.
    """
    by = _by(ds, by)
    m = timeline.moment(ds, as_of, "as_of", error=FunnelError)
    deals = timeline.open_deals(ds, m, table=_deals(ds, by), steps=True)
    agg = deals.group_by([*by, "step"]).aggregate(deals=deals.count(), amount=timeline.money_sum(deals.amount))
    got = agg.to_pandas()
    got["step"] = got["step"].fillna(UNKNOWN)
    got["amount"] = got["amount"].map(timeline.to_decimal).astype("float64")
    order = [*STEPS[:6], PARKING_STEP]
    if (got.step == UNKNOWN).any():
        order.append(UNKNOWN)
    out = _complete(got, by, order, {"deals": 0, "amount": 0.0})
    out["deals"] = out["deals"].astype("int64")
    out["amount"] = out["amount"].astype("float64")
    out.attrs["as_of"] = m.label
    out.attrs["label"] = f"Snapshot of open deals as of {m.label}"
    return out


def time_in_stage(
    ds: Dataset,
    *,
    period: str | Period | None = None,
    by: Sequence[str] | str | None = None,
) -> pd.DataFrame:
    """Days deals spend in each step before moving on.

    Parameters
    ----------
    ds
        A dataset with ``stage_history``.
    period
        Only stints that started in this period (default: all).
    by
        Dimensions to split by (the deal's).

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``step``, ``n``, ``p25_days``, ``median_days``, ``p75_days``,
        ``p90_days``, ``mean_days``: one
        row per group and canonical step (:data:`~analysis.schema.STEPS`, nurturing last).
        ``attrs["running"]`` counts the stints left out because they are still running.

    Notes
    -----
    A stint starts when a deal enters a step (consecutive rows of the same step are one
    stint) and ends when it enters any other stage, including won, lost and unmapped stages;
    the last stint of a deal whose history has no closing row after it ends when the final
    record closes the deal (the end of its close day; :func:`analysis.timeline.final_closes`).
    ``days`` = calendar days between the two ``entered_at`` (fractional). Re-entering a step
    starts a new stint. The last stint of an open deal is still running: it is left out
    (right-censored), which biases the statistics towards shorter stints for steps where
    many deals are stuck; :func:`stalled_deals` looks at those. The median and p75 are
    interpolated quantiles. A step with no completed stint has ``n`` 0 and NA statistics.
    """
    by = _by(ds, by)
    p = None if period is None else ds.period(period)
    st = _stints(ds)
    if p:
        st = st.filter(_within(st.start, p))
    if by:
        deals = _deals(ds, by)
        st = st.left_join(deals, st.opportunity_id == deals.opportunity_id)
    done = st.filter(st.end.notnull())
    agg = done.group_by([*by, "step"]).aggregate(
        n=done.count(),
        p25_days=done.days.quantile(0.25),
        median_days=done.days.median(),
        p75_days=done.days.quantile(0.75),
        p90_days=done.days.quantile(0.90),
        mean_days=done.days.mean(),
    )
    got = agg.to_pandas()
    out = _complete(got, by, list(STEPS[:6]) + [PARKING_STEP], {"n": 0})
    out["n"] = out["n"].astype("int64")
    for c in ("p25_days", "median_days", "p75_days", "p90_days", "mean_days"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Float64")
    out.attrs["running"] = int(st.filter(st.end.isnull()).count().to_pyarrow().as_py())
    out.attrs["period"] = p.label if p else "all"
    return out


def stall_candidates(
    ds: Dataset,
    *,
    as_of: date | datetime | str | None = None,
    quantile: float | None = None,
) -> pd.DataFrame:
    """Every deal open at ``as_of`` in a known step, with its time in the step and the step's
    threshold: what :func:`stalled_deals` judges (same parameters and columns, without
    ``last_activity_at``; ``threshold_days`` NaN for a step with no completed stint yet),
    sorted by ``opportunity_id``. ``attrs["as_of"]`` is the moment, ``attrs["quantile"]`` q."""
    return _copy(_candidates(ds, timeline.moment(ds, as_of, "as_of", error=FunnelError), quantile))


def _quantile(ds: Dataset, quantile: float | None) -> float:
    q = ds.config.stalled_quantile if quantile is None else quantile
    if not isinstance(q, (int, float)) or not 0 < q < 1:
        raise FunnelError(f"quantile {quantile!r} must be between 0 and 1 (0.75 = the p75)")
    return q


def _memo(ds: Dataset, name: str) -> dict:
    """A per-dataset memo (a loaded dataset does not change): the review asks for the same
    stalled deals in its stage-time section and in coaching, a few seconds each at scale."""
    return ds.__dict__.setdefault(f"_funnel_{name}", {})


def _copy(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a memoized frame (and of its attrs), so a caller cannot change the memo."""
    out = frame.copy()
    out.attrs = dict(frame.attrs)
    return out


def _candidates(ds: Dataset, m: timeline.Moment, quantile: float | None) -> pd.DataFrame:
    """:func:`stall_candidates` at moment ``m``, memoized per dataset, moment and quantile (the
    memo itself: callers that hand it out copy it)."""
    q = _quantile(ds, quantile)
    memo = _memo(ds, "candidates")
    key = (m, float(q))
    if key not in memo:
        memo[key] = _query_candidates(ds, m, q)
    return memo[key]


def _query_candidates(ds: Dataset, m: timeline.Moment, q: float) -> pd.DataFrame:
    ref = _ts(m.instant)
    st = _stints(ds)
    done = st.filter(st.end.notnull() & m.happened(st.end))
    thresholds = done.group_by(done.step.name("_t_step")).aggregate(threshold_days=done.days.quantile(q))
    open_ = timeline.open_deals(ds, m, steps=True)
    open_ = open_.filter(open_.step.notnull())
    days = timeline.elapsed(ref, open_.since, DAY_SECONDS)
    open_ = open_.mutate(days_in_step=days)
    j = open_.left_join(thresholds, open_.step == thresholds._t_step)
    out = j.select(
        opportunity_id=j.opportunity_id,
        rep_id=j.owner_id,
        step=j.step,
        days_in_step=j.days_in_step,
        threshold_days=j.threshold_days.cast("float64"),
        amount=j.amount,
    ).order_by("opportunity_id").to_pandas()
    out["threshold_days"] = out["threshold_days"].astype("float64")
    out.attrs["as_of"] = m.instant.isoformat(sep=" ", timespec="minutes")
    out.attrs["quantile"] = q
    return out


def stalled_deals(
    ds: Dataset,
    *,
    as_of: date | datetime | str | None = None,
    quantile: float | None = None,
) -> pd.DataFrame:
    """Open deals that have sat in their current step longer than usual.

    Parameters
    ----------
    ds
        A dataset with ``opportunities`` and ``stage_history`` (``activities`` optional).
    as_of
        The moment to judge at (:func:`analysis.timeline.moment`): a date means the end of that
        day, a datetime that instant; default the data's snapshot day (``config.as_of``, else
        the data's last day).
    quantile
        Quantile of historical time in the step that a deal must exceed (default
        ``config.stalled_quantile``, 0.75: the p75).

    Returns
    -------
    pandas.DataFrame
        ``opportunity_id``, ``rep_id`` (owner), ``step``, ``days_in_step``,
        ``threshold_days``, ``amount``, ``last_activity_at`` (latest activity of the deal
        before ``as_of``; NaT without one or without an activities table), most stuck first:
        by ``days_in_step / threshold_days``, then ``days_in_step``, descending.

    Notes
    -----
    The candidates are the deals open at ``as_of`` by the deal timeline
    (:func:`stall_candidates`), in their step then. ``days_in_step`` = calendar days from the
    start of the deal's current stint (see :func:`time_in_stage`; a deal without history counts
    from its creation) to ``as_of``. ``threshold_days`` = the ``quantile`` of the step's
    completed stints that ended before ``as_of`` (all deals). A deal is stalled when
    ``days_in_step > threshold_days``. Steps with no completed stint have no threshold and
    flag no deal; nurturing is judged like any step. Memoized per dataset, moment and quantile
    (a loaded dataset does not change): each call returns a fresh copy.
    """
    m = timeline.moment(ds, as_of, "as_of", error=FunnelError)
    q = _quantile(ds, quantile)
    memo = _memo(ds, "stalled")
    key = (m, float(q))
    if key not in memo:
        cand = _candidates(ds, m, q)
        out = cand[cand.days_in_step > cand.threshold_days].reset_index(drop=True)
        out["last_activity_at"] = _last_activity(ds, list(out.opportunity_id), m.instant)
        out["ratio"] = out.days_in_step / out.threshold_days
        out = out.sort_values(["ratio", "days_in_step", "opportunity_id"], ascending=[False, False, True])
        out = out.drop(columns="ratio").reset_index(drop=True)
        out.attrs = dict(cand.attrs)
        memo[key] = out
    return _copy(memo[key])


def transitions(
    ds: Dataset, *, period: str | Period | None = None, where: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Stage-to-stage moves between consecutive ``stage_history`` rows of each deal.

    Parameters
    ----------
    ds
        A dataset with ``stage_history``.
    period
        Only moves made (the later row entered) in this period (default: all).
    where
        Only deals whose dimensions have these values (``{"team": "East SMB"}``,
        ``{"rep_id": "R0005"}``: a team's or rep's review); default: every deal.

    Returns
    -------
    (pandas.DataFrame, dict)
        The frame has ``from_step``, ``to_step``, ``kind``, ``transitions`` (moves) and
        ``deals`` (distinct deals making that move), ordered by step;
        :func:`transition_matrix` pivots it into a from × to matrix. The summary holds
        ``deals`` (deals with at least one move), ``transitions``, one count per kind
        (``forward``, ``skips``, ``backward``, ``reopened``, ``repeat``, ``unknown``),
        ``out_of_order_deals`` (deals with a skip, backward move or re-opening) and
        ``out_of_order_share`` = out_of_order_deals / deals (None when no deal moved).

    Notes
    -----
    Kinds, for a move from a to b (chain positions: prospecting 0 ... closing 5, won 6):

    * ``reopened``: a is won or lost (b anything else);
    * ``forward``: b is the next chain step, or b is lost (an exit) or nurturing (parking),
      or a is nurturing and b is the step the deal was parked from, or the next one;
    * ``skipped``: b is further along than the next chain step (demo -> closing, demo -> won);
    * ``backward``: b is an earlier chain step (from nurturing: earlier than the step the deal
      was parked from);
    * ``repeat``: a and b are the same step (two stages of one step, or a duplicate row);
    * ``unknown``: a or b is a stage that maps to no step.

    A deal's first row is its entry into the funnel, not a move.
    """
    p = None if period is None else ds.period(period)
    h = _history(ds)
    m = h.filter(h.prev_code.notnull())
    if p:
        m = m.filter(_within(m.entered_at, p))
    if where:
        deals = _deals(ds, _by(ds, list(where)))
        deals = deals.filter([deals[k].cast("string") == str(v) for k, v in where.items()])
        m = m.semi_join(deals, m.opportunity_id == deals.opportunity_id)
    m = m.mutate(kind=_kind(m))
    agg = m.group_by(["prev_code", "code", "kind"]).aggregate(
        transitions=m.count(), deals=m.opportunity_id.nunique()
    )
    frame = agg.to_pandas().sort_values(["prev_code", "code", "kind"]).reset_index(drop=True)
    names = dict(enumerate(ALL_STEPS))
    frame["from_step"] = frame.prev_code.astype(int).map(names)
    frame["to_step"] = frame.code.astype(int).map(names)
    frame = frame[["from_step", "to_step", "kind", "transitions", "deals"]]
    frame["transitions"] = frame["transitions"].astype("int64")
    frame["deals"] = frame["deals"].astype("int64")
    per_deal = m.group_by("opportunity_id").aggregate(bad=m.kind.isin(list(OUT_OF_ORDER)).any())
    s = per_deal.aggregate(deals=per_deal.count(), bad=per_deal.bad.sum()).to_pyarrow()
    n_deals, n_bad = int(s["deals"][0].as_py() or 0), int(s["bad"][0].as_py() or 0)
    by_kind = frame.groupby("kind")["transitions"].sum()
    summary = {
        "deals": n_deals,
        "transitions": int(frame.transitions.sum()),
        "forward": int(by_kind.get("forward", 0)),
        "skips": int(by_kind.get("skipped", 0)),
        "backward": int(by_kind.get("backward", 0)),
        "reopened": int(by_kind.get("reopened", 0)),
        "repeat": int(by_kind.get("repeat", 0)),
        "unknown": int(by_kind.get("unknown", 0)),
        "out_of_order_deals": n_bad,
        "out_of_order_share": n_bad / n_deals if n_deals else None,
    }
    frame.attrs["period"] = p.label if p else "all"
    frame.attrs["summary"] = summary
    return frame, summary


def transition_matrix(frame: pd.DataFrame, *, values: str = "transitions") -> pd.DataFrame:
    """Pivot a :func:`transitions` frame into a from-step × to-step matrix (0 where no move)."""
    present = set(frame.from_step) | set(frame.to_step)
    order = [s for s in ALL_STEPS if s in present]
    m = frame.pivot_table(index="from_step", columns="to_step", values=values, aggfunc="sum", fill_value=0)
    return m.reindex(index=[s for s in order if s in m.index], columns=order, fill_value=0).astype("int64")


# -- derived tables (computed once per dataset) ------------------------------------------------


def _history(ds: Dataset) -> ibis.Table:
    """``stage_history`` in stage history order, one row per entry, with per-deal context.

    Steps are stored as small integer codes (:data:`CODE`; index in :data:`ALL_STEPS`) to keep
    the table narrow. Columns: opportunity_id, entered_at, code, pos (chain position, won = 6,
    else NULL), seq (0-based order within the deal), prev_code (NULL on the deal's first row),
    hw_before (furthest chain position before this row), fmax (furthest chain position from
    this row on), parked_from (chain position of the last row before this one at a step up to
    closing: where a deal in nurturing was parked from).
    One window specification, so one sort of the table.
    """

    def build() -> ibis.Table:
        sh = ds.table("stage_history")
        sh = sh.filter(sh.opportunity_id.notnull() & sh.entered_at.notnull())
        code = sh.step.fill_null(UNKNOWN).substitute(CODE, else_=CODE[UNKNOWN]).cast("int8")
        t = sh.select(opportunity_id=sh.opportunity_id, entered_at=sh.entered_at, code=code)
        spec = dict(group_by=t.opportunity_id, order_by=[t.entered_at, t.code])
        whole = ibis.window(**spec)
        before = ibis.window(**spec, rows=(None, -1))
        after = ibis.window(**spec, rows=(0, None))
        pos = ibis.cases(
            (t.code <= _CLOSING, t.code), (t.code == CODE["won"], POSITION["won"]), else_=ibis.null(dt.int8)
        )
        micros = t.entered_at.delta(ibis.timestamp("1970-01-01 00:00:00"), unit="microsecond").cast("int64")
        chain = ibis.ifelse(t.code <= _CLOSING, micros * 16 + t.code.cast("int64"), ibis.null(dt.int64))
        return t.select(
            "opportunity_id",
            "entered_at",
            "code",
            pos=pos.cast("int8"),
            seq=ibis.row_number().over(whole).cast("int32"),
            prev_code=t.code.lag().over(whole),
            hw_before=pos.max().over(before).cast("int8"),
            fmax=pos.max().over(after).cast("int8"),
            parked_from=(chain.max().over(before) % 16).cast("int8"),
        )

    return ds.cached("funnel__history", build)


def first_passes(ds: Dataset) -> ibis.Table:
    """Each deal's first pass of each chain step, and its first entry into nurturing.

    Columns: opportunity_id, k (chain position 0-6, or 7 for nurturing), pass_at, advanced,
    status (the deal's final status). ``advanced`` is true when the deal was at a later chain
    position at its first pass or after it, or its final status is won.

    How the first passes are found without grouping millions of rows: the furthest position
    so far (``hw``) only grows, so a row that moves it forward passes every step in
    ``(hw_before, pos]`` for the first time (its first chain row passes just ``pos``), and
    these intervals never overlap. Any other chain row (``pos <= hw_before``: a re-entry or a
    backward move) passes nothing new, except a backward move below the deal's entry step
    (entered at demo, then back to qualification): the first such row per step is a first pass.
    """

    def build() -> ibis.Table:
        h = _history(ds)
        chain = h.filter(h.pos.notnull())
        ahead = chain.hw_before.isnull() | (chain.pos > chain.hw_before)
        fresh = chain.filter(ahead)
        entered = fresh.select("opportunity_id", k=fresh.pos.cast("int8"), pass_at=fresh.entered_at, adv=fresh.fmax > fresh.pos)
        # the steps a forward jump skips: hw_before + 1 .. pos - 1 (few rows, so few lists)
        jumps = fresh.filter(fresh.hw_before.notnull() & (fresh.pos > fresh.hw_before + 1))
        e = jumps.mutate(k=ibis.range(jumps.hw_before.cast("int64") + 1, jumps.pos.cast("int64"))).unnest("k")
        skipped = e.select("opportunity_id", k=e.k.cast("int8"), pass_at=e.entered_at, adv=ibis.literal(True))
        # backward moves below the entry step, first occurrence per step
        entry = chain.filter(chain.hw_before.isnull()).select(_e_id=chain.opportunity_id, _entry=chain.pos)
        back = chain.filter(~ahead)
        back = back.join(entry, back.opportunity_id == entry._e_id).filter(lambda t: t.pos < t._entry)
        code = back.seq.cast("int64") * 2 + ibis.ifelse(back.fmax > back.pos, 1, 0).cast("int64")
        below = back.group_by(["opportunity_id", back.pos.name("k")]).aggregate(
            pass_at=back.entered_at.min(), _code=code.min()
        )
        below = below.select("opportunity_id", k=below.k.cast("int8"), pass_at=below.pass_at, adv=below._code % 2 == 1)
        # nurturing: the first entry
        n = h.filter(h.code == CODE[PARKING_STEP])
        n = n.group_by("opportunity_id").aggregate(pass_at=n.entered_at.min())
        n = n.select("opportunity_id", k=ibis.literal(NURTURING_K, dt.int8), pass_at=n.pass_at, adv=ibis.literal(False))
        g = ibis.union(entered, skipped, below, n)
        o = ds.table("opportunities")
        o = o.select(_o_id=o.opportunity_id, status=o.status)
        j = g.left_join(o, g.opportunity_id == o._o_id)
        advanced = j.adv.fill_null(False) | (j.status == "won").fill_null(False)
        return j.select("opportunity_id", "k", "pass_at", advanced=advanced, status=j.status)

    return ds.cached("funnel__passes", build)


def _stints(ds: Dataset) -> ibis.Table:
    """Stints in canonical steps: opportunity_id, step, start, end (NULL while running), days.

    Consecutive rows of one step form one stint; any other row (won, lost, unmapped) ends it.
    """

    def build() -> ibis.Table:
        h = _history(ds)
        starts = h.filter(h.prev_code.isnull() | (h.prev_code != h.code))
        w = ibis.window(group_by=starts.opportunity_id, order_by=starts.seq)
        s = starts.select(
            opportunity_id=starts.opportunity_id,
            code=starts.code,
            start=starts.entered_at,
            end=starts.entered_at.lead().over(w),
        )
        s = s.filter(s.code <= CODE[PARKING_STEP])
        fc = timeline.final_closes(ds)
        fc = fc.select(_fc_id=fc.opportunity_id, _fc_at=fc.closed_at)
        s = s.left_join(fc, s.opportunity_id == fc._fc_id)
        final = ibis.cases((s._fc_at.notnull(), ibis.greatest(s._fc_at, s.start)), else_=ibis.null(dt.Timestamp()))
        s = s.mutate(end=ibis.coalesce(s.end, final)).drop("_fc_id", "_fc_at")
        days = timeline.elapsed(s.end, s.start, DAY_SECONDS)
        return s.select("opportunity_id", step=_step_of(s.code), start=s.start, end=s.end, days=days)

    return ds.cached("funnel__stints", build)


def _step_of(code: Any) -> Any:
    """Step name of a code column."""
    return code.substitute(dict(enumerate(ALL_STEPS)), else_=ibis.literal(UNKNOWN))


# -- helpers -----------------------------------------------------------------------------------


def _by(ds: Dataset, by: Sequence[str] | str | None) -> list[str]:
    """The ``by`` dimensions as a list, checked against the known dimensions."""
    return resolve_dims(ds, by)


def _steps(steps: Sequence[str] | None) -> list[str]:
    if steps is None:
        return list(FUNNEL_STEPS)
    steps = [steps] if isinstance(steps, str) else list(steps)
    for s in steps:
        if s not in FUNNEL_STEPS:
            close = difflib.get_close_matches(str(s), FUNNEL_STEPS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            extra = " (nurturing is outside the chain: see attrs['nurturing'])" if s == PARKING_STEP else ""
            raise UnknownNameError(f"unknown funnel step {s!r}{hint}{extra} Funnel steps: {', '.join(FUNNEL_STEPS)}")
    return steps




def _ts(value: datetime) -> Any:
    return ibis.literal(value, type=dt.Timestamp())


def _within(col: Any, p: Period) -> Any:
    """``col`` (naive local timestamp) within the period: start <= col < end."""
    return (col >= _ts(datetime.combine(p.start, time()))) & (col < _ts(datetime.combine(p.end, time())))


def _deals(ds: Dataset, by: list[str]) -> ibis.Table:
    """The timeline's deals (:func:`analysis.timeline.deals`) with the ``by`` dimensions."""
    o = timeline.deals(ds)
    return with_dimensions(ds, o, "opportunities", by) if by else o


def _last_activity(ds: Dataset, ids: list[str], before: datetime) -> pd.Series:
    """Latest activity before ``before`` of each deal in ``ids`` (NaT without one), aligned to ids.

    Only the listed deals are looked up (a semi-join), so the activities table is scanned once
    but aggregated for a few deals only.
    """
    empty = pd.Series(pd.NaT, index=range(len(ids)), dtype="datetime64[us]")
    if not ids or not ds.has("activities"):
        return empty
    a = ds.table("activities").select("opportunity_id", "occurred_at")
    a = a.filter(a.opportunity_id.notnull() & (a.occurred_at < _ts(before)))
    wanted = ibis.memtable(pd.DataFrame({"_a_id": pd.Series(ids, dtype="string")}))
    a = a.join(wanted, a.opportunity_id == wanted._a_id)
    last = a.group_by("opportunity_id").aggregate(last_activity_at=a.occurred_at.max()).to_pandas()
    found = dict(zip(last.opportunity_id, last.last_activity_at))
    return pd.Series([found.get(i) for i in ids], dtype="datetime64[us]")


def _complete(got: pd.DataFrame, by: list[str], order: list[str], fill: dict[str, Any]) -> pd.DataFrame:
    """Every group × step (in ``order``), missing combinations filled, rows in step order."""
    steps = pd.DataFrame({"step": order, "_o": range(len(order))})
    if by:
        groups = got[by].drop_duplicates()
        grid = groups.merge(steps, how="cross")
    else:
        grid = steps
    out = grid.merge(got, on=[*by, "step"], how="left")
    for c, v in fill.items():
        out[c] = out[c].fillna(v)
    out = out.sort_values([*by, "_o"], na_position="last", kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)


def _funnel_frame(counts: pd.DataFrame, by: list[str], nurt: pd.DataFrame) -> pd.DataFrame:
    """Counts per group and step -> the full funnel frame with rates."""
    if by and len(nurt):
        extra = nurt[by].merge(counts[by].drop_duplicates(), how="left", indicator=True)
        extra = extra[extra["_merge"] == "left_only"][by]
        counts = pd.concat([counts, extra.assign(step=FUNNEL_STEPS[0])], ignore_index=True)
    cols = ["entered", "advanced", "won", "lost", "open"]
    out = _complete(counts, by, list(FUNNEL_STEPS), dict.fromkeys(cols, 0))
    for c in cols:
        out[c] = out[c].astype("Int64")
    won_row = out.step == "won"
    out.loc[won_row, "advanced"] = pd.NA
    n = out.entered.astype("Float64").mask(out.entered == 0)
    out["conversion"] = (out.advanced.astype("Float64") / n).astype("Float64")
    low, high = wilson_interval(out.advanced.where(~won_row), out.entered)
    out["conversion_low"] = low.astype("Float64").values
    out["conversion_high"] = high.astype("Float64").values
    out.loc[won_row, ["conversion_low", "conversion_high"]] = pd.NA
    out["leakage"] = 1 - out.conversion
    out["won_rate"] = (out.won.astype("Float64") / n).astype("Float64")
    return out[[*by, *FUNNEL_COLUMNS]]


def _kind(m: ibis.Table) -> Any:
    """Classify the move ``prev_code -> code`` of each history row (see :func:`transitions`)."""
    a, b = m.prev_code, m.code
    pa = ibis.cases((a <= _CLOSING, a), (a == CODE["won"], POSITION["won"]), else_=ibis.null(dt.int8))
    pb, ref = m.pos, m.parked_from
    nurt, unknown = CODE[PARKING_STEP], CODE[UNKNOWN]
    return ibis.cases(
        (a == b, "repeat"),
        ((a == unknown) | (b == unknown), "unknown"),
        (a.isin([CODE["won"], CODE["lost"]]), "reopened"),
        (b.isin([CODE["lost"], nurt]), "forward"),
        ((a == nurt) & ref.isnull(), "forward"),
        ((a == nurt) & (pb < ref), "backward"),
        ((a == nurt) & (pb > ref + 1), "skipped"),
        (a == nurt, "forward"),
        (pb == pa + 1, "forward"),
        (pb > pa + 1, "skipped"),
        (pb < pa, "backward"),
        else_="unknown",
    )
