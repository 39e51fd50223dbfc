"""Win probabilities learned from month-end snapshots of the past pipeline: per step
(:func:`win_probabilities`) and within a period (:func:`period_win_probabilities`, at the
analogous snapshots of the past year's periods)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any, Sequence

import ibis
import numpy as np
import pandas as pd

from analysis.analytics import pipeline as pl
from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.data.periods import Period
from analysis.data.schema import STEPS
from analysis.steering.forecast.common import as_of_day, as_of_value, memoized, month_ends, months_before, to_cents

#: Where a step's probability came from.
SOURCES = ("history", "config", "overall", "none")
#: Analogous past periods used by the simulation: at most one year of them (the most recent),
#: so seasonality averages out and a growing business is not judged by its distant past.
PERIODS_PER_YEAR = {"day": 365, "week": 52, "month": 12, "quarter": 4, "half": 2, "year": 1}


# -- snapshot observations -----------------------------------------------------------------------


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
    memo: dict[date, tuple[pd.DataFrame, int, int]] = ds.__dict__.setdefault("_forecast_snapshots", {})
    wanted = sorted(set(snapshots))
    missing = [s for s in wanted if s not in memo]
    if missing:
        fresh = _query_snapshots(ds, missing)
        # rows come sorted by snapshot: each day is a slice of one frame (no copies kept)
        snap = fresh["snapshot"].to_numpy()
        for s in missing:
            key = pd.Timestamp(s).to_datetime64().astype(snap.dtype)
            memo[s] = (fresh, int(np.searchsorted(snap, key, "left")), int(np.searchsorted(snap, key, "right")))
    parts = [memo[s] for s in wanted]
    frame = parts[0][0]
    if all(f is frame for f, _, _ in parts) and all(a[2] == b[1] for a, b in zip(parts, parts[1:])):
        return frame.iloc[parts[0][1]:parts[-1][2]].reset_index(drop=True)  # one slice of one query
    return pd.concat([f.iloc[lo:hi] for f, lo, hi in parts], ignore_index=True)


def _query_snapshots(ds: Dataset, snapshots: Sequence[date]) -> pd.DataFrame:
    """The one query of :func:`snapshot_deals` (only the columns it needs, sorted by DuckDB)."""
    d = timeline.deals(ds)
    d = d.select("opportunity_id", "created_at", "status", "closed_on", "step", "stage", "amount")
    o = timeline.open_deals(ds, {s.isoformat(): timeline.end_of_day(s) for s in snapshots}, table=d, steps=True)
    o = o.filter(o.step.notnull())
    out = o.select(snapshot=o.moment, opportunity_id=o.opportunity_id, step=o.step, amount=o.amount,
                   status=o.status, closed_on=o.closed_on).order_by(["snapshot", "opportunity_id"]).to_pandas()
    out["amount"] = to_cents(out["amount"])
    out["snapshot"] = pd.to_datetime(out["snapshot"])
    out["closed_on"] = pd.to_datetime(out["closed_on"])
    return out


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
    * Computed once per dataset and as-of day; each call gets a copy.
    """
    day = as_of_day(ds, as_of_value(ds, as_of))
    return memoized(ds, "win_probabilities", day, lambda: _win_probabilities(ds, day)).copy()


def _win_probabilities(ds: Dataset, day: date) -> pd.DataFrame:
    """:func:`win_probabilities` as of the end of ``day`` (computed once per dataset and day)."""
    cfg = ds.config.forecast
    since = months_before(day, cfg.history_months)
    o = pl.placed_deals(ds)
    closed = o.filter(
        o.status.isin(list(timeline.CLOSED)) & (o.closed_on <= ibis.literal(day)) & (o.closed_on > ibis.literal(since))
    )
    tot = closed.aggregate(n=closed.count(), won=closed.count(where=closed.status == "won")).to_pyarrow().to_pylist()[0]
    n_all, won_all = int(tot["n"] or 0), int(tot["won"] or 0)
    overall = won_all / n_all if n_all else float("nan")
    snaps = month_ends(since, day)
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


# -- period win probabilities -------------------------------------------------------------------


def analogous_windows(ds: Dataset, p: Period, day: date) -> list[Period]:
    """Past periods Q of P's grain analogous to P as of ``day`` (most recent first): Q ends by
    ``day``, starts after ``day - history_months`` and not before the first deal was created,
    and does not end before the first close on record (an extract that starts at some date keeps
    older deals only when they were still open then, so the periods before it would see no
    wins); at most :data:`PERIODS_PER_YEAR` of them."""
    since = months_before(day, ds.config.forecast.history_months)
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
    deal open then in step k is an observation; it counts as won when it was won within Q, after
    the snapshot (no censoring: Q is over). For a forecast made before P starts (a period two
    quarters ahead) the snapshot precedes Q, and a deal won between the snapshot and Q's start
    is not won within Q (counting them put 2027-Q1 as of 2026-09-30 on data/sample at a P50 of
    34.5M instead of 21.2M: its open deals were expected to bring 17.7M instead of 4.8M). The rate is amount-weighted (won
    amount / amount). It folds slippage in: a deal's expected close date is not used, because
    the data model keeps no history of it (a closed deal's close_date is its actual date), so
    how often an expected date holds cannot be learned; the rate answers the question for a
    step as a whole. Fallbacks as :func:`win_probabilities`, except that a step below
    ``min_history_deals`` has source ``config`` / ``overall`` and is then applied, like
    before, only to deals expected to close in P (see :func:`simulate_outcome`).
    """
    p = ds.period(period)
    when = as_of_value(ds, as_of)
    day = as_of_day(ds, when)
    windows = analogous_windows(ds, p, day)
    offset = day - p.start
    snaps = {q.start + offset: q for q in windows}
    counts: dict[str, tuple[int, ...]] = {}
    by_window = pd.DataFrame(index=pd.Index(list(STEPS), name="step"))
    n_all, won_all = 0, 0
    if windows and ds.has("stage_history"):
        obs = snapshot_deals(ds, sorted(snaps))
        ends = obs.snapshot.map({pd.Timestamp(s): pd.Timestamp(q.last_day) for s, q in snaps.items()})
        # within Q: a forecast made before P starts must not count the deals won before Q does
        starts = obs.snapshot.map({pd.Timestamp(s): pd.Timestamp(q.start) for s, q in snaps.items()})
        won = (obs.status == "won") & obs.closed_on.notna() & (obs.closed_on >= starts) & (obs.closed_on <= ends)
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

