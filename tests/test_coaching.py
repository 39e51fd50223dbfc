"""Coaching flags: the statistics by hand and against scipy / statsmodels, a tiny hand-built team,
and the planted reps of data/sample.

Tiny team (quarter 2025-Q3, every deal closed in July 2025; no activities, leads or history, so
win rate is the only metric compared):

rep  won / closed   note
A1    2 / 20        the weak AE: 10 % against 73/119 = 61 % for the other AEs (A7 is not in the pool)
A2    9 / 20
A3   30 / 40        strongest by Wilson lower bound (0.598) -> the mentor
A4   10 / 20
A5   16 / 30
A6    8 /  9        89 % raw, but Wilson lower bound 0.565 < A3's: not the mentor
A7    0 /  7        below min_closed_deals (8): does not do the work, so neither tested nor a peer

Mixed team (accounts with a segment; SMB deals are won 50 % of the time, Enterprise 10 %):

rep  SMB won/closed  Ent won/closed
S1-S4   10 / 20         2 / 20      the typical AEs
E1       -              6 / 60      Enterprise only: 10 %, below the raw pool, but just as the peers
W1       2 / 20         0 / 20      the weak AE: 2 wins where the peers' rates give 20*40/80 + 20*14/140 = 12
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
from analysis.semantic.engine import wilson_interval
from analysis.steering.coaching import (
    CoachingError,
    bh_adjust,
    coaching_flags,
    coaching_notes,
    coaching_summary,
    coaching_tests,
    coaching_worth_a_look,
    expected_successes,
    fisher_less,
    peer_t_test,
    stratified_fisher,
)

from .conftest import write_tables

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"

TEAM = {"A1": (2, 20), "A2": (9, 20), "A3": (30, 40), "A4": (10, 20), "A5": (16, 30), "A6": (8, 9), "A7": (0, 7)}


def _team(tmp_path: Path, counts: dict[str, tuple[int, int]], hired: dict[str, str] | None = None) -> Path:
    reps = ["rep_id,name,team,region,manager_id,role,hire_date,end_date", "M1,Maya Boss,East,NA,,manager,2020-01-01,"]
    reps += [f"{r},Rep {r},East,NA,M1,AE,{(hired or {}).get(r, '2020-01-01')}," for r in counts]
    opps = ["opportunity_id,owner_id,created_at,status,stage,amount,close_date"]
    i = 0
    for r, (won, n) in counts.items():
        for j in range(n):
            i += 1
            status = "won" if j < won else "lost"
            opps.append(f"D{i},{r},2025-06-01T10:00:00,{status},Closed {status.title()},1000,2025-07-{1 + j % 28:02d}")
    return write_tables(tmp_path / "team", reps="\n".join(reps) + "\n", opportunities="\n".join(opps) + "\n")


MIXED = {"S1": (10, 20, 2, 20), "S2": (10, 20, 2, 20), "S3": (10, 20, 2, 20), "S4": (10, 20, 2, 20),
         "E1": (0, 0, 6, 60), "W1": (2, 20, 0, 20)}


def _mixed(tmp_path: Path) -> Path:
    reps = ["rep_id,name,team,region,manager_id,role,hire_date,end_date", "M1,Maya Boss,East,NA,,manager,2020-01-01,"]
    reps += [f"{r},Rep {r},East,NA,M1,AE,2020-01-01," for r in MIXED]
    accounts = ["account_id,name,segment", "SMB1,Small Co,SMB", "ENT1,Big Co,Enterprise"]
    opps = ["opportunity_id,owner_id,created_at,status,stage,amount,close_date,account_id"]
    i = 0
    for r, (sw, sn, ew, en) in MIXED.items():
        for acct, won, n in (("SMB1", sw, sn), ("ENT1", ew, en)):
            for j in range(n):
                i += 1
                status = "won" if j < won else "lost"
                opps.append(f"D{i},{r},2025-06-01T10:00:00,{status},Closed {status.title()},1000,2025-07-{1 + j % 28:02d},{acct}")
    return write_tables(tmp_path / "mixed", reps="\n".join(reps) + "\n", accounts="\n".join(accounts) + "\n",
                        opportunities="\n".join(opps) + "\n")


# -- the statistics ------------------------------------------------------------------------------


def test_stratified_fisher_by_hand_and_against_scipy():
    # one stratum: exactly Fisher's exact test
    for k, n, kr, nr in [(2, 20, 73, 126), (0, 8, 5, 10), (9, 127, 700, 3041)]:
        expected = stats.fisher_exact([[k, n - k], [kr, nr - kr]], alternative="less").pvalue
        assert stratified_fisher([k], [n], [kr], [nr]) == pytest.approx(expected, rel=1e-9)
        greater = stats.fisher_exact([[k, n - k], [kr, nr - kr]], alternative="greater").pvalue
        assert stratified_fisher([k], [n], [kr], [nr], lower=False) == pytest.approx(greater, rel=1e-9)
    # two strata by hand: (1 of 2 vs 3 of 4) and (0 of 1 vs 1 of 2)
    # stratum 1: 2 draws from 6 with 4 successes: P(0) = 1/15, P(1) = 8/15, P(2) = 6/15
    # stratum 2: 1 draw from 3 with 1 success:   P(0) = 2/3,  P(1) = 1/3
    # P(total <= 1) = 1/15 * 2/3 + 1/15 * 1/3 + 8/15 * 2/3 = 19/45
    assert stratified_fisher([1, 0], [2, 1], [3, 1], [4, 2]) == pytest.approx(19 / 45)
    assert stratified_fisher([1, 0], [2, 1], [3, 1], [4, 2], lower=False) == pytest.approx(1 - 1 / 15 * 2 / 3)
    assert expected_successes([2, 1], [3, 1], [4, 2]) == pytest.approx(2 * 3 / 4 + 1 * 1 / 2)
    # against a brute-force convolution of scipy's hypergeometric pmfs
    k, n, kr, nr = [2, 0, 5], [20, 20, 9], [40, 11, 30], [80, 110, 40]
    pmf = np.ones(1)
    for ns, ts, ms in zip(n, np.add(k, kr), np.add(n, nr)):
        pmf = np.convolve(pmf, stats.hypergeom.pmf(np.arange(ns + 1), ms, ts, ns))
    assert stratified_fisher(k, n, kr, nr) == pytest.approx(pmf[: sum(k) + 1].sum(), rel=1e-9)




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
    assert f["peer_value"] == pytest.approx(73 / 119)
    assert (f["numerator"], f["denominator"], f["peer_numerator"], f["peer_denominator"]) == (2, 20, 73, 119)
    assert f["peers"] == 5  # A2-A6; A7 (7 closed deals) does not do enough of the work
    p = stats.fisher_exact([[2, 18], [73, 46]], alternative="less").pvalue
    assert f["p_value"] == pytest.approx(p)
    tests = coaching_tests(ds, "2025-Q3")
    assert set(tests["rep_id"]) == {"A1", "A2", "A3", "A4", "A5", "A6"}  # A7: 7 closed deals < 8
    assert f["q_value"] == pytest.approx(multipletests(tests["p_value"].astype(float), method="fdr_bh")[1][0])
    lo, hi = wilson_interval(2, 20)
    assert (f["value_low"], f["value_high"]) == (pytest.approx(lo), pytest.approx(hi))
    # mentor: best Wilson lower bound among the other AEs with >= 8 closed deals
    assert wilson_interval(8, 9)[0] < wilson_interval(30, 40)[0]
    assert (f["mentor_rep_id"], f["mentor_name"], f["mentor_value"]) == ("A3", "Rep A3", pytest.approx(0.75))
    assert f["sentence"].startswith("Rep A1's win rate is 10% (2 of 20 closed deals) against 61% for other AEs")
    assert "pair Rep A1 with Rep A3 (75%, 30 of 40)" in f["sentence"]
    assert "2 of 20" in f["evidence"] and "73 of 119" in f["evidence"]
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


def test_deal_mix_is_compared_like_with_like(tmp_path):
    ds = analysis.load(_mixed(tmp_path))
    tests = coaching_tests(ds, "2025-Q3").set_index("rep_id")
    # E1 sells only Enterprise: 6 of 60 is significantly below the raw pool of the rest (50 of 200) ...
    assert float(fisher_less(6, 60, 50, 200)) < 0.01
    # ... but above what the other AEs achieve in Enterprise (8 of 100 -> 4.8 expected of 60)
    e1 = tests.loc["E1"]
    assert e1["expected"] == pytest.approx(60 * 8 / 100) and e1["gap"] == pytest.approx(6 / 4.8 - 1)
    assert not e1["flagged"]
    # W1: 2 wins where the peers' rates on the same mix give 20 * 40/80 + 20 * 14/140 = 12
    w1 = tests.loc["W1"]
    assert w1["expected"] == pytest.approx(12.0) and w1["peer_value"] == pytest.approx(12 / 40)
    assert (w1["numerator"], w1["denominator"]) == (2, 40) and w1["gap"] == pytest.approx(2 / 12 - 1)
    assert (w1["peer_numerator"], w1["peer_denominator"]) == (54, 220)  # raw pool of the rest
    assert w1["p_value"] == pytest.approx(stratified_fisher([2, 0], [20, 20], [40, 14], [80, 140]))
    flags = coaching_flags(ds, "2025-Q3")
    assert list(flags["rep_id"]) == ["W1"]
    f = flags.iloc[0]
    assert f["sentence"].startswith("Rep W1's win rate is 5.0% (2 of 40 closed deals) against 30% (12 of 40) "
                                    "expected for other AEs with the same mix of segments")
    assert "stratified by segment" in f["test"] and "12.0 of 40" in f["evidence"]
    # mentor: best Wilson lower bound relative to the candidate's own expected rate
    cand = tests.drop(index=["W1"])
    lo, _ = wilson_interval(cand["numerator"], cand["denominator"])
    score = lo.to_numpy(dtype=float) / cand["peer_value"].to_numpy(dtype=float)
    assert f["mentor_rep_id"] == cand.index[int(np.argmax(score))]


def test_ramping_reps_are_not_compared(tmp_path):
    # A1, the weak AE, joined 30 days before the quarter: still ramping, not compared
    ds = analysis.load(_team(tmp_path, TEAM, hired={"A1": "2025-06-01", "A2": "2025-03-01"}))
    tests = coaching_tests(ds, "2025-Q3")
    assert "A1" not in set(tests["rep_id"]) and "A2" in set(tests["rep_id"])  # A2: 122 days before
    flags = coaching_flags(ds, "2025-Q3")
    assert flags.empty and flags.attrs["ramping"] == {"A1": "2025-06-01"}
    assert coaching_summary(flags).endswith("1 rep hired less than 90 days before the period was still ramping and not compared.")
    # a flagged rep who joined within a year: the sentence says so
    ds = analysis.load(_team(tmp_path / "b", TEAM, hired={"A1": "2025-02-01"}))
    f = coaching_flags(ds, "2025-Q3").iloc[0]
    assert f["rep_id"] == "A1" and f["hire_date"] == "2025-02-01"
    assert "; Rep A1 joined on 2025-02-01; pair Rep A1 with" in f["sentence"]


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
    # an AM's calls are examined too: R0008 has the lowest latent call quality of the sample
    # (-2.88; it tilts the odds of booking a meeting) and books 1.9-2.2% of calls against ~5% for
    # the other AMs
    assert ("R0008", "meeting_booked_rate") in set(zip(flags["rep_id"], flags["metric"]))
    # a bound on who is named: at most 6 of the 35 sellers, each a real and large gap
    assert flags["rep_id"].nunique() <= 6
    assert not {"R0004", "R0018", "R0002", "R0026", "R0006", "R0005"} & set(flags["rep_id"])  # the strongest
    assert (flags["gap"] <= -0.2).all() and (flags["q_value"] <= 0.01).all()
    tests = coaching_tests(sample, period)
    for r in flags.itertuples():
        assert r.mentor_rep_id != r.rep_id
        role = sample.df("reps").set_index("rep_id")["role"]
        assert role[r.mentor_rep_id] == r.role
        if r.metric in ("win_rate", "meeting_booked_rate", "lead_conversion_rate"):  # on the mentor's own mix
            m = tests[(tests.metric == r.metric) & (tests.rep_id == r.mentor_rep_id)].iloc[0]
            assert m.value / m.peer_value > r.value / r.peer_value
        else:
            assert r.mentor_value > r.value
        assert r.name in r.sentence and r.mentor_name in r.sentence
        # the mentor is strongest on exactly that metric (Wilson lower bound among the others,
        # relative to each candidate's expected rate on their own mix)
        cand = tests[(tests.metric == r.metric) & (tests.role == r.role) & ~tests.flagged & (tests.rep_id != r.rep_id)]
        low, _ = wilson_interval(cand["numerator"], cand["denominator"])
        if r.metric != "activities_per_day" and r.metric != "calls_per_day":
            score = low.to_numpy(dtype=float) / cand["peer_value"].to_numpy(dtype=float)
            assert cand["rep_id"].iloc[int(np.nanargmax(score))] == r.mentor_rep_id
            # the peers' value is the expected rate on the rep's mix
            assert r.peer_value == pytest.approx(r.expected / r.denominator)
    rafael = flags[(flags.flag == "many_calls_few_meetings") & (flags.role == "SDR")]
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


# -- a generated null world: nobody differs but the planted reps -----------------------------------


def test_null_world_names_only_the_planted_reps(tmp_path, monkeypatch):
    """analysis.sample with every latent skill, volume and quality factor neutral except a weak
    AE (skill -3) and an SDR with 1.35x the calls and poor call quality: any other flag would be
    a false positive by construction (segments, deal types, new hires and leavers stay)."""
    from datetime import date

    import analysis.data.sample as S

    build = S._build_org
    planted = {}

    def neutral(reps, months, seed, end):
        org = build(reps, months, seed, end)
        org.skill[:] = 0.0
        org.hustle[:] = 1.0
        org.quality[:] = 0.0
        ae = [g for g in org.team_members[1] if org.role[g] == S.AE][1]
        sdr = [g for g in org.team_members[0] if org.role[g] == S.SDR][0]
        org.skill[ae] = -3.0
        org.hustle[sdr], org.quality[sdr] = 1.35, -3.0
        planted.update(weak=f"R{ae + 1:04d}", pattern=f"R{sdr + 1:04d}")
        return org

    monkeypatch.setattr(S, "_build_org", neutral)
    out = S.write_sample(tmp_path / "null", reps=24, months=6, seed=1, end=date(2026, 9, 30), format="parquet")
    flags = coaching_flags(analysis.load(out), "2026-Q3")
    assert set(zip(flags["rep_id"], flags["flag"])) == {
        (planted["weak"], "win_rate"),
        (planted["pattern"], "many_calls_few_meetings"),
    }


def test_reps_without_a_role_are_compared_by_what_they_do(tmp_path):
    """A CRM export without reps.role: deal owners are compared as AEs, callers as SDRs."""
    import shutil

    from analysis.paths import SAMPLE_DATA

    for name in ("opportunities.csv", "activities.parquet", "accounts.csv", "leads.csv", "workbench.yml"):
        shutil.copy(SAMPLE_DATA / name, tmp_path / name)
    reps = pd.read_csv(SAMPLE_DATA / "reps.csv", dtype=str).drop(columns=["role"])
    reps.to_csv(tmp_path / "reps.csv", index=False)
    flags = coaching_flags(analysis.load(tmp_path), "2026-Q3")
    pairs = set(zip(flags.rep_id, flags.flag))
    assert ("R0028", "win_rate") in pairs
    assert ("R0011", "many_calls_few_meetings") in pairs
    assert set(flags.role) <= {"AE", "SDR"}


def test_deals_stalling_at_one_step_are_flagged_within_the_team(tmp_path):
    """Move one AE's open qualification deals 120 days back: only that rep stalls, at that step."""
    import shutil

    from analysis.analytics.pipeline import pipeline_as_of
    from analysis.paths import SAMPLE_DATA

    shutil.copytree(SAMPLE_DATA, tmp_path / "d")
    folder = tmp_path / "d"
    deals = pipeline_as_of(analysis.load(SAMPLE_DATA), "2026-09-30")
    ids = set(deals[(deals.owner_id == "R0014") & (deals.step == "qualification")].opportunity_id)
    assert len(ids) >= 10
    sh = pd.read_parquet(folder / "stage_history.parquet")
    moved = sh.opportunity_id.isin(ids)
    sh.loc[moved, "entered_at"] = pd.to_datetime(sh.loc[moved, "entered_at"]) - pd.Timedelta(days=120)
    sh.to_parquet(folder / "stage_history.parquet")
    opps = pd.read_csv(folder / "opportunities.csv", dtype=str)
    m = opps.opportunity_id.isin(ids)
    opps.loc[m, "created_at"] = (pd.to_datetime(opps.loc[m, "created_at"]) - pd.Timedelta(days=120)).dt.strftime(
        "%Y-%m-%d %H:%M:%S")
    opps.to_csv(folder / "opportunities.csv", index=False)
    flags = coaching_flags(analysis.load(folder), "2026-Q3")
    stalls = flags[flags.flag.str.startswith("stalling_at_")]
    assert list(zip(stalls.rep_id, stalls.flag)) == [("R0014", "stalling_at_qualification")]
    assert "stall" in stalls.sentence.iloc[0].lower() or "qualification" in stalls.sentence.iloc[0].lower()
    untouched = coaching_flags(analysis.load(SAMPLE_DATA), "2026-Q3")
    assert not untouched.flag.str.startswith("stalling_at_").any()


