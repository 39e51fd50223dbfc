"""The North Star plan: work backwards from a revenue target to daily activity per rep (SPEC 6).

``plan(ds, 5_000_000, "2026-Q4")`` answers "what does it take?": the target becomes won deals
(average deal size), won deals become opportunities (win rate), and the funnel is walked
backwards with historical conversions down to leads and activities, then divided by the reps
and their working days in the period. Every assumption comes from the history before the period
unless it is overridden, and every row says which one it used and where it came from.

Two layers:

* :func:`assumptions` reads the history once (a few engine queries) into an
  :class:`Assumptions` object;
* :func:`plan_from` is pure arithmetic on an :class:`Assumptions` and a target (no data access),
  which is what the notebook's sliders call on every move. :func:`plan` is both in one call.

The plan is one chain: every row follows from the target and the assumptions, so changing any
assumption moves every row that depends on it. The deal funnel starts at the opportunities (every
opportunity passes the first step) and ends at the won deals; the stage conversions say *where*
deals drop out and the win rate *how many* are won, so the conversions are fitted to multiply to
the win rate (:func:`fit_funnel`). The count entering a step is never lower than the count
entering the next one.

>>> import analysis
>>> from analysis import plan
>>> ds = analysis.load("data/sample")                                   # doctest: +SKIP
>>> frame = plan.plan(ds, 5_000_000, "2026-Q4", deal_size=100_000, win_rate=0.25)  # doctest: +SKIP
>>> frame.set_index("step").loc[["deals_won", "opportunities"], "quantity"].tolist()  # doctest: +SKIP
[50.0, 200.0]
>>> plan.summary(frame)                                                 # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from numbers import Real
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from analysis.analytics.funnel import FUNNEL_STEPS, stage_funnel
from analysis.analytics.losses import lead_funnel
from analysis.data.loading import Dataset
from analysis.data.periods import Period, parse_period
from analysis.data.schema import ACTIVITY_TYPES, step_label
from analysis.data.timeline import employed
from analysis.errors import UnknownNameError, WorkbenchError
from analysis.format import Numbers
from analysis.semantic.engine import metrics

__all__ = [
    "HISTORY_MONTHS",
    "PLAN_COLUMNS",
    "Assumptions",
    "PlanError",
    "assumptions",
    "fit_funnel",
    "numbers_of",
    "plan",
    "plan_from",
    "selling_reps",
    "summary",
]

#: Months of history behind the default assumptions.
HISTORY_MONTHS = 12

#: Columns of a plan frame, in order.
PLAN_COLUMNS = [
    "step", "section", "description", "quantity", "needed", "per_rep", "per_rep_per_day",
    "assumption", "assumption_value", "applied_value", "source", "numerator", "denominator",
]  # fmt: skip

#: Chain steps a deal passes before it is won (their conversion is to the next step).
STAGE_STEPS: tuple[str, ...] = FUNNEL_STEPS[:-1]

#: Plural step names of activity types (``call`` -> ``calls``).
ACTIVITY_STEPS = {
    "call": "calls",
    "email": "emails",
    "meeting": "meetings",
    "demo": "demos",
    "message": "messages",
    "other": "other_activities",
}

#: Roles that do not carry a selling quota (not counted in the default head count).
NON_SELLING_ROLES = ("manager",)

_EPS = 1e-9


class PlanError(WorkbenchError, ValueError):
    """A plan that cannot be made as asked (bad target, override or missing history)."""


# -- assumptions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assumptions:
    """Historical assumptions of a plan, and the calendar and head count of its period.

    Attributes
    ----------
    period
        The planned period.
    window_start, window_end
        The history window, ``window_start <= d < window_end`` (whole months).
    values
        Assumption id -> value, ``None`` when the history does not give one (zero denominator).
        Ids: ``avg_deal_size``, ``win_rate``, ``conversion:<step>`` for the deal funnel steps
        prospecting .. closing (to the next step), ``lead_share``, ``conversion:lead``
        (lead -> qualified), ``conversion:qualified`` (qualified -> opportunity),
        ``activities_per_opportunity:<type>`` for each activity type.
    numerators, denominators
        The history counts or sums behind each value (``value = numerator / denominator``).
    head_count
        Selling reps active in the period (see :func:`selling_reps`).
    working_days
        Working days in the period from the config calendar (working weekdays minus holidays).
    unavailable
        Assumption id -> why the history gives no value.
    currency
        Reporting currency of the dataset.
    numbers
        The dataset's formatter (``ds.config.numbers``: currency and display locale); None gives
        ``Numbers(currency)`` (see :attr:`formats`).
    """

    period: Period
    window_start: date
    window_end: date
    values: dict[str, float | None]
    numerators: dict[str, float] = field(default_factory=dict)
    denominators: dict[str, float] = field(default_factory=dict)
    head_count: int = 0
    working_days: int = 0
    unavailable: dict[str, str] = field(default_factory=dict)
    currency: str = "USD"
    numbers: Numbers | None = None

    @property
    def formats(self) -> Numbers:
        """How the plan writes money, numbers and rates: :attr:`numbers`, else ``Numbers(currency)``."""
        return self.numbers if self.numbers is not None else Numbers(self.currency)

    @property
    def window_label(self) -> str:
        """The window as ``2025-10 .. 2026-09`` (inclusive months)."""
        last = self.window_end - timedelta(days=1)
        return f"{self.window_start:%Y-%m} .. {last:%Y-%m}"


def _month_floor(d: date) -> date:
    return date(d.year, d.month, 1)


def _add_months(d: date, n: int) -> date:
    total = d.year * 12 + d.month - 1 + n
    return date(total // 12, total % 12 + 1, 1)


def history_window(ds: Dataset, period: Period, history: Any = None) -> tuple[date, date]:
    """The history window of a plan: ``(start, end)`` with an exclusive end, whole months.

    ``history`` is a number of months (default :data:`HISTORY_MONTHS`) ending at the start of
    the period's month, or at the end of the data's last complete month when the period starts
    after it (a future period); or a period label / :class:`Period` used as the window itself.
    """
    fsm = ds.config.fiscal_year_start_month
    if history is None:
        history = HISTORY_MONTHS
    if isinstance(history, Period) or isinstance(history, str):
        w = history if isinstance(history, Period) else parse_period(history, fiscal_start_month=fsm)
        return w.start, w.end
    if isinstance(history, bool) or not isinstance(history, int) or history < 1:
        raise PlanError(
            f"invalid history {history!r}; pass a number of months (e.g. 12) or a period label such as '2025'"
        )
    data_end = _month_floor(ds.last_date() + timedelta(days=1))
    end = min(_month_floor(period.start), data_end)
    return _add_months(end, -history), end


def _blocks(start: date, end: date) -> list[Period]:
    """The window as few calendar periods as possible (years, quarters, months), in order.

    Cohort funnels of consecutive periods add up to the cohort of the span, so the funnels of
    these blocks sum to the funnel of the window.
    """
    out: list[Period] = []
    c = start
    while c < end:
        if c.month == 1 and _add_months(c, 12) <= end:
            out.append(parse_period(f"{c.year:04d}"))
            c = _add_months(c, 12)
        elif c.month in (1, 4, 7, 10) and _add_months(c, 3) <= end:
            out.append(parse_period(f"{c.year:04d}-Q{(c.month - 1) // 3 + 1}"))
            c = _add_months(c, 3)
        else:
            out.append(parse_period(f"{c.year:04d}-{c.month:02d}"))
            c = _add_months(c, 1)
    return out


def _months(start: date, end: date) -> list[str]:
    out, c = [], start
    while c < end:
        out.append(f"{c.year:04d}-{c.month:02d}")
        c = _add_months(c, 1)
    return out


def selling_reps(ds: Dataset, period: str | int | Period) -> pd.DataFrame:
    """Reps counted in a plan's default head count: selling roles active in the period.

    A rep is active when hired on or before the period's last day (or no hire_date) and not
    gone before it starts (no end_date, or end_date on or after the first day). Managers
    (role ``manager``, any case) are left out; reps without a role are counted. A rep active
    for part of the period counts as one.
    """
    p = ds.period(period)
    reps = ds.df("reps")
    for c in ("role", "hire_date", "end_date", "team", "name"):
        if c not in reps.columns:
            reps[c] = pd.NA
    active = employed(reps, p)
    role = reps.role.astype("string").str.strip().str.lower()
    selling = ~role.isin(NON_SELLING_ROLES).fillna(False).astype(bool)
    return reps[active & selling][["rep_id", "name", "team", "role"]].reset_index(drop=True)


def _div(num: Any, den: Any) -> float | None:
    try:
        num, den = float(num), float(den)
    except (TypeError, ValueError):
        return None
    if math.isnan(num) or math.isnan(den) or den == 0:
        return None
    return num / den


def assumptions(ds: Dataset, period: str | int | Period, *, history: Any = None) -> Assumptions:
    """Read a plan's historical assumptions, head count and working days (see :func:`plan`)."""
    p = ds.period(period)
    start, end = history_window(ds, p, history)
    values: dict[str, float | None] = {}
    nums: dict[str, float] = {}
    dens: dict[str, float] = {}
    why: dict[str, str] = {}
    span = f"{start:%Y-%m} .. {(end - timedelta(days=1)):%Y-%m}"

    def put(key: str, num: Any, den: Any, reason: str) -> None:
        nums[key] = float(num) if num is not None and not pd.isna(num) else math.nan
        dens[key] = float(den) if den is not None and not pd.isna(den) else math.nan
        values[key] = _div(num, den)
        if values[key] is None:
            why[key] = reason

    # deals: won revenue, won / lost counts, opportunities created (engine metrics, all months)
    months = _months(start, end)
    m = metrics(ds, ["revenue", "deals_won", "deals_lost", "opportunities_created"], grain="month", periods=months)
    tot = {c: float(pd.to_numeric(m[c], errors="coerce").fillna(0).sum()) for c in
           ("revenue", "deals_won", "deals_lost", "opportunities_created")}
    put("avg_deal_size", tot["revenue"], tot["deals_won"], f"no deal was won in {span}")
    put("win_rate", tot["deals_won"], tot["deals_won"] + tot["deals_lost"], f"no deal was closed in {span}")
    opps = tot["opportunities_created"]

    # the deal funnel: cohort conversion of each step, summed over the window's blocks
    if ds.has("stage_history"):
        frames = [stage_funnel(ds, b) for b in _blocks(start, end)]
        f = pd.concat(frames, ignore_index=True)
        f = f.assign(entered=pd.to_numeric(f.entered, errors="coerce").fillna(0),
                     advanced=pd.to_numeric(f.advanced, errors="coerce").fillna(0))
        sums = f.groupby("step")[["entered", "advanced"]].sum()
        for s in STAGE_STEPS:
            e = sums.entered.get(s, 0.0)
            a = sums.advanced.get(s, 0.0)
            put(f"conversion:{s}", a, e, f"no deal passed {step_label(s).lower()} in {span}")
    else:
        for s in STAGE_STEPS:
            put(f"conversion:{s}", None, None, "the data has no stage_history table")

    # leads: the share of new opportunities that came from a lead, and the lead funnel
    if ds.has("leads"):
        o = ds.table("opportunities")
        lo, hi = _ts(start), _ts(end)
        created = o.filter((o.created_at >= lo) & (o.created_at < hi))
        leads = ds.table("leads")
        ids = leads.filter(leads.opportunity_id.notnull()).select(_lid=leads.opportunity_id).distinct()
        from_leads = created.semi_join(ids, created.opportunity_id == ids._lid).count().to_pyarrow().as_py()
        put("lead_share", from_leads, opps, f"no opportunity was created in {span}")
        counts = pd.concat([lead_funnel(ds, b) for b in _blocks(start, end)], ignore_index=True)
        n = counts.assign(leads=pd.to_numeric(counts.leads, errors="coerce").fillna(0)).groupby("stage")["leads"].sum()
        put("conversion:lead", n.get("qualified", 0), n.get("lead", 0), f"no lead was created in {span}")
        put("conversion:qualified", n.get("opportunity", 0), n.get("qualified", 0),
            f"no lead created in {span} was qualified")
    else:
        for k in ("lead_share", "conversion:lead", "conversion:qualified"):
            put(k, None, None, "the data has no leads table")

    # activities per opportunity created, by type
    if ds.has("activities"):
        a = metrics(ds, ["activities"], by="activity_type", grain="month", periods=months)
        a = a.assign(activities=pd.to_numeric(a.activities, errors="coerce").fillna(0))
        by_type = a.groupby("activity_type")["activities"].sum()
        for t in ACTIVITY_TYPES:
            if by_type.get(t, 0) > 0 or t in ("call", "email", "meeting", "demo"):
                put(f"activities_per_opportunity:{t}", by_type.get(t, 0.0), opps,
                    f"no opportunity was created in {span}")
    else:
        for t in ("call", "email", "meeting", "demo"):
            put(f"activities_per_opportunity:{t}", None, None, "the data has no activities table")

    cfg = ds.config
    return Assumptions(
        period=p,
        window_start=start,
        window_end=end,
        values=values,
        numerators=nums,
        denominators=dens,
        head_count=len(selling_reps(ds, p)),
        working_days=p.working_days(cfg.weekday_numbers(), cfg.holidays),
        unavailable=why,
        currency=cfg.currency,
        numbers=cfg.numbers,
    )


