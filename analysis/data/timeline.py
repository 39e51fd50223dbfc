"""The deal timeline: one reading of a moment, one "now", and one answer to "which deals were
open then, and where". Every module that asks it (the metric engine's open pipeline, coverage and
velocity; the pipeline as of a past day and its waterfall; the funnel snapshot; stalled deals and
time in stage; the forecast's snapshots; coaching's stall tests) calls this module.

Moments
-------
* A **date** means the end of that day: everything that happened on it has happened. Text
  without a time ("2026-09-15", "20260915") is a date.
* A **datetime** is that instant, in company-local wall time when naive; an aware one is
  converted to the company time zone (``config.timezone``).
* **Now** is the data's snapshot day (:func:`snapshot_day`): ``as_of`` from the config, else the
  data's last day (:meth:`~analysis.loading.Dataset.last_date`). The wall clock is never used.
* A deal **closes on** its ``close_date``, a day: it is gone at the end of that day. A won or lost
  deal whose close_date is missing or before its creation day closes on its creation day.

Which deals are open at a moment
--------------------------------
A deal is *placed* on the timeline when it has a ``created_at`` and a status of open, won or
lost (``ds.quality()`` lists the others; they are left out everywhere). A placed deal is open at
moment m when it was created at or before m and had not closed by m. Whether it had closed is
decided once, here, when the final record (``status``, ``close_date``) and the stage history
disagree:

1. **History rows decide while they cover the moment.** When the deal's history has a closing
   row (a won or lost stage) and rows continue after m, the last row at or before m decides: a
   closing row means closed (with that outcome); any other row (a re-opening) means open.
   Rows entered at the same instant are ordered by step (:data:`STEP_CODE`), so a deal moved and
   closed at one instant is closed.
2. **After the history's last row**, a history that ends with a closing row keeps the deal
   closed, unless its status is open today (re-opened without a row); a history that ends with
   an open stage (or has no closing row at all, as many exports have) leaves the decision to
   the final record: the deal is closed from its close_date on.
3. **Without history** the final record decides: closed from its close_date on.

Where an open deal sits (its step) at m: the step of the last history row at or before m; at
now or later, the deal's current stage when its status is open; before its first row, the step
of its first row into an open stage; without history, its current stage if it is open today,
else unknown (NULL). ``since`` is the start of that stint: consecutive rows in one step are one
stint; a deal without a row yet counts from its creation. ``step_source`` says which rule gave
the step: ``history``, ``first_history``, ``current`` or ``none``.

Amounts are the deal's current amount in the reporting currency (the data model has no amount
history), summed exactly in decimal (:func:`money_sum`). Groups are today's attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd

from analysis.data.loading import Dataset
from analysis.data.periods import Period
from analysis.data.schema import STATUSES, STEPS
from analysis.errors import WorkbenchError

#: Statuses of a closed deal.
CLOSED = ("won", "lost")
#: Step given to stage_history rows whose stage maps to no step.
UNKNOWN_STEP = "unknown"
#: Every step a stage_history row can have, in display order.
HISTORY_STEPS: tuple[str, ...] = (*STEPS, *CLOSED, UNKNOWN_STEP)
#: Integer code of each history step (its index in HISTORY_STEPS); also the order of rows entered
#: at the same instant (a closing row comes after any open step).
STEP_CODE = {s: i for i, s in enumerate(HISTORY_STEPS)}
#: The decimal type exact money sums are taken in.
MONEY = dt.Decimal(38, 6)
#: Where an open deal's step came from (see the module docstring).
STEP_SOURCES = ("history", "first_history", "current", "none")

_CLOSED_CODES = [STEP_CODE[s] for s in CLOSED]
_ONE_MICROSECOND = timedelta(microseconds=1)


class TimelineError(WorkbenchError):
    """A moment that cannot be read."""


# -- moments ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """A point on the deal timeline.

    ``upto``: events strictly before it have happened (the start of the next day for a date;
    one microsecond after the instant for a datetime). ``close_before``: a deal whose close day
    is before it has closed. ``day``: the calendar day the moment falls on.
    """

    upto: datetime
    close_before: date
    day: date
    has_time: bool = False

    def happened(self, col: Any) -> Any:
        """Boolean expression: the timestamp column ``col`` is at or before the moment."""
        return col < ibis.literal(self.upto, type=dt.Timestamp())

    @property
    def instant(self) -> datetime:
        """The moment as a naive local datetime (the end of the day for a date: next midnight)."""
        return self.upto - _ONE_MICROSECOND if self.has_time else self.upto

    @property
    def label(self) -> str:
        return (self.upto - _ONE_MICROSECOND).isoformat() if self.has_time else self.day.isoformat()


def end_of_day(day: date) -> Moment:
    """The moment at the end of ``day``."""
    nxt = day + timedelta(days=1)
    return Moment(datetime.combine(nxt, datetime.min.time()), nxt, day, False)


def moment(ds: Dataset, when: Any = None, what: str = "as_of", *, error: type[Exception] = TimelineError) -> Moment:
    """``when`` as a :class:`Moment` (``None``: :func:`now`).

    Accepts a date, a datetime, a pandas Timestamp or ISO 8601 text; text without a time is a
    date (the end of that day). Raises ``error`` (default :class:`TimelineError`) naming ``what``
    for anything else.
    """
    if when is None:
        return now(ds)
    if isinstance(when, Moment):
        return when
    value: Any = when
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text)
        except ValueError:
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise error(f"{what}={when!r} is not a date or datetime; use ISO 8601 like 2025-06-30 "
                            "or 2025-06-30T17:00") from None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value).to_pydatetime()
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(ds.config.timezone)).replace(tzinfo=None)
        return Moment(value + _ONE_MICROSECOND, value.date(), value.date(), True)
    if isinstance(value, date):
        return end_of_day(value)
    raise error(f"{what}={when!r} is not a date or datetime; pass datetime.date(2025, 6, 30) or '2025-06-30'")


def snapshot_day(ds: Dataset) -> date:
    """The data's snapshot day: ``config.as_of``, else the data's last day (never the clock)."""
    return ds.last_date()


def now(ds: Dataset) -> Moment:
    """The end of the snapshot day: the moment "today's" figures describe."""
    return end_of_day(snapshot_day(ds))


def period_end(p: Period) -> Moment:
    """The end of a period's last day."""
    return end_of_day(p.last_day)


