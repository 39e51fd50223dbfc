"""One headline forecast of a period's revenue (:func:`headline`): of the forecasts that answer
"what will P bring?", the one with the lower error on the same replayed past periods, with the
others beside it as supporting evidence and a sentence when they disagree beyond their
intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.loading import Dataset
from analysis.data.periods import Period
from analysis.steering.forecast.common import PERIOD, Calibration, ForecastError, as_of_day
from analysis.steering.forecast.sentences import disagreement_sentence, headline_sentence
from analysis.steering.forecast.simulation import (
    OutcomeSimulation,
    outcome_as_of,
    simulate_outcome,
    simulation_calibration,
)
from analysis.steering.forecast.timeseries import (
    INTERVAL,
    ForecastResult,
    complete_by,
    revenue_forecast,
    series_calibration,
)
from analysis.steering.forecast.weighted import weighted_pipeline

#: Forecast methods, in the order a tie goes to: the simulation first (its interval is the one
#: whose coverage is measured on replays of the whole forecast), then the time series.
METHODS = ("simulation", "time_series", "weighted_pipeline")
#: Columns of :attr:`Headline.table`.
HEADLINE_COLUMNS = ["method", "label", "forecast", "low", "high", "interval", "backtest_periods", "mape", "bias",
                    "inside", "with_interval", "coverage", "eligible", "is_headline", "note"]


@dataclass(frozen=True)
class Candidate:
    """One forecast of P's revenue with its calibration.

    Attributes
    ----------
    method
        ``simulation``, ``time_series`` or ``weighted_pipeline``.
    label
        How a sentence names it: "the simulation", "the time series"...
    value, low, high
        The point forecast (the simulation's P50) and its 80% interval (NaN without one).
    calibration
        Its accuracy on past periods (:class:`Calibration`).
    eligible
        Whether it competes for the headline (the weighted pipeline does not: it forecasts only
        the open deals expected to close in P).
    note
        What it counts (and, for a non-eligible one, why it does not compete); for a missing
        forecast, why there is none.
    detail
        A short description of the model (``ETS(A,N,A) m=4``, ``4,000 runs``).
    """

    method: str
    label: str
    value: float
    low: float
    high: float
    calibration: Calibration
    eligible: bool = True
    note: str = ""
    detail: str = ""

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low) or math.isnan(self.high))


@dataclass(frozen=True)
class Headline:
    """The headline forecast of a period and its supporting evidence.

    Attributes
    ----------
    period, as_of
        The period forecast and the day the forecasts are made.
    chosen
        The headline :class:`Candidate`; its calibration is on :attr:`compared_on` when the
        methods could be compared there.
    others
        The other candidates (supporting evidence), calibrated on the same periods.
    compared_on
        Labels of the past periods the methods were compared on (empty: no comparison).
    reason
        Why the headline is this method.
    sentence
        The headline with its calibration (:func:`headline_sentence`).
    disagreements
        One sentence per eligible other forecast that disagrees with the headline beyond their
        intervals (:func:`disagreement_sentence`).
    table
        One row per candidate: :data:`HEADLINE_COLUMNS`.
    """

    period: str
    as_of: date
    chosen: Candidate
    others: tuple[Candidate, ...]
    compared_on: tuple[str, ...]
    reason: str
    sentence: str
    disagreements: tuple[str, ...]
    table: pd.DataFrame

    @property
    def text(self) -> str:
        """The headline sentence and the disagreement sentences as one paragraph."""
        return " ".join([self.sentence, *self.disagreements])


def headline(
    ds: Dataset,
    period: str | Period,
    *,
    as_of: Any = None,
    series: ForecastResult | None = None,
    simulation: OutcomeSimulation | None = None,
    n: int | None = None,
    seed: int | None = None,
    max_cells: int | None = None,
    replay_n: int | None = 2_000,
) -> Headline:
    """The headline revenue forecast of ``period``, chosen by backtest accuracy.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    period
        The period P (label or Period); its grain is the forecast grain.
    as_of
        The day the forecasts are made; default as :func:`simulate_outcome` (the data's
        snapshot day when it falls before P's last day, else the day before P starts). Must be
        before P's last day.
    series, simulation
        The :func:`revenue_forecast` (its history ending with the last period complete by
        ``as_of``) and :func:`simulate_outcome` of P as of ``as_of`` when already computed;
        otherwise they are computed here (``n``, ``seed``, ``max_cells`` for the simulation).
    replay_n
        Simulations per replayed period of the calibration (:func:`simulation_calibration`,
        memoized: the same options share one replay).

    Returns
    -------
    Headline

    Notes
    -----
    Candidates: the time series (the winning model's forecast and 80% interval), the
    simulation (P50, P10-P90) and the weighted pipeline of the deals expected to close in P
    (not eligible: no new business, no slipped deals; shown with its replay error).

    Calibration is measured on the periods the time series' backtest scores
    (:func:`scored_periods`: the last ``config.forecast.backtest_periods`` complete periods with
    at least 3 before them), each forecast as of the day before it: the time series
    one step ahead from the periods before it, the simulation replayed
    (:func:`outcome_backtest`), the weighted pipeline of that day.

    Choice: among the eligible candidates, the lower MAPE on the periods all of them scored;
    a tie goes to the simulation (:data:`METHODS` order). When only one could be scored it is
    the headline; when none could (too little history), the simulation is (it counts today's
    pipeline), and the sentence says that its accuracy is unknown.

    The calibration is that of forecasts made the day before a period; a forecast made later
    (``as_of`` inside P) knows what was won since, and is likely closer than its calibration.

    Disagreement: two forecasts disagree when the point forecast of one lies outside the
    interval of the other; then one sentence says which lies where and why the methods can
    differ (:func:`disagreement_sentence`).
    """
    p = ds.period(period)
    when = outcome_as_of(ds, p) if as_of is None else as_of
    day = as_of_day(ds, when)
    if day >= p.last_day:
        raise ForecastError(
            f"as_of {day.isoformat()} is not before the last day of {p.label} ({p.last_day.isoformat()}); "
            "there is nothing left to forecast: read the actuals with analysis.metrics"
        )
    cands = [_simulation_candidate(ds, p, day, simulation, n, seed, max_cells, replay_n),
             _series_candidate(ds, p, day, series)]
    cands.append(_pipeline_candidate(ds, p, day, cands[0].calibration))
    eligible = [c for c in cands if c.eligible and not math.isnan(c.value)]
    common = _common_periods([c.calibration for c in eligible])
    if common:
        cands = [Candidate(**{**c.__dict__, "calibration": c.calibration.on(common)}) for c in cands]
        eligible = [c for c in cands if c.eligible and not math.isnan(c.value)]
    chosen, reason = _choose(ds, eligible, cands, p, common)
    others = tuple(c for c in cands if c is not chosen)
    nb_text = headline_sentence(ds, p, day, chosen, others, reason)
    dis = tuple(s for s in (disagreement_sentence(ds, chosen, o) for o in others if o.eligible) if s)
    table = pd.DataFrame([_row(c, c is chosen) for c in cands], columns=HEADLINE_COLUMNS)
    table = table.astype({"backtest_periods": "int64", "with_interval": "int64", "inside": "Int64"})
    return Headline(p.label, day, chosen, others, tuple(common), reason, nb_text, dis, table)


# -- the candidates -------------------------------------------------------------------------------


def _simulation_candidate(ds: Dataset, p: Period, day: date, sim: OutcomeSimulation | None, n: int | None,
                          seed: int | None, max_cells: int | None, replay_n: int | None) -> Candidate:
    if sim is None:
        sim = simulate_outcome(ds, p, as_of=day, n=n, seed=seed, by=(), max_cells=max_cells)
    s = sim.summary.iloc[0]
    cal = simulation_calibration(ds, grain=p.grain, as_of=day, n=replay_n, seed=seed, max_cells=max_cells)
    seasonal = s.season_factor == s.season_factor and s.season_factor != 1.0
    note = (f"counts the deals open on {day.isoformat()}, each with its step's chance of being won within "
            f"the {p.grain}, plus new business at the run rate of the last year's {p.grain}s"
            + (f" brought to {p.label}'s season (x{ds.config.numbers.number(s.season_factor, digits=2)})" if seasonal
               else " with no seasonal adjustment (" + str(s.seasonality).removeprefix("none: ") + ")"))
    return Candidate("simulation", "the simulation", float(s.p50), float(s.p10), float(s.p90), cal, True, note,
                     f"{int(s.simulations):,} runs")


def _series_candidate(ds: Dataset, p: Period, day: date, series: ForecastResult | None) -> Candidate:
    end = complete_by(ds, p.grain, day)
    empty = Calibration.of("time_series", p.grain, pd.DataFrame({PERIOD: []}))
    nan = float("nan")
    if series is None:
        horizon = 0
        q = end
        while q < p:
            q, horizon = q.next(), horizon + 1
        try:
            series = revenue_forecast(ds, grain=p.grain, horizon=horizon, end=end)
        except ForecastError as err:
            return Candidate("time_series", "the time series", nan, nan, nan,
                             Calibration(empty.method, empty.grain, empty.frame, str(err)), True,
                             f"no time-series forecast: {err}")
    row = series.best[series.best[PERIOD] == p.label]
    if row.empty:
        raise ForecastError(f"the time-series forecast given does not cover {p.label} "
                            f"(it forecasts {', '.join(series.best[PERIOD])})")
    r = row.iloc[0]
    model = series.spec if series.winner == "ets" else "seasonal naive"
    terms = {"N,N": "its level", "N,A": "its level and seasonality", "Ad,N": "its level and damped trend",
             "Ad,A": "its level, damped trend and seasonality"}
    spec = series.spec.removeprefix("ETS(A,").split(")")[0]
    what = terms.get(spec, "its level") if series.winner == "ets" else "the same period a year earlier"
    note = (f"extends {_grainly(p.grain)} revenue up to {series.history[PERIOD].iloc[-1]} ({what}) and does not "
            "see the pipeline")
    return Candidate("time_series", "the time series", float(r.forecast), float(r.low), float(r.high),
                     series_calibration(series), True, note, model)


def _grainly(grain: str) -> str:
    return {"day": "daily", "month": "monthly", "quarter": "quarterly", "half": "half-yearly", "year": "yearly",
            "week": "weekly"}.get(grain, f"per-{grain}")


def _pipeline_candidate(ds: Dataset, p: Period, day: date, sim_cal: Calibration) -> Candidate:
    """The weighted pipeline of the deals expected to close in P, replayed on the simulation's
    periods (the day before each; the open deals of those days are memoized by the replay)."""
    w = weighted_pipeline(ds, as_of=day, grain=p.grain)
    f = w[w.close_period == p.label]
    value = float(f.weighted.sum()) if f.weighted.notna().all() else float("nan")  # no deal: 0
    rows = []
    for label, actual in zip(sim_cal.frame[PERIOD], sim_cal.frame.actual):
        q = ds.period(label)
        wq = weighted_pipeline(ds, as_of=q.start - timedelta(days=1), grain=q.grain)
        fq = wq[wq.close_period == q.label]
        v = float(fq.weighted.sum()) if fq.weighted.notna().all() else float("nan")
        rows.append({PERIOD: label, "actual": actual, "forecast": v, "low": np.nan, "high": np.nan})
    cal = Calibration.of("weighted_pipeline", p.grain, pd.DataFrame(rows, columns=[PERIOD, "actual", "forecast", "low",
                                                                                   "high"]), sim_cal.reason)
    note = (f"counts only the open deals expected to close in {p.label}, each weighted by its step's win "
            "probability: no new business and no deal that slips in or out, so it is not a forecast of the "
            f"whole {p.grain} and does not compete for the headline")
    return Candidate("weighted_pipeline", "the weighted pipeline", value, float("nan"), float("nan"), cal, False,
                     note)


# -- the choice -----------------------------------------------------------------------------------


def _common_periods(cals: list[Calibration]) -> list[str]:
    """Periods every calibration scored (in the first one's order); empty unless at least two
    calibrations scored some period."""
    scored = [c.periods for c in cals if c.scored]
    if len(scored) < 2:
        return []
    common = [x for x in scored[0] if all(x in s for s in scored[1:])]
    return common


def _choose(ds: Dataset, eligible: list[Candidate], cands: list[Candidate], p: Period,
            common: list[str]) -> tuple[Candidate, str]:
    """The headline candidate and why (see :func:`headline`)."""
    pct = ds.config.numbers.percent
    if not eligible:
        raise ForecastError(f"no forecast of {p.label} could be made: "
                            + "; ".join(c.note for c in cands if c.note))
    order = {m: i for i, m in enumerate(METHODS)}
    scored = [c for c in eligible if not math.isnan(c.calibration.mape)]
    k = len(common)
    if len(scored) >= 2 and common:
        best = min(scored, key=lambda c: (c.calibration.mape, order[c.method]))
        rest = [c for c in scored if c is not best]
        tie = any(c.calibration.mape == best.calibration.mape for c in rest)
        what = "as low as that of" if tie else "lower than that of"
        vs = ", ".join(f"{c.label} ({pct(c.calibration.mape)})" for c in rest)
        return best, (f"its average error on the same {k} past {p.grain}{'' if k == 1 else 's'} "
                      f"({pct(best.calibration.mape)}) was {what} {vs}")
    if scored:
        best = min(scored, key=lambda c: order[c.method])
        missing = [c for c in eligible if c is not best]
        why = "; ".join(f"{c.label} could not be backtested ({c.calibration.reason or c.note})" for c in missing)
        return best, why or "it is the only forecast"
    best = min(eligible, key=lambda c: order[c.method])
    reasons = {c.calibration.reason for c in eligible if c.calibration.reason}
    return best, "no backtest was possible (" + "; ".join(sorted(reasons) or ["no past period to score"]) + ")"


def _row(c: Candidate, is_headline: bool) -> dict[str, Any]:
    cal = c.calibration
    return {"method": c.method, "label": c.label, "forecast": c.value, "low": c.low, "high": c.high,
            "interval": INTERVAL if c.has_interval else float("nan"), "backtest_periods": cal.scored,
            "mape": cal.mape, "bias": cal.bias, "inside": cal.inside if cal.with_interval else pd.NA,
            "with_interval": cal.with_interval, "coverage": cal.coverage, "eligible": c.eligible,
            "is_headline": is_headline, "note": c.note}

