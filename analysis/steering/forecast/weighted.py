"""The weighted pipeline: open deals at ``as_of`` x the win probability of their step, by expected
close period and forecast category."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.analytics import pipeline as pl
from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.data.periods import grain_of, parse_period, period_of
from analysis.semantic.engine import resolve_dims
from analysis.steering.forecast.common import ForecastError, as_of_day, as_of_value, memoized, to_cents
from analysis.steering.forecast.probabilities import win_probabilities

#: Forecast categories, most certain first.
CATEGORIES = ("commit", "best_case", "pipeline")


def _labels_in_order(labels: pd.Series, ds: Dataset) -> pd.Series:
    """Sort keys (period start ordinal) for period labels; NA last."""
    fsm = ds.config.fiscal_year_start_month
    keys = {lab: parse_period(lab, fiscal_start_month=fsm).start.toordinal() for lab in labels.dropna().unique()}
    return labels.map(keys).fillna(10**9).astype("int64")


def open_deals_forecast(
    ds: Dataset,
    *,
    as_of: Any = None,
    by: Sequence[str] | str | None = None,
    grain: str = "quarter",
    probabilities: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Open deals at ``as_of``, one row each, with their win probability and forecast category.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    as_of
        The moment the pipeline is taken (default: the data's snapshot day); a past day is
        reconstructed from stage history (:func:`analysis.pipeline.pipeline_as_of`).
    by
        Dimensions to add as columns (``rep_id``, ``team``, ``product``...).
    grain
        Grain of the expected close period (month, quarter, half...; fiscal per the config).
    probabilities
        A :func:`win_probabilities` frame to use (default: learned as of ``as_of``).

    Returns
    -------
    pandas.DataFrame
        ``opportunity_id``, ``owner_id``, the ``by`` columns, ``step``, ``amount``,
        ``close_date``, ``overdue``, ``close_period``, ``probability``, ``probability_source``,
        ``weighted``, ``category``; sorted by ``opportunity_id``. ``attrs["as_of"]`` is the day.

    Notes
    -----
    * ``probability``: the :func:`win_probabilities` value of the deal's step at ``as_of``; a
      deal of unknown step (stage mapped to no step) gets the overall win rate (source
      ``overall``), or NaN when there is none.
    * ``weighted = amount × probability``, rounded to the cent (half to even).
    * ``close_period``: the period of ``close_date`` at ``grain``; overdue deals (close_date on
      or before the as_of day) go to the period of the day after ``as_of``; deals without a
      close date have NA.
    * ``category``: ``commit`` when probability >= ``config.forecast.commit_probability``,
      ``best_case`` when >= ``best_case_probability``, else ``pipeline`` (also for NaN).
    * Without ``probabilities`` the frame is computed once per dataset, moment and grain (a
      call with more ``by`` columns serves later calls with fewer); each call gets a copy.
    """
    when = as_of_value(ds, as_of)
    day = as_of_day(ds, when)
    by_list = resolve_dims(ds, by)
    grain = grain_of(grain)
    if probabilities is not None:
        return _open_deals_forecast(ds, when, day, by_list, grain, probabilities)
    # computed once per dataset, moment and grain: a frame with more ``by`` columns answers a
    # request for fewer (the dimensions are attributes of the deal)
    moment = timeline.moment(ds, when, "as_of", error=ForecastError)
    frames: list[pd.DataFrame] = memoized(ds, "open_deals_forecast", (moment, grain), list)
    for f in frames:
        if set(by_list) <= set(f.attrs["by"]):
            break
    else:
        f = _open_deals_forecast(ds, when, day, by_list, grain, None)
        f.attrs["by"] = list(by_list)
        frames.append(f)
    out = f[[c for c in f.columns if c not in f.attrs["by"] or c in by_list]]
    out = out[["opportunity_id", "owner_id", *by_list, *out.columns[2 + len(by_list):]]].copy()
    out.attrs = {k: v for k, v in f.attrs.items() if k != "by"}
    out.attrs["probabilities"] = f.attrs["probabilities"].copy()
    return out