def period_start(p: Period) -> Moment:
    """The start of a period: the end of the day before its first day."""
    return end_of_day(p.start - timedelta(days=1))


# -- deals -----------------------------------------------------------------------------------------


def deals(ds: Dataset) -> ibis.Table:
    """Every opportunity with its derived fields; computed once per dataset.

    Amounts and costs are in the reporting currency (converted at load). Added columns:
    ``cycle_days`` (close_date - creation day), ``customer_type`` (``existing`` when the account
    had a won deal before the deal's creation day, ``new`` otherwise, NULL without an account)
    and ``closed_on`` (the day a won or lost deal closes: its close_date, or its creation day
    when the close_date is missing or earlier; NULL for other statuses).
    """
    return ds.cached("opportunities", lambda: _deals(ds))


def _deals(ds: Dataset) -> ibis.Table:
    t = ds.table("opportunities")
    created = t.created_at.date()
    cycle = t.close_date.delta(created, unit="day")
    won = t.filter((t.status == "won") & t.account_id.notnull() & t.close_date.notnull())
    first = won.group_by(won.account_id.name("_acct")).aggregate(_first_won=won.close_date.min())
    t = t.left_join(first, t.account_id == first._acct).drop("_acct")
    ctype = ibis.cases(
        (t.account_id.isnull(), ibis.null(dt.string)),
        (t._first_won < t.created_at.date(), "existing"),
        else_="new",
    )
    closed = t.status.isin(list(CLOSED))
    closed_on = ibis.cases(
        (closed & t.close_date.notnull() & (t.close_date >= t.created_at.date()), t.close_date),
        (closed & t.created_at.notnull(), t.created_at.date()),
        (closed, t.close_date),
        else_=ibis.null(dt.date),
    )
    return t.mutate(cycle_days=cycle.cast("float64"), customer_type=ctype, closed_on=closed_on).drop("_first_won")


