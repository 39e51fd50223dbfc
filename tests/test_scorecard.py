"""Scorecards and the leaderboard: points, benchmarks, attainment, ranks, ties, rank change.

The tiny dataset (config: weights calls 1, opportunities_created 15, deals_won 50; monthly
benchmarks calls 10, deals_won 2; holiday 2026-01-01, so January 2026 has 21 working days):

=====  =======  ==========================  ============================================
rep    role     2025-12                     2026-01
=====  =======  ==========================  ============================================
M1     manager  -                           owns O4 (created) -> scored, alone in its role
A1     AE       5 calls -> 5                20 calls, 1 opp, 1 won, 4 emails -> 85
A2     AE       40 calls -> 40              35 calls, 1 won, 2 emails -> 85 (tie with A1)
A3     AE       10 calls -> 10              5 calls -> 5
S1     SDR      3 calls -> 3                30 calls -> 30
S2     SDR      not hired (2026-01-16)      11 calls -> 11, employed 11 of 21 working days
X1     AE       left 2025-11-30             -
=====  =======  ==========================  ============================================
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

import analysis
from analysis.paths import SAMPLE_DATA
from analysis.reports import charts
from analysis.reports.figures import leaderboard_chart
from analysis.steering.scorecard import LEADERBOARD_COLUMNS, SCORECARD_COLUMNS, benchmark_scale, leaderboard, scorecard

from .conftest import write_tables

REPS = """\
rep_id,name,team,region,manager_id,role,hire_date,end_date
M1,Maya Manager,East,East,,manager,2020-01-01,
A1,Ann Archer,East,East,M1,AE,2021-01-01,
A2,Al Adams,East,East,M1,AE,2021-01-01,
A3,Ava Arden,West,West,M1,AE,2021-01-01,
S1,Sue Smith,East,East,M1,SDR,2022-01-01,
S2,Sam Stone,West,West,M1,SDR,2026-01-16,
X1,Xavier Exit,East,East,M1,AE,2021-01-01,2025-11-30
"""

OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date
O1,A1,2026-01-05T10:00:00,won,Closed Won,1000,2026-01-20
O2,A2,2025-11-05T10:00:00,won,Closed Won,3000,2026-01-21
O3,A3,2025-10-01T10:00:00,lost,Closed Lost,500,2025-10-20
O4,M1,2026-01-07T10:00:00,open,Demo,700,2026-03-01
"""

ACTIVITY = {  # (rep, type, day): count
    ("A1", "call", "2025-12-03"): 5,
    ("A2", "call", "2025-12-03"): 40,
    ("A3", "call", "2025-12-03"): 10,
    ("S1", "call", "2025-12-03"): 3,
    ("A1", "call", "2026-01-07"): 20,
    ("A1", "email", "2026-01-07"): 4,
    ("A2", "call", "2026-01-07"): 35,
    ("A2", "email", "2026-01-07"): 2,
    ("A3", "call", "2026-01-07"): 5,
    ("S1", "call", "2026-01-07"): 30,
    ("S2", "call", "2026-01-20"): 11,
}

CONFIG = """\
holidays: [2026-01-01]
scorecard:
  weights: {calls: 1, opportunities_created: 15, deals_won: 50}
  benchmarks: {calls: 10, deals_won: 2}
"""


def _activities() -> str:
    rows, n = ["activity_id,rep_id,type,occurred_at"], 0
    for (rep, kind, day), count in ACTIVITY.items():
        for _ in range(count):
            n += 1
            rows.append(f"X{n},{rep},{kind},{day}T10:00:00")
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    folder = write_tables(tmp_path_factory.mktemp("score") / "data", reps=REPS, opportunities=OPPS,
                          activities=_activities())
    (folder / "workbench.yml").write_text(CONFIG)
    return analysis.load(folder)


@pytest.fixture(scope="module")
def card(ds):
    return scorecard(ds, "2026-01")


@pytest.fixture(scope="module")
def board(ds):
    return leaderboard(ds, "2026-01")


def cell(card: pd.DataFrame, rep: str, metric: str, col: str):
    row = card[(card.rep_id == rep) & (card.metric == metric)]
    assert len(row) == 1, (rep, metric)
    return row[col].iloc[0]


def rep(board: pd.DataFrame, rep_id: str) -> pd.Series:
    return board.set_index("rep_id").loc[rep_id]


# -- the scorecard --------------------------------------------------------------------------------


def test_columns_sections_and_metrics(card):
    assert list(card.columns) == SCORECARD_COLUMNS
    a1 = card[card.rep_id == "A1"]
    assert a1.metric.tolist() == ["calls", "emails", "meetings", "demos",
                                  "opportunities_created", "deals_won", "revenue"]
    assert a1.section.tolist() == ["activity"] * 4 + ["objectives"] * 3


