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
* :func:`probabilities_sentence`, :func:`pipeline_sentence`, :func:`forecast_sentence`,
  :func:`outcome_sentence`: one plain-language sentence for each result.

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

import math
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Sequence

import ibis
import numpy as np
import pandas as pd

from analysis.analytics import pipeline as pl
from analysis.data import timeline
from analysis.semantic.catalog import build_catalog
from analysis.semantic.engine import metrics, resolve_dims, with_dimensions
from analysis.errors import WorkbenchError
from analysis.format import money
from analysis.analytics.funnel import FUNNEL_STEPS, NURTURING_K, PARKING_STEP
from analysis.data.loading import Dataset
from analysis.data.periods import Period, grain_of, parse_period, period_of
from analysis.data.schema import STEPS

#: Forecast categories, most certain first.
CATEGORIES = ("commit", "best_case", "pipeline")
#: Where a step's probability came from.
SOURCES = ("history", "config", "overall", "none")
#: Season length per grain (periods per year); grains not listed are forecast without seasonality.
SEASON_LENGTH = {"month": 12, "quarter": 4, "half": 2}
#: Model names in :class:`ForecastResult` frames.
MODELS = ("ets", "seasonal_naive")
#: Coverage of the prediction intervals of :func:`revenue_forecast` (an 80% interval: P10-P90).
INTERVAL = 0.80
#: Fewest observations the ETS model is fitted on (fewer: no ETS forecast).
MIN_ETS_OBS = 3
#: Simulations draw the step rates and new-business count of one analogous past period each
#: (the period bootstrap of :func:`simulate_outcome`); False: pooled rates and one Poisson mean.
MIX_PERIODS = True
#: Simulations per chunk are chosen so that a chunk's draw matrix holds about this many cells.
CHUNK_CELLS = 4_000_000
#: Fewest simulations ``simulate_outcome(max_cells=...)`` runs (P10/P90 move by about 1% at 1,000).
MIN_CAPPED_SIMULATIONS = 1_000

PERIOD = "period"


class ForecastError(WorkbenchError):
    """A forecast request that cannot be answered (bad metric, period, date or option)."""


# -- helpers -------------------------------------------------------------------------------------


def _as_of(ds: Dataset, as_of: Any) -> Any:
    """``as_of`` or, by default, the data's snapshot day (:func:`analysis.timeline.snapshot_day`)."""
    return timeline.snapshot_day(ds) if as_of is None else as_of


def _day(ds: Dataset, when: Any) -> date:
    """The calendar day of an as-of value (raises ForecastError for a bad value)."""
    return timeline.moment(ds, when, "as_of", error=ForecastError).day




def _months_before(day: date, months: int) -> date:
    return (pd.Timestamp(day) - pd.DateOffset(months=months)).date()


def _cents(amounts: Any) -> np.ndarray:
    """Amounts as integer cents (NaN -> 0), exact for amounts below 90 trillion."""
    a = pd.to_numeric(pd.Series(amounts), errors="coerce").astype("float64").fillna(0.0).to_numpy()
    return np.round(a * 100.0).astype("int64")