def placed(t: ibis.Table) -> Any:
    """Boolean expression: a deal the timeline can place (created_at known, status known)."""
    return t.created_at.notnull() & t.status.isin(list(STATUSES))


# -- the stage history -----------------------------------------------------------------------------


def history(ds: Dataset) -> ibis.Table:
    """``stage_history`` rows with a deal and a time, in timeline order; computed once per dataset.

    Columns: opportunity_id, entered_at, stage, code (:data:`STEP_CODE`), seq (0-based order
    within the deal: by entered_at, then code, then stage), stint_start (when the stint this row
    belongs to began: consecutive rows of one step are one stint), next_at (entered_at of the
    deal's next row, NULL on its last: the row is the deal's last at a moment m when
    ``entered_at < m <= next_at``).
    """

    def build() -> ibis.Table:
        sh = ds.table("stage_history")
        sh = sh.filter(sh.opportunity_id.notnull() & sh.entered_at.notnull())
        code = sh.step.fill_null(UNKNOWN_STEP).substitute(STEP_CODE, else_=STEP_CODE[UNKNOWN_STEP]).cast("int8")
        t = sh.select(opportunity_id=sh.opportunity_id, entered_at=sh.entered_at, stage=sh.stage, code=code)
        w = ibis.window(group_by=t.opportunity_id, order_by=[t.entered_at, t.code, t.stage])
        t = t.mutate(seq=ibis.row_number().over(w).cast("int32"), _prev=t.code.lag().over(w))
        run_start = ibis.cases((t._prev.isnull() | (t._prev != t.code), t.entered_at), else_=ibis.null(dt.Timestamp()))
        upto = ibis.window(group_by=t.opportunity_id, order_by=t.seq, rows=(None, 0))
        after = ibis.window(group_by=t.opportunity_id, order_by=t.seq)
        return t.select("opportunity_id", "entered_at", "stage", "code", "seq",
                        stint_start=run_start.max().over(upto), next_at=t.entered_at.lead().over(after))

    return ds.cached("timeline__history", build)


def _history_ends(ds: Dataset) -> ibis.Table:
    """Per deal with history: whether it has a closing row, its last row (time, code) and its first
    row into an open stage (code, stage)."""

    def build() -> ibis.Table:
        h = history(ds)
        closing = h.code.isin(_CLOSED_CODES)
        return h.group_by(h.opportunity_id.name("_e_id")).aggregate(
            _e_has_close=closing.any(),
            _e_last_at=h.entered_at.max(),
            _e_last_code=h.code.argmax(h.seq),
            _e_first_code=h.code.argmin(h.seq, where=~closing),
            _e_first_stage=h.stage.argmin(h.seq, where=~closing),
        )

    return ds.cached("timeline__ends", build)


def final_closes(ds: Dataset) -> ibis.Table:
    """Deals whose close is decided by the final record after their history ends (rule 2 of the
    module docstring: won or lost, history ending in an open stage or without closing rows):
    ``opportunity_id`` and ``closed_at``, the end of the close day. A stint still running at the
    end of such a deal's history ends then (see :func:`analysis.funnel.time_in_stage`)."""
    o = deals(ds)
    o = o.filter(placed(o) & o.closed_on.notnull())
    e = _history_ends(ds)
    j = o.join(e, o.opportunity_id == e._e_id)
    j = j.filter(~j._e_last_code.isin(_CLOSED_CODES))
    closed_at = (j.closed_on + ibis.interval(days=1)).cast(dt.Timestamp())
    return j.select(opportunity_id=j.opportunity_id, closed_at=closed_at)


