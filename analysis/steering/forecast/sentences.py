"""One plain-language sentence for each forecast result."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.data.periods import Period, period_of
from analysis.semantic.catalog import build_catalog
from analysis.steering.forecast.common import PERIOD, ForecastError

if TYPE_CHECKING:  # the modules that build these results import this one
    from analysis.steering.forecast.headline import Candidate
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
    nb = ds.config.numbers
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
        f"Weighted pipeline expected to close in {label} is {nb.money(total_w)} from {int(f.deals.sum()):,} "
        f"open deals worth {nb.money(f.amount.sum())} (commit {nb.money(cat('commit'))}, "
        f"best case {nb.money(cat('best_case'))})."
    )


def forecast_sentence(ds: Dataset, result: ForecastResult, *, period: str | Period | None = None) -> str:
    """One sentence on a :class:`ForecastResult`: a period's forecast, interval and verdict.

    ``period`` is the forecast period to speak of (default the first one after the history).

    Example: ``Time-series forecast of revenue for 2026-Q4: $23.1M (80% interval $20.9M to $25.3M, from the seasonal model ETS(A,N,A) m=4); it beats the seasonal naive
    baseline over 4 backtest quarters (MAPE 8.1% vs 12.3%, bias -2.0%).``
    """
    m = build_catalog(ds.config).get(result.metric)
    nb = ds.config.numbers

    def fmt(v: float) -> str:
        return nb.money(v) if m.unit == "money" else m.fmt(v)

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
    lead = f"Time-series forecast of {m.label.lower()} for {best[PERIOD]}: {fmt(best.forecast)} ({interval}, from {name[win]})"
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
    nb = ds.config.numbers
    text = (f"Simulated revenue for {result.period} (as of {result.as_of.isoformat()}, {int(s.simulations):,} runs): "
            f"P50 {nb.money(s.p50)} (P10 {nb.money(s.p10)}, P90 {nb.money(s.p90)})")
    if pd.notna(s.target):
        text += f"; {s.p_reach_target:.0%} chance of reaching the {nb.money(s.target)} quota"
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


#: How the 80% interval (P10-P90) of a forecast is named in sentences.
INTERVAL_TEXT = "80%"


def _plural(grain: str, k: int) -> str:
    return f"{k} {grain}{'' if k == 1 else 's'}"


def _calibration_clause(ds: Dataset, c: Candidate) -> str:
    """"the actual fell inside P10-P90 in 3 of 4 replayed quarters; P50 off by 10.4% on average"
    (or why its accuracy is unknown)."""
    nb = ds.config.numbers
    cal = c.calibration
    if not cal.scored:
        return f"its accuracy is unknown: {cal.reason or 'no past period could be scored'}"
    if c.method == "simulation":
        each = "it" if cal.with_interval == 1 else "each"
        inside = (f"the actual fell inside P10-P90 in {cal.count_text()} replayed as of the day before {each}"
                  if cal.with_interval else "")
        return f"{inside}; P50 off by {nb.percent(cal.mape)} on average"
    if c.method == "time_series":
        inside = (f"; the actual fell inside its {INTERVAL_TEXT} interval in {cal.count_text()}"
                  if cal.with_interval else "")
        return (f"forecast one {cal.grain} ahead in its backtest, it was off by {nb.percent(cal.mape)} on average "
                f"over {_plural(cal.grain, cal.scored)}{inside}")
    return f"replayed on {_plural(cal.grain, cal.scored)}, it was off by {nb.percent(cal.mape)} on average"


def _figure(ds: Dataset, c: Candidate) -> str:
    """"P50 $21.5M (P10-P90 $18.2M-$25.6M)", "$27.1M (80% interval $24.0M-$30.2M)"."""
    m = ds.config.numbers.money
    if c.method == "simulation":
        return f"P50 {m(c.value)} (P10-P90 {m(c.low)}-{m(c.high)})"
    if c.has_interval:
        return f"{m(c.value)} ({INTERVAL_TEXT} interval {m(c.low)}-{m(c.high)})"
    return f"{m(c.value)} (no interval)"


def headline_sentence(ds: Dataset, p: Period, day: Any, chosen: Candidate, others: Any, reason: str) -> str:
    """The headline forecast with its calibration and why it is the headline.

    Example: ``Revenue forecast for 2026-Q4 (as of 2026-09-30), from the simulation: P50 $21.5M
    (P10-P90 $18.2M-$25.6M); the actual fell inside P10-P90 in 3 of 4 quarters replayed as of the
    day before each; P50 off by 10.4% on average. It is the headline because its average error
    on the same 4 past quarters (10.4%) was lower than that of the time series (15.9%).``
    """
    source = chosen.label.removeprefix("the ")
    detail = f", {chosen.detail}" if chosen.detail and chosen.method == "time_series" else ""
    text = (f"Revenue forecast for {p.label} (as of {day.isoformat()}), from the {source}{detail}: "
            f"{_figure(ds, chosen)}; {_calibration_clause(ds, chosen).lstrip('; ')}.")
    if reason:
        text += f" It is the headline because {reason}." if not reason.startswith("no backtest") else \
            f" It is the headline because {reason}, so which forecast is more accurate here is unknown."
    return text


def disagreement_sentence(ds: Dataset, headline: Candidate, other: Candidate) -> str:
    """One sentence when two forecasts disagree beyond their intervals, else "".

    They disagree when the point forecast of one lies outside the interval of the other (a
    forecast without an interval is only judged against the other's). The sentence says which
    lies where and why the methods can differ (each one's ``note``); which was closer on past
    periods is the headline sentence's.

    Example: ``The time series' $27.1M lies above the simulation's P10-P90 ($18.2M-$25.6M).
    They can differ: the simulation counts the deals open on 2026-09-30 ..., while the time series
    extends quarterly revenue up to 2026-Q3 ... and does not see the pipeline.``
    """
    m = ds.config.numbers.money
    if math.isnan(headline.value) or math.isnan(other.value):
        return ""

    def outside(x: float, c: Candidate) -> str:
        if not c.has_interval:
            return ""
        return "above" if x > c.high else "below" if x < c.low else ""

    def interval_name(c: Candidate) -> str:
        return "P10-P90" if c.method == "simulation" else f"{INTERVAL_TEXT} interval"

    def possessive(c: Candidate) -> str:
        return f"{c.label}'" if c.label.endswith("s") else f"{c.label}'s"

    where = outside(other.value, headline)
    a, b = other, headline
    if not where:
        where = outside(headline.value, other)
        a, b = headline, other
    if not where:
        return ""
    what = "P50 " if a.method == "simulation" else ""
    lead = (f"{possessive(a)[0].upper()}{possessive(a)[1:]} {what}{m(a.value)} lies {where} {possessive(b)} "
            f"{interval_name(b)} ({m(b.low)}-{m(b.high)})")
    text = lead + "."
    notes = [f"{c.label} {c.note}" for c in (headline, other) if c.note]
    if notes:
        text += " They can differ: " + ", while ".join(notes) + "."
    return text
