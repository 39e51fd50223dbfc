"""Coaching flags: the statistics by hand and against scipy / statsmodels, a tiny hand-built team,
and the planted reps of data/sample.

Tiny team (quarter 2025-Q3, every deal closed in July 2025; no activities, leads or history, so
win rate is the only metric compared):

rep  won / closed   note
A1    2 / 20        the weak AE: 10 % against 73/126 = 58 % (A7 counts in the pool) for the other AEs
A2    9 / 20
A3   30 / 40        strongest by Wilson lower bound (0.598) -> the mentor
A4   10 / 20
A5   16 / 30
A6    8 /  9        89 % raw, but Wilson lower bound 0.565 < A3's: not the mentor
A7    0 /  7        below min_closed_deals (8): never tested, never flagged
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

import analysis
from analysis.coaching import (
    CoachingError,
    bh_adjust,
    coaching_flags,
    coaching_summary,
    coaching_tests,
    fisher_less,
    peer_t_test,
)
from analysis.engine import wilson_interval

from .conftest import write_tables

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"

TEAM = {"A1": (2, 20), "A2": (9, 20), "A3": (30, 40), "A4": (10, 20), "A5": (16, 30), "A6": (8, 9), "A7": (0, 7)}


def _team(tmp_path: Path, counts: dict[str, tuple[int, int]]) -> Path:
    reps = ["rep_id,name,team,region,manager_id,role,hire_date,end_date", "M1,Maya Boss,East,NA,,manager,2020-01-01,"]
    reps += [f"{r},Rep {r},East,NA,M1,AE,2020-01-01," for r in counts]
    opps = ["opportunity_id,owner_id,created_at,status,stage,amount,close_date"]
    i = 0
    for r, (won, n) in counts.items():
        for j in range(n):
            i += 1
            status = "won" if j < won else "lost"
            opps.append(f"D{i},{r},2025-06-01T10:00:00,{status},Closed {status.title()},1000,2025-07-{1 + j % 28:02d}")
    return write_tables(tmp_path / "team", reps="\n".join(reps) + "\n", opportunities="\n".join(opps) + "\n")


# -- the statistics ------------------------------------------------------------------------------


def test_bh_adjust_matches_statsmodels():
    p = np.array([0.001, 0.04, 0.03, 0.2, 0.0005, 0.9, 0.049])
    assert bh_adjust(p) == pytest.approx(multipletests(p, method="fdr_bh")[1])
    # by hand: sorted 0.0005 0.001 0.03 0.04 0.049 0.2 0.9, m = 7 -> q(0.0005) = 0.0035, q(0.001) = 0.0035
    assert bh_adjust(p)[[4, 0]] == pytest.approx([0.0035, 0.0035])
    assert np.isnan(bh_adjust([np.nan, 0.01])[0]) and bh_adjust([np.nan, 0.01])[1] == pytest.approx(0.01)


def test_fisher_less_matches_scipy():
    for k, n, kr, nr in [(2, 20, 73, 126), (0, 8, 5, 10), (30, 40, 10, 40), (9, 127, 700, 3041)]:
        expected = stats.fisher_exact([[k, n - k], [kr, nr - kr]], alternative="less").pvalue
        assert float(fisher_less(k, n, kr, nr)) == pytest.approx(expected, rel=1e-9)


def test_peer_t_test_by_hand():
    # peers 10, 12, 14: mean 12, sd 2, k 3 -> t = (6 - 12) / (2 * sqrt(4/3)) = -2.598, df 2
    t, p = peer_t_test(6.0, [10, 12, 14])
    assert t == pytest.approx(-6 / (2 * np.sqrt(4 / 3)))
    assert p == pytest.approx(stats.t.cdf(t, 2))
    assert peer_t_test(6.0, [10, 12, 14], higher_is_better=False)[1] == pytest.approx(1 - p)
    assert np.isnan(peer_t_test(6.0, [10])[1])


# -- a tiny team ---------------------------------------------------------------------------------


def test_weak_rep_flagged_with_exact_figures(tmp_path):
    ds = analysis.load(_team(tmp_path, TEAM))
    flags = coaching_flags(ds, "2025-Q3")
    assert list(flags["rep_id"]) == ["A1"]
    f = flags.iloc[0]
    assert (f["flag"], f["kind"], f["metric"], f["role"]) == ("win_rate", "metric", "win_rate", "AE")
    assert f["value"] == pytest.approx(0.10)
    assert f["peer_value"] == pytest.approx(73 / 126)
    assert (f["numerator"], f["denominator"], f["peer_numerator"], f["peer_denominator"]) == (2, 20, 73, 126)
    p = stats.fisher_exact([[2, 18], [73, 53]], alternative="less").pvalue
    assert f["p_value"] == pytest.approx(p)
    tests = coaching_tests(ds, "2025-Q3")
    assert set(tests["rep_id"]) == {"A1", "A2", "A3", "A4", "A5", "A6"}  # A7: 7 closed deals < 8
    assert f["q_value"] == pytest.approx(multipletests(tests["p_value"].astype(float), method="fdr_bh")[1][0])
    lo, hi = wilson_interval(2, 20)
    assert (f["value_low"], f["value_high"]) == (pytest.approx(lo), pytest.approx(hi))
    # mentor: best Wilson lower bound among the other AEs with >= 8 closed deals
    assert wilson_interval(8, 9)[0] < wilson_interval(30, 40)[0]
    assert (f["mentor_rep_id"], f["mentor_name"], f["mentor_value"]) == ("A3", "Rep A3", pytest.approx(0.75))
    assert f["sentence"].startswith("Rep A1's win rate is 10% (2 of 20 closed deals) against 58% for other AEs")
    assert "pair Rep A1 with Rep A3 (75%, 30 of 40)" in f["sentence"]
    assert "2 of 20" in f["evidence"] and "73 of 126" in f["evidence"]
    assert coaching_summary(flags) == "1 rep needs coaching in 2025-Q3: Rep A1 (win rate)."


def test_small_samples_are_never_flagged(tmp_path):
    # A7 wins 0 of 7: the worst rate, but below min_closed_deals
    ds = analysis.load(_team(tmp_path, {**TEAM, "A1": (10, 20)}))
    assert coaching_flags(ds, "2025-Q3").empty
    assert "A7" not in set(coaching_tests(ds, "2025-Q3")["rep_id"])


def test_no_flag_without_a_real_gap(tmp_path):
    ds = analysis.load(_team(tmp_path, {f"A{i}": (10 + (i % 3), 25) for i in range(1, 9)}))
    flags = coaching_flags(ds, "2025-Q3")
    assert flags.empty and list(flags.columns)[:6] == ["rep_id", "name", "team", "role", "flag", "kind"]
    assert coaching_summary(flags).startswith("No rep is significantly below the peers of their role in 2025-Q3")


def test_significant_but_small_gap_is_not_flagged(tmp_path):
    # 300 of 1000 against 350 of 1000 for each peer: p < 0.001 but only 14 % below
    ds = analysis.load(_team(tmp_path, {"A1": (30, 100), "A2": (35, 100), "A3": (35, 100), "A4": (35, 100), "A5": (35, 100)}))
    t = coaching_tests(ds, "2025-Q3")
    assert t.loc[t.rep_id == "A1", "gap"].iloc[0] == pytest.approx(0.30 / 0.35 - 1)
    assert coaching_flags(ds, "2025-Q3").empty


def test_role_filter_and_errors(tmp_path):
    ds = analysis.load(_team(tmp_path, TEAM))
    assert coaching_flags(ds, "2025-Q3", role="SDR").empty
    assert list(coaching_flags(ds, "2025-Q3", role="ae")["rep_id"]) == ["A1"]
    with pytest.raises(CoachingError, match="unknown role"):
        coaching_flags(ds, "2025-Q3", role="CEO")


# -- data/sample: the planted reps ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    return analysis.load(SAMPLE)


@pytest.mark.parametrize("period", ["2026-Q3", "2026-H1", "2026"])
def test_sample_planted_reps_flagged(sample, period):
    start = time.perf_counter()
    flags = coaching_flags(sample, period)
    assert time.perf_counter() - start < 5
    got = set(zip(flags["rep_id"], flags["flag"]))
    assert ("R0028", "win_rate") in got  # the weak AE (win rate 0.06)
    assert ("R0011", "many_calls_few_meetings") in got  # most calls, fewest meetings
    # a bound on who is named: at most 6 of the 35 sellers, each a real and large gap
    assert flags["rep_id"].nunique() <= 6
    assert not {"R0004", "R0018", "R0002", "R0026", "R0006", "R0005"} & set(flags["rep_id"])  # the strongest
    assert (flags["gap"] <= -0.2).all() and (flags["q_value"] <= 0.05).all()
    tests = coaching_tests(sample, period)
    for r in flags.itertuples():
        assert r.mentor_rep_id != r.rep_id
        role = sample.df("reps").set_index("rep_id")["role"]
        assert role[r.mentor_rep_id] == r.role
        assert r.mentor_value > r.value
        assert r.name in r.sentence and r.mentor_name in r.sentence
        # the mentor is strongest on exactly that metric (Wilson lower bound among the others)
        cand = tests[(tests.metric == r.metric) & (tests.role == r.role) & ~tests.flagged & (tests.rep_id != r.rep_id)]
        low, _ = wilson_interval(cand["numerator"], cand["denominator"])
        if r.metric != "activities_per_day" and r.metric != "calls_per_day":
            assert cand["rep_id"].iloc[int(np.nanargmax(low.to_numpy(dtype=float)))] == r.mentor_rep_id
    rafael = flags[flags.flag == "many_calls_few_meetings"]
    assert list(rafael["rep_id"]) == ["R0011"]
    assert rafael["sentence"].iloc[0].startswith("Rafael Sanchez makes many calls but books few meetings")
    assert "Nadia Chen" in coaching_summary(flags) and "many calls, few meetings" in coaching_summary(flags)


def test_sample_every_comparison_is_counted(sample):
    tests = coaching_tests(sample, "2026-H1")
    assert tests.attrs["tests"] == len(tests) > 60
    assert tests["q_value"].astype(float).tolist() == pytest.approx(
        multipletests(tests["p_value"].astype(float), method="fdr_bh")[1].tolist()
    )
    # sellers only; managers are never compared
    assert set(tests["role"]) == {"SDR", "AE", "AM"}
