"""One plain-language sentence for each forecast result."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.data.periods import Period, period_of
from analysis.format import money
from analysis.semantic.catalog import build_catalog
from analysis.steering.forecast.common import PERIOD, ForecastError

if TYPE_CHECKING:  # the modules that build these results import this one
    from analysis.steering.forecast.simulation import OutcomeSimulation
    from analysis.steering.forecast.timeseries import ForecastResult


def _pct(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "n/a"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def probabilities_sentence(probs: pd.DataFrame) -> str:
    """One sentence on a :func:`win_probabilities` frame (sources and the overall win rate)."""
    learned = probs[probs.source == "history"]
    n_hist = len(learned)
    overall = probs.attrs.get("overall", float("nan"))
    if n_hist:
        best = learned.sort_values(["probability", "step"], ascending=[False, True]).iloc[0]
        lead = (f"{n_hist} of {len(probs)} steps have win probabilities learned from history "
                f"(highest: {best.step.replace('_', ' ')} {best.probability:.0%})")
    else:
        lead = f"No step has enough closed deals (at least {probs.attrs.get('min_history_deals', '?')}) to learn from"
    fallbacks = probs[probs.source != "history"]
    tail = ""
    if len(fallbacks):
        by_src = fallbacks.groupby("source").step.apply(lambda s: ", ".join(x.replace("_", " ") for x in s))
        tail = "; " + "; ".join(f"{src} fallback for {steps}" for src, steps in by_src.items())
    return f"{lead}{tail}; the overall win rate is {_pct(overall)}."


def pipeline_sentence(ds: Dataset, frame: pd.DataFrame, *, period: str | Period | None = None) -> str:
    """One sentence on a :func:`weighted_pipeline` frame for one close period.

    ``period`` defaults to the period of the day after the frame's ``as_of`` (the first period
    deals can still close in). Example: ``Weighted pipeline expected to close in 2026-Q4 is
    $9.9M from 420 open deals worth $31M (commit $2.1M, best case $3.4M).``
    """
    grain = frame.attrs.get("grain", "quarter")
    if period is None:
        day = frame.attrs.get("as_of") or timeline.snapshot_day(ds)
        label = period_of(day + timedelta(days=1), grain, fiscal_start_month=ds.config.fiscal_year_start_month).label
    else:
        label = ds.period(period).label
    f = frame[frame.close_period == label]
    if f.empty:
        return f"No open deals are expected to close in {label}."
    by_cat = f.groupby("category").weighted.sum(min_count=1)

    def cat(name: str) -> float:
        return float(by_cat.get(name, 0.0))

    total_w = f.weighted.sum(min_count=len(f)) if f.weighted.notna().all() else float("nan")
    return (
        f"Weighted pipeline expected to close in {label} is {money(total_w, ds.config.currency)} from {int(f.deals.sum()):,} "
        f"open deals worth {money(f.amount.sum(), ds.config.currency)} (commit {money(cat('commit'), ds.config.currency)}, "
        f"best case {money(cat('best_case'), ds.config.currency)})."
    )


def forecast_sentence(ds: Dataset, result: ForecastResult, *, period: str | Period | None = None) -> str:
    """One sentence on a :class:`ForecastResult`: a period's forecast, interval and verdict.

    ``period`` is the forecast period to speak of (default the first one after the history).

    Example: ``Revenue forecast for 2026-Q4: $23.1M (80% interval $20.9M to $25.3M, from the seasonal model ETS(A,N,A) m=4); it beats the seasonal naive
    baseline over 4 backtest quarters (MAPE 8.1% vs 12.3%, bias -2.0%).``
    """
    m = build_catalog(ds.config).get(result.metric)

    def fmt(v: float) -> str:
        return money(v, ds.config.currency) if m.unit == "money" else m.fmt(v)

    best = result.best
    if period is not None:
        label = period.label if isinstance(period, Period) else str(period)
        best = best[best[PERIOD] == label]
        if best.empty:
            raise ForecastError(f"period {label} is not among the forecast periods ({', '.join(result.best[PERIOD])})")
    best = best.iloc[0]
    acc = result.accuracy.set_index("model")
    name = {"ets": f"the seasonal model {result.spec}" if "m=" in result.spec else f"the ETS model {result.spec}",
            "seasonal_naive": "the seasonal naive baseline"}
    win, lose = result.winner, "seasonal_naive" if result.winner == "ets" else "ets"
    k = int(acc.loc[win, "periods"])
    if pd.isna(best.low) or pd.isna(best.high):
        interval = "no interval: too little history to measure the spread"
    else:
        interval = f"{result.interval:.0%} interval {fmt(best.low)} to {fmt(best.high)}"
    lead = f"{m.label} forecast for {best[PERIOD]}: {fmt(best.forecast)} ({interval}, from {name[win]})"
    if k == 0:
        return lead + "; no backtest was possible (too little history), so its accuracy is unknown."
    verb = "beats" if acc.loc[win, "mape"] < acc.loc[lose, "mape"] else "is not beaten by"
    if math.isnan(acc.loc[lose, "mape"]):
        verb = "is used instead of"
    return (f"{lead}; it {verb} {name[lose]} over {k} backtest {result.grain}s "
            f"(MAPE {_pct(acc.loc[win, 'mape'])} vs {_pct(acc.loc[lose, 'mape'])}, "
            f"bias {_pct(acc.loc[win, 'bias'], signed=True)}).")


def outcome_sentence(ds: Dataset, result: OutcomeSimulation) -> str:
    """One sentence on an :class:`OutcomeSimulation`.

    Example: ``Simulated revenue for 2026-Q4 (as of 2026-09-30, 10,000 runs): P50 $23M
    (P10 $20M, P90 $26M); 61% chance of reaching the $22M quota;
    12 of 40 reps are more likely than not to reach theirs.``
    """
    s = result.summary.iloc[0]
    text = (f"Simulated revenue for {result.period} (as of {result.as_of.isoformat()}, {int(s.simulations):,} runs): "
            f"P50 {money(s.p50, ds.config.currency)} (P10 {money(s.p10, ds.config.currency)}, P90 {money(s.p90, ds.config.currency)})")
    if pd.notna(s.target):
        text += f"; {s.p_reach_target:.0%} chance of reaching the {money(s.target, ds.config.currency)} quota"
    reps = result.groups.get("rep_id")
    if reps is not None and reps.target.notna().any():
        with_q = reps[reps.target.notna()]
        likely = int((with_q.p_reach_target > 0.5).sum())
        text += f"; {likely} of {len(with_q)} reps with a quota are more likely than not to reach it"
    return text + "."


def backtest_sentence(ds: Dataset, frame: pd.DataFrame) -> str:
    """One sentence on an :func:`outcome_backtest` frame."""
    k, inside = len(frame), int(frame.inside.sum())
    return (f"Replayed as of the day before each started, the simulation's 80% interval (P10-P90) held the "
            f"actual revenue in {inside} of the last {k} {frame.attrs.get('grain', 'period')}s; its P50 was off "
            f"by {_pct(frame.attrs.get('mape'))} on average.")
