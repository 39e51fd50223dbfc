"""Experiments: hand-built arms checked against statsmodels and scipy on the same numbers.

Tiny dataset (change date 2025-07-01, 30-day windows; June = before, July = after):

arm      closed deals          won amounts
before   10 closed, 3 won      100, 200, 300          win rate 30 %, avg deal 200
after    10 closed, 7 won      400, 500, ..., 1000    win rate 70 %, avg deal 700
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

import analysis
from analysis.steering.experiments import (
    ExperimentError,
    experiment,
    experiments,
    newcombe_interval,
    two_proportion_ztest,
    welch_test,
)

from .conftest import write_tables

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"

REPS = """\
rep_id,name,team,region,manager_id,role,hire_date,end_date
R1,Ann,East,NA,,AE,2020-01-01,
R2,Bob,West,NA,,AE,2020-01-01,
"""

BEFORE_WON = [100, 200, 300]
AFTER_WON = [400, 500, 600, 700, 800, 900, 1000]


def _opps() -> str:
    rows = ["opportunity_id,owner_id,created_at,status,stage,amount,close_date"]
    i = 0
    for month, won in (("06", BEFORE_WON), ("07", AFTER_WON)):
        for j in range(10):
            i += 1
            owner = "R1" if j % 2 else "R2"
            status, amount = ("won", won[j]) if j < len(won) else ("lost", 50)
            rows.append(f"D{i},{owner},2025-05-01T10:00:00,{status},x,{amount},2025-{month}-{j + 2:02d}")
    return "\n".join(rows) + "\n"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    folder = write_tables(tmp_path / "exp", reps=REPS, opportunities=_opps())
    (folder / "workbench.yml").write_text(textwrap.dedent("""\
        as_of: 2025-07-31
        experiments:
          - {name: new pitch, metric: win_rate, change_date: 2025-07-01, window_days: 30}
          - {name: East vs West, metric: win_rate, group_a: [West], group_b: [East], window_days: 61}
          - {name: bad team, metric: win_rate, group_a: [Nowhere], group_b: [East]}
        """))
    return folder


def test_proportion_before_after_matches_statsmodels(tiny):
    r = experiment(analysis.load(tiny), "win_rate", change_date="2025-07-01", window_days=30)
    assert (r["kind"], r["design"], r["n_a"], r["n_b"]) == ("proportion", "before_after", 10, 10)
    assert (r["value_a"], r["value_b"]) == (pytest.approx(0.3), pytest.approx(0.7))
    assert r["difference"] == pytest.approx(0.4) and r["relative"] == pytest.approx(0.4 / 0.3)
    z, p = proportions_ztest([7, 3], [10, 10])
    assert (r["statistic"], r["p_value"]) == (pytest.approx(z), pytest.approx(p))
    # by hand: pooled 0.5, se = sqrt(0.25 * 0.2) = 0.2236, z = 1.789, p = 0.0736
    assert r["statistic"] == pytest.approx(0.4 / np.sqrt(0.05))
    lo, hi = confint_proportions_2indep(7, 10, 3, 10, method="newcomb", compare="diff")
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert (str(r["a_start"]), str(r["a_end"]), str(r["b_start"]), str(r["b_end"])) == (
        "2025-06-01", "2025-06-30", "2025-07-01", "2025-07-30")
    assert r["verdict"] == (
        "Win rate was 30% before 2025-07-01 and 70% after (+40 points, 95% CI -2.9 to +67, p = 0.07): "
        "no detectable change."
    )
    sig = experiment(analysis.load(tiny), "win_rate", change_date="2025-07-01", window_days=30, alpha=0.1)
    assert sig["verdict"].startswith("Win rate rose from 30% to 70% after 2025-07-01 (+40 points")
    assert sig["verdict"].endswith("likely a real improvement.")


def test_per_deal_welch_matches_scipy(tiny):
    r = experiment(analysis.load(tiny), "avg_deal_size", change_date="2025-07-01", window_days=30)
    assert (r["kind"], r["n_a"], r["n_b"]) == ("per_deal", 3, 7)
    assert (r["value_a"], r["value_b"], r["difference"]) == (200, 700, 500)
    ref = stats.ttest_ind(AFTER_WON, BEFORE_WON, equal_var=False)
    ci = ref.confidence_interval()
    assert (r["statistic"], r["p_value"]) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert "likely a real improvement" in r["verdict"] and "+$500" in r["verdict"]


def test_groups_by_team(tiny):
    # East = R1 (odd j): before 1 of 5 won (j=1), after 3 of 5 (j=1,3,5); West: 2 of 5 and 4 of 5
    r = experiment(analysis.load(tiny), "win_rate", group_a=["West"], group_b="East", window_days=61)
    assert (r["design"], r["arm_a"], r["arm_b"], r["n_a"], r["n_b"]) == ("groups", "West", "East", 10, 10)
    assert (r["value_a"], r["value_b"]) == (pytest.approx(0.6), pytest.approx(0.4))
    assert r["p_value"] == pytest.approx(proportions_ztest([4, 6], [10, 10])[1])
    assert r["verdict"].startswith("Win rate was 40% for East against 60% for West")


def test_config_experiments(tiny):
    f = experiments(analysis.load(tiny))
    assert list(f["name"]) == ["new pitch", "East vs West", "bad team"]
    assert f["p_value"].iloc[0] == pytest.approx(proportions_ztest([7, 3], [10, 10])[1])
    assert "could not run" in f["verdict"].iloc[2] and "Nowhere" in f["verdict"].iloc[2]


def test_errors(tiny):
    ds = analysis.load(tiny)
    with pytest.raises(ExperimentError, match="cannot be tested"):
        experiment(ds, "revenue_growth", change_date="2025-07-01")
    with pytest.raises(ExperimentError, match="not both"):
        experiment(ds, "win_rate", change_date="2025-07-01", group_a=["East"], group_b=["West"])
    with pytest.raises(ExperimentError, match="did you mean 'East'"):
        experiment(ds, "win_rate", group_a=["Eats"], group_b=["West"])


def test_empty_arm_is_not_enough_data(tiny):
    r = experiment(analysis.load(tiny), "win_rate", change_date="2024-01-01", window_days=30)
    assert r["n_a"] == 0 and np.isnan(r["p_value"])
    assert r["verdict"].startswith("Not enough data")


def test_helpers_against_references():
    for k1, n1, k2, n2 in [(7, 10, 3, 10), (56, 70, 48, 80), (0, 10, 5, 12)]:
        z, p = two_proportion_ztest(k1, n1, k2, n2)
        assert (z, p) == (pytest.approx(proportions_ztest([k1, k2], [n1, n2])[0]), pytest.approx(proportions_ztest([k1, k2], [n1, n2])[1]))
        lo, hi = newcombe_interval(k1, n1, k2, n2)
        ref = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
        assert (lo, hi) == (pytest.approx(ref[0]), pytest.approx(ref[1]))
    # Newcombe (1998) example: 56/70 vs 48/80 -> 0.0524 to 0.3339
    lo, hi = newcombe_interval(56, 70, 48, 80)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    t, p, lo, hi = welch_test([1, 2, 3, 4], [2, 4, 6, 8, 10])
    ref = stats.ttest_ind([1, 2, 3, 4], [2, 4, 6, 8, 10], equal_var=False)
    assert (t, p, lo, hi) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue),
                              pytest.approx(ref.confidence_interval().low), pytest.approx(ref.confidence_interval().high))
    assert np.isnan(welch_test([1], [2, 3])[1])


# -- data/sample -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    return analysis.load(SAMPLE)


def test_sample_win_rate_counts_match_the_raw_file(sample):
    r = experiment(sample, "win_rate", change_date="2026-03-01", window_days=90)
    o = pd.read_csv(SAMPLE / "opportunities.csv", parse_dates=["close_date"])
    o = o[o.status.isin(["won", "lost"])]
    before = o[(o.close_date >= "2025-12-01") & (o.close_date < "2026-03-01")]
    after = o[(o.close_date >= "2026-03-01") & (o.close_date < "2026-05-30")]
    k = [int((after.status == "won").sum()), int((before.status == "won").sum())]
    n = [len(after), len(before)]
    assert (r["n_b"], r["n_a"]) == tuple(n)
    assert r["p_value"] == pytest.approx(proportions_ztest(k, n)[1])


def test_sample_per_rep_rates_match_scipy(sample):
    a, b = ["East SMB", "West Mid-Market"], ["Central SMB", "East Mid-Market"]
    r = experiment(sample, "calls_per_day", group_a=a, group_b=b, window_days=90)
    # the last 90 days up to 2026-09-30 start on 2026-07-03; sellers employed then (no managers,
    # not R0004 / R0013 who left in 2025): 6 + 6 and 7 + 7
    assert str(r["a_start"]) == "2026-07-03" and str(r["a_end"]) == "2026-09-30"
    assert r["kind"] == "per_rep" and r["n_a"] == 12 and r["n_b"] == 14
    days = pd.period_range("2026-07-03", "2026-09-30", freq="D")
    rates = analysis.metrics(sample, ["calls", "rep_working_days"], by=["rep_id", "team"], grain="day",
                             periods=[str(d) for d in days])
    per = rates.groupby(["rep_id", "team"])[["calls", "rep_working_days"]].sum()
    per = per[per.rep_working_days > 0]
    per["rate"] = per.calls / per.rep_working_days
    ra = per[per.index.get_level_values("team").isin(a)]["rate"]
    rb = per[per.index.get_level_values("team").isin(b)]["rate"]
    ref = stats.ttest_ind(rb, ra, equal_var=False)
    assert r["p_value"] == pytest.approx(ref.pvalue) and r["statistic"] == pytest.approx(ref.statistic)
    assert r["value_b"] - r["value_a"] == pytest.approx(rb.mean() - ra.mean())
    assert len(ra) == 12 and len(rb) == 14
