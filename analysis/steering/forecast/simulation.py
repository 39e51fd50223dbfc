"""The period outcome by simulation: Monte Carlo of a period's revenue (:func:`simulate_outcome`)
and its replay on the last complete periods against the actuals (:func:`outcome_backtest`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Sequence

import ibis
import numpy as np
import pandas as pd

from analysis.analytics import pipeline as pl
from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.data.periods import Period, grain_of
from analysis.semantic.engine import metrics, resolve_dims, with_dimensions
from analysis.steering.forecast.common import (
    PERIOD,
    Calibration,
    ForecastError,
    as_of_day,
    as_of_value,
    memoized,
    month_ends,
    months_before,
    to_cents,
)
from analysis.steering.forecast.probabilities import analogous_windows, period_win_probabilities, snapshot_deals
from analysis.steering.forecast.sentences import outcome_sentence
from analysis.steering.forecast.timeseries import complete_by, scored_periods, season_of, seasonal_factors
from analysis.steering.forecast.weighted import open_deals_forecast

#: Simulations draw the step rates and new-business count of one analogous past period each
#: (the period bootstrap of :func:`simulate_outcome`); False: pooled rates and one Poisson mean.
MIX_PERIODS = True
#: Simulations per chunk are chosen so that a chunk's draw matrix holds about this many cells.
CHUNK_CELLS = 4_000_000
#: Groups :func:`simulate_outcome` reports quota probabilities for by default.
OUTCOME_BY = ("rep_id", "team")
#: Fewest simulations ``simulate_outcome(max_cells=...)`` runs (P10/P90 move by about 1% at 1,000).
MIN_CAPPED_SIMULATIONS = 1_000


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
        new won deals, in P's season), ``season_factor`` (``new_rate`` / the analogous periods'
        mean count: 1.0 when no seasonality is applied, NaN when they won no new deal),
        ``seasonality`` (where the seasonal factors come from, or why there are none),
        ``new_expected``, ``mean``, ``p10``, ``p50``, ``p90``, ``target``, ``p_reach_target``.
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


def outcome_as_of(ds: Dataset, p: Period) -> date:
    """The default day a forecast of P is made: the data's snapshot day when it falls before P's
    last day, else (P is over) the day before P starts."""
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
    by: Sequence[str] | str = OUTCOME_BY,
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
    * **seasonality** of the new business: each analogous period's count is brought to P's
      season, ``count_Q × f(P) / f(Q)``, f the :func:`seasonal_factors` of the revenue series
      complete by ``as_of`` (the seasonality the time-series model estimates, nothing after
      ``as_of``); λ is the mean of these. Without factors (fewer than two years of complete
      periods, a grain without seasons...) the counts are used as they are; the summary's
      ``season_factor`` and ``seasonality`` say which. (Without it the simulation drew new
      business at the average of the last four quarters and under-forecast strong quarters.)

    **Period bootstrap** (:data:`MIX_PERIODS`): each simulation first picks one analogous
    period w at random and uses its rates (the learned steps' amount-weighted period rate in w,
    and N_s ~ Poisson(count of w in P's season)), so the spread includes how much a whole quarter's close rate
    varies, not only the coin flips of independent deals (which gave P10-P90 bands too narrow
    to hold the actuals). With a single analogous period nothing extra is drawn.

    P10 / P50 / P90 are ``inverted_cdf`` quantiles (each one a simulated value); ``mean`` the
    average. ``p_reach_target`` = share of simulations where the group's revenue >= its
    revenue quota for P (:func:`analysis.metrics` ``revenue_target``: reps their own quota,
    teams their team quota else the sum of their reps', the company the sum over teams); NaN
    without a quota. Amounts are summed in integer cents (held in float64, exact below 2^53
    cents), so a given seed reproduces every figure. Draws are made in chunks of simulations
    (the analogous period of each simulation, uniforms for the open deals, then Poisson counts
    and bootstrap indices), sequentially from one Generator.
    """
    p = ds.period(period)
    cfg = ds.config.forecast
    n_sims = cfg.simulations if n is None else n
    if not isinstance(n_sims, int) or n_sims < 1:
        raise ForecastError(f"n={n!r} must be a whole number of simulations, at least 1")
    seed = cfg.seed if seed is None else seed
    by_list = resolve_dims(ds, by)
    when = outcome_as_of(ds, p) if as_of is None else as_of
    day = as_of_day(ds, when)
    if day >= p.last_day:
        raise ForecastError(
            f"as_of {day.isoformat()} is not before the last day of {p.label} ({p.last_day.isoformat()}); "
            "nothing is left to simulate: read the actuals with analysis.metrics"
        )
    rng = np.random.default_rng(seed)

    period_probs = period_win_probabilities(ds, p, as_of=when)
    deals = _simulated_deals(ds, p, when, day, by_list, period_probs)
    d_cents = to_cents(deals.amount).astype("float64")
    d_prob = deals.period_probability.to_numpy("float64")
    if max_cells is not None and len(deals):
        n_sims = min(n_sims, max(MIN_CAPPED_SIMULATIONS, int(max_cells) // len(deals)))
    p_win = _window_probabilities(deals, period_probs)
    won = _won_to_date(ds, p, day, by_list)
    new = _NewBusiness.of(ds, p, day, by_list)
    targets = {dim: _group_targets(ds, p, dim) for dim in by_list}
    columns = _GroupColumns.build(by_list, targets, deals, won, new.pool)
    sums = _ColumnSums(columns.levels(deals), columns.n)

    sims = _simulate(rng, n_sims, p_win, d_cents, sums, new, columns.levels(new.pool))
    out = _ColumnOutcomes.of(sims, _won_per_column(won, columns), sums, d_cents, d_prob)
    summary = _summary_frame(ds, p, day, n_sims, seed, d_cents, new, out)
    groups = _group_frames(columns, targets, out)
    result = OutcomeSimulation(period=p.label, as_of=day, summary=summary, groups=groups, deals=deals,
                               totals=out.totals[:, 0].copy())
    return OutcomeSimulation(**{**result.__dict__, "sentence": outcome_sentence(ds, result)})


# -- the open deals and their probabilities ------------------------------------------------------


def _learned_period_rates(period_probs: pd.DataFrame) -> dict[str, float]:
    """The steps whose period probability is learned from history, with that probability."""
    return {s: q for s, q, src_ in zip(period_probs.step, period_probs.probability, period_probs.source)
            if src_ == "history"}


def _simulated_deals(ds: Dataset, p: Period, when: Any, day: date, by_list: list[str],
                     period_probs: pd.DataFrame) -> pd.DataFrame:
    """The open deals the simulation draws (:func:`open_deals_forecast` rows plus
    ``expected_in_period``, ``period_probability`` and ``period_source``).

    History-learned steps win within P with their period probability whatever their expected
    close date; fallback steps (and deals of unknown step) only when expected in P; deals of
    unknown probability are left out.
    """
    deals = open_deals_forecast(ds, as_of=when, by=by_list, grain=p.grain)
    close = pd.to_datetime(deals.close_date)
    in_p = (close >= pd.Timestamp(p.start)) & (close < pd.Timestamp(p.end))
    if p.contains(day + timedelta(days=1)):
        in_p |= deals.overdue
    learned = _learned_period_rates(period_probs)
    is_learned = deals.step.isin(list(learned)).to_numpy()
    pp = np.where(is_learned, deals.step.map(learned).astype("float64").to_numpy(),
                  deals.probability.to_numpy("float64"))
    deals = deals.assign(expected_in_period=in_p.to_numpy(bool), period_probability=pp,
                         period_source=np.where(is_learned, "history_period", deals.probability_source.astype(object)))
    keep = (is_learned | in_p.to_numpy(bool)) & ~np.isnan(pp)
    return deals[keep].reset_index(drop=True)


def _window_probabilities(deals: pd.DataFrame, period_probs: pd.DataFrame) -> np.ndarray:
    """The win probability of each deal (columns) in each analogous period (rows): the period
    bootstrap (see :func:`simulate_outcome`). A learned step takes the amount-weighted rate of
    that period (its pooled probability when the period has none), other deals keep their
    probability. One row, the pooled probabilities, without :data:`MIX_PERIODS`, analogous
    periods or deals."""
    d_prob = deals.period_probability.to_numpy("float64")
    bw = period_probs.attrs["by_window"]
    windows = period_probs.attrs["windows"]
    if not (MIX_PERIODS and len(windows) and len(deals)):
        return d_prob[None, :]
    step_arr = deals.step.to_numpy(object)
    learned_mask = deals.step.isin(list(_learned_period_rates(period_probs))).to_numpy()
    p_win = np.tile(d_prob, (len(windows), 1))
    for w, lab in enumerate(windows):
        col = bw[lab] if lab in bw.columns else pd.Series(dtype="float64")
        r = pd.Series(step_arr).map(col).astype("float64").to_numpy()
        p_win[w] = np.where(learned_mask & ~np.isnan(r), r, d_prob)
    return p_win


def _won_to_date(ds: Dataset, p: Period, day: date, by_list: list[str]) -> pd.DataFrame:
    """``amount`` and the ``by`` columns of the deals won from P's start to ``day``."""
    o = pl.placed_deals(ds)
    won = o.filter((o.status == "won") & (o.closed_on >= ibis.literal(p.start)) & (o.closed_on <= ibis.literal(day)))
    won = with_dimensions(ds, won, "opportunities", by_list)
    return won.select("amount", *by_list).to_pandas()


# -- new business --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NewBusiness:
    """Deals created after ``as_of`` and won within P, as the analogous past periods saw them,
    their counts brought to P's season."""

    pool: pd.DataFrame  # ``amount`` and the ``by`` columns of the analogous won deals
    per_window: list[int]  # how many of them each analogous period won
    lam: np.ndarray  # each period's count in P's season: count x factor(P) / factor(period)
    rate: float  # expected count (λ): the mean of ``lam``
    cents: np.ndarray  # the pool's amounts in cents (float64)
    season_factor: float  # rate / the mean count (1.0 without seasonality, NaN without any count)
    seasonality: str  # where the factors come from, or why there are none

    @classmethod
    def of(cls, ds: Dataset, p: Period, day: date, by_list: list[str]) -> _NewBusiness:
        windows = analogous_windows(ds, p, day)
        pool, per_window = _new_business_pool(ds, p, day, by_list, windows)
        scale, text = _season_scale(ds, p, day, windows)
        lam = np.asarray(per_window, dtype="float64") * scale
        rate = float(lam.mean()) if len(lam) else 0.0
        flat = float(np.mean(per_window)) if len(per_window) else 0.0
        factor = rate / flat if flat > 0 else float("nan")
        pool_cents = to_cents(pool.amount).astype("float64") if len(pool) else np.zeros(0)
        return cls(pool, per_window, lam, rate, pool_cents, factor, text)

    @property
    def expected(self) -> float:
        """Expected new-business revenue."""
        return self.rate * (float(self.cents.mean()) / 100.0 if len(self.pool) else 0.0)

    def window_rates(self) -> np.ndarray:
        """The Poisson mean of each analogous period (:data:`MIX_PERIODS`), else the one pooled mean."""
        if MIX_PERIODS and len(self.lam):
            return self.lam
        return np.array([self.rate])


def _season_scale(ds: Dataset, p: Period, day: date, windows: list[Period]) -> tuple[np.ndarray, str]:
    """Per analogous period w, ``factor(P) / factor(w)`` from :func:`seasonal_factors` of the
    history complete by ``day``; all 1 (and the reason) when there are no usable factors."""
    ones = np.ones(len(windows))
    sf = seasonal_factors(ds, grain=p.grain, as_of=day)
    text = sf.attrs["text"]
    if sf.attrs["reason"] or not windows:
        return ones, text
    by_season = dict(zip(sf.season, sf.factor))
    f_p = by_season.get(season_of(p), float("nan"))
    f_w = np.array([by_season.get(season_of(w), float("nan")) for w in windows], dtype="float64")
    if not (np.isfinite(f_p) and np.isfinite(f_w).all() and (f_w > 0).all()):
        return ones, "none: a season of the analogous periods has a factor of 0"
    return f_p / f_w, text


def _new_business_pool(ds: Dataset, p: Period, day: date, by: list[str],
                       windows: list[Period]) -> tuple[pd.DataFrame, list[int]]:
    """Won deals of the analogous windows of past periods (see :func:`simulate_outcome`) and the
    number of such deals in each period."""
    offset = (day + timedelta(days=1)) - p.start
    cols = ["amount", *by]
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


# -- group columns -------------------------------------------------------------------------------


def _group_targets(ds: Dataset, p: Period, dim: str) -> pd.DataFrame:
    """The revenue quota of each group of ``dim`` for P: ``dim``, ``revenue_target``."""
    t = metrics(ds, ["revenue_target"], by=[dim], grain=p.grain, periods=[p])
    return t[[dim, "revenue_target"]]


class _GroupColumns:
    """The columns the simulation sums revenue into: the company (column 0), then the groups of
    each dimension of ``by`` in turn (sorted by name, no value last)."""

    def __init__(self, dims: list[str], index: dict[str, dict[Any, int]], n: int):
        self.dims = dims
        self.index = index  # per dimension: group -> column
        self.n = n

    @classmethod
    def build(cls, dims: list[str], targets: dict[str, pd.DataFrame], deals: pd.DataFrame, won: pd.DataFrame,
              pool: pd.DataFrame) -> _GroupColumns:
        """One column per group that has a quota, an open deal, a won deal or a new-business deal."""
        n = 1
        index: dict[str, dict[Any, int]] = {}
        for dim in dims:
            t = targets[dim]
            names = pd.concat([t[dim], deals[dim], won[dim], pool[dim] if len(pool) else pd.Series(dtype="object")])
            uniq = sorted({x for x in names.dropna().unique()}, key=str)
            if names.isna().any():
                uniq.append(None)
            index[dim] = {g: n + i for i, g in enumerate(uniq)}
            n += len(uniq)
        return cls(dims, index, n)

    def of(self, frame: pd.DataFrame, dim: str) -> np.ndarray:
        """The column of each row of ``frame`` for dimension ``dim``."""
        idx = self.index[dim]
        values = pd.Series(frame[dim]).reset_index(drop=True)
        missing = values.isna().to_numpy()
        got = values[~missing].map(idx)
        if got.isna().any():  # every group has a column (see build): not expected
            raise KeyError(f"{dim} values without a column: {sorted(set(values[~missing][got.isna()]), key=str)[:5]}")
        out = np.empty(len(values), dtype="int64")
        out[~missing] = got.to_numpy("int64")
        if missing.any():
            out[missing] = idx[None]
        return out

    def levels(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's column per level (rows x (1 + dimensions)): the company (0), then one per
        dimension."""
        out = np.zeros((len(frame), 1 + len(self.dims)), dtype="int64")
        for i, dim in enumerate(self.dims):
            out[:, i + 1] = self.of(frame, dim)
        return out


class _ColumnSums:
    """Sums values per deal into the group columns, given each deal's column per level
    (:meth:`_GroupColumns.levels`).

    Never a dense deals x groups matrix (5,000 reps x 100,000 deals at scale): the deals are
    ordered by their columns, coarsest dimension first, so each group is a run of adjacent deals
    and np.add.reduceat sums it for every row (simulation) at once.
    """

    def __init__(self, deal_cols: np.ndarray, n_cols: int):
        n_deals = len(deal_cols)
        self.n_cols = n_cols
        levels = sorted(range(1, deal_cols.shape[1]), key=lambda c: len(np.unique(deal_cols[:, c])))
        self.order = np.lexsort([deal_cols[:, c] for c in reversed(levels)]) if levels else np.arange(n_deals)
        # (run starts, run columns, columns unique) per level
        self.runs: list[tuple[np.ndarray, np.ndarray, bool]] = []
        ordered_cols = deal_cols[self.order]
        for k, c in enumerate(levels):
            keys_ = ordered_cols[:, levels[: k + 1]]
            change = np.ones(n_deals, dtype=bool)
            if n_deals > 1:
                change[1:] = (keys_[1:] != keys_[:-1]).any(axis=1)
            starts = np.flatnonzero(change)
            run_cols = ordered_cols[starts, c]
            self.runs.append((starts, run_cols, len(np.unique(run_cols)) == len(run_cols)))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Sum ``values`` (rows x deals, in deal order) into (rows x n_cols)."""
        return self.ordered(values[:, self.order])

    def ordered(self, ordered: np.ndarray) -> np.ndarray:
        """Sum ``ordered`` (rows x deals, in :attr:`order`) into (rows x n_cols). Values are whole
        cents held in float64, so every sum is exact whatever the order of the additions."""
        out_ = np.zeros((ordered.shape[0], self.n_cols))
        out_[:, 0] = ordered.sum(axis=1)
        if ordered.shape[1] == 0:
            return out_
        for starts, run_cols, unique in self.runs:
            sums = np.add.reduceat(ordered, starts, axis=1)
            if unique:
                out_[:, run_cols] += sums
            else:  # a group split over several runs (e.g. a rep counted in two teams)
                np.add.at(out_.T, run_cols, sums.T)
        return out_


def _won_per_column(won: pd.DataFrame, columns: _GroupColumns) -> np.ndarray:
    """Won to date per column, in cents (int64)."""
    w_cents = to_cents(won.amount)
    won_cols = np.zeros(columns.n, dtype="int64")
    won_cols[0] = int(w_cents.sum())
    for dim in columns.dims:
        np.add.at(won_cols, columns.of(won, dim), w_cents)
    return won_cols


# -- the draws -----------------------------------------------------------------------------------


def _simulate(rng: np.random.Generator, n_sims: int, p_win: np.ndarray, d_cents: np.ndarray, sums: _ColumnSums,
              new: _NewBusiness, pool_cols: np.ndarray) -> np.ndarray:
    """Simulated revenue of the open deals and the new business (won to date left out), in cents:
    simulations x columns.

    Draws are made in chunks of simulations, sequentially from ``rng``; per chunk: the analogous
    period of each simulation (when there are several), uniforms for the open deals, then the
    Poisson counts and the bootstrap indices of the new business.
    """
    n_cols = sums.n_cols
    sims = np.zeros((n_sims, n_cols))
    chunk = max(1, CHUNK_CELLS // max(1, len(d_cents)))
    win_lam = new.window_rates()
    # the deals in the order the group sums read them (the draws stay in deal order)
    p_ord, c_ord = p_win[:, sums.order], d_cents[sums.order]
    levels = [np.ascontiguousarray(pool_cols[:, c]) for c in range(1, pool_cols.shape[1])]
    for lo in range(0, n_sims, chunk):
        hi = min(n_sims, lo + chunk)
        rows = hi - lo
        # each simulation replays one analogous period's rates (a single period: no draw)
        n_mix = max(len(p_win), len(win_lam))
        which = rng.integers(0, n_mix, size=rows) if n_mix > 1 else np.zeros(rows, dtype="int64")
        if len(d_cents):
            sims[lo:hi] += sums.ordered(_draw_open_deals(rng, which, p_ord, c_ord, sums.order))
        if new.rate > 0 and len(new.pool):
            _add_new_business(rng, sims[lo:hi], which, win_lam, new.cents, levels)
    return sims


def _draw_open_deals(rng: np.random.Generator, which: np.ndarray, p_ord: np.ndarray, c_ord: np.ndarray,
                     order: np.ndarray) -> np.ndarray:
    """The amount (cents) each open deal wins in each simulation of a chunk: rows x deals, the
    deals in ``order`` (``p_ord`` and ``c_ord``, the probabilities per analogous period and the
    amounts, are in that order). The uniforms are drawn in deal order."""
    rows = len(which)
    u = rng.random((rows, len(c_ord)), dtype=np.float32)
    won_c = np.empty((rows, len(c_ord)))
    w_of = which % len(p_ord)
    for i in range(rows):  # one simulation at a time: no chunk-sized temporaries
        np.multiply(u[i, order] < p_ord[w_of[i]], c_ord, out=won_c[i])
    return won_c


def _add_new_business(rng: np.random.Generator, out: np.ndarray, which: np.ndarray, win_lam: np.ndarray,
                      pool_cents: np.ndarray, levels: list[np.ndarray]) -> None:
    """Add the new business of each simulation of a chunk to ``out`` (rows x columns, cents): a
    Poisson count of deals drawn with replacement from the pool, summed into their columns
    (``levels``: each pool deal's column per dimension; the company is column 0)."""
    rows, n_cols = out.shape
    counts = rng.poisson(win_lam[which % len(win_lam)])
    draws = rng.integers(0, len(pool_cents), size=int(counts.sum()))
    sim_of = np.repeat(np.arange(rows), counts)
    amt = pool_cents[draws]
    out[:, 0] += np.bincount(sim_of, weights=amt, minlength=rows)
    if levels:
        base = sim_of * n_cols
        acc = np.zeros(rows * n_cols)
        for cols in levels:
            acc += np.bincount(base + cols[draws], weights=amt, minlength=rows * n_cols)
        out += acc.reshape(rows, n_cols)


# -- the result frames ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _ColumnOutcomes:
    """Per column (company, then groups): the simulated totals and their statistics."""

    totals_c: np.ndarray  # simulations x columns, cents (float64)
    totals: np.ndarray  # the same in currency units
    won: np.ndarray  # won to date, cents (int64)
    open_deals: np.ndarray
    open_expected: np.ndarray
    mean: np.ndarray
    p10: np.ndarray
    p50: np.ndarray
    p90: np.ndarray

    @classmethod
    def of(cls, sims: np.ndarray, won_cols: np.ndarray, sums: _ColumnSums, d_cents: np.ndarray,
           d_prob: np.ndarray) -> _ColumnOutcomes:
        totals_c = sims + won_cols.astype("float64")
        totals = totals_c / 100.0
        p10, p50, p90 = _quantiles(totals, axis=0)
        mean = totals.mean(axis=0)
        open_exp = sums(np.round(d_cents * d_prob)[None, :])[0] / 100.0
        open_cnt = sums(np.ones((1, len(d_cents))))[0].astype("int64")
        return cls(totals_c, totals, won_cols, open_cnt, open_exp, mean, p10, p50, p90)


def _reach(totals_c: np.ndarray, col: int, target: float) -> float:
    """Share of simulations where column ``col`` reaches ``target`` (NaN without a target)."""
    if target is None or pd.isna(target):
        return float("nan")
    return float(np.mean(totals_c[:, col] >= round(float(target) * 100)))


def _summary_frame(ds: Dataset, p: Period, day: date, n_sims: int, seed: Any, d_cents: np.ndarray,
                   new: _NewBusiness, out: _ColumnOutcomes) -> pd.DataFrame:
    """The one-row company summary of :class:`OutcomeSimulation`."""
    company_t = metrics(ds, ["revenue_target"], grain=p.grain, periods=[p])["revenue_target"]
    company_target = float(company_t.iloc[0]) if len(company_t) and pd.notna(company_t.iloc[0]) else float("nan")
    return pd.DataFrame([{
        PERIOD: p.label, "as_of": day, "simulations": n_sims, "seed": seed,
        "won_to_date": out.won[0] / 100.0, "open_deals": int(len(d_cents)),
        "open_amount": float(d_cents.sum()) / 100.0, "open_expected": float(out.open_expected[0]),
        "new_rate": float(new.rate), "season_factor": float(new.season_factor), "seasonality": new.seasonality,
        "new_expected": float(new.expected),
        "mean": float(out.mean[0]), "p10": float(out.p10[0]), "p50": float(out.p50[0]), "p90": float(out.p90[0]),
        "target": company_target, "p_reach_target": _reach(out.totals_c, 0, company_target),
    }])


def _group_frames(columns: _GroupColumns, targets: dict[str, pd.DataFrame],
                  out: _ColumnOutcomes) -> dict[str, pd.DataFrame]:
    """Per dimension of ``by`` the frame of its groups (see :class:`OutcomeSimulation`)."""
    groups: dict[str, pd.DataFrame] = {}
    for dim in columns.dims:
        tmap = {(None if pd.isna(k) else k): v for k, v in zip(targets[dim][dim], targets[dim].revenue_target)}
        rows_ = []
        for g, c in columns.index[dim].items():
            tgt = tmap.get(g)
            tgt = float(tgt) if tgt is not None and not pd.isna(tgt) else float("nan")
            rows_.append({dim: g, "target": tgt, "won_to_date": out.won[c] / 100.0,
                          "open_deals": int(out.open_deals[c]), "open_expected": float(out.open_expected[c]),
                          "mean": float(out.mean[c]), "p10": float(out.p10[c]), "p50": float(out.p50[c]),
                          "p90": float(out.p90[c]), "p_reach_target": _reach(out.totals_c, c, tgt)})
        groups[dim] = pd.DataFrame(rows_, columns=[dim, "target", "won_to_date", "open_deals", "open_expected",
                                                   "mean", "p10", "p50", "p90", "p_reach_target"])
    return groups


# -- calibration backtest of the simulation -----------------------------------------------------


def outcome_backtest(
    ds: Dataset,
    *,
    periods: int = 4,
    grain: str = "quarter",
    n: int | None = 2_000,
    seed: int | None = None,
    before: date | None = None,
    max_cells: int | None = None,
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
    max_cells
        Cap on simulations x open deals per replay (see :func:`simulate_outcome`): at scale
        ``10**8`` keeps a 100,000-deal pipeline to 1,000 runs.

    Returns
    -------
    pandas.DataFrame
        One row per period, oldest first: ``period``, ``as_of`` (the day before it starts),
        ``actual`` (revenue won in it), ``p10``, ``p50``, ``p90``, ``inside`` (P10 <= actual <=
        P90), ``p50_error`` ((P50 - actual) / actual), ``open_expected``, ``new_expected``,
        ``season_factor`` (applied to its new business), ``won_from_open`` (actual revenue from
        deals open at ``as_of``) and ``won_new`` (from deals created after it). ``attrs``:
        ``coverage`` (share inside), ``mape`` (mean |p50_error|), ``grain``.

    Notes
    -----
    Each period is simulated as of the day before it starts, with only what was known then
    (probabilities, new-business rates, seasonal factors and the pipeline reconstructed from
    stage history). Two things are not as they were then: amounts are today's (no amount
    history) and a deal closed since has its actual close date, not the expected one of that
    day; neither matters to the simulation, which uses no close date for learned steps. An 80%
    interval should hold the actual in about 4 periods out of 5. Each period's replay is computed
    once per dataset and options (``n``, ``seed``, ``max_cells``): the outlook, the headline and
    the review share them.
    """
    grain = grain_of(grain)
    if not isinstance(periods, int) or periods < 1:
        raise ForecastError(f"periods={periods!r} must be a whole number, at least 1")
    last = timeline.snapshot_day(ds) if before is None else min(timeline.snapshot_day(ds), before)
    p = complete_by(ds, grain, last)
    chosen: list[Period] = []
    while len(chosen) < periods:
        chosen.append(p)
        p = p.previous()
    chosen.reverse()
    todo = [q for q in chosen if not ds.has_kept("outcome_replay", (q.label, n, seed, max_cells))]
    if todo and ds.has("stage_history"):
        # every snapshot day the replays need, fetched in one query (memoized per dataset)
        need: set[date] = set()
        for q in todo:
            day = q.start - timedelta(days=1)
            need.update(month_ends(months_before(day, ds.config.forecast.history_months), day))
            need.update(w.start - timedelta(days=1) for w in analogous_windows(ds, q, day))
        snapshot_deals(ds, sorted(need))
    rows = [ds.kept("outcome_replay", (q.label, n, seed, max_cells), lambda q=q: _replay(ds, q, n, seed, max_cells))
            for q in chosen]
    out = pd.DataFrame(rows)
    out.attrs.update(coverage=float(out.inside.mean()), mape=float(out.p50_error.abs().mean()), grain=grain)
    return out


def _won_deals(ds: Dataset) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """Close day, creation moment and cents of every won deal (once per dataset)."""

    def build() -> tuple[pd.Series, pd.Series, np.ndarray]:
        o = pl.placed_deals(ds)
        won = o.filter(o.status == "won").select("_created", "closed_on", "amount").to_pandas()
        return pd.to_datetime(won.closed_on), pd.to_datetime(won._created), to_cents(won.amount)

    return memoized(ds, "won_deals", None, build)


def _replay(ds: Dataset, q: Period, n: int | None, seed: int | None, max_cells: int | None) -> dict[str, Any]:
    """One row of :func:`outcome_backtest`: Q simulated as of the day before it, and its actual."""
    closed, created, cents = _won_deals(ds)
    day = q.start - timedelta(days=1)
    s = simulate_outcome(ds, q, as_of=day, n=n, seed=seed, by=(), max_cells=max_cells)
    r = s.summary.iloc[0]
    in_q = ((closed >= pd.Timestamp(q.start)) & (closed < pd.Timestamp(q.end))).to_numpy()
    new = (created > pd.Timestamp(day)).to_numpy()
    actual = int(cents[in_q].sum()) / 100.0
    return {
        PERIOD: q.label, "as_of": day, "actual": actual, "p10": float(r.p10), "p50": float(r.p50),
        "p90": float(r.p90), "inside": bool(r.p10 <= actual <= r.p90),
        "p50_error": (float(r.p50) - actual) / actual if actual else float("nan"),
        "open_expected": float(r.open_expected), "new_expected": float(r.new_expected),
        "season_factor": float(r.season_factor),
        "won_from_open": int(cents[in_q & ~new].sum()) / 100.0, "won_new": int(cents[in_q & new].sum()) / 100.0,
    }


def simulation_calibration(
    ds: Dataset,
    *,
    grain: str = "quarter",
    as_of: Any = None,
    periods: int | None = None,
    n: int | None = 2_000,
    seed: int | None = None,
    max_cells: int | None = None,
) -> Calibration:
    """How the simulation did on the periods before a forecast made on ``as_of``.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    grain
        The forecast's grain.
    as_of
        The day of the forecast under test (default: the data's snapshot day); only periods
        complete by then are replayed.
    periods
        How many periods to replay at most (default ``config.forecast.backtest_periods``).
    n, seed, max_cells
        As :func:`outcome_backtest` (memoized: the same options share one replay).

    Returns
    -------
    Calibration
        Method ``simulation``: per replayed period the actual, the P50 (``forecast``) and the
        P10-P90 interval; :attr:`Calibration.coverage` is the share of actuals inside P10-P90
        (about 0.8 when calibrated), :meth:`Calibration.count_text` says "3 of 4 quarters",
        :attr:`Calibration.mape` is the mean absolute error of the P50. No period (with the
        ``reason``) when the history is too short.

    Notes
    -----
    The periods replayed are those the time series' backtest scores (:func:`scored_periods`:
    the last ``periods`` complete periods that have at least 3 periods of history before
    them), so the two methods are compared on the same periods, each forecast as of the day
    before the period starts (:func:`outcome_backtest`).
    """
    grain = grain_of(grain)
    day = as_of_day(ds, as_of_value(ds, as_of))
    chosen, reason = scored_periods(ds, grain=grain, as_of=day, backtest_periods=periods)
    empty = pd.DataFrame({PERIOD: [], "actual": [], "forecast": [], "low": [], "high": []})
    if not chosen:
        return Calibration.of("simulation", grain, empty, reason)
    b = outcome_backtest(ds, periods=len(chosen), grain=grain, n=n, seed=seed, before=day, max_cells=max_cells)
    rows = b.rename(columns={"p50": "forecast", "p10": "low", "p90": "high"})
    return Calibration.of("simulation", grain, rows, reason)