def _open_deals_forecast(ds: Dataset, when: Any, day: date, by_list: list[str], grain: str,
                         probabilities: pd.DataFrame | None) -> pd.DataFrame:
    """:func:`open_deals_forecast` computed."""
    probs = win_probabilities(ds, as_of=when) if probabilities is None else probabilities
    deals = pl.pipeline_as_of(ds, when, by=by_list)
    prob_of = dict(zip(probs.step, probs.probability))
    src_of = dict(zip(probs.step, probs.source))
    overall = probs.attrs.get("overall", float("nan"))
    known = deals.step.isin(list(prob_of))
    p = deals.step.map(prob_of).where(known, overall).astype("float64")
    src = deals.step.map(src_of).where(known, "overall" if not math.isnan(overall) else "none")
    cents = to_cents(deals.amount)
    weighted = pd.Series(np.round(cents * p.to_numpy()) / 100.0, index=deals.index, dtype="float64")
    close = pd.to_datetime(deals.close_date).dt.date
    overdue = close.map(lambda d: d is not None and not pd.isna(d) and d <= day).astype(bool)
    fsm = ds.config.fiscal_year_start_month
    next_day = day + timedelta(days=1)
    effective = close.where(~overdue, next_day)
    labels = {d: period_of(d, grain, fiscal_start_month=fsm).label for d in effective.dropna().unique()}
    close_period = effective.map(labels).astype("string")
    cfg = ds.config.forecast
    category = np.where(p >= cfg.commit_probability, "commit", np.where(p >= cfg.best_case_probability, "best_case",
                                                                          "pipeline"))
    out = pd.DataFrame({
        "opportunity_id": deals.opportunity_id,
        "owner_id": deals.owner_id,
        **{d: deals[d] for d in by_list},
        "step": deals.step,
        "amount": cents / 100.0,
        "close_date": close,
        "overdue": overdue,
        "close_period": close_period,
        "probability": p,
        "probability_source": src.astype("string"),
        "weighted": weighted,
        "category": category,
    })
    out = out.reset_index(drop=True)
    out.attrs.update(as_of=day, grain=grain, probabilities=probs)
    return out


def weighted_pipeline(
    ds: Dataset,
    *,
    as_of: Any = None,
    by: Sequence[str] | str | None = None,
    grain: str = "quarter",
    deals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Weighted open pipeline by expected close period, ``by`` groups and forecast category.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    as_of, by, grain
        As for :func:`open_deals_forecast`.
    deals
        A :func:`open_deals_forecast` frame to aggregate instead of computing one (it must
        hold the ``by`` columns).

    Returns
    -------
    pandas.DataFrame
        ``close_period``, the ``by`` columns, ``category``, ``deals``, ``amount``,
        ``weighted``: one row per combination that has deals, ordered by close period (NA,
        deals without a close date, last), group and category (commit, best_case, pipeline).
        ``attrs``: ``as_of``, ``grain``, ``probabilities`` (the :func:`win_probabilities`
        frame used).

    Notes
    -----
    ``amount`` = sum of amounts and ``weighted`` = sum over deals of
    round(amount × probability, cents): exact sums of integer cents. ``weighted`` is NaN
    ("not available") for a group holding a deal of unknown probability (no closed deal in the
    history window at all).
    """
    by_list = resolve_dims(ds, by)
    d = open_deals_forecast(ds, as_of=as_of, by=by_list, grain=grain) if deals is None else deals
    keys = ["close_period", *by_list, "category"]
    if d.empty:
        out = pd.DataFrame({k: pd.Series(dtype="object") for k in keys})
        out = out.assign(deals=pd.Series(dtype="int64"), amount=pd.Series(dtype="float64"),
                         weighted=pd.Series(dtype="float64"))
        out.attrs.update({k: v for k, v in d.attrs.items()})
        return out
    w = d.assign(
        _c=to_cents(d.amount),
        _w=np.round(pd.to_numeric(d.weighted, errors="coerce").to_numpy() * 100.0),
        _na=d.weighted.isna(),
    )
    w["_w"] = np.nan_to_num(w["_w"].to_numpy(), nan=0.0).astype("int64")
    g = w.groupby(keys, dropna=False, sort=False).agg(
        deals=("opportunity_id", "size"), _c=("_c", "sum"), _w=("_w", "sum"), _na=("_na", "any")
    ).reset_index()
    g["amount"] = g._c.astype("int64") / 100.0
    g["weighted"] = (g._w.astype("int64") / 100.0).where(~g._na.astype(bool))
    g["_po"] = _labels_in_order(g.close_period, ds)
    g["_co"] = g.category.map({c: i for i, c in enumerate(CATEGORIES)})
    g = g.sort_values(["_po", *by_list, "_co"], na_position="last", kind="stable")
    out = g[[*keys, "deals", "amount", "weighted"]].astype({"deals": "int64", "amount": "float64",
                                                             "weighted": "float64"}).reset_index(drop=True)
    out.attrs.update({k: v for k, v in d.attrs.items()})
    return out