def open_stage_entries(ds: Dataset, after: Moment, upto: Moment) -> ibis.Table:
    """Deals (``opportunity_id``, one row each) with a history row into an open stage after
    moment ``after`` and at or before ``upto``: a deal closed at ``after`` with such a row was
    re-opened in between."""
    if not ds.has("stage_history"):
        return ibis.memtable(pd.DataFrame({"opportunity_id": pd.Series([], dtype="string")}))
    h = history(ds)
    h = h.filter(~h.code.isin(_CLOSED_CODES) & ~after.happened(h.entered_at) & upto.happened(h.entered_at))
    return h.select("opportunity_id").distinct()


# -- the state of every deal at a set of moments ---------------------------------------------------


def _moments_table(ds: Dataset, moments: Mapping[str, Moment]) -> ibis.Table:
    current = now(ds).upto if ds.config.as_of or ds.snapshot is not None else None
    rows = pd.DataFrame({
        "_m": list(moments),
        "_upto": [m.upto for m in moments.values()],
        "_cb": [m.close_before for m in moments.values()],
        "_now": [current is not None and m.upto >= current for m in moments.values()],
    })
    return ibis.memtable(rows).cast({"_m": "string", "_upto": "timestamp", "_cb": "date", "_now": "boolean"})


def _as_mapping(moments: Moment | Mapping[str, Moment] | Sequence[Moment]) -> dict[str, Moment]:
    if isinstance(moments, Moment):
        return {moments.label: moments}
    if isinstance(moments, Mapping):
        return dict(moments)
    return {m.label: m for m in moments}


def states(
    ds: Dataset,
    moments: Moment | Mapping[str, Moment] | Sequence[Moment],
    *,
    table: ibis.Table | None = None,
    steps: bool = False,
) -> ibis.Table:
    """The state of every placed deal created by each moment: one row per (moment, deal).

    Parameters
    ----------
    ds
        A dataset.
    moments
        One :class:`Moment`, a sequence of them (keyed by their labels) or a mapping of key to
        moment (a period label to the end of that period, for instance).
    table
        The deals to judge (default :func:`deals`): any filter of it, with columns added
        (dimensions...); it must keep ``opportunity_id``, ``created_at``, ``status``,
        ``closed_on``, ``step`` and ``stage``.
    steps
        Also find each open deal's step (slower: reads the history up to each moment).

    Returns
    -------
    ibis.Table
        ``table``'s columns plus ``moment`` (the key) and ``state`` (``open``, ``won`` or
        ``lost``); with ``steps``, ``step`` and ``stage`` are replaced by those at the moment
        (NULL for closed deals) and ``since`` (start of the stint) and ``step_source`` are added.
        Rules in the module docstring.
    """
    return _states(ds, moments, table, steps, open_only=False)


def open_deals(
    ds: Dataset,
    moments: Moment | Mapping[str, Moment] | Sequence[Moment],
    *,
    table: ibis.Table | None = None,
    steps: bool = False,
) -> ibis.Table:
    """The deals open at each moment: :func:`states` rows whose state is ``open``."""
    t = _states(ds, moments, table, steps, open_only=True)
    return t.filter(t.state == "open")


