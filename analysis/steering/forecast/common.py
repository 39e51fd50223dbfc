"""What the forecast modules share: :class:`ForecastError`, the ``period`` column name and the
helpers for as-of values, whole cents and month-end snapshot days."""

from __future__ import annotations

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