# -- issue 14, item 7: every rep who does the work is examined; "worth a look" ------------------------

#: Six AEs and two AMs, quarter 2025-Q3 (deals closed in July; calls from July to September):
#:
#: rep  won / closed   calls  booked   note
#: A1    1 / 10         100     12     wins 1 of 10 against 25 of 41 (61 %) for A2-A6: worth a look
#: A2    5 /  8         600      3     600 calls, 3 meetings against 61 of 500 (12.2 %): flagged
#: A3    5 /  8         100     12
#: A4    5 /  8         100     12
#: A5    5 /  8         100     12
#: A6    5 /  9         100     13     strongest on meetings (Wilson lower bound): A2's mentor
#: P1, P2 (AMs)          40      0     two AMs who call: too few to compare, and never pooled with the AEs
#:
#: 18 tests: win rate, meeting booked rate and activities per working day for each AE (the AMs
#: have no comparison). A2's p is ~1e-30 (rank 1), A1's 0.00441 (rank 2): q = 0.00441 * 18 / 2.
ISSUE_DEALS = {"A1": (1, 10), "A2": (5, 8), "A3": (5, 8), "A4": (5, 8), "A5": (5, 8), "A6": (5, 9)}
ISSUE_CALLS = {"A1": (12, 100), "A2": (3, 600), "A3": (12, 100), "A4": (12, 100), "A5": (12, 100), "A6": (13, 100),
               "P1": (0, 40), "P2": (0, 40)}