def _states(ds: Dataset, moments: Moment | Mapping[str, Moment] | Sequence[Moment], table: ibis.Table | None,
            steps: bool, *, open_only: bool) -> ibis.Table:
    """:func:`states`; ``open_only`` drops early the (moment, deal) rows that are closed whatever
    the history says (a moment after the history, closed by the final record), so the history is
    read only for the rows that can be open."""
    keyed = _as_mapping(moments)
    o = deals(ds) if table is None else table
    cols = list(o.columns)
    o = o.filter(placed(o))
    mt = _moments_table(ds, keyed)
    if not ds.has("stage_history"):
        d = o.cross_join(mt)
        d = d.filter(d.created_at < d._upto)
        d = d.mutate(_closed=_final_closed(d), _out=d.status)
        if steps:
            d = _no_history_steps(d)
        return _finish(d, cols, steps)
    # the history's ends are a property of the deal, not of the moment: joined once per deal,
    # before the rows are multiplied by the moments
    e = _history_ends(ds)
    o = o.left_join(e, o.opportunity_id == e._e_id)
    d = o.cross_join(mt)
    d = d.filter(d.created_at < d._upto)
    has_close = d._e_has_close.fill_null(False)
    covered = has_close & (d._e_last_at >= d._upto)
    if open_only:
        d = d.filter(covered | ~_uncovered_closed(d))
        has_close = d._e_has_close.fill_null(False)
        covered = has_close & (d._e_last_at >= d._upto)
    # the last row at the moment decides openness while the history covers it; otherwise it only
    # gives the step of a deal the final record leaves open
    need = covered | (d._e_last_at.notnull() & ~_uncovered_closed(d)) if steps else covered
    # the deal's last history row at the moment (the one whose next row, if any, is not before
    # it): at most one per (moment, deal), so one join and no aggregation
    cand = d.filter(need).select(_c_id=d.opportunity_id, _c_m=d._m, _c_upto=d._upto)
    h = history(ds)
    x = cand.join(h, [cand._c_id == h.opportunity_id, h.entered_at < cand._c_upto,
                      h.next_at.isnull() | (h.next_at >= cand._c_upto)])
    last = x.select(_l_id=x._c_id, _l_m=x._c_m, _l_code=x.code, _l_stage=x.stage, _l_since=x.stint_start,
                    _l_at=x.entered_at)
    d = d.left_join(last, [d.opportunity_id == last._l_id, d._m == last._l_m])
    has_close = d._e_has_close.fill_null(False)
    covered = has_close & (d._e_last_at >= d._upto)
    l_closing = d._l_code.isin(_CLOSED_CODES).fill_null(False)
    closed = ibis.cases((covered, l_closing), else_=_uncovered_closed(d))
    outcome = ibis.cases(
        (covered & l_closing, _code_name(d._l_code)),
        else_=d.status,
    )
    d = d.mutate(_closed=closed, _out=outcome)
    if steps:
        d = _history_steps(d)
    return _finish(d, cols, steps)


def _uncovered_closed(d: ibis.Table) -> Any:
    """Closed at a moment the history does not cover (rules 2 and 3 of the module docstring):
    a history ending in a closing row keeps a won or lost deal closed; otherwise the final
    record decides."""
    ends_closed = d._e_has_close.fill_null(False) & d._e_last_code.isin(_CLOSED_CODES).fill_null(False)
    return ibis.cases((ends_closed, d.status.isin(list(CLOSED))), else_=_final_closed(d))


def _final_closed(d: ibis.Table) -> Any:
    """By the final record: won or lost, and the close day is before the moment's close bound."""
    return d.status.isin(list(CLOSED)) & (d.closed_on < d._cb).fill_null(False)


def _code_name(code: Any) -> Any:
    return code.substitute(dict(enumerate(HISTORY_STEPS)), else_=ibis.literal(UNKNOWN_STEP))


def _known_step(step: Any) -> Any:
    return ibis.ifelse(step.isin(list(STEPS)), step, ibis.null(dt.string))


def _no_history_steps(d: ibis.Table) -> ibis.Table:
    is_open = d.status == "open"
    return d.mutate(
        _step=ibis.ifelse(is_open, _known_step(d.step), ibis.null(dt.string)),
        _stage=ibis.ifelse(is_open, d.stage, ibis.null(dt.string)),
        _since=d.created_at,
        _source=ibis.ifelse(is_open, "current", "none"),
    )


def _history_steps(d: ibis.Table) -> ibis.Table:
    is_open = d.status == "open"
    has_row = d._l_code.notnull()
    l_closing = d._l_code.isin(_CLOSED_CODES).fill_null(False)
    first = d._e_first_code.notnull()
    current_now = d._now & is_open
    rule = ibis.cases(
        (current_now, "current"),
        (has_row & ~l_closing, "history"),
        (has_row & is_open, "current"),
        (~has_row & first, "first_history"),
        (is_open, "current"),
        else_="none",
    )
    step = ibis.cases(
        (rule == "history", _code_name(d._l_code)),
        (rule == "first_history", _code_name(d._e_first_code)),
        (rule == "current", d.step),
        else_=ibis.null(dt.string),
    )
    stage = ibis.cases(
        (rule == "history", d._l_stage),
        (rule == "first_history", d._e_first_stage),
        (rule == "current", d.stage),
        else_=ibis.null(dt.string),
    )
    same = has_row & ~l_closing & (_code_name(d._l_code) == d.step)
    since = ibis.cases(
        (rule == "history", d._l_since),
        ((rule == "current") & same, d._l_since),
        ((rule == "current") & has_row, d._l_at),
        else_=d.created_at,
    )
    return d.mutate(_step=_known_step(step), _stage=stage, _since=since, _source=rule)


