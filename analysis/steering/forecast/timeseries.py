"""The time-series forecast: a catalog metric forecast with an ETS model beside a seasonal naive
baseline, both backtested on rolling origins (:func:`revenue_forecast`)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import date
from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.data import timeline
from analysis.data.loading import Dataset
from analysis.data.periods import Period, grain_of, parse_period, period_of
from analysis.semantic.catalog import build_catalog
from analysis.semantic.engine import metrics
from analysis.steering.forecast.common import PERIOD, Calibration, ForecastError, as_of_day, as_of_value, memoized
from analysis.steering.forecast.sentences import forecast_sentence

#: Season length per grain (periods per year); grains not listed are forecast without seasonality.
SEASON_LENGTH = {"month": 12, "quarter": 4, "half": 2}
#: Model names in :class:`ForecastResult` frames.
MODELS = ("ets", "seasonal_naive")
#: Coverage of the prediction intervals of :func:`revenue_forecast` (an 80% interval: P10-P90).
INTERVAL = 0.80
#: Fewest observations the ETS model is fitted on (fewer: no ETS forecast).
MIN_ETS_OBS = 3


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
        ``period``, ``model``, ``actual``, ``forecast``, ``low``, ``high`` (its ``interval``
        prediction interval), ``error`` (forecast - actual), ``pct_error`` (error / |actual|,
        NaN when actual is 0), ``train_periods``.
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
    seasonality
        The seasonal factors of the ETS model fitted on the whole history
        (:func:`seasonal_factors`, the ones the simulation gives its new business).
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
    seasonality: pd.DataFrame | None = None

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
    frame, spec, _ = _ets_fit(y, season, horizon, level=level, seed=seed)
    return frame, spec


#: Fits already made, by their exact inputs (a fit is a pure function of them): the rolling
#: backtest of :func:`revenue_forecast` fits the very histories the simulation's replays take
#: their seasonal factors from (:func:`seasonal_factors`), so each is fitted once per process.
_FITS: dict[tuple[bytes, int, int, float, int], tuple[pd.DataFrame, str, tuple[float, np.ndarray] | None]] = {}
_MAX_FITS = 512


def _ets_fit(y: Sequence[float], season: int, horizon: int, *, level: float = INTERVAL,
             seed: int = 0) -> tuple[pd.DataFrame, str, tuple[float, np.ndarray] | None]:
    """:func:`ets_forecast` plus the fitted model's seasonal effects: ``(level, s)`` with the
    final level and the seasonal states of the next ``season`` periods (None without a seasonal
    specification). Each distinct input is fitted once (:data:`_FITS`); callers get copies."""
    arr = np.asarray(y, dtype="float64")
    key = (arr.tobytes(), int(season), int(horizon), float(level), int(seed))
    hit = _FITS.get(key)
    if hit is None:
        if len(_FITS) >= _MAX_FITS:
            _FITS.clear()
        hit = _FITS[key] = _ets_fit_uncached(arr, season, horizon, level, seed)
    frame, spec, effects = hit
    return frame.copy(), spec, None if effects is None else (effects[0], effects[1].copy())


def _ets_fit_uncached(arr: np.ndarray, season: int, horizon: int, level: float,
                      seed: int) -> tuple[pd.DataFrame, str, tuple[float, np.ndarray] | None]:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

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
            effects = None
            if spec.get("seasonal"):
                # the state after observing y_t is row t; the forecast of T + h (h <= m) uses the
                # seasonal state of T + h - m
                states = res.states
                effects = (float(states["level"].iloc[n - 1]) * scale,
                           states["seasonal"].to_numpy("float64")[n - season:n] * scale)
            return pd.DataFrame({"h": hs, "forecast": fc, "low": low, "high": high}), _spec_name(spec), effects
    nan = np.full(horizon, np.nan)
    return pd.DataFrame({"h": hs, "forecast": nan, "low": nan, "high": nan}), "none", None


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


def complete_by(ds: Dataset, grain: str, day: date | None = None) -> Period:
    """The last period of ``grain`` whose last day is on or before ``day`` (default the data's
    snapshot day): the end of the history a forecast made on ``day`` can use."""
    day = timeline.snapshot_day(ds) if day is None else day
    p = period_of(day, grain, fiscal_start_month=ds.config.fiscal_year_start_month)
    return p if p.last_day <= day else p.previous()


def season_of(p: Period) -> int | None:
    """The season of a period: its position in the (fiscal) year, 0 .. m - 1 with m its
    :data:`SEASON_LENGTH` (a quarter 0-3, a month 0-11); None for grains without seasons."""
    m = SEASON_LENGTH.get(p.grain)
    if m is None:
        return None
    months = 12 // m
    return ((p.start.year * 12 + p.start.month - p.fiscal_start_month) // months) % m


def _series(ds: Dataset, metric: str, grain: str, stop: Period, catalog: Any = None) -> tuple[list[Period], np.ndarray]:
    """The periods and values of ``metric`` from its first non-zero period to ``stop`` (raises
    ForecastError for a metric that cannot be forecast or a series without any value)."""
    catalog = build_catalog(ds.config) if catalog is None else catalog
    m_def = catalog.get(metric)
    if not m_def.additive:
        raise ForecastError(
            f"metric {metric!r} is a {m_def.type}, not a count or sum; forecast an additive metric "
            "such as revenue, deals_won or pipeline_created"
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
    return list(frame._p)[nz[0]:], values[nz[0]:]


def _backtest_start(n: int, b: int) -> int:
    """Index of the first period a rolling-origin backtest of ``b`` periods scores in a series of
    ``n``: each scored period has at least :data:`MIN_ETS_OBS` periods before it."""
    return max(n - b, MIN_ETS_OBS)


def _plural(grain: str, k: int) -> str:
    return f"{k} {grain}{'' if k == 1 else 's'}"


def scored_periods(ds: Dataset, *, grain: str = "quarter", as_of: Any = None, metric: str = "revenue",
                   backtest_periods: int | None = None) -> tuple[list[Period], str]:
    """The periods the rolling-origin backtest of a forecast made on ``as_of`` scores, and why
    there are fewer than asked ("" when there are not).

    The series ends with the last complete period by ``as_of`` (:func:`complete_by`; default the
    data's snapshot day); of its last ``backtest_periods`` periods (default
    ``config.forecast.backtest_periods``) those with at least :data:`MIN_ETS_OBS` periods before
    them (:func:`revenue_forecast` scores exactly these; the simulation's calibration replays
    them too, so the methods are compared on the same periods).
    """
    grain = grain_of(grain)
    b = ds.config.forecast.backtest_periods if backtest_periods is None else backtest_periods
    end = complete_by(ds, grain, as_of_day(ds, as_of_value(ds, as_of)))
    try:
        periods, _ = _series(ds, metric, grain, end)
    except ForecastError as err:
        return [], f"no history to backtest on ({err})"
    n = len(periods)
    out = periods[_backtest_start(n, b):]
    reason = ""
    if not out:
        reason = (f"too little history: {_plural(grain, n)} to {end.label}; a backtest needs at least "
                  f"{MIN_ETS_OBS + 1} ({MIN_ETS_OBS} to learn from, 1 to score)")
    elif len(out) < b:
        reason = (f"only {len(out)} of {_plural(grain, b)} could be scored: {_plural(grain, n)} of history to "
                  f"{end.label}, and each scored {grain} needs {MIN_ETS_OBS} before it")
    return out, reason


def _factors(season: int, effects: tuple[float, np.ndarray] | None) -> tuple[np.ndarray, str]:
    """Seasonal factors of the next ``season`` periods from the fitted effects (NaN and the
    reason when there are none)."""
    nan = np.full(season, np.nan)
    if effects is None:
        return nan, "the seasonal model could not be fitted"
    lvl, s = effects
    base = lvl + float(np.mean(s))
    if not base > 0:
        return nan, "the seasonal model's level is not positive"
    return np.clip((lvl + s) / base, 0.0, None), ""


def seasonal_factors(ds: Dataset, *, grain: str = "quarter", as_of: Any = None, end: str | Period | None = None,
                     metric: str = "revenue") -> pd.DataFrame:
    """The seasonal factor of each season, as the time-series model estimates it.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    grain
        month, quarter or half (grains without :data:`SEASON_LENGTH` have no seasons).
    as_of
        Use only the periods complete by this day (default: the data's snapshot day).
    end
        Or the last period of history itself (overrides ``as_of``).
    metric
        The additive catalog metric whose seasonality is estimated (default revenue).

    Returns
    -------
    pandas.DataFrame
        One row per season, the next m periods after the history: ``period`` (label),
        ``season`` (:func:`season_of`), ``factor`` (NaN when not estimated). ``attrs``:
        ``end`` (last period of history), ``periods`` (its length), ``spec`` (the ETS
        specification, ``none`` without a seasonal one), ``reason`` (why there are no factors,
        "" when there are), ``metric``, ``grain``, ``text`` (one phrase: the source or the reason).

    Notes
    -----
    The ETS model of :func:`revenue_forecast` (:func:`ets_forecast`, the same specification
    rules) fitted on the metric per period from its first non-zero period to ``end``. Its
    seasonality is additive: the forecast of the next period of season k is ``l + s_k`` (plus
    the damped trend when there is one), l the final level. The factor of season k is its size
    relative to an average period at that level: ``(l + s_k) / (l + mean(s))`` (clipped at 0),
    so the factors average 1 and a Q4 twice the size of the other quarters gets 1.6 and they
    0.8. No factor (NaN, with the ``reason``) when the series has fewer than two full seasons
    (2m periods: the ETS model has no seasonal term then), when the seasonal specification
    fails to fit, or when ``l + mean(s) <= 0``.

    Only periods complete by ``as_of`` are used, so a forecast made that day sees nothing
    after it. Computed once per dataset, metric, grain and end; each call gets a copy.
    """
    grain = grain_of(grain)
    if end is None:
        stop = complete_by(ds, grain, as_of_day(ds, as_of_value(ds, as_of)))
    else:
        stop = end if isinstance(end, Period) else ds.period(end)
    return memoized(ds, "seasonal_factors", (metric, grain, stop),
                    lambda: _seasonal_factors(ds, metric, grain, stop)).copy()


def _seasonal_factors(ds: Dataset, metric: str, grain: str, stop: Period) -> pd.DataFrame:
    m = SEASON_LENGTH.get(grain)
    nxt = [stop.shift(h) for h in range(1, (m or 0) + 1)]
    n, spec = 0, "none"
    if m is None:
        factors, reason = np.zeros(0), f"a {grain} has no seasons"
    else:
        try:
            periods, y = _series(ds, metric, grain, stop)
            n = len(periods)
        except ForecastError as err:
            factors, reason = np.full(m, np.nan), str(err)
        else:
            if n < 2 * m:
                factors = np.full(m, np.nan)
                reason = (f"{_plural(grain, n)} of history to {stop.label}; seasonality needs at least "
                          f"{2 * m} (two full years)")
            else:
                # the inputs of the backtest's fit of the same history (one fit for both)
                _, spec, effects = _ets_fit(y, m, 1, level=INTERVAL, seed=ds.config.forecast.seed)
                factors, reason = _factors(m, effects)
    out = pd.DataFrame({PERIOD: [q.label for q in nxt], "season": [season_of(q) for q in nxt],
                        "factor": factors.astype("float64")})
    text = f"{spec} on {_plural(grain, n)} to {stop.label}" if not reason else f"none: {reason}"
    out.attrs.update(end=stop.label, periods=n, spec=spec if not reason else "none", reason=reason,
                     metric=metric, grain=grain, text=text)
    return out


def series_calibration(result: ForecastResult) -> Calibration:
    """The backtest of a :class:`ForecastResult`'s winning model as a :class:`Calibration`
    (method ``time_series``): its one-step-ahead forecasts of the scored periods, their
    prediction intervals and the actuals."""
    bt = result.backtest[result.backtest.model == result.winner]
    reason = "" if len(bt) else "too little history: no period has 3 periods before it to learn from"
    return Calibration.of("time_series", result.grain, bt, reason)


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
        Frames ``history``, ``forecast``, ``backtest``, ``accuracy``, ``seasonality``, the
        ``winner`` and a ``sentence``; :attr:`ForecastResult.best` holds the winner's rows.

    Notes
    -----
    * Series: the metric per period from :func:`analysis.metrics`, from the first period with
      a non-zero value (leading zeros are the time before the data starts) to ``end``.
    * Models: :func:`ets_forecast` (its specification depends on the series length) and
      :func:`seasonal_naive` (season length 4 for quarters, 12 for months, 2 for halves).
    * Backtest (rolling origin): for each of the last ``backtest_periods`` periods t of the
      series, both models are refitted on the periods before t and forecast t one step ahead,
      with their prediction interval. A held-out period counts only when at least 3 periods
      precede it (so both models score the same periods: :func:`scored_periods`).
      :func:`accuracy` gives MAPE and bias per model.
    * Winner: the lower MAPE; a tie, or no MAPE for ETS, goes to the seasonal naive baseline
      (a more complex model must earn its place); no MAPE for the baseline but one for ETS
      goes to ETS.
    * ``seasonality``: :func:`seasonal_factors` of the same history (the ETS model's seasonal
      terms as factors).
    * Deterministic: the same data and options give identical frames.
    """
    catalog = build_catalog(ds.config)
    catalog.get(metric)
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
    last = complete_by(ds, grain)
    stop = last if end is None else ds.period(end)
    if stop.grain != grain:
        raise ForecastError(f"end {stop.label} is a {stop.grain}, but grain is {grain}; pass grain={stop.grain!r}")
    if stop > last:
        raise ForecastError(
            f"end {stop.label} is not complete (the data ends {timeline.snapshot_day(ds).isoformat()}); "
            f"pass {last.label} or an earlier period"
        )
    periods, y = _series(ds, metric, grain, stop, catalog)
    n = len(y)
    season = SEASON_LENGTH.get(grain, 1)

    # rolling-origin backtest
    bt_rows = []
    for t in range(_backtest_start(n, b), n):
        train = y[:t]
        e, _ = ets_forecast(train, season, 1, level=level, seed=seed)
        s = seasonal_naive(train, season, 1, level=level)
        for model, f in (("ets", e), ("seasonal_naive", s)):
            bt_rows.append((periods[t].label, model, float(y[t]), float(f.forecast.iloc[0]), float(f.low.iloc[0]),
                            float(f.high.iloc[0]), t))
    bt = pd.DataFrame(bt_rows, columns=[PERIOD, "model", "actual", "forecast", "low", "high", "train_periods"])
    bt["error"] = bt.forecast - bt.actual
    bt["pct_error"] = (bt.error / bt.actual.abs().where(bt.actual != 0)).astype("float64")
    bt = bt[[PERIOD, "model", "actual", "forecast", "low", "high", "error", "pct_error", "train_periods"]]
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
                            accuracy=acc, winner=winner, spec=spec, interval=level,
                            seasonality=seasonal_factors(ds, grain=grain, end=stop, metric=metric))
    return ForecastResult(**{**result.__dict__, "sentence": forecast_sentence(ds, result)})
