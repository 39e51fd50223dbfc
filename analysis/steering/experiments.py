"""Experiments: did a change move a metric? (SPEC section 7)

``experiment(ds, "win_rate", change_date="2026-03-01")`` compares the ``window_days`` before a
date with the ``window_days`` from it; ``experiment(ds, "calls_per_day", group_a=["East SMB"],
group_b=["R0010", "R0011"])`` compares two groups of reps (rep_ids or team names) over the
last ``window_days`` of the data. ``experiments(ds)`` runs every ``experiments:`` entry of the
config. Each result carries the effect (B - A: after - before, or group B - group A), its 95 %
confidence interval, the test, its statistic and p-value, the sample per arm and a verdict.

The test follows the metric (:func:`metric_kind`)
-------------------------------------------------
proportion
    Catalog ratios with ``proportion: true`` (win_rate, positive_call_rate, ...): the counts of
    each arm, a two-proportion z-test with the pooled standard error
    (``z = (p_b - p_a) / sqrt(p (1 - p) (1/n_a + 1/n_b))``, p the pooled rate; as
    ``statsmodels.stats.proportion.proportions_ztest``), and Newcombe's hybrid score interval
    for the difference (method 10 of Newcombe 1998, built from the two Wilson intervals; as
    ``statsmodels ... confint_proportions_2indep(method="newcomb")``). n = the denominators.
per_deal
    Means of per-deal values (``avg_deal_size``: the amounts of won deals; ``sales_cycle_days``
    and other ``mean`` metrics over deals, leads or activities): Welch's t-test on the values of
    each arm (``scipy.stats.ttest_ind(equal_var=False)``) and Welch's interval. n = the deals.
per_rep
    Rates per rep (``calls_per_day``, ``meetings_per_week``, ... and any count or sum, per rep
    per working day): each rep's rate in each arm, Welch's t-test over the reps. n = the reps
    with at least one working day in the arm. In a before/after design the same reps are in
    both arms; Welch ignores the pairing, which is conservative.

The verdict says "likely a real improvement" (or deterioration, by the metric's direction)
when p < alpha (0.05) and "no detectable change" otherwise; an arm without data gives
"not enough data".
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.data.config import Experiment
from analysis.data.loading import Dataset
from analysis.data.periods import periods_between
from analysis.errors import WorkbenchError
from analysis.format import Numbers
from analysis.semantic.catalog import Catalog, build_catalog
from analysis.semantic.engine import Z95, Engine, metrics, where_condition, wilson_interval

KINDS = ("proportion", "per_deal", "per_rep")
_RATE_DENOMINATORS = {"rep_working_days": "per working day", "rep_working_weeks": "per week"}

RESULT_KEYS = [
    "name", "metric", "label", "kind", "design", "arm_a", "arm_b", "a_start", "a_end", "b_start", "b_end",
    "n_a", "n_b", "value_a", "value_b", "difference", "relative", "ci_low", "ci_high", "test", "interval",
    "statistic", "p_value", "direction", "verdict",
]  # fmt: skip


class ExperimentError(WorkbenchError):
    """An experiment that cannot be run (unknown metric kind, unknown rep or team, bad design)."""


# -- public API ------------------------------------------------------------------------------


def experiment(
    ds: Dataset,
    metric: str,
    *,
    change_date: date | str | None = None,
    window_days: int = 90,
    group_a: Sequence[str] | str | None = None,
    group_b: Sequence[str] | str | None = None,
    reps: Sequence[str] | str | None = None,
    name: str | None = None,
    alpha: float = 0.05,
    catalog: Catalog | None = None,
) -> dict[str, Any]:
    """Compare a metric before and after a date, or between two groups of reps.

    Parameters
    ----------
    ds
        A dataset.
    metric
        A catalog metric id; see :func:`metric_kind` for which ones can be tested.
    change_date
        Before/after design: arm A is ``[change_date - window_days, change_date)``, arm B is
        ``[change_date, change_date + window_days)`` (cut at the data's last day).
    window_days
        Days in each arm (default 90). In a group design: the last ``window_days`` up to the
        data's last day (or before/after ``change_date`` is not used: give one design).
    group_a, group_b
        Group design: rep_ids or team names (a list, or one string). Both or neither.
    reps
        Before/after design only: restrict to these rep_ids or teams (default every rep).
    name
        A name for the experiment (default the metric and design).
    alpha
        Significance level of the verdict (default 0.05; the interval is always 95 %).

    Returns
    -------
    dict
        ``name``, ``metric``, ``label``, ``kind`` (proportion, per_deal, per_rep), ``design``
        (before_after or groups), ``arm_a``, ``arm_b`` (labels), ``a_start``, ``a_end``,
        ``b_start``, ``b_end`` (dates, end inclusive), ``n_a``, ``n_b``, ``value_a``,
        ``value_b``, ``difference`` (B - A), ``relative`` (difference / value_a, NaN when
        value_a is 0), ``ci_low``, ``ci_high`` (95 % interval of the difference), ``test``,
        ``interval`` (method of the interval), ``statistic`` (z or t), ``p_value`` (two-sided),
        ``direction`` (higher/lower is better) and ``verdict`` (a sentence, see
        :func:`experiment_verdict`).

    Notes
    -----
    See the module docstring for the tests. With an empty arm (or fewer than 2 reps or deals
    for a t-test) the statistic, p-value and interval are NaN and the verdict says there is not
    enough data; it never raises for missing data.
    """
    catalog = catalog or build_catalog(ds.config)
    m = catalog.get(metric)
    kind = metric_kind(catalog, metric)
    design, arms = _design(ds, change_date, window_days, group_a, group_b, reps)
    if kind == "proportion":
        res = _proportion(ds, m, arms)
    elif kind == "per_deal":
        res = _per_deal(ds, catalog, m, arms)
    else:
        res = _per_rep(ds, catalog, m, arms)
    (label_a, start_a, end_a, reps_a), (label_b, start_b, end_b, reps_b) = arms
    va, vb = res["value_a"], res["value_b"]
    diff = vb - va if _ok(va) and _ok(vb) else math.nan
    out = {
        "name": name or _default_name(metric, design, change_date, label_a, label_b),
        "metric": metric,
        "label": m.label if kind != "per_rep" or m.type == "ratio" else f"{m.label} per rep per working day",
        "kind": kind,
        "design": design,
        "arm_a": label_a,
        "arm_b": label_b,
        "a_start": start_a,
        "a_end": end_a - timedelta(days=1),
        "b_start": start_b,
        "b_end": end_b - timedelta(days=1),
        "n_a": int(res["n_a"]),
        "n_b": int(res["n_b"]),
        "value_a": va,
        "value_b": vb,
        "difference": diff,
        "relative": diff / va if _ok(diff) and va not in (0, 0.0) else math.nan,
        "ci_low": res["ci_low"],
        "ci_high": res["ci_high"],
        "test": res["test"],
        "interval": res["interval"],
        "statistic": res["statistic"],
        "p_value": res["p_value"],
        "direction": m.direction,
    }
    unit = m.unit if kind != "per_rep" or m.type == "ratio" else "number"
    out["verdict"] = experiment_verdict(out, unit=unit, alpha=alpha, change_date=change_date,
                                        numbers=ds.config.numbers)
    if design == "before_after" and out["b_end"] < start_b + (start_b - start_a) - timedelta(days=1):
        days = (end_b - start_b).days
        out["verdict"] += f" (The after window is cut to {days} days at the data's last day.)"
    return out


def experiments(ds: Dataset, *, alpha: float = 0.05) -> pd.DataFrame:
    """Run every experiment of ``config.experiments``; one row per experiment (see
    :func:`experiment` for the columns). An experiment that cannot run keeps its row with the
    reason as verdict."""
    catalog = build_catalog(ds.config)
    rows = []
    for e in ds.config.experiments:
        rows.append(run_config_experiment(ds, e, alpha=alpha, catalog=catalog))
    return pd.DataFrame(rows, columns=RESULT_KEYS)


def run_config_experiment(ds: Dataset, e: Experiment, *, alpha: float = 0.05, catalog: Catalog | None = None) -> dict[str, Any]:
    """Run one :class:`~analysis.config.Experiment` entry."""
    try:
        return experiment(
            ds, e.metric, change_date=e.change_date, window_days=e.window_days,
            group_a=list(e.group_a) or None, group_b=list(e.group_b) or None, reps=list(e.reps) or None,
            name=e.name, alpha=alpha, catalog=catalog,
        )  # fmt: skip
    except WorkbenchError as err:
        row = {k: math.nan for k in RESULT_KEYS}
        row.update(name=e.name, metric=e.metric, verdict=f"Experiment {e.name!r} could not run: {err}")
        return row


def metric_kind(catalog: Catalog, metric: str) -> str:
    """How a metric is tested: ``proportion``, ``per_deal`` or ``per_rep`` (see the module notes).

    Raises :class:`ExperimentError` for metrics no test fits (derived, growth, most functions).
    """
    kind = _kind(catalog, metric)
    if kind is not None:
        return kind
    m = catalog.get(metric)
    testable = [x for x in catalog.metrics if x != metric and _kind(catalog, x) is not None]
    raise ExperimentError(
        f"metric {metric!r} ({m.type}) cannot be tested: use a rate with proportion: true, a mean of "
        f"per-deal values (avg_deal_size, sales_cycle_days) or a per-rep rate (calls_per_day). "
        f"Testable metrics: {', '.join(testable)}"
    )


def _kind(catalog: Catalog, metric: str) -> str | None:
    m = catalog.get(metric)
    if m.type == "ratio" and m.proportion:
        return "proportion"
    if m.type == "mean" and m.source:
        return "per_deal"
    if m.type == "ratio" and m.denominator in _RATE_DENOMINATORS:
        return "per_rep"
    if m.type == "ratio" and _per_row_ratio(catalog, m) is not None:
        return "per_deal"
    if m.type in ("count", "sum") and m.source and m.source not in ("spend", "pulse"):
        return "per_rep"
    return None


def experiment_verdict(result: dict[str, Any], *, unit: str = "number", alpha: float = 0.05,
                       change_date: Any = None, currency: str | None = "USD",
                       numbers: Numbers | None = None) -> str:
    """The plain-language verdict of a result, e.g. ``"Win rate rose from 24% to 29% after
    2026-03-01 (+5 points, 95% CI +1 to +9, p = 0.02): likely a real improvement."``; figures
    through ``numbers`` (a dataset's ``config.numbers``; default: en-US with ``currency``, e.g.
    ``"+$1.2K"``)."""
    nb = numbers or Numbers(currency)
    label = result.get("label") or result.get("metric")
    va, vb, diff = result.get("value_a"), result.get("value_b"), result.get("difference")
    p, lo, hi = result.get("p_value"), result.get("ci_low"), result.get("ci_high")
    design = result.get("design")
    if design == "before_after":
        when = f"after {result.get('b_start')}"
        frame = (f"{label} {{verb}} from {_fmt(va, unit, nb)} to {_fmt(vb, unit, nb)} {when}")
        flat = f"{label} was {_fmt(va, unit, nb)} before {result.get('b_start')} and {_fmt(vb, unit, nb)} after"
    else:
        a, b = result.get("arm_a"), result.get("arm_b")
        frame = f"{label} was {_fmt(vb, unit, nb)} for {b} against {_fmt(va, unit, nb)} for {a}"
        flat = frame
    if not (_ok(va) and _ok(vb)):
        return (f"Not enough data to compare {label}: {result.get('n_a', 0)} vs {result.get('n_b', 0)} "
                f"in the two arms.")
    if not _ok(p):
        return f"{flat}; not enough data for a test ({result.get('n_a')} vs {result.get('n_b')})."
    ci = f"95% CI {_fmt_diff(lo, unit, nb, bare=True)} to {_fmt_diff(hi, unit, nb, bare=True)}" if _ok(lo) and _ok(hi) else "no interval"
    stats_text = f"({_fmt_diff(diff, unit, nb)}, {ci}, p {_p_text(p)})"
    if p >= alpha:
        return f"{flat} {stats_text}: no detectable change."
    better = (diff > 0) == (result.get("direction", "higher") == "higher")
    what = "likely a real improvement" if better else "likely a real deterioration"
    if design == "before_after":
        verb = "rose" if diff > 0 else "fell"
        return f"{frame.format(verb=verb)} {stats_text}: {what}."
    return f"{frame} {stats_text}: likely a real difference, in favour of {result.get('arm_b') if better else result.get('arm_a')}."


# -- designs ---------------------------------------------------------------------------------

Arm = tuple[str, date, date, list[str] | None]  # label, start, end (exclusive), rep_ids (None = all)


def _as_date(d: Any) -> date:
    if isinstance(d, datetime):
        return d.date()
    if isinstance(d, date):
        return d
    try:
        return date.fromisoformat(str(d).strip())
    except ValueError:
        raise ExperimentError(f"change_date {d!r} is not a date; use YYYY-MM-DD") from None


def _names(x: Sequence[str] | str | None) -> list[str]:
    if x is None:
        return []
    return [str(x)] if isinstance(x, str) else [str(v) for v in x]


def _resolve(ds: Dataset, names: list[str], what: str) -> list[str]:
    """rep_ids of a list of rep_ids and team names."""
    cols = ["rep_id"] + (["team"] if ds.has_column("reps", "team") else [])
    reps = ds.table("reps").select(*cols).order_by("rep_id").to_pandas().astype("string")  # one order on every engine
    ids = set(reps["rep_id"].dropna())
    teams = set(reps["team"].dropna()) if "team" in reps else set()
    out: list[str] = []
    for n in names:
        if n in ids:
            out.append(n)
        elif n in teams:
            out.extend(reps.loc[reps["team"] == n, "rep_id"].tolist())
        else:
            import difflib

            close = difflib.get_close_matches(n, sorted(ids | teams), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ExperimentError(f"{what}: {n!r} is neither a rep_id nor a team{hint}")
    return list(dict.fromkeys(out))


def _design(ds: Dataset, change_date, window_days, group_a, group_b, reps) -> tuple[str, tuple[Arm, Arm]]:
    if window_days is None or int(window_days) < 1:
        raise ExperimentError(f"window_days must be a positive number of days, got {window_days!r}")
    w = timedelta(days=int(window_days))
    ga, gb = _names(group_a), _names(group_b)
    last = ds.last_date() + timedelta(days=1)
    if change_date is not None and (ga or gb):
        raise ExperimentError("give either change_date (before/after) or group_a and group_b, not both")
    if change_date is not None:
        d = _as_date(change_date)
        who = _resolve(ds, _names(reps), "reps") if reps else None
        return "before_after", (("before", d - w, d, who), ("after", d, min(d + w, last), who))
    if not (ga and gb):
        raise ExperimentError("give change_date (before/after) or both group_a and group_b (two groups)")
    start = last - w
    a, b = _resolve(ds, ga, "group_a"), _resolve(ds, gb, "group_b")
    return "groups", ((", ".join(ga), start, last, a), (", ".join(gb), start, last, b))


def _days(start: date, end: date) -> list:
    if end <= start:
        return []
    return periods_between(start, end - timedelta(days=1), "day")


def _by_rep_day(ds: Dataset, ids: list[str], arms: tuple[Arm, Arm], catalog: Catalog | None = None) -> pd.DataFrame:
    """``ids`` per rep and day over both arms, with an ``arm`` column (A, B; a row can be in both
    arms only in no design here)."""
    start = min(a[1] for a in arms)
    end = max(a[2] for a in arms)
    days = _days(start, end)
    if not days:
        return pd.DataFrame(columns=["rep_id", "period", "arm", *ids])
    who = sorted({r for a in arms if a[3] is not None for r in a[3]}) if all(a[3] is not None for a in arms) else None
    filters = {"rep_id": who} if who is not None else None
    f = metrics(ds, ids, by="rep_id", grain="day", periods=days, filters=filters, catalog=catalog)
    f["day"] = pd.to_datetime(f["period"]).dt.date
    frames = []
    for tag, (label, s, e, reps) in zip("AB", arms):
        g = f[(f["day"] >= s) & (f["day"] < e)]
        if reps is not None:
            g = g[g["rep_id"].astype("string").isin(reps)]
        frames.append(g.assign(arm=tag))
    return pd.concat(frames, ignore_index=True)


# -- the three tests -------------------------------------------------------------------------


def _arm_totals(ds: Dataset, ids: list[str], arms: tuple[Arm, Arm], catalog: Catalog | None = None) -> list[pd.DataFrame]:
    """``ids`` per day of each arm for the arm's reps together (no rep split): the counts behind
    a proportion are sums, so summing the days of the company (or of the arm's reps, as a
    filter) gives the same totals as summing rep-days, without a frame of reps x days (900,000
    rows at 5,000 reps over two 90-day windows). Arms over the same reps (a before/after design)
    are read in one query."""
    empty = pd.DataFrame(columns=["period", *ids])
    if arms[0][3] == arms[1][3]:
        reps = arms[0][3]
        days = _days(min(a[1] for a in arms), max(a[2] for a in arms))
        if not days or (reps is not None and not reps):
            return [empty, empty]
        filters = {"rep_id": list(reps)} if reps is not None else None
        f = metrics(ds, ids, grain="day", periods=days, filters=filters, catalog=catalog)
        day = pd.to_datetime(f["period"]).dt.date
        return [f[(day >= s) & (day < e)] for _, s, e, _ in arms]
    out = []
    for _, s, e, reps in arms:
        days = _days(s, e)
        if not days or (reps is not None and not reps):
            out.append(empty)
            continue
        filters = {"rep_id": list(reps)} if reps is not None else None
        out.append(metrics(ds, ids, grain="day", periods=days, filters=filters, catalog=catalog))
    return out


def _proportion(ds: Dataset, m, arms) -> dict[str, Any]:
    k, n = [], []
    for f in _arm_totals(ds, [m.id], arms):
        for out, col in ((k, f"{m.id}_numerator"), (n, f"{m.id}_denominator")):
            out.append(float(pd.to_numeric(f[col], errors="coerce").fillna(0).sum()) if col in f.columns else 0.0)
    z, p = two_proportion_ztest(k[1], n[1], k[0], n[0])
    lo, hi = newcombe_interval(k[1], n[1], k[0], n[0])
    return {
        "value_a": k[0] / n[0] if n[0] else math.nan,
        "value_b": k[1] / n[1] if n[1] else math.nan,
        "n_a": n[0], "n_b": n[1], "ci_low": lo, "ci_high": hi,
        "test": "two-proportion z-test (pooled standard error), two-sided",
        "interval": "Newcombe hybrid score interval (from Wilson intervals)",
        "statistic": z, "p_value": p,
    }  # fmt: skip


def _per_row_ratio(catalog: Catalog, m) -> tuple[Any, Any] | None:
    """A ratio sum(column) / count of the same rows (avg_deal_size): the rows' values."""
    try:
        num, den = catalog.get(m.numerator), catalog.get(m.denominator)
    except Exception:  # noqa: BLE001 - an unknown id is simply not this shape
        return None
    if num.type == "sum" and den.type == "count" and num.source == den.source and (num.where or {}) == (den.where or {}):
        return num, den
    return None


def _per_deal(ds: Dataset, catalog: Catalog, m, arms) -> dict[str, Any]:
    if m.type == "mean":
        source, column, where = m.source, m.column, m.where or {}
    else:
        num, _ = _per_row_ratio(catalog, m)
        source, column, where = num.source, num.column, num.where or {}
    values = []
    for label, s, e, reps in arms:
        eng = Engine(ds, catalog, ["rep_id"], "day", ds.config.fiscal_year_start_month,
                      {"rep_id": reps} if reps is not None else {})
        t, time_col = eng.source_table(source)
        if where:
            t = t.filter(where_condition(t, where))
        col = t[time_col]
        lo_, hi_ = _bound(s, col), _bound(e, col)
        t = t.filter((col >= lo_) & (col < hi_) & t[column].notnull())
        v = t.select(v=t[column].cast("float64")).to_pandas()["v"].to_numpy(dtype=float)
        values.append(v[~np.isnan(v)])
    a, b = values
    t_stat, p, lo, hi = welch_test(b, a)
    return {
        "value_a": float(a.mean()) if len(a) else math.nan,
        "value_b": float(b.mean()) if len(b) else math.nan,
        "n_a": len(a), "n_b": len(b), "ci_low": lo, "ci_high": hi,
        "test": "Welch's t-test on the per-deal values, two-sided" if source.startswith("deals") else
                "Welch's t-test on the per-row values, two-sided",
        "interval": "Welch interval (Welch-Satterthwaite df)",
        "statistic": t_stat, "p_value": p,
    }  # fmt: skip


def _per_rep(ds: Dataset, catalog: Catalog, m, arms) -> dict[str, Any]:
    if m.type == "ratio":
        num, den = m.numerator, m.denominator
    else:
        num, den = m.id, "rep_working_days"
    f = _by_rep_day(ds, [num, den], arms, catalog)
    rates = []
    for t in "AB":
        g = f[f.arm == t].groupby("rep_id")[[num, den]].sum(min_count=1)
        g = g[pd.to_numeric(g[den], errors="coerce").fillna(0) > 0]
        r = (pd.to_numeric(g[num], errors="coerce").fillna(0) / pd.to_numeric(g[den], errors="coerce")).to_numpy(dtype=float)
        rates.append(r)
    a, b = rates
    t_stat, p, lo, hi = welch_test(b, a)
    per = _RATE_DENOMINATORS.get(den, "per working day")
    return {
        "value_a": float(a.mean()) if len(a) else math.nan,
        "value_b": float(b.mean()) if len(b) else math.nan,
        "n_a": len(a), "n_b": len(b), "ci_low": lo, "ci_high": hi,
        "test": f"Welch's t-test over reps (each rep's rate {per}), two-sided",
        "interval": "Welch interval (Welch-Satterthwaite df)",
        "statistic": t_stat, "p_value": p,
    }  # fmt: skip


def two_proportion_ztest(k1: float, n1: float, k2: float, n2: float) -> tuple[float, float]:
    """z and two-sided p of p1 - p2 with the pooled standard error; NaN when an arm is empty or
    the pooled rate is 0 or 1.

    Notes
    -----
    z = (k1/n1 - k2/n2) / sqrt(p (1 - p) (1/n1 + 1/n2)), p = (k1 + k2) / (n1 + n2); the same as
    ``statsmodels.stats.proportion.proportions_ztest([k1, k2], [n1, n2])``.
    """
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return math.nan, math.nan
    z = (k1 / n1 - k2 / n2) / se
    return z, float(2 * stats.norm.sf(abs(z)))


def newcombe_interval(k1: float, n1: float, k2: float, n2: float, *, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p1 - p2 (method 10, Newcombe 1998).

    Notes
    -----
    With (l1, u1), (l2, u2) the Wilson intervals of p1 and p2 and d = p1 - p2:
    low = d - sqrt((p1 - l1)² + (u2 - p2)²), high = d + sqrt((u1 - p1)² + (p2 - l2)²).
    NaN when an arm is empty.
    """
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = (float(v) for v in wilson_interval(k1, n1, z))
    l2, u2 = (float(v) for v in wilson_interval(k2, n2, z))
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def welch_test(x: Any, y: Any, *, level: float = 0.95) -> tuple[float, float, float, float]:
    """Welch's t-test of mean(x) - mean(y): ``(t, two-sided p, ci_low, ci_high)``; NaN with fewer
    than 2 values on a side or no variance at all (``scipy.stats.ttest_ind(equal_var=False)``)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or len(y) < 2:
        return math.nan, math.nan, math.nan, math.nan
    v1, v2 = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    if v1 + v2 == 0:
        return math.nan, math.nan, math.nan, math.nan
    res = stats.ttest_ind(x, y, equal_var=False)
    df = (v1 + v2) ** 2 / (v1**2 / (len(x) - 1) + v2**2 / (len(y) - 1))
    half = stats.t.ppf(1 - (1 - level) / 2, df) * math.sqrt(v1 + v2)
    d = x.mean() - y.mean()
    return float(res.statistic), float(res.pvalue), d - half, d + half


# -- helpers ---------------------------------------------------------------------------------


def _bound(d: date, like: Any) -> Any:
    import ibis

    if like.type().is_timestamp():
        return ibis.literal(datetime.combine(d, datetime.min.time()))
    return ibis.literal(d)


def _ok(x: Any) -> bool:
    return x is not None and x is not pd.NA and not (isinstance(x, float) and math.isnan(x))


def _default_name(metric: str, design: str, change_date: Any, a: str, b: str) -> str:
    if design == "before_after":
        return f"{metric} before/after {change_date}"
    return f"{metric}: {b} vs {a}"


def _fmt(x: Any, unit: str, nb: Numbers) -> str:
    if not _ok(x):
        return "n/a"
    if unit == "percent":
        return nb.percent(x, digits=0 if abs(x) >= 0.1 else 1)
    if unit == "money":
        return nb.money(x)
    if unit == "days":
        return f"{nb.number(x, digits=1)} days"
    if unit == "minutes":
        return f"{nb.number(x, digits=1)} min"
    return nb.number(x, digits=1)


def _fmt_diff(x: Any, unit: str, nb: Numbers, *, bare: bool = False) -> str:
    """A signed difference: ``+5.0 points`` (``+5.0`` when ``bare``), ``-$1.2K``, ``+3.5 days``."""
    if not _ok(x):
        return "n/a"
    if unit == "percent":
        pts = x * 100
        text = nb.number(pts, digits=0 if abs(pts) >= 10 else 1, signed=True)
        return text if bare else f"{text} points"
    if unit == "money":
        return nb.money(x, signed=True)
    if unit == "days":
        return f"{nb.number(x, digits=1, signed=True)} days"
    return nb.number(x, digits=2 if abs(x) < 10 else 1, signed=True)


def _p_text(p: float) -> str:
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.3f}" if p < 0.01 else f"= {p:.2f}"