# -- the plan ---------------------------------------------------------------------------------


def plan(
    ds: Dataset,
    target_revenue: float,
    period: str | int | Period,
    *,
    deal_size: float | None = None,
    win_rate: float | None = None,
    conversions: Mapping[str, float] | None = None,
    activities_per_opportunity: Mapping[str, float] | None = None,
    head_count: int | None = None,
    lead_share: float | None = None,
    history: Any = None,
) -> pd.DataFrame:
    """Plan backwards from a revenue target: deals, opportunities, funnel, leads, activities.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    target_revenue
        Revenue (bookings) to reach in the period, in the reporting currency; > 0.
    period
        The planned period: ``"2026"``, ``"2026-Q4"``, ``"2026-H2"``, ``"2026-11"``, ``"FY2027"``,
        or an int year (papermill passes ``-p period 2026`` as ``2026``).
    deal_size
        Average won deal size; default: revenue / deals won in the history window.
    win_rate
        Share of closed deals that are won, in (0, 1]; default: deals won / (won + lost) closed
        in the window.
    conversions
        Overrides of funnel conversions, keyed by the step converted *from*: deal funnel steps
        ``prospecting``, ``qualification``, ``research``, ``demo``, ``objection_handling``,
        ``closing`` (share that reaches the next step, closing -> won), and lead funnel stages
        ``lead`` (lead -> qualified) and ``qualified`` (qualified -> opportunity). Each in (0, 1].
        Default: the cohort conversions of the window (:func:`analysis.funnel.stage_funnel`,
        :func:`analysis.losses.lead_funnel`).
    activities_per_opportunity
        Overrides by activity type (``call`` or ``calls``, ``email``, ``meeting``, ``demo``,
        ``message``, ``other``), >= 0. Default: activities of the type logged in the window /
        opportunities created in the window.
    head_count
        Reps sharing the plan; default: selling reps active in the period
        (:func:`selling_reps`: every role but manager).
    lead_share
        Share of new opportunities that come from a lead, in [0, 1]; default: opportunities
        created in the window that a lead points to / opportunities created in the window.
    history
        The history window: a number of months (default 12) before the period start, or, when
        the period starts after the data's last complete month, the data's last complete months;
        or a period label (``"2025"``) used as the window.

    Returns
    -------
    pandas.DataFrame
        One row per step (:data:`PLAN_COLUMNS`), in the order the plan is worked out:

        * ``step``: ``revenue``; ``deals_won``; ``opportunities``; the deal funnel steps from
          ``closing`` back to ``prospecting`` (deals that must pass the step);
          ``lead_opportunities``, ``qualified_leads``, ``leads``; then one row per activity
          type (``calls``, ``emails``, ``meetings``, ``demos``, ...).
        * ``section``: ``target``, ``deals``, ``funnel``, ``leads`` or ``activities``.
        * ``description``: what the quantity counts.
        * ``quantity``: the exact requirement (float); ``needed``: rounded up to a whole count
          (the revenue row keeps the target); ``per_rep`` = quantity / head count;
          ``per_rep_per_day`` = per_rep / working days in the period.
        * ``assumption`` (id, see :class:`Assumptions`), ``assumption_value`` (the history
          value or the override), ``applied_value`` (what the chain applied: the same, except
          for funnel steps fitted to the win rate, see Notes), ``source`` (``history`` or
          ``override``; ``target`` for the revenue row), and for history values the
          ``numerator`` and ``denominator`` they were computed from.

        ``attrs``: ``period``, ``target``, ``currency``, ``numbers`` (the
        :class:`analysis.format.Numbers` to write its figures with), ``head_count`` and
        ``head_count_source``, ``working_days``, ``history`` (the window label),
        ``unavailable`` (step -> why it has no row), and ``assumptions``: every assumption id
        the plan looked at -> ``{"value", "applied", "source", "history"}`` (``value`` None when
        not available; ``history`` is the history value whatever the source), so a display
        shows exactly the values the plan used.

    Raises
    ------
    PlanError
        A target or override out of range, or no history for the deal size or win rate (pass
        ``deal_size=`` / ``win_rate=``), or funnel conversions set so that they cannot multiply
        to the win rate (see Notes).
    UnknownNameError
        An unknown conversion step or activity type (with a suggestion).

    Notes
    -----
    deals_won = target / deal_size; opportunities = deals_won / win_rate (SPEC: 5,000,000 at
    100,000 and 25% gives 50 deals and 200 opportunities).

    The deal funnel is one chain from the opportunities (all of them pass the first step,
    prospecting) to the won deals: deals passing step k = deals passing the next step /
    applied conversion of k, ``closing`` = deals_won / applied conversion(closing -> won), so
    ``prospecting`` = ``opportunities`` and each step needs at least as many deals as the next.
    That needs the applied conversions to multiply to the win rate, which the history's need
    not do (cohort conversions count deals still open, and deals that entered at a later step;
    the win rate counts closed deals only). :func:`fit_funnel` fits them: conversions you set
    are applied as they are; the history ones are raised to one common power, c ** alpha, so
    that all multiply to the win rate (a step that lost no deal keeps 100%, and a step's share
    of the total leak, in log terms, is the history's). When the win rate equals the product of
    the conversions they are applied unchanged. ``assumption_value`` keeps the history value
    and ``applied_value`` the fitted one.

    Leads: lead_opportunities = opportunities × lead_share; qualified_leads =
    lead_opportunities / conversion(qualified); leads = qualified_leads / conversion(lead).
    Activities of type t = opportunities × activities_per_opportunity(t), where history counts
    every activity of the type (linked to a deal or not) per opportunity created. So a change of
    the deal size or the win rate moves every count below it, funnel, leads and activities.

    Recent cohorts are still open at the snapshot, so historical conversions of the last months
    understate what those deals will do; override them if that matters. A history value with a
    zero denominator is "not available": its step and the steps derived from it get no row
    (reason in ``attrs["unavailable"]``), except deal size and win rate, which raise. The funnel
    needs the conversion of every step (a step at 0% or without history leaves all funnel rows
    out, with the reason and the override to pass).
    Rounding: only ``needed`` is rounded (up, after removing float noise of 1e-9); the
    per-rep columns divide the exact quantity.
    """
    a = assumptions(ds, period, history=history)
    return plan_from(
        a,
        target_revenue,
        deal_size=deal_size,
        win_rate=win_rate,
        conversions=conversions,
        activities_per_opportunity=activities_per_opportunity,
        head_count=head_count,
        lead_share=lead_share,
    )


