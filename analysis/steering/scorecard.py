"""Rep scorecards and the leaderboard (SPEC section 7).

``scorecard(ds, "2026-Q3")`` gives, per rep, an **activity** section (calls, emails, meetings,
demos) and an **objectives** section (opportunities created, deals won, revenue): each metric's
actual, benchmark, attainment, weight (points per unit) and points, with the rep's total score,
rank and percentile among peers of the same role. ``leaderboard(ds, "2026-Q3")`` is one row per
rep with the rank change since the previous period; :func:`analysis.reports.figures.leaderboard_chart` draws it.

Rules
-----
* **Metrics**: :data:`ACTIVITY` and :data:`OBJECTIVES`, plus every metric the config weights or
  benchmarks (``scorecard.weights`` / ``scorecard.benchmarks``). A metric computed from the
  activities table alone is in the activity section; every other one is an objective.
* **Weights**: ``config.scorecard.weights`` (points per unit; default 15 per opportunity
  created, 50 per deal won, 1 per call, 0.5 per email, 5 per meeting, 10 per demo). A metric
  without a weight (revenue by default) is shown with weight 0 and scores no points.
  ``points = actual × weight``; ``score`` = the sum of a rep's points.
* **Benchmarks** are per rep and **month** (``config.scorecard.benchmarks``, else the
  top-level ``config.benchmarks``), as the sample's ``workbench.yml`` defines them. For counts
  and sums they are scaled to the period: × the number of months (quarter 3, half 6, year 12);
  a week or a day gets × its working days / average working days of a month (working days per
  week × 52 / 12). They are then pro-rated by the rep's ``employed_share``: the working days
  the rep was employed in the period (hire_date .. end_date) / the period's working days. Rates
  and averages are never scaled. A metric with no configured benchmark is benchmarked on the
  **peer median** (same role, same period) of the full-period pace ``actual / employed_share``,
  pro-rated the same way (a rate: the plain median of peers' values).
  ``attainment = actual / benchmark``; a zero or missing benchmark gives NA.
* **Who is scored**: reps employed at some point in the period (or with any activity or deal
  in it), except managers (role ``manager``), who are scored only when they own a deal created
  or closed in the period. **Peers** are reps of the same ``reps.role`` (a missing role is its
  own group, ``(no role)``); managers who own deals are ranked among managers only.
* **Ranks**: by score, highest first, within the role. **Ties** (scores equal to 1e-6) share
  the best rank of the tie and the next rank is skipped (1, 2, 2, 4).
  ``percentile`` = 100 × peers with a strictly lower score / (peers - 1): the top rep is 100,
  the bottom 0, tied reps equal; NA for a rep without peers.
* **Rank change**: ``previous_rank`` is the rank in the previous period of the same grain
  computed the same way; ``rank_change = previous_rank - rank`` (positive = moved up); NA when
  the rep was not ranked then.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from analysis.data.loading import Dataset
from analysis.data.periods import Period
from analysis.data.timeline import employed_working_days
from analysis.semantic.catalog import Catalog, build_catalog
from analysis.semantic.engine import metrics

__all__ = [
    "ACTIVITY",
    "OBJECTIVES",
    "SCORECARD_COLUMNS",
    "LEADERBOARD_COLUMNS",
    "benchmark_scale",
    "scorecard",
    "leaderboard",
]

#: Default metrics of the activity section.
ACTIVITY = ("calls", "emails", "meetings", "demos")
#: Default metrics of the objectives section.
OBJECTIVES = ("opportunities_created", "deals_won", "revenue")

#: Role of managers (compared ignoring case).
MANAGER = "manager"
#: Peer group of reps without a role.
NO_ROLE = "(no role)"

#: Months in a period of each grain (benchmarks are per month).
MONTHS = {"month": 1, "quarter": 3, "half": 6, "year": 12}

SCORECARD_COLUMNS = [
    "period", "rep_id", "name", "team", "role", "section", "metric", "label", "actual",
    "benchmark", "benchmark_source", "attainment", "weight", "points", "employed_share",
    "score", "rank", "peers", "percentile",
]  # fmt: skip

LEADERBOARD_COLUMNS = [
    "period", "rep_id", "name", "team", "role", "score", "rank", "previous_rank", "rank_change",
    "percentile", "peers",
]  # fmt: skip

_TIE_DECIMALS = 6


def benchmark_scale(ds: Dataset, period: str | int | Period) -> float:
    """Factor turning a monthly per-rep benchmark into one for ``period`` (see module Rules).

    Month 1, quarter 3, half 6, year 12; a week or a day: its working days / (working days per
    week × 52 / 12), so a plain five-day week is 12 / 52 of a month.
    """
    p = ds.period(period)
    if p.grain in MONTHS:
        return float(MONTHS[p.grain])
    cfg = ds.config
    per_month = len(cfg.working_days) * 52 / 12
    return p.working_days(cfg.weekday_numbers(), cfg.holidays) / per_month


def scorecard(
    ds: Dataset,
    period: str | int | Period,
    *,
    role: str | Sequence[str] | None = None,
    catalog: Catalog | None = None,
) -> pd.DataFrame:
    """Scorecards of every scored rep for one period: one row per rep and metric.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    period
        A period label of any grain (``2026-07``, ``2026-Q3``, ``2026-H2``, ``2026``,
        ``2026-W27``, ``FY2026-Q1``) or an int year.
    role
        Keep only reps of this role (or roles), e.g. ``"AE"``; ranks are always among peers of
        the same role, so filtering does not change them.
    catalog
        The metric catalog (default: built from the dataset's config).

    Returns
    -------
    pandas.DataFrame
        :data:`SCORECARD_COLUMNS`: ``period``, ``rep_id``, ``name``, ``team``, ``role``,
        ``section`` (``activity`` or ``objectives``), ``metric``, ``label``, ``actual``,
        ``benchmark``, ``benchmark_source`` (``config`` or ``peer_median``), ``attainment``,
        ``weight``, ``points``, ``employed_share``, and the rep's ``score``, ``rank``,
        ``peers`` (reps in the role group) and ``percentile``, repeated on each of its rows.
        Sorted by role (alphabetically ignoring case, managers last), rank, name, then section
        and metric. ``attrs``: ``period``,
        ``benchmark_scale``, ``unavailable`` (metric -> reason).

    Notes
    -----
    See the module docstring for the weights, the benchmark scaling and pro-rating, who is
    scored, the tie rule and the percentile. ``points = actual × weight``,
    ``attainment = actual / benchmark`` (NA for a zero or missing benchmark).
    """
    card, _ = _cards(ds, period, role=role, catalog=catalog)
    return card


def leaderboard(
    ds: Dataset,
    period: str | int | Period,
    *,
    role: str | Sequence[str] | None = None,
    catalog: Catalog | None = None,
) -> pd.DataFrame:
    """One row per scored rep: score, rank among peers, previous rank and rank change.

    Returns
    -------
    pandas.DataFrame
        :data:`LEADERBOARD_COLUMNS`, sorted by role (managers last), rank and name. ``rank_change`` =
        ``previous_rank - rank`` (positive: moved up), NA when the rep was not ranked in the
        previous period. ``attrs``: ``period``, ``previous_period``.
    """
    card, prev = _cards(ds, period, role=role, catalog=catalog, previous=True)
    board = _board(card)
    pb = _board(prev).rename(columns={"rank": "previous_rank"})[["rep_id", "previous_rank"]]
    board = board.merge(pb, on="rep_id", how="left")
    board["previous_rank"] = board.previous_rank.astype("Int64")
    board["rank_change"] = (board.previous_rank - board["rank"]).astype("Int64")
    board = board[LEADERBOARD_COLUMNS].reset_index(drop=True)
    board.attrs.update(period=card.attrs.get("period"), previous_period=prev.attrs.get("period"))
    return board


# -- internals --------------------------------------------------------------------------------




def _metric_ids(ds: Dataset, catalog: Catalog) -> list[str]:
    sc = ds.config.scorecard
    ids = list(dict.fromkeys([*ACTIVITY, *OBJECTIVES, *sc.weights, *sc.benchmarks]))
    for m in ids:
        catalog.get(m)  # an unknown id in the config fails here, with a suggestion
    return ids


def _section(catalog: Catalog, mid: str) -> str:
    return "activity" if catalog.tables_needed(mid) <= {"activities", "reps"} else "objectives"


def _employment(ds: Dataset, reps: pd.DataFrame, p: Period) -> pd.Series:
    """Working days employed in P / working days in P, per rep (1 when dates are missing)."""
    cfg = ds.config
    total = p.working_days(cfg.weekday_numbers(), cfg.holidays)
    if total == 0:
        return pd.Series(1.0, index=reps.index)
    days = employed_working_days(reps, p, cfg)
    return pd.Series(days / total, index=reps.index, dtype="float64")


def _reps(ds: Dataset) -> pd.DataFrame:
    r = ds.df("reps")
    for c in ("name", "team", "role", "hire_date", "end_date"):
        if c not in r.columns:
            r[c] = pd.NA
    r = r[["rep_id", "name", "team", "role", "hire_date", "end_date"]].copy()
    r["rep_id"] = r.rep_id.astype("string")
    r["role"] = r.role.astype("string").fillna(NO_ROLE)
    return r


def _cards(ds: Dataset, period: Any, *, role: Any, catalog: Catalog | None,
           previous: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    given = catalog
    catalog = catalog or build_catalog(ds.config)
    p = ds.period(period)
    prev = p.previous()
    ids = _metric_ids(ds, catalog)
    extra = [m for m in ("deals_closed", "opportunities_created") if m not in ids]
    frame = _actuals(ds, [*ids, *extra], [p, prev] if previous else [p], catalog, given)
    reps = _reps(ds)
    roles = None if role is None else {str(x).lower() for x in ([role] if isinstance(role, str) else role)}
    out = []
    for q in ([p, prev] if previous else [p]):
        card = _period_card(ds, catalog, reps, frame[frame.period == q.label], q, ids,
                            set(frame.attrs.get("unavailable", {})))
        if roles is not None:
            card = card[card.role.str.lower().isin(roles)].reset_index(drop=True)
        card.attrs.update(period=q.label, benchmark_scale=benchmark_scale(ds, q),
                          unavailable=dict(frame.attrs.get("unavailable", {})))
        out.append(card)
    return out[0], (out[1] if previous else out[0])


def _actuals(ds: Dataset, ids: list[str], periods: list[Period], catalog: Catalog,
             given: Catalog | None) -> pd.DataFrame:
    """The metrics per rep of ``periods``, memoized per dataset (a loaded dataset does not
    change): the review's leaderboard asks for the period and the previous one, and a rep's
    scorecard then for the period alone, which is read from the same frame: a period's values do
    not depend on the other periods asked (a rep with rows only in the other period gets empty
    rows here, read as the card reads a rep without rows). Only with the default catalog or the
    same catalog object."""
    memo: dict = ds.__dict__.setdefault("_scorecard_actuals", {})
    key = (tuple(ids), given is None)
    for (k_ids, k_default, k_periods), (cat, frame) in memo.items():
        if (k_ids, k_default) == key and (k_default or cat is given) and set(periods) <= set(k_periods):
            out = frame[frame.period.isin([q.label for q in periods])].reset_index(drop=True)
            out.attrs = dict(frame.attrs)
            return out
    frame = metrics(ds, ids, by="rep_id", grain=periods[0].grain, periods=periods, catalog=catalog)
    memo[(*key, tuple(periods))] = (given, frame)
    out = frame.copy()
    out.attrs = dict(frame.attrs)
    return out


def _period_card(ds: Dataset, catalog: Catalog, reps: pd.DataFrame, actual: pd.DataFrame, p: Period,
                 ids: list[str], unavailable: set[str]) -> pd.DataFrame:
    actual = actual.assign(rep_id=actual.rep_id.astype("string")).set_index("rep_id")
    r = reps.copy()
    r["employed_share"] = _employment(ds, r, p)
    vals = {m: pd.to_numeric(actual[m], errors="coerce").astype("float64").reindex(r.rep_id).to_numpy()
            for m in [*ids, "deals_closed", "opportunities_created"] if m in actual.columns}
    additive = {m: catalog.get(m).additive for m in ids}
    for m, v in vals.items():
        if additive.get(m, True) and m not in unavailable:
            vals[m] = np.nan_to_num(v, nan=0.0)  # no rows in P: 0 for counts and sums
    hire = pd.to_datetime(r.hire_date, errors="coerce")
    leave = pd.to_datetime(r.end_date, errors="coerce")
    employed = ((hire.isna() | (hire <= pd.Timestamp(p.last_day))) &
                (leave.isna() | (leave >= pd.Timestamp(p.start)))).to_numpy()
    any_actual = np.zeros(len(r), dtype=bool)
    for m in ids:
        if additive[m]:
            any_actual |= np.nan_to_num(vals[m], nan=0.0) != 0
    owns = (np.nan_to_num(vals.get("deals_closed", np.zeros(len(r))), nan=0.0)
            + np.nan_to_num(vals.get("opportunities_created", np.zeros(len(r))), nan=0.0)) > 0
    is_manager = (r.role.str.strip().str.lower() == MANAGER).to_numpy()
    keep = np.where(is_manager, owns, employed | any_actual)
    r = r[keep].reset_index(drop=True)
    vals = {m: v[keep] for m, v in vals.items()}

    scale = benchmark_scale(ds, p)
    sc = ds.config.scorecard
    configured = {**ds.config.benchmarks, **sc.benchmarks}
    rows = []
    share = r.employed_share.to_numpy()
    for m in ids:
        meta = catalog.get(m)
        act = vals[m].astype("float64")
        if m in configured:
            full = np.full(len(r), float(configured[m]) * (scale if meta.additive else 1.0))
            src = "config"
        else:
            full = np.full(len(r), np.nan)
            for g, idx in r.groupby("role").indices.items():
                if meta.additive:
                    ok = share[idx] > 0
                    pace = act[idx][ok] / share[idx][ok]
                else:
                    pace = act[idx]
                pace = pace[~np.isnan(pace)]
                full[idx] = float(np.median(pace)) if len(pace) else np.nan
            src = "peer_median"
        bench = full * share if meta.additive else full
        weight = float(sc.weights.get(m, 0.0))
        f = r[["rep_id", "name", "team", "role", "employed_share"]].copy()
        f["section"] = _section(catalog, m)
        f["metric"] = m
        f["label"] = meta.label
        f["actual"] = act
        f["benchmark"] = bench
        f["benchmark_source"] = src
        with np.errstate(divide="ignore", invalid="ignore"):
            att = np.where((bench > 0) & ~np.isnan(bench), act / np.where(bench > 0, bench, 1.0), np.nan)
        f["attainment"] = att
        f["weight"] = weight
        f["points"] = act * weight
        rows.append(f)
    card = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=SCORECARD_COLUMNS)
    score = card.groupby("rep_id")["points"].sum(min_count=0)
    ranks = _rank(r.assign(score=r.rep_id.map(score).astype("float64").fillna(0.0)))
    card = card.merge(ranks[["rep_id", "score", "rank", "peers", "percentile"]], on="rep_id", how="left")
    card["period"] = p.label
    for c in ("actual", "benchmark", "attainment", "weight", "points", "score", "percentile", "employed_share"):
        card[c] = card[c].astype("float64")
    for c in ("period", "rep_id", "name", "team", "role", "section", "metric", "label", "benchmark_source"):
        card[c] = card[c].astype("string")
    sec = {"activity": 0, "objectives": 1}
    order = {m: i for i, m in enumerate(ids)}
    card = card.assign(_s=card.section.map(sec), _m=card.metric.map(order), **_role_keys(card)).sort_values(
        ["_mgr", "_role", "rank", "name", "rep_id", "_s", "_m"]).drop(columns=["_s", "_m", "_mgr", "_role"])
    return card[SCORECARD_COLUMNS].reset_index(drop=True)


def _rank(r: pd.DataFrame) -> pd.DataFrame:
    """Rank, peers and percentile within each role (ties share the best rank: 1, 2, 2, 4)."""
    r = r.copy()
    key = r.score.round(_TIE_DECIMALS)
    r["rank"] = key.groupby(r.role).rank(method="min", ascending=False).astype("Int64")
    r["peers"] = r.groupby("role").rep_id.transform("size").astype("Int64")
    below = key.groupby(r.role).rank(method="min", ascending=True) - 1  # peers strictly lower
    others = (r.peers - 1).astype("float64")
    r["percentile"] = np.where(others > 0, 100.0 * below / others.where(others > 0, 1.0), np.nan)
    return r


def _board(card: pd.DataFrame) -> pd.DataFrame:
    cols = ["period", "rep_id", "name", "team", "role", "score", "rank", "percentile", "peers"]
    if card.empty:
        return pd.DataFrame(columns=cols).astype({"rank": "Int64", "peers": "Int64"})
    b = card.drop_duplicates("rep_id")[cols]
    b = b.assign(**_role_keys(b)).sort_values(["_mgr", "_role", "rank", "name", "rep_id"])
    return b.drop(columns=["_mgr", "_role"]).reset_index(drop=True)


def _role_keys(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Sort keys: roles alphabetically ignoring case, managers last."""
    low = frame.role.astype("string").str.lower()
    return {"_mgr": (low == MANAGER).astype(int), "_role": low}