def _finish(d: ibis.Table, cols: list[str], steps: bool) -> ibis.Table:
    state = ibis.ifelse(d._closed, d._out, "open")
    if not steps:
        return d.select(*cols, moment=d._m, state=state)
    closed = d._closed
    out = {c: d[c] for c in cols}
    out["step"] = ibis.ifelse(closed, ibis.null(dt.string), d._step)
    out["stage"] = ibis.ifelse(closed, ibis.null(dt.string), d._stage)
    return d.select(**out, moment=d._m, state=state, since=d._since,
                    step_source=ibis.ifelse(closed, "none", d._source))


# -- money -----------------------------------------------------------------------------------------


def elapsed(end: Any, start: Any, unit_seconds: float) -> Any:
    """Time from ``start`` to ``end`` (timestamp expressions) in units of ``unit_seconds`` seconds
    (86,400 for days, 60 for minutes), fractional and float64, to the microsecond on every engine:
    an exact microsecond difference (Spark's ``epoch_seconds`` drops fractions of a second)."""
    return end.delta(start, unit="microsecond").cast("float64") / (unit_seconds * 1_000_000)


def money_sum(col: Any, where: Any = None) -> Any:
    """Exact decimal sum of a money column (NULL amounts count as 0): the same figure whatever the
    row order or thread count. Cast the result to float64 at the edge."""
    return col.cast(MONEY).sum(where=where)


def money_total(col: Any, where: Any = None) -> Any:
    """:func:`money_sum` as float64, for result frames."""
    return money_sum(col, where).cast("float64")


def to_decimal(value: Any) -> Decimal:
    """A summed money value as :class:`~decimal.Decimal` (NULL/NaN as 0)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


# -- employment ------------------------------------------------------------------------------------


def employed_working_days(reps: pd.DataFrame, p: Period, config: Any) -> np.ndarray:
    """Working days (``config.working_days`` less ``config.holidays``) in P on which each rep
    was employed: from ``hire_date`` (or P's start) to ``end_date`` inclusive (or P's end)."""
    mask = [1 if i in config.weekday_numbers() else 0 for i in range(7)]
    holidays = np.array(list(config.holidays), dtype="datetime64[D]")
    lo, hi = np.datetime64(p.start, "D"), np.datetime64(p.end, "D")
    hire = pd.to_datetime(reps["hire_date"], errors="coerce").values.astype("datetime64[D]")
    leave = pd.to_datetime(reps["end_date"], errors="coerce").values.astype("datetime64[D]")
    start = np.where(np.isnat(hire), lo, np.maximum(hire, lo))
    end = np.where(np.isnat(leave), hi, np.minimum(leave + np.timedelta64(1, "D"), hi))
    end = np.maximum(end, start)
    return np.busday_count(start, end, weekmask=mask, holidays=holidays)


def employed(reps: pd.DataFrame, p: Period) -> pd.Series:
    """Which reps were employed at some time in P: hired before P ends (or no ``hire_date``) and
    not gone before P starts (no ``end_date``, or one on or after P's first day)."""
    none = pd.Series(pd.NaT, index=reps.index)
    hire = pd.to_datetime(reps["hire_date"] if "hire_date" in reps else none, errors="coerce")
    leave = pd.to_datetime(reps["end_date"] if "end_date" in reps else none, errors="coerce")
    return (hire.isna() | (hire < pd.Timestamp(p.end))) & (leave.isna() | (leave >= pd.Timestamp(p.start)))