def test_who_is_scored(card):
    # X1 left before January; M1 is a manager but owns a deal created in January
    assert sorted(card.rep_id.unique()) == ["A1", "A2", "A3", "M1", "S1", "S2"]


def test_points_weights_and_score(card):
    assert cell(card, "A1", "calls", "points") == 20
    assert cell(card, "A1", "opportunities_created", "points") == 15
    assert cell(card, "A1", "deals_won", "points") == 50
    # no weight configured: shown with weight 0 and no points
    assert cell(card, "A1", "emails", "weight") == 0 and cell(card, "A1", "emails", "points") == 0
    assert cell(card, "A1", "revenue", "actual") == 1000 and cell(card, "A1", "revenue", "points") == 0
    assert cell(card, "A1", "calls", "score") == 85
    assert cell(card, "A2", "calls", "score") == 85  # 35 calls + 1 deal won (closed in January)
    assert cell(card, "A3", "calls", "score") == 5
    assert cell(card, "S2", "calls", "score") == 11
    assert cell(card, "M1", "calls", "score") == 15  # one opportunity created
    sums = card.groupby("rep_id").points.sum()
    scores = card.drop_duplicates("rep_id").set_index("rep_id").score
    assert (scores.sort_index() == sums.sort_index()).all()


def test_config_benchmarks_and_attainment(card):
    # monthly benchmark 10 calls: A1 20 -> attainment 2.0; deals_won benchmark 2: A1 1 -> 0.5
    assert cell(card, "A1", "calls", "benchmark") == 10
    assert cell(card, "A1", "calls", "attainment") == 2.0
    assert cell(card, "A1", "calls", "benchmark_source") == "config"
    assert cell(card, "A1", "deals_won", "attainment") == 0.5
    assert cell(card, "A3", "calls", "attainment") == 0.5


def test_benchmark_is_prorated_by_employment(card):
    # S2 was hired on Friday 2026-01-16: 11 of January's 21 working days
    assert cell(card, "S2", "calls", "employed_share") == pytest.approx(11 / 21)
    assert cell(card, "S2", "calls", "benchmark") == pytest.approx(10 * 11 / 21)
    assert cell(card, "S2", "calls", "attainment") == pytest.approx(11 / (110 / 21))


def test_peer_median_benchmark(card):
    # emails have no configured benchmark: median of AE peers (A1 4, A2 2, A3 0) = 2
    assert cell(card, "A1", "emails", "benchmark_source") == "peer_median"
    assert cell(card, "A1", "emails", "benchmark") == 2
    assert cell(card, "A1", "emails", "attainment") == 2.0
    # opportunities created by AEs: 1, 0, 0 -> median 0 -> attainment not available
    assert cell(card, "A1", "opportunities_created", "benchmark") == 0
    assert pd.isna(cell(card, "A1", "opportunities_created", "attainment"))
    # SDR pace per full month: S1 30 calls... (calls have a config benchmark); meetings 0 -> NA
    assert pd.isna(cell(card, "S1", "meetings", "attainment"))


def test_peer_median_uses_full_period_pace(ds):
    # without benchmarks, SDR calls: S1 30 (full month), S2 11 in 11/21 of it -> pace 21;
    # median pace 25.5, S2's benchmark 25.5 x 11/21
    cfg = ds.config.model_copy(update={"scorecard": ds.config.scorecard.model_copy(update={"benchmarks": {}})})
    other = analysis.load(ds.source.location, cfg)
    c = scorecard(other, "2026-01")
    assert cell(c, "S1", "calls", "benchmark") == pytest.approx(25.5)
    assert cell(c, "S2", "calls", "benchmark") == pytest.approx(25.5 * 11 / 21)


# -- ranks, ties, percentile, rank change -------------------------------------------------------


def test_leaderboard_columns_and_order(board):
    assert list(board.columns) == LEADERBOARD_COLUMNS
    # by role (managers last), rank, then name
    assert board.rep_id.tolist() == ["A2", "A1", "A3", "S1", "S2", "M1"]
    assert board.attrs["previous_period"] == "2025-12"


def test_ties_share_the_best_rank(board):
    assert [rep(board, r)["rank"] for r in ("A1", "A2", "A3")] == [1, 1, 3]
    assert [rep(board, r)["rank"] for r in ("S1", "S2")] == [1, 2]
    assert rep(board, "M1")["rank"] == 1 and rep(board, "M1").peers == 1


