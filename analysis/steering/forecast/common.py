"""What the forecast modules share: :class:`ForecastError`, :class:`Calibration`, the ``period``
column name and the helpers for as-of values, whole cents, month-end snapshot days and memoizing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.errors import WorkbenchError

#: Name of the period column of the forecast frames.
PERIOD = "period"


class ForecastError(WorkbenchError):
    """A forecast request that cannot be answered (bad metric, period, date or option)."""


def as_of_value(ds: Dataset, as_of: Any) -> Any:
    """``as_of`` or, by default, the data's snapshot day (:func:`analysis.timeline.snapshot_day`)."""
    return timeline.snapshot_day(ds) if as_of is None else as_of


def as_of_day(ds: Dataset, when: Any) -> date:
    """The calendar day of an as-of value (raises ForecastError for a bad value)."""
    return timeline.moment(ds, when, "as_of", error=ForecastError).day


def months_before(day: date, months: int) -> date:
    """The day ``months`` calendar months before ``day``."""
    return (pd.Timestamp(day) - pd.DateOffset(months=months)).date()


def to_cents(amounts: Any) -> np.ndarray:
    """Amounts as integer cents (NaN -> 0), exact for amounts below 90 trillion."""
    a = pd.to_numeric(pd.Series(amounts), errors="coerce").astype("float64").fillna(0.0).to_numpy()
    return np.round(a * 100.0).astype("int64")


def month_ends(since: date, day: date) -> list[date]:
    """Last days of the months that end in ``(since, day]``."""
    out = []
    m = pd.Timestamp(since) + pd.offsets.MonthEnd(1)
    while m.date() <= day:
        if m.date() > since:
            out.append(m.date())
        m = m + pd.offsets.MonthEnd(1)
    return out


def memoized(ds: Dataset, name: str, key: Any, build: Callable[[], Any]) -> Any:
    """``build()`` computed once per dataset, configuration, ``name`` and ``key`` (a loaded
    dataset does not change; a dataset given another configuration computes anew). The caller
    copies what it hands out when the value is mutable."""
    memo: dict[tuple[str, Any], tuple[Any, Any]] = ds.__dict__.setdefault("_forecast_memo", {})
    hit = memo.get((name, key))
    if hit is not None and hit[0] is ds.config:
        return hit[1]
    value = build()
    memo[(name, key)] = (ds.config, value)
    return value


def is_memoized(ds: Dataset, name: str, key: Any) -> bool:
    """Whether :func:`memoized` holds ``name`` and ``key`` for the dataset's configuration."""
    hit = ds.__dict__.get("_forecast_memo", {}).get((name, key))
    return hit is not None and hit[0] is ds.config


@dataclass(frozen=True)
class Calibration:
    """How a forecast method did on past periods it forecast without knowing them.

    Attributes
    ----------
    method
        ``time_series``, ``simulation`` or ``weighted_pipeline``.
    grain
        The periods' grain (``quarter``...).
    frame
        One row per period scored, oldest first: ``period``, ``actual``, ``forecast`` (the
        point forecast: the time series' winner, the simulation's P50...), ``low`` and ``high``
        (its interval, NaN without one), ``inside`` (low <= actual <= high; NA without an
        interval), ``pct_error`` ((forecast - actual) / |actual|, NaN when actual is 0).
    reason
        Why no period (or fewer than asked) could be scored; empty when all were.

    Notes
    -----
    ``mape = mean(|pct_error|)`` and ``bias = mean(pct_error)`` over the periods whose actual is
    not 0 (:func:`analysis.forecast.accuracy`); NaN when there is none. ``coverage = inside /
    with_interval`` over the periods that have an interval; NaN when none has.
    """

    method: str
    grain: str
    frame: pd.DataFrame
    reason: str = ""

    @classmethod
    def of(cls, method: str, grain: str, rows: pd.DataFrame, reason: str = "") -> Calibration:
        """Build from rows with ``period``, ``actual``, ``forecast``, ``low``, ``high``."""
        f = pd.DataFrame({c: rows[c] if c in rows else pd.Series(dtype="float64")
                          for c in (PERIOD, "actual", "forecast", "low", "high")}).reset_index(drop=True)
        f[PERIOD] = f[PERIOD].astype(object)
        for c in ("actual", "forecast", "low", "high"):
            f[c] = pd.to_numeric(f[c], errors="coerce").astype("float64")
        has = f.low.notna() & f.high.notna()
        f["inside"] = pd.array([bool(lo <= a <= hi) if h else pd.NA for lo, a, hi, h in
                                zip(f.low, f.actual, f.high, has)], dtype="boolean")
        f["pct_error"] = ((f.forecast - f.actual) / f.actual.abs().where(f.actual != 0)).astype("float64")
        return cls(method, grain, f, reason)

    def on(self, periods: list[str]) -> Calibration:
        """The same calibration restricted to ``periods`` (to compare methods on the same ones)."""
        keep = self.frame[self.frame[PERIOD].isin(list(periods))]
        return Calibration(self.method, self.grain, keep.reset_index(drop=True), self.reason)

    @property
    def periods(self) -> list[str]:
        """Labels of the periods scored (actual not 0, forecast known)."""
        ok = self.frame.actual.ne(0) & self.frame.actual.notna() & self.frame.forecast.notna()
        return list(self.frame[PERIOD][ok])

    @property
    def scored(self) -> int:
        return len(self.periods)

    @property
    def mape(self) -> float:
        e = self.frame.pct_error.dropna()
        return float(e.abs().mean()) if len(e) else float("nan")

    @property
    def bias(self) -> float:
        e = self.frame.pct_error.dropna()
        return float(e.mean()) if len(e) else float("nan")

    @property
    def with_interval(self) -> int:
        """Periods that have an interval (the coverage's denominator)."""
        return int(self.frame.inside.notna().sum())

    @property
    def inside(self) -> int:
        """Periods whose actual fell inside the interval."""
        return int(self.frame.inside.fillna(False).sum())

    @property
    def coverage(self) -> float:
        return self.inside / self.with_interval if self.with_interval else float("nan")

    def count_text(self) -> str:
        """``"3 of 4 quarters"``: how often the actual fell inside the interval ("" without one)."""
        k = self.with_interval
        return f"{self.inside} of {k} {self.grain}{'' if k == 1 else 's'}" if k else ""