#: weekdays from 2025-07-01 to 2025-09-30 (no holidays configured)
Q3_2025_DAYS = int(np.busday_count("2025-07-01", "2025-10-01"))


def _issue_team(folder: Path) -> Path:
    reps = ["rep_id,name,team,region,manager_id,role,hire_date,end_date", "M1,Maya Boss,East,NA,,manager,2020-01-01,"]
    reps += [f"{r},Rep {r},East,NA,M1,{'AM' if r.startswith('P') else 'AE'},2020-01-01," for r in ISSUE_CALLS]
    opps = ["opportunity_id,owner_id,created_at,status,stage,amount,close_date"]
    i = 0
    for r, (won, n) in ISSUE_DEALS.items():
        for j in range(n):
            i += 1
            status = "won" if j < won else "lost"
            opps.append(f"D{i},{r},2025-06-01T10:00:00,{status},Closed {status.title()},1000,2025-07-{1 + j % 28:02d}")
    days = pd.bdate_range("2025-07-01", "2025-09-30")
    acts = ["activity_id,rep_id,type,occurred_at,outcome"]
    i = 0
    for r, (booked, n) in ISSUE_CALLS.items():
        for j in range(n):
            i += 1
            day = days[j % len(days)].strftime("%Y-%m-%d")
            acts.append(f"C{i},{r},call,{day}T{9 + j % 8:02d}:00:00,{'meeting_booked' if j < booked else 'connected'}")
    tables = {name: "\n".join(rows) + "\n"
              for name, rows in (("reps", reps), ("opportunities", opps), ("activities", acts))}
    return write_tables(folder, **tables)


