"""The memos and shortcuts that keep coaching, stalled deals, experiments and the leaderboard
fast at scale give exactly what a fresh computation gives, and callers cannot change a memo.

No timings here: each test compares a memoized or shortcut answer with a fresh one on the small
sample (data/sample) or a hand-built team."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import analysis
from analysis.analytics import funnel
from analysis.paths import SAMPLE_DATA
from analysis.steering import scorecard as sc
from analysis.steering.coaching import coaching_tests, peer_t_test, stratified_fisher
from analysis.steering.experiments import experiment

AS_OF = date(2026, 9, 30)


@pytest.fixture(scope="module")
def sample():
    return analysis.load(SAMPLE_DATA)


def test_stalled_deals_memo_returns_equal_frames(sample):
    first = funnel.stalled_deals(sample, as_of=AS_OF)
    again = funnel.stalled_deals(sample, as_of=AS_OF)
    assert not first.empty
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert first.attrs == again.attrs
    assert first is not again
    fresh = funnel.stalled_deals(analysis.load(SAMPLE_DATA), as_of=AS_OF)
    pd.testing.assert_frame_equal(first, fresh, check_exact=True)


def test_mutating_a_returned_frame_does_not_change_the_memo(sample):
    first = funnel.stalled_deals(sample, as_of=AS_OF)
    keep = first.copy()
    first["days_in_step"] = -1.0
    first.iloc[:3, 0] = "changed"
    first.attrs["as_of"] = "changed"
    again = funnel.stalled_deals(sample, as_of=AS_OF)
    pd.testing.assert_frame_equal(again, keep, check_exact=True)
    assert again.attrs["as_of"] != "changed"
    cand = funnel.stall_candidates(sample, as_of=AS_OF)
    cand.loc[:, "threshold_days"] = 0.0
    assert not (funnel.stall_candidates(sample, as_of=AS_OF).threshold_days == 0.0).all()


def test_memo_is_per_moment_and_quantile(sample):
    a = funnel.stalled_deals(sample, as_of=AS_OF)
    b = funnel.stalled_deals(sample, as_of=date(2026, 6, 30))
    c = funnel.stalled_deals(sample, as_of=AS_OF, quantile=0.9)
    assert a.attrs["as_of"] != b.attrs["as_of"]
    assert c.attrs["quantile"] == 0.9 and len(c) <= len(a)
    fresh = analysis.load(SAMPLE_DATA)
    pd.testing.assert_frame_equal(b, funnel.stalled_deals(fresh, as_of=date(2026, 6, 30)), check_exact=True)
    pd.testing.assert_frame_equal(c, funnel.stalled_deals(fresh, as_of=AS_OF, quantile=0.9), check_exact=True)
    with pytest.raises(funnel.FunnelError):
        funnel.stalled_deals(sample, as_of=AS_OF, quantile=1.5)


def test_stalled_deals_are_the_candidates_over_their_threshold(sample):
    cand = funnel.stall_candidates(sample, as_of=AS_OF)
    stalled = funnel.stalled_deals(sample, as_of=AS_OF)
    over = cand[cand.days_in_step > cand.threshold_days]
    assert set(over.opportunity_id) == set(stalled.opportunity_id)


def test_coaching_stall_counts_match_stalled_deals(sample):
    """The stall tests count per rep and step the open deals (candidates) and the stalled ones:
    the same numbers as stalled_deals and the snapshot of open deals."""
    tests = coaching_tests(sample, "2026-Q3")
    stall = tests[tests.metric.str.startswith("stalled_share_")]
    assert not stall.empty
    stalled = funnel.stalled_deals(sample, as_of=AS_OF)
    snap = funnel.funnel_snapshot(sample, as_of=AS_OF, by="rep_id")
    for r in stall.itertuples():
        step = r.metric.removeprefix("stalled_share_")
        n_stalled = int(((stalled.rep_id == r.rep_id) & (stalled.step == step)).sum())
        n_open = int(snap.loc[(snap.rep_id == r.rep_id) & (snap.step == step), "deals"].sum())
        assert (r.numerator, r.denominator) == (n_stalled, n_open)


def test_coaching_tests_are_repeatable(sample):
    a = coaching_tests(sample, "2026-Q3")
    b = coaching_tests(analysis.load(SAMPLE_DATA), "2026-Q3")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    # the rates per day of all reps at once are each rep's own t test against the others (in the
    # reps' order), and the AEs' and AMs' calls are examined too
    rates = a[a.test.str.startswith("t test")]
    assert set(rates.metric) == {"activities_per_day", "calls_per_day"}
    for r in rates.itertuples():
        others = a[(a.metric == r.metric) & (a.role == r.role) & (a.rep_id != r.rep_id)].sort_values("rep_id")
        assert r.p_value == peer_t_test(r.value, others["value"].astype(float))[1]
        assert r.peers == len(others)
    assert set(a.loc[a.metric == "meeting_booked_rate", "role"]) == {"SDR", "AE", "AM"}


def test_coaching_p_values_are_the_one_rep_stratified_test(sample):
    """p-values computed in one batch per metric equal stratified_fisher rep by rep."""
    tests = coaching_tests(sample, "2026-Q3")
    strat = tests[tests.test.str.startswith("exact test stratified")]
    assert not strat.empty
    # the stall tests have one stratum (the team): rebuild each one from the counts
    stall = strat[strat.metric.str.startswith("stalled_share_")]
    for r in stall.itertuples():
        k_rest = float(r.peer_numerator)
        n_rest = float(r.peer_denominator)
        p = stratified_fisher([r.numerator], [r.denominator], [k_rest], [n_rest], lower=False)
        assert p == r.p_value


def test_stratified_fisher_many_strata_against_one_at_a_time():
    """Against a convolution of scipy's full pmfs: the lower tail cuts each support at the
    observed total (see _stratified_fisher_many), which must not change a p-value."""
    rng = np.random.default_rng(3)
    extreme = [  # few successes from many trials (3 meetings from 600 calls), none, all
        ([1.0, 2.0, 0.0], [200.0, 300.0, 100.0], [20.0, 30.0, 11.0], [160.0, 240.0, 100.0]),
        ([0.0, 0.0], [50.0, 80.0], [9.0, 4.0], [70.0, 90.0]),
        ([40.0, 7.0], [40.0, 7.0], [12.0, 3.0], [60.0, 9.0]),
    ]
    cases = [*extreme, *([None] * 200)]
    for case in cases:
        m = int(rng.integers(1, 6))
        n = rng.integers(0, 30, m).astype(float)
        nr = rng.integers(1, 500, m).astype(float)
        k, kr = np.floor(n * rng.random(m)), np.floor(nr * rng.random(m))
        if case is not None:
            k, n, kr, nr = (np.array(v) for v in case)
        p = stratified_fisher(k, n, kr, nr)
        # convolution of the strata by hand
        pmf, lo_total = np.ones(1), 0
        for ks, ns, krs, nrs in zip(k, n, kr, nr):
            if ns <= 0:
                continue
            lo, hi = int(max(0, ns - nrs - ns + ks + krs)), int(min(ns, ks + krs))
            pmf = np.convolve(pmf, stats.hypergeom.pmf(np.arange(lo, hi + 1), ns + nrs, ks + krs, ns))
            lo_total += lo
        expect = pmf[: int(k[n > 0].sum()) - lo_total + 1].sum()
        assert p == pytest.approx(min(max(expect, 0.0), 1.0), rel=1e-9, abs=1e-12)
        if case is not None:  # tiny p-values too, relative to their size
            assert p == pytest.approx(expect, rel=1e-9, abs=0)


def test_experiment_arms_restricted_to_reps_match_rep_day_sums(sample):
    """A proportion per arm is the sum over the arm's reps and days (the arms' totals are
    queried without splitting by rep)."""
    reps = sample.df("reps")
    team = reps.team.dropna().iloc[0]
    ids = list(reps.loc[reps.team == team, "rep_id"].astype(str))
    res = experiment(sample, "win_rate", change_date="2026-04-01", window_days=60, reps=[team])
    days = pd.date_range("2026-01-31", "2026-05-30").date
    f = analysis.metrics(sample, ["win_rate"], by="rep_id", grain="day",
                         periods=[analysis.parse_period(d.isoformat()) for d in days])
    f = f[f.rep_id.astype(str).isin(ids)]
    day = pd.to_datetime(f.period).dt.date
    before = f[day < date(2026, 4, 1)]
    after = f[day >= date(2026, 4, 1)]
    assert res["n_a"] == int(before.win_rate_denominator.fillna(0).sum())
    assert res["n_b"] == int(after.win_rate_denominator.fillna(0).sum())
    if res["n_a"]:
        assert res["value_a"] == before.win_rate_numerator.fillna(0).sum() / res["n_a"]


def test_scorecard_after_leaderboard_equals_a_fresh_scorecard(sample):
    catalog = analysis.build_catalog(sample.config)
    board = sc.leaderboard(sample, "2026-Q3", catalog=catalog)
    card = sc.scorecard(sample, "2026-Q3", catalog=catalog)
    fresh_ds = analysis.load(SAMPLE_DATA)
    fresh = sc.scorecard(fresh_ds, "2026-Q3", catalog=catalog)
    pd.testing.assert_frame_equal(card, fresh, check_exact=True)
    assert card.attrs == fresh.attrs
    pd.testing.assert_frame_equal(board, sc.leaderboard(fresh_ds, "2026-Q3", catalog=catalog), check_exact=True)
    card["score"] = 0.0  # a caller's change does not reach the memo
    pd.testing.assert_frame_equal(sc.scorecard(sample, "2026-Q3", catalog=catalog), fresh, check_exact=True)
