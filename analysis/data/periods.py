"""Reporting periods: grains, labels, fiscal years, and matching ibis expressions.

A :class:`Period` is one day, ISO week, month, quarter, half or year, on a calendar year or on
a fiscal year that starts on a configurable month. The same rules are available three ways:
as Python objects (:func:`parse_period`, :func:`period_of`, :func:`periods_between`,
:func:`last_complete`), and as ibis expressions for the metric engine
(:func:`period_start_expr`, :func:`period_label_expr`) that give the same starts and labels.

Conventions
-----------
* ``end`` is **exclusive**: a period covers ``start <= d < end``. ``last_day`` is the inclusive
  last date.
* Fiscal years are named by the calendar year in which they **end**. With fiscal start month 7,
  ``FY2026`` runs 2025-07-01 .. 2026-06-30 and ``FY2026-Q1`` is 2025-07-01 .. 2025-09-30.
  With fiscal start month 1 the fiscal year is the calendar year and labels carry no ``FY``.
* Only quarters, halves and years are fiscal. Days, ISO weeks and months keep their calendar
  labels in fiscal mode (``2025-07``, ``2025-W27``), and a day, week or month period always stores
  ``fiscal_start_month=1`` so that equal spans compare equal.
* Labels: ``2025-07-14`` (day), ``2025-W27`` (ISO week), ``2025-07`` (month), ``2025-Q3``,
  ``2025-H2``, ``2025``; fiscal ``FY2026-Q1``, ``FY2026-H1``, ``FY2026``. Years are written with
  four digits.
* Timestamps are assigned by their wall-clock date. Convert them to the company time zone
  *before* asking for their period (SPEC section 3); date-only fields are never shifted.

Every bad input raises :class:`~analysis.errors.PeriodError` with one line that names the bad
value and shows valid examples.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from numbers import Integral
from typing import TYPE_CHECKING, Any

from analysis.errors import PeriodError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import ibis.expr.types as ir

__all__ = [
    "GRAINS",
    "GRAIN_ALIASES",
    "Period",
    "grain_of",
    "last_complete",
    "parse_period",
    "period_label_expr",
    "period_of",
    "period_start_expr",
    "periods_between",
]

#: The period grains, finest first.
GRAINS: tuple[str, ...] = ("day", "week", "month", "quarter", "half", "year")

#: Other names accepted for a grain (cadence names and plurals), mapped to the grain.
GRAIN_ALIASES: dict[str, str] = {
    "daily": "day",
    "days": "day",
    "weekly": "week",
    "weeks": "week",
    "isoweek": "week",
    "monthly": "month",
    "months": "month",
    "quarterly": "quarter",
    "quarters": "quarter",
    "qtr": "quarter",
    "semiannual": "half",
    "semi-annual": "half",
    "semiannually": "half",
    "halves": "half",
    "halfyear": "half",
    "half-year": "half",
    "annual": "year",
    "annually": "year",
    "yearly": "year",
    "years": "year",
}

#: Months per period for the month-based grains.
_MONTHS = {"month": 1, "quarter": 3, "half": 6, "year": 12}
_FISCAL_GRAINS = ("quarter", "half", "year")
_RANK = {g: i for i, g in enumerate(GRAINS)}

_EXAMPLES = "2025-07-14, 2025-W27, 2025-07, 2025-Q3, 2025-H2, 2025, FY2026-Q1, FY2026-H1, FY2026"
_LABEL_HINT = f"use a label like {_EXAMPLES}"

_DAY_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_WEEK_RE = re.compile(r"(FY)?(\d{4})-W(\d{1,2})")
_MONTH_RE = re.compile(r"(FY)?(\d{4})-(\d{1,2})")
_PART_RE = re.compile(r"(FY)?(\d{4})-([QH])(\d{1,2})")
_YEAR_RE = re.compile(r"(FY)?(\d{4})")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _check_fiscal_start(fiscal_start_month: Any) -> int:
    if (
        isinstance(fiscal_start_month, bool)
        or not isinstance(fiscal_start_month, Integral)
        or not 1 <= int(fiscal_start_month) <= 12
    ):
        raise PeriodError(
            f"invalid fiscal start month {fiscal_start_month!r}; "
            "use a month number 1-12 (1 = calendar year, 7 = fiscal year starting in July)"
        )
    return int(fiscal_start_month)


def _as_date(value: Any, what: str = "date") -> date:
    """Return the calendar date of a date or datetime (wall-clock, no time zone shift)."""
    if isinstance(value, datetime):  # also pandas.Timestamp
        return value.date()
    if isinstance(value, date):
        return value
    raise PeriodError(
        f"invalid {what} {value!r} ({type(value).__name__}); pass a datetime.date or datetime"
    )


def _ym_date(total_months: int) -> date:
    """First day of the month ``total_months`` months after 0000-01 (year*12 + month-1)."""
    year, month0 = divmod(total_months, 12)
    if not 1 <= year <= 9999:
        raise PeriodError(
            f"period year {year} is outside the supported range 0001-9999; "
            "use a period between 0001 and 9998"
        )
    return date(year, month0 + 1, 1)


def _add_days(d: date, n: int) -> date:
    try:
        return d + timedelta(days=n)
    except OverflowError:
        raise PeriodError(
            f"{d.isoformat()} shifted by {n} days is outside the supported range "
            "0001-01-01 .. 9999-12-31"
        ) from None


def _bounds(d: date, grain: str, fiscal_start_month: int) -> tuple[date, date]:
    """Start and exclusive end of the period of ``grain`` containing ``d``."""
    if grain == "day":
        return d, _add_days(d, 1)
    if grain == "week":
        start = _add_days(d, -d.weekday())
        return start, _add_days(start, 7)
    size = _MONTHS[grain]
    fsm = fiscal_start_month if grain in _FISCAL_GRAINS else 1
    total = d.year * 12 + d.month - 1
    offset = (d.month - fsm) % 12 % size  # months since the period started
    start_total = total - offset
    return _ym_date(start_total), _ym_date(start_total + size)


def _iso_weeks(iso_year: int) -> int:
    """Number of ISO weeks (52 or 53) in ``iso_year``."""
    return date(iso_year, 12, 28).isocalendar()[1]


def _fiscal_year(start: date, fiscal_start_month: int) -> int:
    """Fiscal year name (the calendar year in which the fiscal year ends) of a date."""
    if fiscal_start_month == 1:
        return start.year
    return start.year + (1 if start.month >= fiscal_start_month else 0)


# --------------------------------------------------------------------------------------------
# Grains
# --------------------------------------------------------------------------------------------


def grain_of(label: Any) -> str:
    """Return the grain named by a grain name, alias, or period label.

    Parameters
    ----------
    label : str
        A grain name (``"quarter"``), a cadence alias (``"quarterly"``, ``"semiannual"``,
        ``"annual"``, ``"monthly"``, ``"weekly"``, ``"daily"``, plurals), case-insensitive,
        or a period label (``"2025-Q3"``, ``"FY2026"``, ``"2025-W27"``).

    Returns
    -------
    str
        One of :data:`GRAINS`.

    Raises
    ------
    PeriodError
        For an unknown name, with a did-you-mean suggestion (``"quater"`` -> ``"quarter"``).

    Examples
    --------
    >>> grain_of("semiannual"), grain_of("Quarter"), grain_of("FY2026-Q1")
    ('half', 'quarter', 'quarter')
    """
    if isinstance(label, Integral) and not isinstance(label, bool):
        return "year"
    if not isinstance(label, str):
        raise PeriodError(
            f"unknown grain {label!r}; use one of {', '.join(GRAINS)} (or a period label)"
        )
    name = label.strip().lower().replace("_", "-").replace(" ", "-")
    if name in GRAINS:
        return name
    if name in GRAIN_ALIASES:
        return GRAIN_ALIASES[name]
    if name[:1].isdigit() or name.startswith("fy"):
        return parse_period(label).grain
    names = list(GRAINS) + list(GRAIN_ALIASES)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {GRAIN_ALIASES.get(close[0], close[0])!r}?)" if close else ""
    raise PeriodError(
        f"unknown grain {label!r}{hint}; use one of {', '.join(GRAINS)}"
        " (aliases: daily, weekly, monthly, quarterly, semiannual, annual)"
    )


# --------------------------------------------------------------------------------------------
# Period
# --------------------------------------------------------------------------------------------


@functools.total_ordering
@dataclass(frozen=True)
class Period:
    """One reporting period: ``start <= d < end`` at a grain, on a calendar or fiscal year.

    Parameters
    ----------
    grain : str
        One of :data:`GRAINS` (aliases such as ``"quarterly"`` are accepted and normalised).
    start : datetime.date
        First day of the period.
    end : datetime.date
        First day **after** the period (exclusive end); see :attr:`last_day`.
    fiscal_start_month : int, default 1
        Month (1-12) on which the fiscal year starts; 1 means the calendar year. Only
        quarters, halves and years are fiscal: for days, weeks and months it is stored as 1.

    Notes
    -----
    Construct periods with :func:`parse_period`, :func:`period_of` or
    :func:`periods_between` rather than by hand; the constructor checks that ``start`` and
    ``end`` bound exactly one period of the grain and raises :class:`PeriodError` otherwise.

    Periods are immutable and hashable. They sort chronologically by ``(start, end)``, then by
    grain (finest first) and fiscal start month, so mixed grains order sensibly.

    Fiscal years are named by the calendar year in which they end: with
    ``fiscal_start_month=7``, ``FY2026`` is 2025-07-01 .. 2026-06-30.

    Examples
    --------
    >>> p = parse_period("FY2026-Q1", fiscal_start_month=7)
    >>> p.start, p.end, p.last_day
    (datetime.date(2025, 7, 1), datetime.date(2025, 10, 1), datetime.date(2025, 9, 30))
    >>> str(p.previous()), str(p.year_ago())
    ('FY2025-Q4', 'FY2025-Q1')
    """

    grain: str
    start: date
    end: date
    fiscal_start_month: int = 1

    def __post_init__(self) -> None:
        grain = grain_of(self.grain) if self.grain not in GRAINS else self.grain
        fsm = _check_fiscal_start(self.fiscal_start_month)
        if grain not in _FISCAL_GRAINS:
            fsm = 1
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, datetime) or not isinstance(value, date):
                raise PeriodError(
                    f"invalid period {name} {value!r}; pass a datetime.date (not a datetime)"
                )
        expected = _bounds(self.start, grain, fsm)
        if expected != (self.start, self.end):
            raise PeriodError(
                f"{self.start.isoformat()} .. {self.end.isoformat()} (exclusive end) is not one "
                f"{grain}; the {grain} starting at or containing {self.start.isoformat()} is "
                f"{expected[0].isoformat()} .. {expected[1].isoformat()}; "
                "build periods with parse_period() or period_of()"
            )
        object.__setattr__(self, "grain", grain)
        object.__setattr__(self, "fiscal_start_month", fsm)

    # ---- ordering -------------------------------------------------------------------------

    def _key(self) -> tuple[date, date, int, int]:
        return (self.start, self.end, _RANK[self.grain], self.fiscal_start_month)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._key() < other._key()

    # ---- basic properties -----------------------------------------------------------------

    @property
    def is_fiscal(self) -> bool:
        """True for a quarter, half or year on a fiscal year that does not start in January."""
        return self.fiscal_start_month != 1

    @property
    def last_day(self) -> date:
        """The last date in the period (inclusive end, ``end - 1 day``)."""
        return self.end - timedelta(days=1)

    @property
    def days(self) -> int:
        """Number of calendar days in the period."""
        return (self.end - self.start).days

    @property
    def fiscal_year(self) -> int:
        """The (fiscal) year the period belongs to, named by the year in which it ends.

        For days and months this is the calendar year; for weeks the ISO year.
        """
        if self.grain == "week":
            return self.start.isocalendar()[0]
        if self.grain in _FISCAL_GRAINS:
            return _fiscal_year(self.start, self.fiscal_start_month)
        return self.start.year

    @property
    def label(self) -> str:
        """The period label, e.g. ``2025-07``, ``2025-W27``, ``2025-Q3``, ``FY2026-H1``.

        ``parse_period(p.label, fiscal_start_month=p.fiscal_start_month) == p`` always holds.
        """
        s = self.start
        if self.grain == "day":
            return s.isoformat()
        if self.grain == "week":
            iso_year, week, _ = s.isocalendar()
            return f"{iso_year:04d}-W{week:02d}"
        if self.grain == "month":
            return f"{s.year:04d}-{s.month:02d}"
        fsm = self.fiscal_start_month
        prefix = "FY" if fsm != 1 else ""
        fy = _fiscal_year(s, fsm)
        if self.grain == "year":
            return f"{prefix}{fy:04d}"
        index = (s.month - fsm) % 12 // _MONTHS[self.grain] + 1
        letter = "Q" if self.grain == "quarter" else "H"
        return f"{prefix}{fy:04d}-{letter}{index}"

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return (
            f"Period({self.label!r}, grain={self.grain!r}, start={self.start.isoformat()}, "
            f"end={self.end.isoformat()}, fiscal_start_month={self.fiscal_start_month})"
        )

    # ---- membership and counting ----------------------------------------------------------

    def contains(self, d: date | datetime) -> bool:
        """Whether a date (or a datetime's wall-clock date) lies in ``[start, end)``.

        Parameters
        ----------
        d : datetime.date or datetime.datetime
            Datetimes are judged by their own date; convert them to the company time zone
            first. 23:30 on the last day of a quarter belongs to that quarter.
        """
        day = _as_date(d)
        return self.start <= day < self.end

    def __contains__(self, d: object) -> bool:
        return self.contains(d)  # type: ignore[arg-type]

    def working_days(
        self,
        weekdays: Iterable[int] = (0, 1, 2, 3, 4),
        holidays: Iterable[date] = (),
    ) -> int:
        """Count the working days in the period.

        Parameters
        ----------
        weekdays : iterable of int, default Monday-Friday
            Working weekdays as Python weekday numbers (Monday = 0 .. Sunday = 6).
        holidays : iterable of date
            Dates that are not worked; holidays outside the period or on non-working
            weekdays change nothing, duplicates count once.

        Returns
        -------
        int
            Days ``d`` with ``start <= d < end``, ``d.weekday()`` in ``weekdays`` and ``d`` not
            a holiday.
        """
        wd = set()
        for w in weekdays:
            if isinstance(w, bool) or not isinstance(w, Integral) or not 0 <= int(w) <= 6:
                raise PeriodError(
                    f"invalid weekday {w!r}; use Python weekday numbers 0-6 (Monday = 0)"
                )
            wd.add(int(w))
        full_weeks, rest = divmod(self.days, 7)
        count = full_weeks * len(wd)
        first = self.start.weekday()
        count += sum(1 for i in range(rest) if (first + i) % 7 in wd)
        off = {_as_date(h, "holiday") for h in holidays}
        count -= sum(1 for h in off if self.start <= h < self.end and h.weekday() in wd)
        return count

    # ---- navigation -----------------------------------------------------------------------

    def shift(self, n: int) -> Period:
        """The period ``n`` steps later (``n < 0``: earlier) at the same grain and fiscal year.

        Raises
        ------
        PeriodError
            If ``n`` is not an integer or the result falls outside years 0001-9999.
        """
        if isinstance(n, bool) or not isinstance(n, Integral):
            raise PeriodError(f"invalid shift {n!r}; pass a whole number of periods")
        n = int(n)
        if self.grain == "day":
            start = _add_days(self.start, n)
        elif self.grain == "week":
            start = _add_days(self.start, 7 * n)
        else:
            total = self.start.year * 12 + self.start.month - 1 + n * _MONTHS[self.grain]
            start = _ym_date(total)
        return _make(self.grain, start, self.fiscal_start_month)

    def previous(self) -> Period:
        """The period just before this one (``shift(-1)``)."""
        return self.shift(-1)

    def next(self) -> Period:
        """The period just after this one (``shift(1)``)."""
        return self.shift(1)

    def year_ago(self) -> Period:
        """The same period one year earlier.

        Months, quarters, halves and years move back 12 months (a fiscal quarter stays the same
        fiscal quarter: ``FY2026-Q1`` -> ``FY2025-Q1``). A week becomes the same ISO week number
        of the previous ISO year (``W53`` -> ``W52`` when that year has only 52 weeks). A day
        becomes the same month and day a year earlier (Feb 29 -> Feb 28).
        """
        if self.grain == "day":
            s = self.start
            if s.year <= 1:
                raise PeriodError(f"{self.label} has no year-ago period in the range 0001-9999")
            day = 28 if (s.month, s.day) == (2, 29) else s.day
            return _make("day", date(s.year - 1, s.month, day), 1)
        if self.grain == "week":
            iso_year, week, _ = self.start.isocalendar()
            if iso_year <= 1:
                raise PeriodError(f"{self.label} has no year-ago period in the range 0001-9999")
            week = min(week, _iso_weeks(iso_year - 1))
            return _make("week", date.fromisocalendar(iso_year - 1, week, 1), 1)
        return self.shift(-(12 // _MONTHS[self.grain]))


def _make(grain: str, d: date, fiscal_start_month: int) -> Period:
    start, end = _bounds(d, grain, fiscal_start_month)
    return Period(grain, start, end, fiscal_start_month)


# --------------------------------------------------------------------------------------------
# Constructors
# --------------------------------------------------------------------------------------------


def _bad_label(value: Any, reason: str) -> PeriodError:
    return PeriodError(f"invalid period {value!r}: {reason}; {_LABEL_HINT}")


def parse_period(value: Any, *, fiscal_start_month: int = 1) -> Period:
    """Read a period label (or a year given as an int).

    Parameters
    ----------
    value : str, int or Period
        A label: ``2025-07-14`` (day), ``2025-W27`` (ISO week), ``2025-07`` (month),
        ``2025-Q3``, ``2025-H2``, ``2025`` (calendar quarter, half, year), or fiscal
        ``FY2026-Q1``, ``FY2026-H1``, ``FY2026``. Case-insensitive; surrounding spaces are
        ignored. An int is a calendar year (papermill turns ``-p period 2025`` into ``2025``).
        A :class:`Period` is returned unchanged.
    fiscal_start_month : int, default 1
        Start month of the fiscal year, used by ``FY`` labels only. Calendar labels always
        mean calendar periods. With ``fiscal_start_month=1``, ``FY2026`` is calendar 2026.

    Returns
    -------
    Period

    Raises
    ------
    PeriodError
        For anything else (``2025-Q5``, ``2025-13``, ``2025-W53`` in a 52-week year, ``Q3``,
        ``2025-H3``, ``FY2026-07``), naming the value and showing valid labels.

    Notes
    -----
    Fiscal years are named by the calendar year in which they end: with fiscal start month 7,
    ``FY2026-Q1`` is 2025-07-01 .. 2025-09-30 (end exclusive: 2025-10-01).

    Examples
    --------
    >>> parse_period(" fy2026-q1 ", fiscal_start_month=7).start
    datetime.date(2025, 7, 1)
    >>> parse_period(2025).label
    '2025'
    """
    fsm = _check_fiscal_start(fiscal_start_month)
    if isinstance(value, Period):
        return value
    if isinstance(value, Integral) and not isinstance(value, bool):
        year = int(value)
        if not 1 <= year <= 9998:
            raise _bad_label(value, "a year must have four digits (0001-9998)")
        return _make("year", date(year, 1, 1), 1)
    if not isinstance(value, str):
        raise _bad_label(value, f"expected a label string or a year, got {type(value).__name__}")
    text = value.strip().upper()
    if not text:
        raise _bad_label(value, "the label is empty")

    try:
        if m := _DAY_RE.fullmatch(text):
            y, mo, d = (int(g) for g in m.groups())
            if not 1 <= mo <= 12:
                raise _bad_label(value, f"month {mo} is not 01-12")
            try:
                day = date(y, mo, d)
            except ValueError as exc:
                raise _bad_label(value, str(exc)) from None
            return _make("day", day, 1)

        if m := _WEEK_RE.fullmatch(text):
            if m.group(1):
                raise _bad_label(value, "ISO weeks are never fiscal, drop the FY prefix")
            y, w = int(m.group(2)), int(m.group(3))
            if y < 1:
                raise _bad_label(value, "year 0000 does not exist")
            weeks = _iso_weeks(y)
            if not 1 <= w <= weeks:
                raise _bad_label(value, f"ISO year {y} has weeks W01-W{weeks}")
            return _make("week", date.fromisocalendar(y, w, 1), 1)

        if m := _MONTH_RE.fullmatch(text):
            if m.group(1):
                raise _bad_label(value, "months keep calendar labels, drop the FY prefix")
            y, mo = int(m.group(2)), int(m.group(3))
            if not 1 <= mo <= 12:
                raise _bad_label(value, f"month {mo} is not 01-12")
            if y < 1:
                raise _bad_label(value, "year 0000 does not exist")
            return _make("month", date(y, mo, 1), 1)

        if m := _PART_RE.fullmatch(text):
            fiscal, y, letter, idx = bool(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4))
            grain = "quarter" if letter == "Q" else "half"
            count = 12 // _MONTHS[grain]
            if not 1 <= idx <= count:
                raise _bad_label(
                    value, f"a {grain} is {letter}1-{letter}{count}, not {letter}{idx}"
                )
            f = fsm if fiscal else 1
            start = _fiscal_year_start(y, f) + (idx - 1) * _MONTHS[grain]
            return _make(grain, _ym_date(start), f)

        if m := _YEAR_RE.fullmatch(text):
            fiscal, y = bool(m.group(1)), int(m.group(2))
            f = fsm if fiscal else 1
            return _make("year", _ym_date(_fiscal_year_start(y, f)), f)
    except PeriodError as exc:
        if str(exc).startswith("invalid period"):
            raise
        raise _bad_label(value, str(exc).split(";")[0]) from None

    if re.fullmatch(r"(FY)?[QH]\d+", text):
        reason = "a quarter or half needs its year, e.g. 2025-Q3 or FY2026-Q1"
    else:
        reason = "not a period label"
    raise _bad_label(value, reason)


def _fiscal_year_start(fy: int, fiscal_start_month: int) -> int:
    """Months since 0000-01 of the first month of fiscal year ``fy`` (named by its end year)."""
    start_year = fy if fiscal_start_month == 1 else fy - 1
    return start_year * 12 + fiscal_start_month - 1


def period_of(d: date | datetime, grain: str, *, fiscal_start_month: int = 1) -> Period:
    """The period of ``grain`` that contains a date or datetime.

    Parameters
    ----------
    d : datetime.date or datetime.datetime
        A datetime is assigned by its own wall-clock date (convert to the company time zone
        first); 23:30 on the last day of a quarter is in that quarter.
    grain : str
        A grain or alias (see :func:`grain_of`).
    fiscal_start_month : int, default 1
        Quarters, halves and years are fiscal when this is not 1; days, ISO weeks and months
        are unaffected.

    Returns
    -------
    Period

    Examples
    --------
    >>> period_of(date(2025, 6, 30), "quarter", fiscal_start_month=7).label
    'FY2025-Q4'
    >>> period_of(date(2024, 12, 30), "week").label
    '2025-W01'
    """
    fsm = _check_fiscal_start(fiscal_start_month)
    return _make(grain_of(grain), _as_date(d), fsm)


def periods_between(
    start: date | datetime,
    end: date | datetime,
    grain: str,
    *,
    fiscal_start_month: int = 1,
) -> list[Period]:
    """All periods of ``grain`` that overlap ``[start, end]`` (both dates included), in order.

    Parameters
    ----------
    start, end : datetime.date or datetime.datetime
        First and last date of the range, both **inclusive**; ``start <= end``.
    grain : str
        A grain or alias.
    fiscal_start_month : int, default 1
        Start month of the fiscal year (quarters, halves and years only).

    Returns
    -------
    list of Period
        Consecutive periods with no gaps; the first contains ``start``, the last ``end``.

    Raises
    ------
    PeriodError
        If ``start`` is after ``end``.
    """
    first, last = _as_date(start, "start date"), _as_date(end, "end date")
    if first > last:
        raise PeriodError(
            f"start date {first.isoformat()} is after end date {last.isoformat()}; "
            "swap them (both dates are inclusive)"
        )
    p = period_of(first, grain, fiscal_start_month=fiscal_start_month)
    out = [p]
    while out[-1].end <= last:
        out.append(out[-1].next())
    return out


def last_complete(
    grain: str,
    *,
    today: date | datetime | None = None,
    fiscal_start_month: int = 1,
) -> Period:
    """The latest period of ``grain`` that ended before ``today``.

    Parameters
    ----------
    grain : str
        A grain or alias.
    today : date or datetime, optional
        Defaults to ``date.today()``. The period containing ``today`` is not complete, so
        the answer is the one before it (its exclusive ``end`` is ``<= today``).
    fiscal_start_month : int, default 1
        Start month of the fiscal year (quarters, halves and years only).

    Examples
    --------
    >>> last_complete("quarter", today=date(2025, 7, 1)).label
    '2025-Q2'
    """
    day = date.today() if today is None else _as_date(today, "today")
    return period_of(day, grain, fiscal_start_month=fiscal_start_month).previous()


# --------------------------------------------------------------------------------------------
# ibis expressions
# --------------------------------------------------------------------------------------------


def _date_column(col: Any, func: str) -> ir.DateValue:
    import ibis.expr.types as ir

    if not isinstance(col, ir.Value):
        raise PeriodError(
            f"{func} needs an ibis date or timestamp column, got {type(col).__name__}; "
            "pass e.g. table.close_date"
        )
    dtype = col.type()
    if dtype.is_date():
        return col  # type: ignore[return-value]
    if dtype.is_timestamp():
        if dtype.timezone is not None:
            raise PeriodError(
                f"{func}: timestamp column has time zone {dtype.timezone!r}; convert it to "
                "naive company-local time first (the backend would cast it to a date in its "
                "session time zone, moving late-evening events into the next day)"
            )
        return col.date()  # type: ignore[union-attr]
    raise PeriodError(f"{func} needs an ibis date or timestamp column, got type {dtype}")


def _month_parts(d: ir.DateValue, grain: str, fsm: int) -> tuple[Any, Any]:
    """(total months of the period start since 0000-01, months into the fiscal year)."""
    year, month = d.year(), d.month()
    fmonth = (month + (12 - fsm)) % 12  # 0-based month of the fiscal year, never negative
    size = _MONTHS[grain]
    total = year * 12 + (month - 1) - (fmonth % size)
    return total, fmonth


def period_start_expr(col: Any, grain: str, *, fiscal_start_month: int = 1) -> ir.DateValue:
    """An ibis date expression: the start of the period containing each value of ``col``.

    Parameters
    ----------
    col : ibis date or timestamp column
        A timestamp is assigned by its date; it must be naive company-local time (a
        time-zone-aware column raises :class:`PeriodError`, because backends cast it to a date
        in their session time zone).
    grain : str
        A grain or alias.
    fiscal_start_month : int, default 1
        Quarters, halves and years are fiscal when this is not 1.

    Returns
    -------
    ibis.expr.types.DateValue
        Equal to ``period_of(value, grain, fiscal_start_month=...).start`` for every row.

    Notes
    -----
    Built from portable operations only (year/month extraction, integer arithmetic,
    ``ibis.date(y, m, 1)`` and ISO week truncation); no UDFs. The compiled SQL returns a real
    DATE for every grain (not a TIMESTAMP), so it can be compared and joined with date columns.
    """
    grain = grain_of(grain)
    fsm = _check_fiscal_start(fiscal_start_month)
    d = _date_column(col, "period_start_expr")
    if grain == "day":
        return d
    if grain == "week":
        # ISO week: Monday. Truncating a DATE gives a TIMESTAMP on DuckDB although ibis types
        # it as date (and drops a no-op cast back to date), so truncate a timestamp and take
        # its date explicitly: the SQL then really returns a DATE on every backend.
        return d.cast("timestamp").truncate("W").date()
    import ibis

    total, _ = _month_parts(d, grain, fsm if grain in _FISCAL_GRAINS else 1)
    return ibis.date(total // 12, total % 12 + 1, 1)


def period_label_expr(col: Any, grain: str, *, fiscal_start_month: int = 1) -> ir.StringValue:
    """An ibis string expression: the label of the period containing each value of ``col``.

    Parameters
    ----------
    col : ibis date or timestamp column
        As for :func:`period_start_expr`.
    grain : str
        A grain or alias.
    fiscal_start_month : int, default 1
        Quarters, halves and years are fiscal (``FY2026-Q1``) when this is not 1.

    Returns
    -------
    ibis.expr.types.StringValue
        Exactly ``period_of(value, grain, fiscal_start_month=...).label`` for every row:
        ``2025-07-14``, ``2025-W27``, ``2025-07``, ``2025-Q3``, ``2025-H2``, ``2025``,
        ``FY2026-Q1``, ``FY2026-H1``, ``FY2026`` (fiscal years named by their end year).

    Notes
    -----
    Labels are assembled from integer parts with ``lpad`` and string concatenation instead of
    ``strftime``, whose format codes and padding of small years differ between backends.
    """
    import ibis

    grain = grain_of(grain)
    fsm = _check_fiscal_start(fiscal_start_month)
    d = _date_column(col, "period_label_expr")

    def pad(value: Any, width: int) -> Any:
        return value.cast("string").lpad(width, "0")

    if grain == "day":
        return pad(d.year(), 4) + "-" + pad(d.month(), 2) + "-" + pad(d.day(), 2)
    if grain == "week":
        return pad(d.iso_year(), 4) + "-W" + pad(d.week_of_year(), 2)
    if grain == "month":
        return pad(d.year(), 4) + "-" + pad(d.month(), 2)
    year, month = d.year(), d.month()
    fmonth = (month + (12 - fsm)) % 12
    if fsm == 1:
        fy = pad(year, 4)
    else:
        # the fiscal year is named by its end year: +1 from the start month onwards
        fy = ibis.literal("FY") + pad(year + (month + (12 - fsm)) // 12, 4)
    if grain == "year":
        return fy
    if grain == "quarter":
        return fy + "-Q" + (fmonth // 3 + 1).cast("string")
    return fy + "-H" + (fmonth // 6 + 1).cast("string")