@pytest.fixture(scope="module")
def issue_team(tmp_path_factory):
    return _issue_team(tmp_path_factory.mktemp("issue") / "team")


@pytest.fixture(scope="module")
def issue_tests(issue_team):
    return coaching_tests(analysis.load(issue_team), "2025-Q3")


@pytest.fixture(scope="module")
def issue_notes(issue_team):
    return coaching_notes(analysis.load(issue_team), "2025-Q3")


def test_an_aes_calls_are_examined_against_the_aes_who_call(issue_tests, issue_notes):
    """The AE with 600 calls and 3 meetings, against AE peers at 12-13 %: flagged (a pattern,
    with a mentor); the AMs' calls are not pooled with the AEs'."""
    t = issue_tests.set_index(["rep_id", "metric"])
    assert set(issue_tests.role) == {"AE"}  # two AMs are too few: no AM is compared
    a2 = t.loc[("A2", "meeting_booked_rate")]
    assert (a2["numerator"], a2["denominator"], a2["peer_numerator"], a2["peer_denominator"]) == (3, 600, 61, 500)
    assert a2["peer_value"] == pytest.approx(61 / 500) and a2["peers"] == 5
    assert a2["p_value"] == pytest.approx(stats.fisher_exact([[3, 597], [61, 439]], alternative="less").pvalue)
    flags = issue_notes.flags
    assert list(zip(flags.rep_id, flags.flag)) == [("A2", "many_calls_few_meetings")]
    f = flags.iloc[0]
    assert (f["metric"], f["kind"], f["role"], f["mentor_rep_id"]) == ("meeting_booked_rate", "pattern", "AE", "A6")
    per_day = 600 / Q3_2025_DAYS
    assert f["sentence"] == (
        f"Rep A2 makes many calls but books few meetings: {per_day:.1f} calls per working day (top quarter of AEs) "
        "yet only 0.5% (3 of 600 calls) booked a meeting, against 12% for other AEs (adjusted p < 0.001); "
        "pair Rep A2 with Rep A6 (13%, 13 of 100) on call openings and asking for the meeting.")
    assert f["evidence"].endswith(f"Benjamini-Hochberg q < 0.001 over 18 comparisons; calls per working day "
                                  f"{per_day:.1f} (peers' 75th percentile {100 / Q3_2025_DAYS:.1f})")
    # the roles with too few reps doing the work are named, not compared across roles
    assert flags.attrs["not_compared"] == [
        "Activities per working day is not compared among AMs: 2 AMs have at least 10 working days, and a comparison "
        "needs 4 (AMs are not compared with other roles).",
        "Meeting booked rate is not compared among AMs: 2 AMs have at least 30 calls, and a comparison needs 4 (AMs "
        "are not compared with other roles).",
    ]
    assert coaching_summary(flags).endswith(flags.attrs["not_compared"][1])