def test_percentile(board):
    # share of the other peers with a strictly lower score
    assert rep(board, "A1").percentile == 50 and rep(board, "A2").percentile == 50
    assert rep(board, "A3").percentile == 0
    assert rep(board, "S1").percentile == 100 and rep(board, "S2").percentile == 0
    assert pd.isna(rep(board, "M1").percentile)  # no peer


def test_rank_change(board):
    # December: A2 40 (1), A3 10 (2), A1 5 (3); S1 alone (1); S2 not hired; M1 owned no deal
    assert rep(board, "A1").previous_rank == 3 and rep(board, "A1").rank_change == 2
    assert rep(board, "A2").previous_rank == 1 and rep(board, "A2").rank_change == 0
    assert rep(board, "A3").previous_rank == 2 and rep(board, "A3").rank_change == -1
    assert rep(board, "S1").rank_change == 0
    assert pd.isna(rep(board, "S2").previous_rank) and pd.isna(rep(board, "S2").rank_change)
    assert pd.isna(rep(board, "M1").rank_change)


def test_role_filter_keeps_ranks(ds, board):
    ae = leaderboard(ds, "2026-01", role="AE")
    assert ae.rep_id.tolist() == ["A2", "A1", "A3"]
    assert ae["rank"].tolist() == board[board.role == "AE"]["rank"].tolist()
    assert set(scorecard(ds, "2026-01", role=["sdr"]).rep_id) == {"S1", "S2"}


# -- any grain ----------------------------------------------------------------------------------


def test_benchmark_scale_by_grain(ds):
    assert benchmark_scale(ds, "2026-01") == 1
    assert benchmark_scale(ds, "2026-Q1") == 3
    assert benchmark_scale(ds, "2026-H1") == 6
    assert benchmark_scale(ds, 2026) == 12
    assert benchmark_scale(ds, "2026-W03") == pytest.approx(12 / 52)  # five working days
    assert benchmark_scale(ds, "2026-W01") == pytest.approx(4 / (5 * 52 / 12))  # New Year's Day


def test_quarter_scorecard(ds):
    c = scorecard(ds, "2026-Q1")
    # A1 employed all quarter: 10 calls a month x 3
    assert cell(c, "A1", "calls", "benchmark") == 30
    assert cell(c, "A1", "calls", "actual") == 20
    b = leaderboard(ds, "2026-Q1")
    # 2025-Q4: A2 40 calls, A3 10 (its lost deal scores nothing), A1 5
    assert [rep(b, r).previous_rank for r in ("A2", "A3", "A1")] == [1, 2, 3]
    assert b.attrs["previous_period"] == "2025-Q4"


def test_week_and_year(ds):
    w = leaderboard(ds, "2026-W02")  # 2026-01-05 .. 01-11: A1's opp, deal won 01-20 is later
    assert rep(w, "A1").score == 20 + 15
    y = leaderboard(ds, 2026)
    assert rep(y, "A1").score == 85 and y.attrs["previous_period"] == "2025"


def test_chart_renders(board):
    svg = charts.to_svg(leaderboard_chart(board))
    assert svg.startswith("<svg") and "Ann Archer" in svg and "▲2" in svg


# -- the sample ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    return analysis.load(SAMPLE_DATA)


@pytest.mark.parametrize("period", ["2026-09", "2026-Q3", "2026-H1", "2025"])
def test_sample_leaderboard_is_sane(sample, period):
    import time

    t = time.perf_counter()
    b = leaderboard(sample, period)
    assert time.perf_counter() - t < 10
    assert not b.rep_id.duplicated().any()
    assert set(b.role) >= {"AE", "AM", "SDR"}
    for role, g in b.groupby("role"):
        assert g["rank"].min() == 1 and g["rank"].max() <= len(g)
        assert (g.peers == len(g)).all()
        assert g.sort_values("rank").score.is_monotonic_decreasing
        if len(g) > 1:
            assert g.percentile.max() == 100 and g.percentile.min() == 0
    assert b.score.gt(0).all()


def test_sample_scorecard_matches_engine(sample):
    c = scorecard(sample, "2026-Q3")
    m = analysis.metrics(sample, ["calls", "deals_won"], by="rep_id", grain="quarter", periods=["2026-Q3"])
    m = m.set_index("rep_id")
    for r in ("R0006", "R0011"):
        assert cell(c, r, "calls", "actual") == m.loc[r, "calls"]
        assert cell(c, r, "deals_won", "points") == 50 * m.loc[r, "deals_won"]
    # the sample's benchmarks are monthly: a quarter is three months
    assert cell(c, "R0006", "calls", "benchmark") == 330 * 3
    assert math.isclose(cell(c, "R0006", "calls", "attainment"), m.loc["R0006", "calls"] / 990)
