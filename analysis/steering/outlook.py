"""The outlook of one period: every forecast of it, made from the data known before it.

:func:`period_outlook` brings the three forecasts of :mod:`analysis.forecast` together for a
period P, as a leader would ask for them ("what will 2026-Q4 bring?"):

* the time-series forecast of a metric (seasonal ETS beside the seasonal naive baseline, with
  their rolling-backtest MAPE and bias and the winner),
* the weighted open pipeline expected to close in P, by forecast category,
* the simulated P10 / P50 / P90 revenue of P and the chance of reaching its revenue target,
* with ``replay``: the simulation replayed on the periods before, and the **headline** revenue
  forecast (:func:`~analysis.forecast.headline`): the method with the lower error on the same
  past periods, its calibration, and a sentence when the forecasts disagree beyond their
  intervals.

Forecast day: the day before P starts when P has begun or is over (so a past period's outlook
is the one that could have been made then, and its actual is shown beside it), else the data's
last day. The time series ends with the last complete period before that day.

``python -m analysis forecast DATA --period 2026-Q4`` prints :attr:`Outlook.table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd

from analysis.data.loading import Dataset
from analysis.data.periods import Period, parse_period, period_of, periods_between
from analysis.semantic.catalog import build_catalog
from analysis.semantic.engine import metrics
from analysis.steering import forecast as fc

#: Columns of :attr:`Outlook.table`.
COLUMNS = ["period", "as_of", "metric", "method", "model", "forecast", "low", "high", "interval",
           "backtest_periods", "mape", "bias", "coverage", "is_winner", "is_headline", "deals", "amount", "actual"]


@dataclass(frozen=True)
class Outlook:
    """Every forecast of one period (see the module docstring).

    Attributes
    ----------
    period, as_of, metric
        The period forecast, the day the forecasts are made, the time-series metric.
    series
        The :class:`~analysis.forecast.ForecastResult` (None when the history is too short).
    deals
        The open deals at the forecast day (:func:`~analysis.forecast.open_deals_forecast`, with
        ``owner_id`` and ``team``), every expected close period.
    pipeline
        :func:`~analysis.forecast.weighted_pipeline` rows of P (one per category).
    simulation
        The :class:`~analysis.forecast.OutcomeSimulation` of P (None when P is over at the
        data's last day and cannot be simulated).
    replay
        :func:`~analysis.forecast.outcome_backtest` of the simulation on the periods before
        the forecast day that the time series' backtest scores too
        (:func:`~analysis.forecast.scored_periods`: up to ``config.forecast.backtest_periods``;
        None when there is none).
    actual
        The metric's actual value in P when P is complete in the data, else None.
    table
        One tidy row per forecast: :data:`COLUMNS`. ``method`` is ``time_series`` (models
        ``ets`` and ``seasonal_naive``), ``weighted_pipeline`` (models ``commit``,
        ``best_case``, ``pipeline`` and ``total``; ``forecast`` = weighted amount) or
        ``simulation`` (``forecast`` = P50, ``low`` / ``high`` = P10 / P90; ``mape`` and
        ``bias`` = mean absolute and mean signed P50 error of the replay). ``coverage``: the
        share of backtest periods whose actual fell inside the row's interval (time series
        winner and simulation); ``is_headline``: the row of the headline forecast.
    headline
        The :class:`~analysis.forecast.Headline` revenue forecast of P (None without
        ``replay``, or when P cannot be simulated).
    sentences
        Plain-language lines: the headline (with its calibration and any disagreement) first,
        then one per forecast.
    """

    period: Period
    as_of: date
    metric: str
    series: fc.ForecastResult | None
    deals: pd.DataFrame
    pipeline: pd.DataFrame
    simulation: fc.OutcomeSimulation | None
    replay: pd.DataFrame | None
    actual: float | None
    table: pd.DataFrame
    sentences: list[str]
    headline: fc.Headline | None = None


def forecast_day(ds: Dataset, p: Period) -> date:
    """The day P's forecasts are made: before P starts if the data reaches P, else the data's last day."""
    last = ds.last_date()
    return min(last, p.start - timedelta(days=1))


def period_outlook(ds: Dataset, period: str | int | Period, *, metric: str = "revenue",
                   simulations: int | None = None, max_cells: int | None = None, replay: bool = True) -> Outlook:
    """Every forecast of ``period`` with its accuracy, made before the period (see module docstring).

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    period
        A period label (``2026-Q4``, ``2026-07``, ``2026-H2``, ``2027``) or Period; its grain is
        the forecast grain.
    metric
        An additive catalog metric for the time series (``revenue``, ``deals_won``...). The
        pipeline and simulation forecast revenue.
    simulations, max_cells
        Monte Carlo runs (default ``config.forecast.simulations``), and a cap on runs x open
        deals for very large pipelines (see :func:`~analysis.forecast.simulate_outcome`).
    replay
        Also replay the simulation on the periods before the forecast day
        (:func:`~analysis.forecast.outcome_backtest`, a few seconds; memoized) to measure its
        accuracy, and choose the headline forecast (:func:`~analysis.forecast.headline`).
    """
    fsm = ds.config.fiscal_year_start_month
    p = period if isinstance(period, Period) else parse_period(period, fiscal_start_month=fsm)
    catalog = build_catalog(ds.config)
    catalog.get(metric)
    day = forecast_day(ds, p)
    last_complete = period_of(day + timedelta(days=1), p.grain, fiscal_start_month=fsm).previous()
    horizon = len(periods_between(last_complete.next().start, p.last_day, p.grain, fiscal_start_month=fsm))
    rows: list[dict[str, Any]] = []
    sentences: list[str] = []
    actual = None
    if ds.last_date() >= p.last_day:
        got = metrics(ds, [metric], grain=p.grain, periods=[p], catalog=catalog)
        actual = float(got[metric].iloc[0]) if len(got) and pd.notna(got[metric].iloc[0]) else None
    base = {"period": p.label, "as_of": day.isoformat(), "actual": float("nan") if actual is None else actual}

    series = None
    try:
        series = fc.revenue_forecast(ds, metric=metric, grain=p.grain, horizon=horizon, end=last_complete)
    except fc.ForecastError as err:
        sentences.append(f"No time-series forecast: {err}")
    if series is not None:
        acc = series.accuracy.set_index("model")
        ts_cal = fc.series_calibration(series)
        for _, r in series.forecast[series.forecast.period == p.label].iterrows():
            a = acc.loc[r.model] if r.model in acc.index else None
            rows.append({**base, "metric": metric, "method": "time_series", "model": r.model,
                         "forecast": r.forecast, "low": r.low, "high": r.high, "interval": series.interval,
                         "backtest_periods": None if a is None else a.periods,
                         "mape": None if a is None else a.mape, "bias": None if a is None else a.bias,
                         "coverage": ts_cal.coverage if r.is_winner else None, "is_winner": bool(r.is_winner)})
        sentences.append(fc.forecast_sentence(ds, series, period=p))

    if day < p.last_day:
        # the simulation below reads the same open deals by its groups: one reading serves both
        fc.open_deals_forecast(ds, as_of=day, by=list(dict.fromkeys([*fc.OUTCOME_BY, "team"])), grain=p.grain)
    deals = fc.open_deals_forecast(ds, as_of=day, by=["team"], grain=p.grain)
    full = fc.weighted_pipeline(ds, as_of=day, grain=p.grain, deals=deals)
    pipe = full[full.close_period == p.label].reset_index(drop=True)
    for _, r in pipe.iterrows():
        rows.append({**base, "metric": "revenue", "method": "weighted_pipeline", "model": r.category,
                     "forecast": r.weighted, "deals": int(r.deals), "amount": r.amount})
    if len(pipe):
        rows.append({**base, "metric": "revenue", "method": "weighted_pipeline", "model": "total",
                     "forecast": pipe.weighted.sum(min_count=len(pipe)) if pipe.weighted.notna().all() else None,
                     "deals": int(pipe.deals.sum()), "amount": float(pipe.amount.sum())})
    sentences.append(fc.pipeline_sentence(ds, full, period=p))

    simulation = None
    replayed = None
    top = None
    if day < p.last_day:
        simulation = fc.simulate_outcome(ds, p, as_of=day, n=simulations, max_cells=max_cells)
        s = simulation.summary.iloc[0]
        rows.append({**base, "metric": "revenue", "method": "simulation", "model": "monte_carlo",
                     "forecast": s.p50, "low": s.p10, "high": s.p90, "interval": 0.8,
                     "deals": int(s.open_deals), "amount": s.open_amount})
        sentences.append(fc.outcome_sentence(ds, simulation))
        if replay:
            top = fc.headline(ds, p, as_of=day, series=series if metric == "revenue" else None,
                              simulation=simulation, max_cells=max_cells)
            # the periods the headline's calibration replayed (memoized: no second replay)
            scored, _ = fc.scored_periods(ds, grain=p.grain, as_of=day)
            if scored:
                replayed = fc.outcome_backtest(ds, periods=len(scored), grain=p.grain, before=day,
                                               max_cells=max_cells)
            cal = top.table.set_index("method").loc["simulation"]
            if cal.backtest_periods:
                rows[-1].update(backtest_periods=int(cal.backtest_periods), mape=cal.mape, bias=cal.bias,
                                coverage=cal.coverage)
            else:
                rows[-1].update(backtest_periods=0)
            if replayed is not None:
                sentences.append(fc.backtest_sentence(ds, replayed))
            sentences[:0] = [top.sentence, *top.disagreements]
            for r in rows:
                r["is_headline"] = (r["method"] == top.chosen.method and r["metric"] == "revenue"
                                    and (r["method"] != "time_series" or bool(r.get("is_winner"))))
    if actual is not None:
        sentences.append(f"Actual {catalog.get(metric).label.lower()} in {p.label}: {catalog.get(metric).fmt(actual)}.")
    table = pd.DataFrame(rows, columns=COLUMNS).astype({"deals": "Int64", "backtest_periods": "Int64", "actual": "float64",
                                                       "coverage": "float64", "is_headline": "boolean"})
    return Outlook(p, day, metric, series, deals, pipe, simulation, replayed, actual, table, sentences, top)