def test_large_gap_not_yet_significant_is_worth_a_look_without_mentor(issue_team, issue_tests, issue_notes):
    """The AE winning 1 of 10 against 61 % for the five other AEs: q = 0.040, above alpha (0.01)."""
    a1 = issue_tests.set_index(["rep_id", "metric"]).loc[("A1", "win_rate")]
    p = stats.fisher_exact([[1, 9], [25, 16]], alternative="less").pvalue
    assert a1["p_value"] == pytest.approx(p) and a1["q_value"] == pytest.approx(p * 18 / 2)
    assert 0.01 < a1["q_value"] <= 0.2 and not a1["flagged"] and a1["worth_a_look"]
    look = coaching_worth_a_look(analysis.load(issue_team), "2025-Q3")
    assert list(zip(look.rep_id, look.metric)) == [("A1", "win_rate")]
    w = look.iloc[0]
    assert w["evidence"] == ("won 1 of 10 closed deals (10%) against 61% for the other 5 AEs; "
                             "not yet significant (q = 0.040)")
    assert w["sentence"] == "Rep A1 " + w["evidence"] + "."
    assert pd.isna(w["mentor_rep_id"]) and pd.isna(w["mentor_name"]) and pd.isna(w["mentor_value"])
    assert "pair" not in w["sentence"] and "mentor" not in w["sentence"]
    # the same list as coaching_notes gives beside the flags, which keep their mentor
    pd.testing.assert_frame_equal(issue_notes.worth_a_look, look)
    assert issue_notes.flags["mentor_rep_id"].tolist() == ["A6"]


