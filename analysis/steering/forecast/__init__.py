"""Forecast and plan (SPEC section 6): win probabilities, weighted pipeline, a seasonal time-series
forecast with its backtest, and the period outcome by simulation.

Functions take a :class:`~analysis.loading.Dataset` and return tidy pandas DataFrames (the
time-series forecast and the simulation return small frozen dataclasses of DataFrames, because
each answers with several tables and a verdict).

* :func:`win_probabilities`: the historical win probability of each open funnel step, learned
  from month-end snapshots of the past pipeline (amount won / amount of the deals sitting in the
  step, outcomes known by ``as_of``), with the config default (then the overall win rate) as
  fallback when a step has too little history. (The first version used "won share of closed
  deals that passed step k": length-biased and count-based, it overstated the weighted pipeline
  of 2026-Q3 on data/sample by 72%, 23.4M against 13.6M won.)
* :func:`period_win_probabilities`: the probability that a deal in step k is won *within* a
  period, learned at the analogous snapshots of the past year's periods (used by the simulation).
* :func:`open_deals_forecast` / :func:`weighted_pipeline`: open deals at ``as_of`` (reconstructed
  from stage history for a past day) × the probability of their step, by expected close period,
  in forecast categories (commit, best case, pipeline).
* :func:`revenue_forecast`: a catalog metric (revenue, deals won...) forecast with an ETS
  (exponential smoothing) model beside a seasonal naive baseline, both backtested on rolling
  origins; the lower MAPE wins.
* :func:`simulate_outcome`: Monte Carlo of a period's revenue: won so far + open deals closing
  with their probability + new business from the run rate; P10 / P50 / P90 and the probability
  of reaching each revenue quota.
* :func:`outcome_backtest`: the simulation replayed on the last complete periods (as of the day
  before each) against the actual revenue: its calibration.
* :func:`seasonal_factors`: the seasonality the ETS model estimates, as one factor per season
  (the simulation brings its new business to the simulated period's season with them).
* :class:`Calibration`, :func:`simulation_calibration`, :func:`series_calibration`: how a
  method did on the past periods before a forecast (share of actuals inside its 80% interval,
  "3 of 4 quarters", and MAPE), measured on the same periods for every method
  (:func:`scored_periods`).
* :func:`headline`: one headline revenue forecast of a period, the method with the lower error
  on those periods, the others as supporting evidence, and a sentence when they disagree
  beyond their intervals.
* :func:`probabilities_sentence`, :func:`pipeline_sentence`, :func:`forecast_sentence`,
  :func:`outcome_sentence`, :func:`backtest_sentence`: one plain-language sentence for each
  result.

Modules
-------
This package is the facade: every name above is importable from it (``from
analysis.steering import forecast as fc``; ``fc.simulate_outcome``). The code lives in

* ``common``: :class:`ForecastError`, :class:`Calibration`, the ``period`` column name and the
  helpers the others share (as-of values, integer cents, month-end snapshot days, memoizing);
* ``probabilities``: :func:`snapshot_deals`, :func:`win_probabilities`,
  :func:`period_win_probabilities` and the analogous past periods;
* ``weighted``: :func:`open_deals_forecast`, :func:`weighted_pipeline`;
* ``timeseries``: :class:`ForecastResult`, :func:`seasonal_naive`, :func:`ets_forecast`,
  :func:`accuracy`, :func:`revenue_forecast`, :func:`seasonal_factors`, :func:`scored_periods`,
  :func:`series_calibration`;
* ``simulation``: :class:`OutcomeSimulation`, :func:`simulate_outcome`, :func:`outcome_backtest`,
  :func:`simulation_calibration`;
* ``headline``: :class:`Candidate`, :class:`Headline`, :func:`headline`;
* ``sentences``: the sentences.

A module-level setting (:data:`MIX_PERIODS`, :data:`CHUNK_CELLS`...) is read by the module that
defines it: to change it for a test, patch that module
(``monkeypatch.setattr(fc.simulation, "MIX_PERIODS", False)``), not this facade.

Shared rules
------------
* ``as_of`` is a date (the end of that day), a datetime (company-local wall time if naive) or an
  ISO string; the default is the data's snapshot day (``config.as_of``, else
  :meth:`Dataset.last_date`). Only what was known by then is used: deals closed on or before
  its day, stage history entered by then.
* Money is summed exactly in integer cents (each amount rounded to the cent, a weighted amount
  rounded to the cent per deal, half to even) and returned as float64, so totals do not depend
  on row order.
* A deal is **overdue** when it is open at ``as_of`` and its expected close_date is on or before
  the as_of day. At the end of that day it can only close from the next day on, so it is
  expected in the period that contains the day after ``as_of``.
"""

from __future__ import annotations

from analysis.steering.forecast.common import PERIOD, Calibration, ForecastError
from analysis.steering.forecast.headline import HEADLINE_COLUMNS, METHODS, Candidate, Headline, headline
from analysis.steering.forecast.probabilities import (
    PERIODS_PER_YEAR,
    SOURCES,
    period_win_probabilities,
    snapshot_deals,
    win_probabilities,
)
from analysis.steering.forecast.sentences import (
    backtest_sentence,
    disagreement_sentence,
    forecast_sentence,
    headline_sentence,
    outcome_sentence,
    pipeline_sentence,
    probabilities_sentence,
)
from analysis.steering.forecast.simulation import (
    CHUNK_CELLS,
    MIN_CAPPED_SIMULATIONS,
    MIX_PERIODS,
    OUTCOME_BY,
    OutcomeSimulation,
    outcome_as_of,
    outcome_backtest,
    simulate_outcome,
    simulation_calibration,
)
from analysis.steering.forecast.timeseries import (
    INTERVAL,
    MIN_ETS_OBS,
    MODELS,
    SEASON_LENGTH,
    ForecastResult,
    accuracy,
    complete_by,
    ets_forecast,
    revenue_forecast,
    scored_periods,
    season_of,
    seasonal_factors,
    seasonal_naive,
    series_calibration,
)
from analysis.steering.forecast.weighted import CATEGORIES, open_deals_forecast, weighted_pipeline

__all__ = [
    "CATEGORIES",
    "SOURCES",
    "SEASON_LENGTH",
    "MODELS",
    "INTERVAL",
    "MIN_ETS_OBS",
    "MIX_PERIODS",
    "CHUNK_CELLS",
    "MIN_CAPPED_SIMULATIONS",
    "OUTCOME_BY",
    "PERIODS_PER_YEAR",
    "PERIOD",
    "ForecastError",
    "snapshot_deals",
    "win_probabilities",
    "period_win_probabilities",
    "open_deals_forecast",
    "weighted_pipeline",
    "ForecastResult",
    "seasonal_naive",
    "ets_forecast",
    "accuracy",
    "revenue_forecast",
    "OutcomeSimulation",
    "simulate_outcome",
    "outcome_backtest",
    "probabilities_sentence",
    "pipeline_sentence",
    "forecast_sentence",
    "outcome_sentence",
    "backtest_sentence",
    "Calibration",
    "complete_by",
    "scored_periods",
    "season_of",
    "seasonal_factors",
    "series_calibration",
    "outcome_as_of",
    "simulation_calibration",
    "METHODS",
    "HEADLINE_COLUMNS",
    "Candidate",
    "Headline",
    "headline",
    "headline_sentence",
    "disagreement_sentence",
]
