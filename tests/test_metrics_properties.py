"""Invariants of the metric engine on random data (hypothesis).

* additivity: counts and sums by rep / team / product add up to the company figure, and
  months add up to their quarter;
* rates lie in [0, 1] and inside their Wilson interval;
* results do not depend on row order, nor on splitting a table into part files.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis.semantic.engine import metrics

ADDITIVE = ["revenue", "deals_won", "deals_lost", "opportunities_created", "pipeline_created", "calls"]
RATES = ["win_rate", "positive_call_rate"]
TEAMS = {"R1": "East", "R2": "East", "R3": "West", "R4": None}

# 10 generated datasets per property (each loads and queries DuckDB: ~0.4 s; the suite must stay under 4
# minutes); every run draws new ones, so the runs together cover far more
SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def datasets(draw):
    n = draw(st.integers(min_value=1, max_value=25))
    start = datetime(2025, 1, 1)
    deals = []
    for i in range(n):
        created = start + timedelta(days=draw(st.integers(0, 200)), hours=draw(st.integers(0, 23)))
        status = draw(st.sampled_from(["open", "won", "lost"]))
        close = (created + timedelta(days=draw(st.integers(0, 120)))).date()
        deals.append(
            {
                "opportunity_id": f"D{i}",
                "owner_id": draw(st.sampled_from(sorted(TEAMS))),
                "created_at": created.isoformat(),
                "status": status,
                "stage": {"open": "Demo", "won": "Closed Won", "lost": "Closed Lost"}[status],
                "amount": draw(st.integers(0, 10_000)) / 4,  # exact in binary: sums are order-free
                "close_date": close.isoformat(),
                "product": draw(st.sampled_from(["Core", "Add-on", None])),
            }
        )
    m = draw(st.integers(min_value=0, max_value=20))
    acts = [
        {
            "activity_id": f"A{i}",
            "rep_id": draw(st.sampled_from(sorted(TEAMS))),
            "type": draw(st.sampled_from(["call", "email"])),
            "occurred_at": (start + timedelta(days=draw(st.integers(0, 200)))).isoformat(),
            "outcome": draw(st.sampled_from(["connected", "positive", "no_answer", None])),
        }
        for i in range(m)
    ]
    reps = pd.DataFrame({"rep_id": list(TEAMS), "name": list(TEAMS), "team": list(TEAMS.values())})
    return {
        "reps": reps,
        "opportunities": pd.DataFrame(deals),
        "activities": pd.DataFrame(acts, columns=["activity_id", "rep_id", "type", "occurred_at", "outcome"]),
    }


def company(ds, grain="quarter"):
    return metrics(ds, ADDITIVE + RATES, grain=grain, periods=["2025-Q1", "2025-Q2", "2025-Q3"] if grain == "quarter" else None)


@SETTINGS
@given(datasets(), st.sampled_from(["rep_id", "team", "product"]))
def test_groups_add_up_to_the_company(frames, dim):
    ds = analysis.load(frames)
    periods = ["2025-Q1", "2025-Q2", "2025-Q3"]
    total = metrics(ds, ADDITIVE, grain="quarter", periods=periods).set_index("period")
    grouped = metrics(ds, ADDITIVE, by=dim, grain="quarter", periods=periods)
    if dim == "product":
        grouped = grouped.drop(columns=["calls"])  # calls do not link to a product here
    summed = grouped.groupby("period")[[c for c in ADDITIVE if c in grouped]].sum()
    for col in summed.columns:
        for p in periods:
            assert summed.loc[p, col] == total.loc[p, col], (col, p)


@SETTINGS
@given(datasets())
def test_months_add_up_to_quarters(frames):
    ds = analysis.load(frames)
    months = metrics(ds, ADDITIVE, grain="month", periods=[f"2025-{m:02d}" for m in range(1, 10)])
    quarters = metrics(ds, ADDITIVE, grain="quarter", periods=["2025-Q1", "2025-Q2", "2025-Q3"])
    months["q"] = months.period.map(lambda p: f"2025-Q{(int(p[5:]) - 1) // 3 + 1}")
    summed = months.groupby("q")[ADDITIVE].sum()
    for col in ADDITIVE:
        assert summed[col].tolist() == quarters[col].tolist(), col


@SETTINGS
@given(datasets())
def test_rates_are_bounded_and_inside_their_interval(frames):
    ds = analysis.load(frames)
    df = metrics(ds, RATES, by="rep_id", grain="month")
    for r in RATES:
        ok = df[r].notna()
        assert ((df.loc[ok, r] >= 0) & (df.loc[ok, r] <= 1)).all()
        assert (df.loc[ok, f"{r}_low"] <= df.loc[ok, r] + 1e-12).all()
        assert (df.loc[ok, f"{r}_high"] >= df.loc[ok, r] - 1e-12).all()
        assert df.loc[~ok, f"{r}_denominator"].fillna(0).eq(0).all()  # NA only for a zero denominator


@SETTINGS
@given(datasets(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(frames, rnd):
    shuffled = {k: v.sample(frac=1, random_state=rnd.randint(0, 10**6)).reset_index(drop=True) for k, v in frames.items()}
    a = company(analysis.load(frames))
    b = company(analysis.load(shuffled))
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(datasets(), st.integers(min_value=1, max_value=24))
def test_splitting_files_does_not_matter(tmp_path_factory, frames, cut):
    whole = tmp_path_factory.mktemp("whole")
    parts = tmp_path_factory.mktemp("parts")
    for name, f in frames.items():
        f.to_csv(whole / f"{name}.csv", index=False)
        (parts / name).mkdir()
        f.iloc[:cut].to_csv(parts / name / "part-0.csv", index=False)
        f.iloc[cut:].to_csv(parts / name / "part-1.csv", index=False)
    pd.testing.assert_frame_equal(company(analysis.load(whole)), company(analysis.load(parts)))