def test_the_correction_counts_every_test(issue_tests):
    """18 tests (the AEs' meeting booked rates included): A1's q is p * 18 / 2 = 0.040, not the
    0.026 it would be among the 6 win-rate tests alone."""
    assert issue_tests.attrs["tests"] == len(issue_tests) == 18
    assert issue_tests.groupby("metric").size().to_dict() == {"activities_per_day": 6, "meeting_booked_rate": 6,
                                                             "win_rate": 6}
    q = multipletests(issue_tests["p_value"].astype(float), method="fdr_bh")[1]
    assert issue_tests["q_value"].astype(float).tolist() == pytest.approx(q.tolist())
    win = issue_tests[issue_tests.metric == "win_rate"]
    alone = multipletests(win["p_value"].astype(float), method="fdr_bh")[1]
    a1 = win.rep_id.tolist().index("A1")
    assert alone[a1] == pytest.approx(0.0265, abs=1e-4) and win["q_value"].iloc[a1] == pytest.approx(0.0397, abs=1e-4)
    # each p-value is the one-rep test: Fisher for the pooled proportions, the t test for rates
    for r in issue_tests.itertuples():
        if r.metric == "activities_per_day":
            others = issue_tests[(issue_tests.metric == r.metric) & (issue_tests.rep_id != r.rep_id)]
            others = others.sort_values("rep_id")  # the reps' order, as summed in the comparison
            assert r.p_value == peer_t_test(r.value, others["value"].astype(float))[1]
        else:
            assert r.p_value == float(fisher_less(r.numerator, r.denominator, r.peer_numerator, r.peer_denominator))