def _number(name: str, value: Any, *, lo: float, hi: float | None = None, lo_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)):
        raise PlanError(f"{name} must be a number, got {value!r}")
    v = float(value)
    low_bad = v <= lo if lo_open else v < lo
    if low_bad or (hi is not None and v > hi) or math.isinf(v):
        if hi is not None:
            rng = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
        else:
            rng = f"{'>' if lo_open else '>='} {lo:g}"
        raise PlanError(f"{name} must be {rng}, got {value!r}")
    return v


def _conversion_key(key: str) -> str:
    valid = [*STAGE_STEPS, "lead", "qualified"]
    k = str(key).strip().lower()
    if k in valid:
        return k
    close = difflib.get_close_matches(k, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownNameError(
        f"unknown conversion step {key!r}{hint} Use the step converted from: {', '.join(valid)}"
    )


def _activity_key(key: str) -> str:
    k = str(key).strip().lower()
    plural = {v: t for t, v in ACTIVITY_STEPS.items()}
    if k in ACTIVITY_STEPS:
        return k
    if k in plural:
        return plural[k]
    names = [*ACTIVITY_STEPS, *ACTIVITY_STEPS.values()]
    close = difflib.get_close_matches(k, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownNameError(f"unknown activity type {key!r}{hint} Activity types: {', '.join(ACTIVITY_STEPS)}")


#: Relative tolerance of the funnel fit: float noise, never a difference a reader could see.
FIT_TOLERANCE = 1e-9


def fit_funnel(win_rate: float, conversions: Mapping[str, float], *, fixed: Collection[str] = ()) -> dict[str, float]:
    """Stage conversions that multiply to the win rate: the funnel of a consistent plan.

    Parameters
    ----------
    win_rate
        Share of opportunities won, in (0, 1].
    conversions
        Conversion of every step of :data:`STAGE_STEPS` to the next one, each in (0, 1].
    fixed
        Steps whose conversion was set by the user: applied as they are.

    Returns
    -------
    dict
        Step -> applied conversion, in (0, 1], in :data:`STAGE_STEPS` order; their product is
        the win rate (to :data:`FIT_TOLERANCE`).

    Raises
    ------
    PlanError
        The fixed conversions multiply to less than the win rate (no deal could be won that
        often), or every conversion is fixed and their product is not the win rate.

    Notes
    -----
    Let F be the product of the fixed conversions and H the product of the others (history).
    The history ones must multiply to R = win_rate / F: each becomes c ** alpha with
    alpha = ln R / ln H, which keeps a 100% step at 100% and each step's share of the leak in
    log terms. R = 1 gives 100% everywhere; H = 1 (no step leaked in history) while R < 1
    splits the leak evenly: R ** (1 / n) each. With win_rate = H (nothing fixed), alpha = 1:
    the history conversions unchanged.

    >>> fit = fit_funnel(0.09, {"prospecting": 0.75, "qualification": 0.6, "research": 1.0,
    ...                         "demo": 2 / 3, "objection_handling": 1.0, "closing": 1.0})
    >>> [round(v, 4) for v in fit.values()]
    [0.5625, 0.36, 1.0, 0.4444, 1.0, 1.0]
    """
    missing = [s for s in STAGE_STEPS if s not in conversions]
    if missing:
        raise PlanError(f"fit_funnel needs the conversion of every funnel step; missing: {', '.join(missing)}")
    bad = [f"{s} {conversions[s]!r}" for s in STAGE_STEPS if not 0 < conversions[s] <= 1]
    if bad or not 0 < win_rate <= 1:
        raise PlanError(f"fit_funnel needs rates in (0, 1]; got win rate {win_rate!r}"
                        + (f", conversions {', '.join(bad)}" if bad else ""))
    fixed = {s for s in fixed if s in STAGE_STEPS}
    free = [s for s in STAGE_STEPS if s not in fixed]
    kept = math.prod(conversions[s] for s in STAGE_STEPS if s in fixed)
    rest = win_rate / kept
    out = {s: float(conversions[s]) for s in STAGE_STEPS}
    if rest > 1 + FIT_TOLERANCE:
        shown = ", ".join(f"{step_label(s).lower()} {conversions[s]:.1%}" for s in STAGE_STEPS if s in fixed)
        raise PlanError(
            f"the funnel conversions you set ({shown}) multiply to {kept:.1%}, below the win rate "
            f"{win_rate:.1%}: no more than {kept:.1%} of the opportunities could be won. Raise a conversion, "
            f"lower the win rate, or reset the conversions to history"
        )
    if not free:
        if abs(rest - 1) > FIT_TOLERANCE:
            raise PlanError(
                f"all {len(STAGE_STEPS)} funnel conversions are set and multiply to {kept:.1%}, but the win rate is "
                f"{win_rate:.1%}: set win_rate={kept:.6g}, or leave one conversion to history"
            )
        return out
    rest = min(rest, 1.0)
    hist = math.prod(conversions[s] for s in free)
    for s in free:
        if rest == 1.0:
            out[s] = 1.0
        elif hist >= 1.0:
            out[s] = rest ** (1 / len(free))
        else:
            out[s] = min(1.0, math.exp(math.log(rest) / math.log(hist) * math.log(conversions[s])))
    return out


def plan_from(
    a: Assumptions,
    target_revenue: float,
    *,
    deal_size: float | None = None,
    win_rate: float | None = None,
    conversions: Mapping[str, float] | None = None,
    activities_per_opportunity: Mapping[str, float] | None = None,
    head_count: int | None = None,
    lead_share: float | None = None,
) -> pd.DataFrame:
    """The plan of :func:`plan` from given assumptions: pure arithmetic, no data access."""
    target = _number("target_revenue", target_revenue, lo=0)
    over: dict[str, float] = {}
    if deal_size is not None:
        over["avg_deal_size"] = _number("deal_size", deal_size, lo=0)
    if win_rate is not None:
        over["win_rate"] = _number("win_rate", win_rate, lo=0, hi=1)
    if lead_share is not None:
        over["lead_share"] = _number("lead_share", lead_share, lo=0, hi=1, lo_open=False)
    for k, v in (conversions or {}).items():
        step = _conversion_key(k)
        over[f"conversion:{step}"] = _number(f"conversion of {step}", v, lo=0, hi=1)
    for k, v in (activities_per_opportunity or {}).items():
        t = _activity_key(k)
        over[f"activities_per_opportunity:{t}"] = _number(
            f"activities per opportunity ({t})", v, lo=0, lo_open=False)
    if head_count is None:
        heads, head_source = a.head_count, "history"
    else:
        if isinstance(head_count, bool) or not isinstance(head_count, Real) or head_count <= 0 \
                or float(head_count) != int(head_count):
            raise PlanError(f"head_count must be a whole number of reps > 0, got {head_count!r}")
        heads, head_source = int(head_count), "override"

    used: dict[str, dict[str, Any]] = {}

    def value(key: str) -> tuple[float | None, str]:
        if key in over:
            val, source = over[key], "override"
        else:
            val, source = a.values.get(key), "history"
        used.setdefault(key, {"value": val, "applied": val, "source": source, "history": a.values.get(key)})
        return val, source

    for key, arg in (("avg_deal_size", "deal_size"), ("win_rate", "win_rate")):
        if not value(key)[0]:  # None (no history) or 0 (nothing won in the window): nothing to divide by
            reason = a.unavailable.get(key) or f"it is 0 in the history (numerator {a.numerators.get(key, 0):g})"
            raise PlanError(
                f"no historical {key.replace('_', ' ')} for the plan ({reason}, window {a.window_label}); "
                f"pass {arg}=... or a longer history=..."
            )

    rows: list[dict[str, Any]] = []
    gone: dict[str, str] = {}

    def add(step: str, section: str, description: str, quantity: float | None, key: str | None) -> float | None:
        """Append a row; ``quantity`` None means not available (the row is left out)."""
        if quantity is None:
            return None
        val, source = value(key) if key else (None, "target")
        hist = source == "history" and key is not None
        rows.append({
            "step": step,
            "section": section,
            "description": description,
            "quantity": quantity,
            "needed": quantity if step == "revenue" else float(math.ceil(quantity - _EPS)),
            "assumption": key,
            "assumption_value": val,
            "applied_value": used[key]["applied"] if key else None,
            "source": source,
            "numerator": a.numerators.get(key, math.nan) if hist else math.nan,
            "denominator": a.denominators.get(key, math.nan) if hist else math.nan,
        })
        return quantity

    def missing(step: str, key: str, because: str | None = None) -> None:
        gone[step] = because or a.unavailable.get(key, f"{key} is not available")

    add("revenue", "target", "revenue (bookings) to win in the period", target, None)
    deals = add("deals_won", "deals", "deals to win: target / average deal size",
                target / value("avg_deal_size")[0], "avg_deal_size")
    rate = value("win_rate")[0]
    opps = add("opportunities", "deals", "opportunities to create: deals won / win rate", deals / rate, "win_rate")

    # the deal funnel: one chain from the opportunities (first step) to the won deals
    conv = {s: value(f"conversion:{s}")[0] for s in STAGE_STEPS}
    blocked = {s: c for s, c in conv.items() if not c or c > 1}  # None (no history), 0% or above 100%
    if blocked:
        for s in STAGE_STEPS:
            key = f"conversion:{s}"
            if s in blocked:
                if conv[s] is None:
                    reason = a.unavailable.get(key)
                elif conv[s] > 1:
                    reason = (f"its history conversion is {conv[s]:.1%} (more deals advanced than entered "
                              f"{step_label(s).lower()} in {a.window_label}): check stage_history")
                else:
                    reason = f"no deal that passed {step_label(s).lower()} in {a.window_label} went further"
                missing(s, key, f"{reason or key + ' is not available'}; pass conversions={{{s!r}: ...}} to plan the funnel")
            else:
                first = next(iter(blocked))
                missing(s, key, f"the funnel needs the conversion of every step and {step_label(first).lower()} "
                                f"has no usable one; pass conversions={{{first!r}: ...}}")
    else:
        fixed = [s for s in STAGE_STEPS if f"conversion:{s}" in over]
        fit = fit_funnel(rate, {s: float(c) for s, c in conv.items()}, fixed=fixed)
        counts: dict[str, float] = {}
        nxt = deals
        for s in reversed(STAGE_STEPS):
            nxt = counts[s] = nxt / fit[s]
        first = STAGE_STEPS[0]
        if abs(counts[first] - opps) > FIT_TOLERANCE * 10 * opps:  # the fit makes them equal
            raise AssertionError(f"funnel fit: {counts[first]!r} pass {first} for {opps!r} opportunities")
        counts = {s: min(n, opps) for s, n in counts.items()}
        counts[first] = opps
        for s in reversed(STAGE_STEPS):
            key = f"conversion:{s}"
            used[key]["applied"] = fit[s]
            to = "won" if s == "closing" else step_label(FUNNEL_STEPS[FUNNEL_STEPS.index(s) + 1]).lower()
            how = "all opportunities" if s == first else "next step / applied conversion"
            add(s, "funnel", f"deals passing {step_label(s).lower()}: {how} to {to}", counts[s], key)

    share = value("lead_share")[0]
    lead_opps = None
    if share is None:
        missing("lead_opportunities", "lead_share")
    else:
        lead_opps = add("lead_opportunities", "leads", "opportunities from leads: opportunities × lead share",
                        opps * share, "lead_share")
    qualified = None
    conv_q = value("conversion:qualified")[0]
    if lead_opps is None or not conv_q:
        missing("qualified_leads", "conversion:qualified" if lead_opps is not None else "lead_share")
    else:
        qualified = add("qualified_leads", "leads",
                        "qualified leads: opportunities from leads / conversion qualified → opportunity",
                        lead_opps / conv_q, "conversion:qualified")
    conv_l = value("conversion:lead")[0]
    if qualified is None or not conv_l:
        missing("leads", "conversion:lead" if qualified is not None else "conversion:qualified")
    else:
        add("leads", "leads", "leads: qualified leads / conversion lead → qualified", qualified / conv_l,
            "conversion:lead")

    types = [t for t in ACTIVITY_TYPES
             if f"activities_per_opportunity:{t}" in a.values or f"activities_per_opportunity:{t}" in over]
    for t in types:
        key = f"activities_per_opportunity:{t}"
        apo = value(key)[0]
        if apo is None:
            missing(ACTIVITY_STEPS[t], key)
            continue
        noun = ACTIVITY_STEPS[t].replace("_", " ")
        add(ACTIVITY_STEPS[t], "activities", f"{noun}: opportunities × {noun} per opportunity", opps * apo, key)

    out = pd.DataFrame(rows, columns=[c for c in PLAN_COLUMNS if c not in ("per_rep", "per_rep_per_day")])
    for c in ("quantity", "needed", "assumption_value", "applied_value", "numerator", "denominator"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    out["per_rep"] = out.quantity / heads if heads else math.nan
    days = a.working_days
    out["per_rep_per_day"] = out.per_rep / days if days else math.nan
    for c in ("step", "section", "description", "assumption", "source"):
        out[c] = out[c].astype("string")
    out = out[PLAN_COLUMNS]
    out.attrs.update({
        "period": a.period.label,
        "target": target,
        "currency": a.currency,
        "numbers": a.formats,
        "head_count": heads,
        "head_count_source": head_source,
        "working_days": days,
        "history": a.window_label,
        "unavailable": gone,
        "assumptions": used,
    })
    return out


# -- presentation helpers --------------------------------------------------------------------


def numbers_of(frame: pd.DataFrame) -> Numbers:
    """The formatter of a plan frame: ``attrs["numbers"]``, else ``Numbers(attrs["currency"])``."""
    fmt = frame.attrs.get("numbers")
    return fmt if isinstance(fmt, Numbers) else Numbers(frame.attrs.get("currency", "USD"))


def summary(frame: pd.DataFrame) -> str:
    """One sentence: the target, deals and opportunities needed, and the daily load per rep.

    Example: ``To win $5M in 2026-Q4, 33 reps need 50 won deals from 200 opportunities (727
    leads): 6.1 opportunities each, and 21.4 activities per rep per working day over 62 days.``
    """
    q = frame.set_index("step")
    at = frame.attrs
    fmt = numbers_of(frame)
    parts = [f"To win {fmt.money(at.get('target', q.quantity.get('revenue', 0.0)))} "
             f"in {at.get('period', 'the period')}, {at.get('head_count', 0)} reps need "
             f"{fmt.number(q.needed['deals_won'])} won deals from {fmt.number(q.needed['opportunities'])} opportunities"]
    if "leads" in q.index:
        parts.append(f" ({fmt.number(q.needed['leads'])} leads)")
    per = q.per_rep.get("opportunities")
    tail = f": {fmt.number(per, digits=1)} opportunities each" if per is not None and not pd.isna(per) else ""
    acts = frame[frame.section == "activities"]
    daily = acts.per_rep_per_day.sum() if len(acts) else math.nan
    if len(acts) and not pd.isna(daily):
        tail += f", and {fmt.number(daily, digits=1)} activities per rep per working day over {at.get('working_days', 0)} days"
    return "".join(parts) + tail + "."


# -- helpers ----------------------------------------------------------------------------------




def _ts(d: date) -> Any:
    return ibis.literal(datetime.combine(d, time()), type=dt.Timestamp())