def _pct(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "n/a"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _step_of_k(k: int) -> str | None:
    if k == NURTURING_K:
        return PARKING_STEP
    return FUNNEL_STEPS[k] if 0 <= k < len(FUNNEL_STEPS) - 1 else None


def _labels_in_order(labels: pd.Series, ds: Dataset) -> pd.Series:
    """Sort keys (period start ordinal) for period labels; NA last."""
    fsm = ds.config.fiscal_year_start_month
    keys = {lab: parse_period(lab, fiscal_start_month=fsm).start.toordinal() for lab in labels.dropna().unique()}
    return labels.map(keys).fillna(10**9).astype("int64")


# -- snapshot observations -----------------------------------------------------------------------


def _month_ends(since: date, day: date) -> list[date]:
    """Last days of the months that end in ``(since, day]``."""
    out = []
    m = pd.Timestamp(since) + pd.offsets.MonthEnd(1)
    while m.date() <= day:
        if m.date() > since:
            out.append(m.date())
        m = m + pd.offsets.MonthEnd(1)
    return out


def snapshot_deals(ds: Dataset, snapshots: Sequence[date]) -> pd.DataFrame:
    """Every deal open at the end of each snapshot day in a known step, as the deal timeline
    reads it (:func:`analysis.timeline.open_deals`): one query for all the days.

    Returns ``snapshot``, ``opportunity_id``, ``step``, ``amount`` (cents, int64), ``status``
    (final), ``closed_on`` (the final record's close day, NaT while open), sorted by snapshot
    and deal. Memoized per dataset and day (a loaded dataset does not change), so replays query
    each day once.
    """
    cols = ["snapshot", "opportunity_id", "step", "amount", "status", "closed_on"]
    if not snapshots or not ds.has("stage_history"):
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    memo: dict[date, pd.DataFrame] = ds.__dict__.setdefault("_forecast_snapshots", {})
    wanted = sorted(set(snapshots))
    missing = [s for s in wanted if s not in memo]
    if missing:
        fresh = _query_snapshots(ds, missing)
        groups = dict(iter(fresh.groupby("snapshot", sort=False)))
        for s in missing:
            memo[s] = groups.get(pd.Timestamp(s), fresh.iloc[0:0])
    return pd.concat([memo[s] for s in wanted], ignore_index=True)


def _query_snapshots(ds: Dataset, snapshots: Sequence[date]) -> pd.DataFrame:
    """The one query of :func:`snapshot_deals`."""
    o = timeline.open_deals(ds, {s.isoformat(): timeline.end_of_day(s) for s in snapshots}, steps=True)
    o = o.filter(o.step.notnull())
    out = o.select(snapshot=o.moment, opportunity_id=o.opportunity_id, step=o.step, amount=o.amount,
                   status=o.status, closed_on=o.closed_on).to_pandas()
    out["amount"] = _cents(out["amount"])
    out["snapshot"] = pd.to_datetime(out["snapshot"])
    out["closed_on"] = pd.to_datetime(out["closed_on"])
    return out.sort_values(["snapshot", "opportunity_id"], kind="stable").reset_index(drop=True)


# -- win probabilities ---------------------------------------------------------------------------


def _step_rates(obs: pd.DataFrame, won: pd.Series) -> dict[str, tuple[int, int, int, int, int, int]]:
    """Per step: distinct deals, distinct won deals, observations, won observations, amount and
    won amount (cents) of the snapshot observations ``obs`` with outcome ``won``."""
    if obs.empty:
        return {}
    f = obs.assign(_won=won.to_numpy(bool), _wamt=np.where(won.to_numpy(bool), obs.amount.to_numpy("int64"), 0))
    g = f.groupby("step", sort=False).agg(obs=("_won", "size"), won_obs=("_won", "sum"), amt=("amount", "sum"),
                                          wamt=("_wamt", "sum"), deals=("opportunity_id", "nunique"))
    wd = f[f._won].groupby("step", sort=False).opportunity_id.nunique()
    return {str(s): (int(r.deals), int(wd.get(s, 0)), int(r.obs), int(r.won_obs), int(r.amt), int(r.wamt))
            for s, r in g.iterrows()}


def _probability_frame(ds: Dataset, counts: dict[str, tuple[int, ...]], overall: float, n_all: int,
                       fallback: dict[str, float | None] | None = None) -> pd.DataFrame:
    """Rows of STEPS with the fallback rules (history >= min_history_deals, config, overall, none)."""
    cfg = ds.config.forecast
    rows = []
    for step in STEPS:
        deals, won, n_obs, w_obs, amt, wamt = counts.get(step, (0, 0, 0, 0, 0, 0))
        rate = wamt / amt if amt > 0 else (w_obs / n_obs if n_obs else float("nan"))
        count_rate = w_obs / n_obs if n_obs else float("nan")
        default = ds.config.default_probability(step) if fallback is None else fallback.get(step)
        if deals >= cfg.min_history_deals and not math.isnan(rate):
            prob, source = rate, "history"
        elif default is not None:
            prob, source = float(default), "config"
        elif n_all:
            prob, source = overall, "overall"
        else:
            prob, source = float("nan"), "none"
        rows.append((step, deals, won, n_obs, w_obs, amt / 100.0, wamt / 100.0, count_rate, rate, prob, source))
    out = pd.DataFrame(rows, columns=["step", "closed_deals", "won_deals", "observations", "won_observations",
                                      "closed_amount", "won_amount", "count_rate", "history_rate", "probability",
                                      "source"])
    return out.astype({"closed_deals": "int64", "won_deals": "int64", "observations": "int64",
                       "won_observations": "int64", "closed_amount": "float64", "won_amount": "float64",
                       "count_rate": "float64", "history_rate": "float64", "probability": "float64"})


def win_probabilities(ds: Dataset, *, as_of: Any = None) -> pd.DataFrame:
    """Historical win probability of each open funnel step, learned from past pipeline snapshots.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load` (``stage_history`` is needed to learn per step;
        without it every step falls back).
    as_of
        Learn only from what was known by this day (default: the data's snapshot day).

    Returns
    -------
    pandas.DataFrame
        One row per step of :data:`~analysis.schema.STEPS` (prospecting ... closing,
        nurturing): ``step``, ``closed_deals`` (distinct deals seen in the step at a snapshot
        and closed by ``as_of``), ``won_deals`` (of them, won), ``observations`` and
        ``won_observations`` (deal-snapshot pairs), ``closed_amount`` and ``won_amount`` (their
        amounts), ``count_rate`` (won_observations / observations), ``history_rate``
        (won_amount / closed_amount; NaN without observations), ``probability`` and ``source``
        (``history``, ``config``, ``overall`` or ``none``). ``attrs``: ``as_of`` (day),
        ``since`` (first day of the history window), ``snapshots`` (the snapshot days),
        ``overall`` (overall win rate), ``overall_closed``, ``overall_won``,
        ``min_history_deals``.

    Notes
    -----
    The probability answers "a deal sitting in step k at a snapshot: how much of its value is
    eventually won?", the question the weighted pipeline asks of today's open deals.

    * **Snapshots**: the last day of every month that ends in ``(as_of - history_months,
      as_of]`` (``config.forecast.history_months``). At each, every open deal in the step it was
      in then (reconstructed as :func:`analysis.pipeline.pipeline_as_of` does, in one DuckDB
      query; deals without stage history have no known step and are left out).
    * **Outcome**: won when its final status is won with a close date on or before ``as_of``;
      lost when lost by then. Deals still open at ``as_of`` are **censored** (left out). This
      biases recent snapshots towards deals that closed fast; fast closers win more often in
      a typical funnel, so the rates of the last few months lean optimistic. Monthly snapshots
      over two years dilute it (on ``data/sample`` leaving out the last six months of snapshots
      moves no step by more than about 3 points).
    * A deal is counted at every snapshot it was open in the step (a deal lingering five months
      counts five times): that is what a snapshot of the pipeline sees, and it removes the
      length bias of "won share of closed deals that passed step k" (fast movers, which win
      more, spend little time in a step, so a snapshot holds fewer of them).
    * ``history_rate = won_amount / closed_amount`` (amount-weighted), because the probability
      multiplies amounts: on the sample large deals win less often, and the count rate
      overstated the weighted pipeline by a further 10-15% in the replay of four quarters
      (``count_rate`` is reported beside it).
    * ``probability`` is ``history_rate`` when at least ``min_history_deals``
      (``config.forecast.min_history_deals``) distinct deals support the step, else the step's
      config default (:meth:`Config.default_probability`), else the overall win rate
      ``won / closed`` (count) of deals closed in the window, else (no closed deal at all) NaN
      with source ``none``.
    """
    when = _as_of(ds, as_of)
    day = _day(ds, when)
    cfg = ds.config.forecast
    since = _months_before(day, cfg.history_months)
    o = pl.placed_deals(ds)
    closed = o.filter(
        o.status.isin(list(timeline.CLOSED)) & (o.closed_on <= ibis.literal(day)) & (o.closed_on > ibis.literal(since))
    )
    tot = closed.aggregate(n=closed.count(), won=closed.count(where=closed.status == "won")).to_pyarrow().to_pylist()[0]
    n_all, won_all = int(tot["n"] or 0), int(tot["won"] or 0)
    overall = won_all / n_all if n_all else float("nan")
    snaps = _month_ends(since, day)
    counts: dict[str, tuple[int, ...]] = {}
    if ds.has("stage_history"):
        obs = snapshot_deals(ds, snaps)
        end = pd.Timestamp(day)
        obs = obs[obs.closed_on.notna() & (obs.closed_on <= end)]
        counts = _step_rates(obs, obs.status == "won")
    out = _probability_frame(ds, counts, overall, n_all)
    out.attrs.update(as_of=day, since=since + timedelta(days=1), snapshots=snaps, overall=overall,
                     overall_closed=n_all, overall_won=won_all, min_history_deals=cfg.min_history_deals)
    return out


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


# -- weighted pipeline ---------------------------------------------------------------------------


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
    """
    when = _as_of(ds, as_of)
    day = _day(ds, when)
    by_list = resolve_dims(ds, by)
    grain = grain_of(grain)
    probs = win_probabilities(ds, as_of=when) if probabilities is None else probabilities
    deals = pl.pipeline_as_of(ds, when, by=by_list)
    prob_of = dict(zip(probs.step, probs.probability))
    src_of = dict(zip(probs.step, probs.source))
    overall = probs.attrs.get("overall", float("nan"))
    known = deals.step.isin(list(prob_of))
    p = deals.step.map(prob_of).where(known, overall).astype("float64")
    src = deals.step.map(src_of).where(known, "overall" if not math.isnan(overall) else "none")
    cents = _cents(deals.amount)
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
        _c=_cents(d.amount),
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


# -- time-series forecast ------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastResult:
    """A time-series forecast, its backtest and the verdict.

    Attributes
    ----------
    metric, grain
        What was forecast, at which grain.
    history
        ``period``, ``actual``: the series the models were fitted on (complete periods).
    forecast
        ``period``, ``model``, ``forecast``, ``low``, ``high``, ``is_winner``: both models'
        forecasts for each horizon period with their ``interval`` prediction interval.
    backtest
        ``period``, ``model``, ``actual``, ``forecast``, ``error`` (forecast - actual),
        ``pct_error`` (error / |actual|, NaN when actual is 0), ``train_periods``.
    accuracy
        ``model``, ``periods`` (held-out periods scored), ``mape``, ``bias``, ``is_winner``.
    winner
        ``ets`` or ``seasonal_naive``.
    spec
        The ETS specification fitted on the whole history, e.g. ``ETS(A,N,A) m=4``.
    interval
        Coverage of the prediction intervals (0.8).
    sentence
        A one-sentence summary (:func:`forecast_sentence`).
    """

    metric: str
    grain: str
    history: pd.DataFrame
    forecast: pd.DataFrame
    backtest: pd.DataFrame
    accuracy: pd.DataFrame
    winner: str
    spec: str
    interval: float = INTERVAL
    sentence: str = ""

    @property
    def best(self) -> pd.DataFrame:
        """The winning model's forecast rows."""
        return self.forecast[self.forecast.is_winner].reset_index(drop=True)


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def seasonal_naive(y: Sequence[float], season: int, horizon: int, *, level: float = INTERVAL) -> pd.DataFrame:
    """Seasonal naive forecast of a series with its prediction interval.

    Parameters
    ----------
    y
        The observed series, oldest first.
    season
        Season length m (4 for quarters, 12 for months; 1 = plain naive).
    horizon
        Periods to forecast.
    level
        Interval coverage (0.8 = 80%).

    Returns
    -------
    pandas.DataFrame
        ``h`` (1..horizon), ``forecast``, ``low``, ``high``.

    Notes
    -----
    With lag L = m when the series holds at least m values, else L = 1 (plain naive):
    ``forecast(T+h) = y[T + h - L·k]`` with ``k = ceil(h / L)`` (the same period of the last
    observed season). Interval: ``forecast ± z · sigma · sqrt(k)`` with
    ``sigma = sqrt(mean(e_t²))``, ``e_t = y_t - y_{t-L}`` the in-sample seasonal differences
    (Hyndman & Athanasopoulos, FPP3 5.5) and z the normal quantile of the level. Without any
    seasonal difference (fewer than L + 1 values) the interval is NaN; an empty series gives
    NaN forecasts.
    """
    arr = np.asarray(y, dtype="float64")
    n = len(arr)
    hs = np.arange(1, horizon + 1)
    if n == 0:
        nan = np.full(horizon, np.nan)
        return pd.DataFrame({"h": hs, "forecast": nan, "low": nan, "high": nan})
    lag = season if n >= season else 1
    k = np.ceil(hs / lag).astype(int)
    fc = arr[n - 1 + hs - lag * k]
    resid = arr[lag:] - arr[:-lag]
    sigma = float(np.sqrt(np.mean(resid**2))) if len(resid) else float("nan")
    half = _z(level) * sigma * np.sqrt(k)
    return pd.DataFrame({"h": hs, "forecast": fc, "low": fc - half, "high": fc + half})


def _ets_specs(n: int, m: int) -> list[dict[str, Any]]:
    """Candidate ETS specifications for n observations and season m, preferred first."""
    specs: list[dict[str, Any]] = []
    if m > 1 and n >= 3 * m:
        specs.append(dict(trend="add", damped_trend=True, seasonal="add", seasonal_periods=m))
    if m > 1 and n >= 2 * m:
        specs.append(dict(trend=None, seasonal="add", seasonal_periods=m))
    if n >= 6:
        specs.append(dict(trend="add", damped_trend=True))
    if n >= MIN_ETS_OBS:
        specs.append(dict(trend=None))
    return specs


def _spec_name(spec: dict[str, Any]) -> str:
    trend = {None: "N", "add": "Ad" if spec.get("damped_trend") else "A"}[spec.get("trend")]
    seasonal = "A" if spec.get("seasonal") else "N"
    tail = f" m={spec['seasonal_periods']}" if spec.get("seasonal") else ""
    return f"ETS(A,{trend},{seasonal}){tail}"


def ets_forecast(
    y: Sequence[float], season: int, horizon: int, *, level: float = INTERVAL, seed: int = 0
) -> tuple[pd.DataFrame, str]:
    """ETS (exponential smoothing state space) forecast with its prediction interval.

    Returns the frame ``h``, ``forecast``, ``low``, ``high`` and the specification fitted.

    Notes
    -----
    statsmodels ``ETSModel`` with additive errors, fitted by maximum likelihood. The
    specification depends on the length n of the series (m = season length), so that short
    series are not overfitted:

    * n >= 3m: additive damped trend and additive seasonality, ETS(A,Ad,A);
    * 2m <= n < 3m: additive seasonality, no trend, ETS(A,N,A);
    * fewer than two seasons: damped trend ETS(A,Ad,N) when n >= 6, else simple exponential
      smoothing ETS(A,N,N);
    * n < 3: no forecast (NaN), spec ``none``.

    A specification whose fit fails or gives a non-finite forecast is replaced by the next one
    of the list. Intervals are the model's analytic ones (exact for these additive models);
    ``seed`` only matters if statsmodels has to simulate them.
    """
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    arr = np.asarray(y, dtype="float64")
    n = len(arr)
    hs = np.arange(1, horizon + 1)
    scale = float(np.max(np.abs(arr))) if n and np.max(np.abs(arr)) > 0 else 1.0
    for spec in _ets_specs(n, season):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = ETSModel(pd.Series(arr / scale), error="add", **spec).fit(disp=False)
                pred = res.get_prediction(start=n, end=n + horizon - 1, random_state=seed)
                sf = pred.summary_frame(alpha=1 - level)
        except Exception:  # noqa: BLE001 - a failed fit falls back to a simpler model
            continue
        fc = sf["mean"].to_numpy() * scale
        low, high = sf["pi_lower"].to_numpy() * scale, sf["pi_upper"].to_numpy() * scale
        if np.all(np.isfinite(fc)):
            return pd.DataFrame({"h": hs, "forecast": fc, "low": low, "high": high}), _spec_name(spec)
    nan = np.full(horizon, np.nan)
    return pd.DataFrame({"h": hs, "forecast": nan, "low": nan, "high": nan}), "none"


def accuracy(actual: Sequence[float], forecast: Sequence[float]) -> tuple[float, float, int]:
    """MAPE and bias of forecasts against actuals: ``(mape, bias, n)``.

    Notes
    -----
    Over the pairs whose actual is not 0 and whose forecast is known (n of them):
    ``mape = mean(|f - a| / |a|)`` and ``bias = mean((f - a) / |a|)`` (mean signed percentage
    error: positive = over-forecast). Both are fractions (0.12 = 12%). Zero actuals are
    skipped (their percentage error is undefined); n = 0 gives NaN for both.
    """
    a = np.asarray(actual, dtype="float64")
    f = np.asarray(forecast, dtype="float64")
    ok = (a != 0) & np.isfinite(a) & np.isfinite(f)
    if not ok.any():
        return float("nan"), float("nan"), 0
    pe = (f[ok] - a[ok]) / np.abs(a[ok])
    return float(np.mean(np.abs(pe))), float(np.mean(pe)), int(ok.sum())


def _last_complete(ds: Dataset, grain: str) -> Period:
    day = timeline.snapshot_day(ds)
    p = period_of(day, grain, fiscal_start_month=ds.config.fiscal_year_start_month)
    return p if p.last_day <= day else p.previous()


def revenue_forecast(
    ds: Dataset,
    *,
    metric: str = "revenue",
    grain: str = "quarter",
    horizon: int = 2,
    end: str | Period | None = None,
    backtest_periods: int | None = None,
    seed: int | None = None,
    level: float = INTERVAL,
) -> ForecastResult:
    """Forecast a catalog metric with a seasonal ETS model and a seasonal naive baseline.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    metric
        An additive catalog metric (a count or sum): ``revenue``, ``deals_won``,
        ``pipeline_created``...
    grain
        month, quarter or half (seasonal); other grains are forecast without seasonality.
    horizon
        Periods to forecast after ``end``.
    end
        The last period of history (label or Period); default the last complete period of the
        data (its last day on or before :meth:`Dataset.last_date`).
    backtest_periods
        Held-out periods of the rolling-origin backtest (default
        ``config.forecast.backtest_periods``).
    seed
        Default ``config.forecast.seed``; passed to statsmodels for simulated intervals (not
        needed by the additive models used, whose intervals are analytic).
    level
        Prediction interval coverage; default 0.8 (an 80% interval, P10-P90).

    Returns
    -------
    ForecastResult
        Frames ``history``, ``forecast``, ``backtest``, ``accuracy``, the ``winner`` and a
        ``sentence``; :attr:`ForecastResult.best` holds the winner's rows.

    Notes
    -----
    * Series: the metric per period from :func:`analysis.metrics`, from the first period with
      a non-zero value (leading zeros are the time before the data starts) to ``end``.
    * Models: :func:`ets_forecast` (its specification depends on the series length) and
      :func:`seasonal_naive` (season length 4 for quarters, 12 for months, 2 for halves).
    * Backtest (rolling origin): for each of the last ``backtest_periods`` periods t of the
      series, both models are refitted on the periods before t and forecast t one step ahead.
      A held-out period counts only when at least 3 periods precede it (so both models score
      the same periods). :func:`accuracy` gives MAPE and bias per model.
    * Winner: the lower MAPE; a tie, or no MAPE for ETS, goes to the seasonal naive baseline
      (a more complex model must earn its place); no MAPE for the baseline but one for ETS
      goes to ETS.
    * Deterministic: the same data and options give identical frames.
    """
    catalog = build_catalog(ds.config)
    m_def = catalog.get(metric)
    if not m_def.additive:
        raise ForecastError(
            f"metric {metric!r} is a {m_def.type}, not a count or sum; forecast an additive metric "
            "such as revenue, deals_won or pipeline_created"
        )
    grain = grain_of(grain)
    if not isinstance(horizon, int) or horizon < 1:
        raise ForecastError(f"horizon={horizon!r} must be a whole number of periods, at least 1")
    cfg = ds.config.forecast
    b = cfg.backtest_periods if backtest_periods is None else backtest_periods
    if not isinstance(b, int) or b < 0:
        raise ForecastError(f"backtest_periods={backtest_periods!r} must be a whole number >= 0")
    seed = cfg.seed if seed is None else seed
    if not 0 < level < 1:
        raise ForecastError(f"level={level!r} must be between 0 and 1 (0.8 = an 80% interval)")
    last = _last_complete(ds, grain)
    stop = last if end is None else ds.period(end)
    if stop.grain != grain:
        raise ForecastError(f"end {stop.label} is a {stop.grain}, but grain is {grain}; pass grain={stop.grain!r}")
    if stop > last:
        raise ForecastError(
            f"end {stop.label} is not complete (the data ends {timeline.snapshot_day(ds).isoformat()}); "
            f"pass {last.label} or an earlier period"
        )
    frame = metrics(ds, metric, grain=grain, catalog=catalog)
    if metric in frame.attrs.get("unavailable", {}):
        raise ForecastError(f"metric {metric!r} is not available: {frame.attrs['unavailable'][metric]}")
    fsm = ds.config.fiscal_year_start_month
    frame = frame.assign(_p=[parse_period(x, fiscal_start_month=fsm) for x in frame[PERIOD]])
    frame = frame[frame._p <= stop]
    values = pd.to_numeric(frame[metric], errors="coerce").astype("float64").fillna(0.0).to_numpy()
    nz = np.flatnonzero(values != 0)
    if not len(nz):
        raise ForecastError(f"{metric} is 0 in every period up to {stop.label}; there is nothing to forecast")
    periods = list(frame._p)[nz[0]:]
    y = values[nz[0]:]
    n = len(y)
    season = SEASON_LENGTH.get(grain, 1)

    # rolling-origin backtest
    bt_rows = []
    for t in range(max(n - b, MIN_ETS_OBS), n):
        train = y[:t]
        e, _ = ets_forecast(train, season, 1, level=level, seed=seed)
        s = seasonal_naive(train, season, 1, level=level)
        for model, f in (("ets", e), ("seasonal_naive", s)):
            fc = float(f.forecast.iloc[0])
            bt_rows.append((periods[t].label, model, float(y[t]), fc, t))
    bt = pd.DataFrame(bt_rows, columns=[PERIOD, "model", "actual", "forecast", "train_periods"])
    bt["error"] = bt.forecast - bt.actual
    bt["pct_error"] = (bt.error / bt.actual.abs().where(bt.actual != 0)).astype("float64")
    bt = bt[[PERIOD, "model", "actual", "forecast", "error", "pct_error", "train_periods"]]
    acc_rows = []
    for model in MODELS:
        sub = bt[bt.model == model]
        mape, bias, k = accuracy(sub.actual, sub.forecast)
        acc_rows.append((model, k, mape, bias))
    acc = pd.DataFrame(acc_rows, columns=["model", "periods", "mape", "bias"])
    m_ets, m_naive = acc.mape.iloc[0], acc.mape.iloc[1]
    if not math.isnan(m_ets) and (math.isnan(m_naive) or m_ets < m_naive):
        winner = "ets"
    else:
        winner = "seasonal_naive"
    acc["is_winner"] = acc.model == winner

    # final forecasts on the whole history
    e, spec = ets_forecast(y, season, horizon, level=level, seed=seed)
    s = seasonal_naive(y, season, horizon, level=level)
    labels = [stop.shift(h).label for h in range(1, horizon + 1)]
    parts = []
    for model, f in (("ets", e), ("seasonal_naive", s)):
        parts.append(pd.DataFrame({PERIOD: labels, "model": model, "forecast": f.forecast.to_numpy(),
                                   "low": f.low.to_numpy(), "high": f.high.to_numpy()}))
    fc_frame = pd.concat(parts, ignore_index=True)
    fc_frame["is_winner"] = fc_frame.model == winner
    history = pd.DataFrame({PERIOD: [p.label for p in periods], "actual": y})
    result = ForecastResult(metric=metric, grain=grain, history=history, forecast=fc_frame, backtest=bt,
                            accuracy=acc, winner=winner, spec=spec, interval=level)
    return ForecastResult(**{**result.__dict__, "sentence": forecast_sentence(ds, result)})


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


# -- outcome simulation --------------------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeSimulation:
    """The simulated revenue outcome of a period.

    Attributes
    ----------
    period, as_of
        The period simulated and the day the forecast is made.
    summary
        One row: ``period``, ``as_of``, ``simulations``, ``seed``, ``won_to_date``,
        ``open_deals``, ``open_amount``, ``open_expected``, ``new_rate`` (expected number of
        new won deals), ``new_expected``, ``mean``, ``p10``, ``p50``, ``p90``, ``target``,
        ``p_reach_target``.
    groups
        Per dimension of ``by`` a frame: the dimension column, ``target``, ``won_to_date``,
        ``open_deals``, ``open_expected``, ``mean``, ``p10``, ``p50``, ``p90``,
        ``p_reach_target``.
    deals
        The open deals simulated (:func:`open_deals_forecast` rows).
    totals
        Simulated company revenue of the period, one value per simulation.
    sentence
        A one-sentence summary (:func:`outcome_sentence`).
    """

    period: str
    as_of: date
    summary: pd.DataFrame
    groups: dict[str, pd.DataFrame]
    deals: pd.DataFrame
    totals: np.ndarray = field(repr=False)
    sentence: str = ""


#: Analogous past periods used by the simulation: at most one year of them (the most recent),
#: so seasonality averages out and a growing business is not judged by its distant past.
PERIODS_PER_YEAR = {"day": 365, "week": 52, "month": 12, "quarter": 4, "half": 2, "year": 1}


def _analogous_windows(ds: Dataset, p: Period, day: date) -> list[Period]:
    """Past periods Q of P's grain analogous to P as of ``day`` (most recent first): Q ends by
    ``day``, starts after ``day - history_months`` and not before the first deal was created,
    and does not end before the first close on record (an extract that starts at some date keeps
    older deals only when they were still open then, so the periods before it would see no
    wins); at most :data:`PERIODS_PER_YEAR` of them."""
    since = _months_before(day, ds.config.forecast.history_months)
    o = pl.placed_deals(ds)
    lo = o.aggregate(created=o._created.min(), closed=o.closed_on.min()).to_pyarrow().to_pylist()[0]
    first, first_close = lo["created"], lo["closed"]
    if first is None or first_close is None:
        return []
    windows: list[Period] = []
    q = p.previous()
    while q.last_day > day:
        q = q.previous()
    limit = PERIODS_PER_YEAR.get(p.grain, 4)
    while q.start > since and q.start >= first and q.last_day >= first_close and len(windows) < limit:
        windows.append(q)
        q = q.previous()
    return windows


def period_win_probabilities(ds: Dataset, period: str | Period, *, as_of: Any = None) -> pd.DataFrame:
    """Probability that a deal open at ``as_of`` in step k is **won within** ``period``.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    period
        The period P (label or Period).
    as_of
        The day of the forecast (default: the data's snapshot day).

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`win_probabilities` (``closed_deals`` here counts every deal
        observed, won in the period or not), one row per step. ``attrs``: ``as_of``,
        ``period``, ``windows`` (labels of the analogous periods), ``by_window`` (a step x
        window frame of the amount-weighted rate of each window), ``overall``.

    Notes
    -----
    For each analogous past period Q (:func:`simulate_outcome`: the most recent year of
    periods that end by ``as_of`` within the history window), the snapshot is the day at the
    same offset from Q's start as ``as_of`` is from P's (``Q.start + (as_of - P.start)``). Every
    deal open then in step k is an observation; it counts as won when it was won after the
    snapshot and by Q's last day (no censoring: Q is over). The rate is amount-weighted (won
    amount / amount). It folds slippage in: a deal's expected close date is not used, because
    the data model keeps no history of it (a closed deal's close_date is its actual date), so
    how often an expected date holds cannot be learned; the rate answers the question for a
    step as a whole. Fallbacks as :func:`win_probabilities`, except that a step below
    ``min_history_deals`` has source ``config`` / ``overall`` and is then applied, like
    before, only to deals expected to close in P (see :func:`simulate_outcome`).
    """
    p = ds.period(period)
    when = _as_of(ds, as_of)
    day = _day(ds, when)
    windows = _analogous_windows(ds, p, day)
    offset = day - p.start
    snaps = {q.start + offset: q for q in windows}
    counts: dict[str, tuple[int, ...]] = {}
    by_window = pd.DataFrame(index=pd.Index(list(STEPS), name="step"))
    n_all, won_all = 0, 0
    if windows and ds.has("stage_history"):
        obs = snapshot_deals(ds, sorted(snaps))
        ends = obs.snapshot.map({pd.Timestamp(s): pd.Timestamp(q.last_day) for s, q in snaps.items()})
        won = (obs.status == "won") & obs.closed_on.notna() & (obs.closed_on <= ends)
        counts = _step_rates(obs, won)
        n_all, won_all = len(obs), int(won.sum())
        f = obs.assign(_w=np.where(won, obs.amount, 0))
        g = f.groupby(["step", "snapshot"]).agg(a=("amount", "sum"), w=("_w", "sum"))
        rate = (g.w / g.a.where(g.a > 0)).unstack("snapshot")
        rate.columns = [snaps[c.date()].label for c in rate.columns]
        by_window = rate.reindex(list(STEPS))
    overall = won_all / n_all if n_all else float("nan")
    out = _probability_frame(ds, counts, overall, n_all)
    out.attrs.update(as_of=day, period=p.label, windows=[q.label for q in windows], by_window=by_window,
                     overall=overall, min_history_deals=ds.config.forecast.min_history_deals)
    return out


def _default_outcome_as_of(ds: Dataset, p: Period) -> date:
    last = timeline.snapshot_day(ds)
    if last < p.last_day:
        return last
    return p.start - timedelta(days=1)


def _quantiles(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = np.quantile(x, [0.1, 0.5, 0.9], axis=axis, method="inverted_cdf")
    return q[0], q[1], q[2]


def simulate_outcome(
    ds: Dataset,
    period: str | Period,
    *,
    as_of: Any = None,
    n: int | None = None,
    seed: int | None = None,
    by: Sequence[str] | str = ("rep_id", "team"),
    max_cells: int | None = None,
) -> OutcomeSimulation:
    """Monte Carlo distribution of a period's revenue and the chance of reaching each quota.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    period
        The period P (label or Period), e.g. ``2026-Q4``.
    as_of
        The day the forecast is made. Default: the data's snapshot day when it falls before
        P's last day (inside P, or before P: the latest data), else (P is over) the day before
        P starts, i.e. the forecast that would have been made then. Must be before P's last day.
    n
        Simulations (default ``config.forecast.simulations``).
    seed
        Seed of the numpy Generator (default ``config.forecast.seed``).
    by
        Dimensions to report quota probabilities for (a revenue quota of a rep, a team...).
    max_cells
        Cap on simulations x open deals (the work done): with 100,000 open deals and
        ``max_cells=10**8`` the simulations drop to 1,000 (never below 1,000). The summary's
        ``simulations`` says how many ran. Default: no cap.

    Returns
    -------
    OutcomeSimulation

    Notes
    -----
    Revenue of P in simulation s = W + sum_i B_is · a_i + sum_{j <= N_s} A_js where

    * W, **won to date**: amounts of deals won with close_date from P's start to ``as_of``;
    * open deals i (open at ``as_of``, :func:`open_deals_forecast`), a_i the amount,
      B_is ~ Bernoulli(p_i). When the deal's step has a learned **period** probability
      (:func:`period_win_probabilities`: won within P, slippage included), p_i is that and
      every such deal takes part whatever its expected close date (the data keeps no history
      of expected dates, so their reliability cannot be learned; the replay of data/sample
      found the period rates calibrated to about +-10%). Otherwise (step below
      ``min_history_deals``, unknown step) p_i is its :func:`win_probabilities` probability and
      only deals expected in P take part: close_date within P, or overdue (on or before
      ``as_of``) when the day after ``as_of`` is in P; deals expected after P, without a close
      date or of unknown probability are left out. ``deals`` adds ``expected_in_period``,
      ``period_probability`` and ``period_source`` (``history_period`` or the fallback's);
    * **new business**: deals created after ``as_of`` and won within P. N_s ~ Poisson(λ) with
      λ the mean count of the analogous deals in past periods Q of P's grain (created on or
      after ``Q.start + (as_of + 1 day - P.start)`` and won within Q), over the analogous
      periods (at most the last year of periods that end by ``as_of``, start within
      ``config.forecast.history_months`` before it, not before the first deal was created nor
      ending before the first close); A_js are drawn with replacement from those deals
      (amount and owner together, so each rep and team keeps its historical share). No such
      period: no new business (λ = 0).

    **Period bootstrap** (:data:`MIX_PERIODS`): each simulation first picks one analogous
    period w at random and uses its rates (the learned steps' amount-weighted period rate in w,
    and N_s ~ Poisson(count of w)), so the spread includes how much a whole quarter's close rate
    varies, not only the coin flips of independent deals (which gave P10-P90 bands too narrow
    to hold the actuals). With a single analogous period nothing extra is drawn.

    P10 / P50 / P90 are ``inverted_cdf`` quantiles (each one a simulated value); ``mean`` the
    average. ``p_reach_target`` = share of simulations where the group's revenue >= its
    revenue quota for P (:func:`analysis.metrics` ``revenue_target``: reps their own quota,
    teams their team quota else the sum of their reps', the company the sum over teams); NaN
    without a quota. Amounts are summed in integer cents (held in float64, exact below 2^53
    cents), so a given seed reproduces every figure. Draws are made in chunks of simulations
    (uniforms for the open deals, then Poisson counts and bootstrap indices), sequentially from
    one Generator.
    """
    p = ds.period(period)
    cfg = ds.config.forecast
    n_sims = cfg.simulations if n is None else n
    if not isinstance(n_sims, int) or n_sims < 1:
        raise ForecastError(f"n={n!r} must be a whole number of simulations, at least 1")
    seed = cfg.seed if seed is None else seed
    by_list = resolve_dims(ds, by)
    when = _default_outcome_as_of(ds, p) if as_of is None else as_of
    day = _day(ds, when)
    if day >= p.last_day:
        raise ForecastError(
            f"as_of {day.isoformat()} is not before the last day of {p.label} ({p.last_day.isoformat()}); "
            "nothing is left to simulate: read the actuals with analysis.metrics"
        )
    rng = np.random.default_rng(seed)

    # open deals: history-learned steps win within P with their period probability whatever
    # their expected close date; fallback steps (and deals of unknown step) only when expected in P
    period_probs = period_win_probabilities(ds, p, as_of=when)
    deals = open_deals_forecast(ds, as_of=when, by=by_list, grain=p.grain)
    close = pd.to_datetime(deals.close_date)
    in_p = (close >= pd.Timestamp(p.start)) & (close < pd.Timestamp(p.end))
    if p.contains(day + timedelta(days=1)):
        in_p |= deals.overdue
    learned = {s: q for s, q, src_ in zip(period_probs.step, period_probs.probability, period_probs.source)
               if src_ == "history"}
    is_learned = deals.step.isin(list(learned)).to_numpy()
    pp = np.where(is_learned, deals.step.map(learned).astype("float64").to_numpy(),
                  deals.probability.to_numpy("float64"))
    deals = deals.assign(expected_in_period=in_p.to_numpy(bool), period_probability=pp,
                         period_source=np.where(is_learned, "history_period", deals.probability_source.astype(object)))
    keep = (is_learned | in_p.to_numpy(bool)) & ~np.isnan(pp)
    deals = deals[keep].reset_index(drop=True)
    d_cents = _cents(deals.amount).astype("float64")
    d_prob = deals.period_probability.to_numpy("float64")
    if max_cells is not None and len(deals):
        n_sims = min(n_sims, max(MIN_CAPPED_SIMULATIONS, int(max_cells) // len(deals)))
    # per analogous period: the step rates of that period (the period bootstrap, see Notes)
    bw = period_probs.attrs["by_window"]
    n_win = len(period_probs.attrs["windows"])
    if MIX_PERIODS and n_win and len(deals):
        step_arr = deals.step.to_numpy(object)
        learned_mask = deals.step.isin(list(learned)).to_numpy()
        p_win = np.tile(d_prob, (n_win, 1))
        for w, lab in enumerate(period_probs.attrs["windows"]):
            col = bw[lab] if lab in bw.columns else pd.Series(dtype="float64")
            r = pd.Series(step_arr).map(col).astype("float64").to_numpy()
            p_win[w] = np.where(learned_mask & ~np.isnan(r), r, d_prob)
    else:
        p_win = d_prob[None, :]

    # won to date
    o = pl.placed_deals(ds)
    won = o.filter((o.status == "won") & (o.closed_on >= ibis.literal(p.start)) & (o.closed_on <= ibis.literal(day)))
    won = with_dimensions(ds, won, "opportunities", by_list)
    won_df = won.select("amount", *by_list).to_pandas()

    # new business pool from analogous past periods
    pool, win_counts = _new_business_pool(ds, p, day, by_list)
    n_periods = len(win_counts)
    lam = len(pool) / n_periods if n_periods else 0.0
    pool_cents = _cents(pool.amount).astype("float64") if len(pool) else np.zeros(0)

    # group columns: company (0), then each dimension's groups
    cols: list[tuple[str | None, Any]] = [(None, None)]
    group_index: dict[str, dict[Any, int]] = {}
    targets: dict[str, pd.DataFrame] = {}
    for dim in by_list:
        t = metrics(ds, ["revenue_target"], by=[dim], grain=p.grain, periods=[p])
        t = t[[dim, "revenue_target"]]
        targets[dim] = t
        names = pd.concat([t[dim], deals[dim], won_df[dim], pool[dim] if len(pool) else pd.Series(dtype="object")])
        uniq = sorted({x for x in names.dropna().unique()}, key=str)
        if names.isna().any():
            uniq.append(None)
        group_index[dim] = {g: len(cols) + i for i, g in enumerate(uniq)}
        cols.extend((dim, g) for g in uniq)
    n_cols = len(cols)

    def col_of(frame: pd.DataFrame, dim: str) -> np.ndarray:
        idx = group_index[dim]
        return np.array([idx[None if pd.isna(v) else v] for v in frame[dim]], dtype="int64")

    # each deal's column per level (company = column 0, then one per dimension). Sums per column
    # never use a dense deals x groups matrix (5,000 reps x 100,000 deals at scale): the deals are
    # ordered by their columns, coarsest dimension first, so each group is a run of adjacent
    # deals and np.add.reduceat sums it for every simulation at once.
    deal_cols = np.zeros((len(deals), 1 + len(by_list)), dtype="int64")
    for i, dim in enumerate(by_list):
        deal_cols[:, i + 1] = col_of(deals, dim)
    levels = sorted(range(1, deal_cols.shape[1]), key=lambda c: len(np.unique(deal_cols[:, c])))
    order = np.lexsort([deal_cols[:, c] for c in reversed(levels)]) if levels else np.arange(len(deals))
    runs: list[tuple[np.ndarray, np.ndarray, bool]] = []  # (run starts, run columns, columns unique)
    ordered_cols = deal_cols[order]
    for k, c in enumerate(levels):
        keys_ = ordered_cols[:, levels[: k + 1]]
        change = np.ones(len(deals), dtype=bool)
        if len(deals) > 1:
            change[1:] = (keys_[1:] != keys_[:-1]).any(axis=1)
        starts = np.flatnonzero(change)
        run_cols = ordered_cols[starts, c]
        runs.append((starts, run_cols, len(np.unique(run_cols)) == len(run_cols)))

    def per_column(values: np.ndarray) -> np.ndarray:
        """Sum ``values`` (rows x deals, in deal order) into (rows x n_cols)."""
        out_ = np.zeros((values.shape[0], n_cols))
        out_[:, 0] = values.sum(axis=1)
        if values.shape[1] == 0:
            return out_
        ordered = values[:, order]
        for starts, run_cols, unique in runs:
            sums = np.add.reduceat(ordered, starts, axis=1)
            if unique:
                out_[:, run_cols] += sums
            else:  # a group split over several runs (e.g. a rep counted in two teams)
                np.add.at(out_.T, run_cols, sums.T)
        return out_

    pool_cols = np.zeros((len(pool), 1 + len(by_list)), dtype="int64")
    for i, dim in enumerate(by_list):
        pool_cols[:, i + 1] = col_of(pool, dim)

    sims = np.zeros((n_sims, n_cols))
    chunk = max(1, CHUNK_CELLS // max(1, len(deals)))
    win_lam = np.asarray(win_counts, dtype="float64") if MIX_PERIODS and n_periods else np.array([lam])
    for lo in range(0, n_sims, chunk):
        hi = min(n_sims, lo + chunk)
        rows = hi - lo
        # each simulation replays one analogous period's rates (a single period: no draw)
        n_mix = max(len(p_win), len(win_lam))
        which = rng.integers(0, n_mix, size=rows) if n_mix > 1 else np.zeros(rows, dtype="int64")
        if len(deals):
            u = rng.random((rows, len(deals)), dtype=np.float32)
            won_c = np.empty((rows, len(deals)))
            w_of = which % len(p_win)
            for w in np.unique(w_of):  # each window's rates broadcast, never copied per row
                sel = np.flatnonzero(w_of == w)
                won_c[sel] = (u[sel] < p_win[w]) * d_cents
            sims[lo:hi] += per_column(won_c)
        if lam > 0 and len(pool):
            counts = rng.poisson(win_lam[which % len(win_lam)])
            draws = rng.integers(0, len(pool), size=int(counts.sum()))
            sim_of = np.repeat(np.arange(rows), counts)
            amt = pool_cents[draws]
            for c in range(pool_cols.shape[1]):
                flat = sim_of * n_cols + pool_cols[draws, c]
                sims[lo:hi] += np.bincount(flat, weights=amt, minlength=rows * n_cols).reshape(rows, n_cols)

    # won to date per column
    w_cents = _cents(won_df.amount)
    won_cols = np.zeros(n_cols, dtype="int64")
    won_cols[0] = int(w_cents.sum())
    for dim in by_list:
        np.add.at(won_cols, col_of(won_df, dim), w_cents)
    totals_c = sims + won_cols.astype("float64")
    totals = totals_c / 100.0
    p10, p50, p90 = _quantiles(totals, axis=0)
    mean = totals.mean(axis=0)
    open_exp = per_column(np.round(d_cents * d_prob)[None, :])[0] / 100.0
    open_cnt = per_column(np.ones((1, len(deals))))[0].astype("int64")

    def reach(col: int, target: float) -> float:
        if target is None or pd.isna(target):
            return float("nan")
        return float(np.mean(totals_c[:, col] >= round(float(target) * 100)))

    company_t = metrics(ds, ["revenue_target"], grain=p.grain, periods=[p])["revenue_target"]
    company_target = float(company_t.iloc[0]) if len(company_t) and pd.notna(company_t.iloc[0]) else float("nan")
    new_exp = lam * (float(pool_cents.mean()) / 100.0 if len(pool) else 0.0)
    summary = pd.DataFrame([{
        PERIOD: p.label, "as_of": day, "simulations": n_sims, "seed": seed,
        "won_to_date": won_cols[0] / 100.0, "open_deals": int(len(deals)),
        "open_amount": float(d_cents.sum()) / 100.0, "open_expected": float(open_exp[0]),
        "new_rate": float(lam), "new_expected": float(new_exp),
        "mean": float(mean[0]), "p10": float(p10[0]), "p50": float(p50[0]), "p90": float(p90[0]),
        "target": company_target, "p_reach_target": reach(0, company_target),
    }])
    groups: dict[str, pd.DataFrame] = {}
    for dim in by_list:
        tmap = {(None if pd.isna(k) else k): v for k, v in zip(targets[dim][dim], targets[dim].revenue_target)}
        rows_ = []
        for g, c in group_index[dim].items():
            tgt = tmap.get(g)
            tgt = float(tgt) if tgt is not None and not pd.isna(tgt) else float("nan")
            rows_.append({dim: g, "target": tgt, "won_to_date": won_cols[c] / 100.0, "open_deals": int(open_cnt[c]),
                          "open_expected": float(open_exp[c]), "mean": float(mean[c]), "p10": float(p10[c]),
                          "p50": float(p50[c]), "p90": float(p90[c]), "p_reach_target": reach(c, tgt)})
        groups[dim] = pd.DataFrame(rows_, columns=[dim, "target", "won_to_date", "open_deals", "open_expected",
                                                   "mean", "p10", "p50", "p90", "p_reach_target"])
    result = OutcomeSimulation(period=p.label, as_of=day, summary=summary, groups=groups, deals=deals,
                               totals=totals[:, 0].copy())
    return OutcomeSimulation(**{**result.__dict__, "sentence": outcome_sentence(ds, result)})


def _new_business_pool(ds: Dataset, p: Period, day: date, by: list[str]) -> tuple[pd.DataFrame, list[int]]:
    """Won deals of the analogous windows of past periods (see :func:`simulate_outcome`) and the
    number of such deals in each period."""
    offset = (day + timedelta(days=1)) - p.start
    cols = ["amount", *by]
    windows = _analogous_windows(ds, p, day)
    if not windows:
        return pd.DataFrame(columns=cols), []
    o = pl.placed_deals(ds)
    cond = ibis.literal(False)
    for q in windows:
        cond |= ((o._created >= ibis.literal(q.start + offset)) & (o.closed_on >= ibis.literal(q.start))
                 & (o.closed_on < ibis.literal(q.end)))
    won = o.filter((o.status == "won") & cond)
    won = with_dimensions(ds, won, "opportunities", by)
    pool = won.select("opportunity_id", "closed_on", *cols).order_by("opportunity_id").to_pandas()
    closed = pd.to_datetime(pool.pop("closed_on"))
    per = [int(((closed >= pd.Timestamp(q.start)) & (closed < pd.Timestamp(q.end))).sum()) for q in windows]
    return pool.drop(columns="opportunity_id").reset_index(drop=True), per


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


# -- calibration backtest of the simulation -----------------------------------------------------


def outcome_backtest(
    ds: Dataset,
    *,
    periods: int = 4,
    grain: str = "quarter",
    n: int | None = 2_000,
    seed: int | None = None,
    before: date | None = None,
) -> pd.DataFrame:
    """Replay :func:`simulate_outcome` on the last complete periods and compare with actuals.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    periods
        How many complete periods to replay (the last ones ending on or before the data's
        snapshot day).
    grain
        Their grain (quarter, month...).
    n, seed
        Simulations per period (default 2,000: the quantiles move by well under 1%) and seed
        (default ``config.forecast.seed``).
    before
        Replay only periods that ended on or before this day (default the data's snapshot
        day), e.g. the day a forecast under test was made, so the replay never uses it.

    Returns
    -------
    pandas.DataFrame
        One row per period, oldest first: ``period``, ``as_of`` (the day before it starts),
        ``actual`` (revenue won in it), ``p10``, ``p50``, ``p90``, ``inside`` (P10 <= actual <=
        P90), ``p50_error`` ((P50 - actual) / actual), ``open_expected``, ``new_expected``,
        ``won_from_open`` (actual revenue from deals open at ``as_of``) and ``won_new`` (from
        deals created after it). ``attrs``: ``coverage`` (share inside), ``mape`` (mean
        |p50_error|), ``grain``.

    Notes
    -----
    Each period is simulated as of the day before it starts, with only what was known then
    (probabilities, new-business rates and the pipeline reconstructed from stage history).
    Two things are not as they were then: amounts are today's (no amount history) and a deal
    closed since has its actual close date, not the expected one of that day; neither matters
    to the simulation, which uses no close date for learned steps. An 80% interval should hold
    the actual in about 4 periods out of 5.
    """
    grain = grain_of(grain)
    if not isinstance(periods, int) or periods < 1:
        raise ForecastError(f"periods={periods!r} must be a whole number, at least 1")
    last = timeline.snapshot_day(ds) if before is None else min(timeline.snapshot_day(ds), before)
    p = period_of(last, grain, fiscal_start_month=ds.config.fiscal_year_start_month)
    if p.last_day > last:
        p = p.previous()
    chosen: list[Period] = []
    while len(chosen) < periods:
        chosen.append(p)
        p = p.previous()
    chosen.reverse()
    # every snapshot day the replays need, fetched in one query (memoized per dataset)
    need: set[date] = set()
    for q in chosen:
        day = q.start - timedelta(days=1)
        need.update(_month_ends(_months_before(day, ds.config.forecast.history_months), day))
        need.update(w.start - timedelta(days=1) for w in _analogous_windows(ds, q, day))
    if ds.has("stage_history"):
        snapshot_deals(ds, sorted(need))
    o = pl.placed_deals(ds)
    won = o.filter(o.status == "won").select("_created", "closed_on", "amount").to_pandas()
    closed = pd.to_datetime(won.closed_on)
    created = pd.to_datetime(won._created)
    cents = _cents(won.amount)
    rows = []
    for q in chosen:
        day = q.start - timedelta(days=1)
        s = simulate_outcome(ds, q, as_of=day, n=n, seed=seed, by=())
        r = s.summary.iloc[0]
        in_q = ((closed >= pd.Timestamp(q.start)) & (closed < pd.Timestamp(q.end))).to_numpy()
        new = (created > pd.Timestamp(day)).to_numpy()
        actual = int(cents[in_q].sum()) / 100.0
        rows.append({
            PERIOD: q.label, "as_of": day, "actual": actual, "p10": float(r.p10), "p50": float(r.p50),
            "p90": float(r.p90), "inside": bool(r.p10 <= actual <= r.p90),
            "p50_error": (float(r.p50) - actual) / actual if actual else float("nan"),
            "open_expected": float(r.open_expected), "new_expected": float(r.new_expected),
            "won_from_open": int(cents[in_q & ~new].sum()) / 100.0, "won_new": int(cents[in_q & new].sum()) / 100.0,
        })
    out = pd.DataFrame(rows)
    out.attrs.update(coverage=float(out.inside.mean()), mape=float(out.p50_error.abs().mean()), grain=grain)
    return out


def backtest_sentence(ds: Dataset, frame: pd.DataFrame) -> str:
    """One sentence on an :func:`outcome_backtest` frame."""
    k, inside = len(frame), int(frame.inside.sum())
    return (f"Replayed as of the day before each started, the simulation's 80% interval (P10-P90) held the "
            f"actual revenue in {inside} of the last {k} {frame.attrs.get('grain', 'period')}s; its P50 was off "
            f"by {_pct(frame.attrs.get('mape'))} on average.")