def test_a_small_gap_is_not_worth_a_look(tmp_path):
    """27 of 60 (45 %) against 95 of 150 (63 %): q = 0.070, in (0.01, 0.2], but the rep is at 71 %
    of the peers' rate, not at most half of it: not listed (nor flagged); with
    worth_a_look_ratio 0.8 it is."""
    counts = {"A1": (27, 60), "A2": (19, 30), "A3": (19, 30), "A4": (19, 30), "A5": (19, 30), "A6": (19, 30)}
    ds = analysis.load(_team(tmp_path, counts))
    tests = coaching_tests(ds, "2025-Q3")
    t = tests.set_index("rep_id").loc["A1"]
    assert t["peer_value"] == pytest.approx(95 / 150) and 0.01 < t["q_value"] <= 0.2
    assert t["value"] / t["peer_value"] == pytest.approx(0.45 / (95 / 150))  # 0.71
    assert t["q_value"] == pytest.approx(0.0696, abs=1e-4)
    assert not tests["flagged"].any() and not tests["worth_a_look"].any()
    (tmp_path / "team" / "workbench.yml").write_text("coaching:\n  worth_a_look_ratio: 0.8\n")
    wider = coaching_worth_a_look(analysis.load(tmp_path / "team"), "2025-Q3")
    assert list(wider.rep_id) == ["A1"]
    assert wider.sentence.iloc[0] == ("Rep A1 won 27 of 60 closed deals (45%) against 63% for the other 5 AEs; "
                                       "not yet significant (q = 0.070).")


def test_worth_a_look_q_below_alpha_is_refused(tmp_path):
    from analysis.data.config import parse_config
    from analysis.errors import ConfigError

    expected = r"coaching.worth_a_look_q \(0.005\) must be at least coaching.alpha \(0.01\)"
    with pytest.raises(ConfigError, match=expected):
        parse_config({"coaching": {"worth_a_look_q": 0.005}}, origin="workbench.yml")


def test_review_section_lists_flags_and_worth_a_look(issue_team):
    from analysis.reports import review
    from analysis.reports.steering_review import coaching_section

    def text(items):
        return " ".join(getattr(x, "text", "") or "" for x in items)

    company = text(coaching_section(review.setup(cadence="quarterly", period="2025-Q3", data=issue_team)))
    assert "1 rep needs coaching in 2025-Q3: Rep A2 (many calls, few meetings)." in company
    assert "pair Rep A2 with Rep A6 (13%, 13 of 100)" in company
    assert ("Worth a look: 1 rep has a large gap against the peers of the same role that is not yet significant (at "
            "most 50% of the peers' value; adjusted p above 0.01 and at most 0.20). No mentor is suggested") in company
    assert ("Rep A1 won 1 of 10 closed deals (10%) against 61% for the other 5 AEs; not yet significant "
            "(q = 0.040).") in company
    assert company.index("Rep A2 makes many calls") < company.index("Worth a look") < company.index("Rep A1 won")
    # a rep's own review: their own note only, nobody else named
    own = text(coaching_section(review.setup(cadence="quarterly", period="2025-Q3", data=issue_team, scope="rep",
                                             scope_value="A1")))
    assert own.startswith("Rep A1 is not significantly below peers of the same role on any coached measure in 2025-Q3.")
    assert "Worth a look, not yet significant (at most 50% of the peers' value" in own
    assert "Rep A1 won 1 of 10 closed deals" in own
    assert "Rep A2" not in own and "Rep A6" not in own
