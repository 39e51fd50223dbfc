"""eNPS from the pulse table, worked by hand on tiny data, and agreement with the catalog metric.

Pulse answers (UTC, no config):

answered    score  rep  team   -> group
2025-07-10   10    R1   East   promoter
2025-08-01    9    R2   East   promoter
2025-08-15    7    R1   East   passive
2025-09-01    3    R2   East   detractor
2025-07-20    6    R3   West   detractor
2025-08-20    8    R3   West   passive
2025-09-10    9    --   West   promoter (anonymous: team from the answer)
2025-10-05    9    R1   East   promoter

2025-Q3: East 4 answers (2 P, 1 Pa, 1 D) -> eNPS 25; West 3 (1, 1, 1) -> 0;
company 7 (3, 2, 2) -> 100 x 1/7 = 14.29. 2025-Q4: East 1 promoter -> 100; West none -> NA.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.steering.enps import enps, enps_sentence

from .conftest import write_tables

ROOT = Path(__file__).resolve().parents[1]

REPS = """\
rep_id,name,team,region,manager_id,role,hire_date,end_date
R1,Ann,East,NA,,AE,2020-01-01,
R2,Bob,East,NA,,SDR,2020-01-01,
R3,Cy,West,NA,,AE,2020-01-01,
"""
OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date
D1,R1,2025-07-01T10:00:00,won,Closed Won,100,2025-07-20
"""
PULSE = """\
answered_at,score,rep_id,team
2025-07-10T10:00:00,10,R1,East
2025-08-01T10:00:00,9,R2,East
2025-08-15T10:00:00,7,R1,East
2025-09-01T10:00:00,3,R2,East
2025-07-20T10:00:00,6,R3,West
2025-08-20T10:00:00,8,R3,West
2025-09-10T10:00:00,9,,West
2025-10-05T10:00:00,9,R1,East
"""


@pytest.fixture
def ds(tmp_path):
    return analysis.load(write_tables(tmp_path / "pulse", reps=REPS, opportunities=OPPS, pulse=PULSE))


def _row(f, team, period):
    return f[(f.team == team) & (f.period == period)].iloc[0]


def test_hand_worked(ds):
    f = enps(ds, period=["2025-Q3", "2025-Q4"])
    assert list(f.columns) == ["team", "period", "level", "responses", "promoters", "passives", "detractors",
                               "promoter_share", "passive_share", "detractor_share", "enps", "enps_low", "enps_high"]
    assert list(zip(f.team, f.period)) == [("Company", "2025-Q3"), ("East", "2025-Q3"), ("West", "2025-Q3"),
                                           ("Company", "2025-Q4"), ("East", "2025-Q4"), ("West", "2025-Q4")]
    east, west, comp = _row(f, "East", "2025-Q3"), _row(f, "West", "2025-Q3"), _row(f, "Company", "2025-Q3")
    assert (east.responses, east.promoters, east.passives, east.detractors, east.enps) == (4, 2, 1, 1, 25)
    assert (west.responses, west.promoters, west.passives, west.detractors, west.enps) == (3, 1, 1, 1, 0)
    assert (comp.responses, comp.promoters, comp.passives, comp.detractors) == (7, 3, 2, 2)
    assert comp.enps == pytest.approx(100 / 7)
    assert (comp.promoter_share, comp.passive_share, comp.detractor_share) == (
        pytest.approx(3 / 7), pytest.approx(2 / 7), pytest.approx(2 / 7))
    # Wald interval: se = 100 sqrt((3/7 + 2/7 - (1/7)^2) / 7)
    se = 100 * np.sqrt((5 / 7 - 1 / 49) / 7)
    assert comp.enps_low == pytest.approx(100 / 7 - 1.959963984540054 * se)
    assert comp.enps_high == pytest.approx(100 / 7 + 1.959963984540054 * se)
    q4e, q4w = _row(f, "East", "2025-Q4"), _row(f, "West", "2025-Q4")
    assert (q4e.responses, q4e.enps) == (1, 100) and pd.isna(q4e.enps_low)  # one answer: no interval
    assert q4w.responses == 0 and pd.isna(q4w.enps) and pd.isna(q4w.promoter_share)


def test_company_only_and_other_grains(ds):
    f = enps(ds, period="2025", by=None)
    assert list(f.columns)[:2] == ["period", "level"] and len(f) == 1
    assert (f.responses.iloc[0], f.promoters.iloc[0], f.detractors.iloc[0]) == (8, 4, 2)
    assert f.enps.iloc[0] == pytest.approx(25.0)
    # default: every quarter with answers
    assert list(enps(ds, by=None).period) == ["2025-Q3", "2025-Q4"]
    assert list(enps(ds, grain="month", by=None).period) == ["2025-07", "2025-08", "2025-09", "2025-10"]


def test_agrees_with_catalog_metric(ds):
    f = enps(ds, period=["2025-Q3", "2025-Q4"])
    m = analysis.metrics(ds, ["enps", "passives"], by="team", grain="quarter", periods=["2025-Q3", "2025-Q4"])
    got = f[f.level == "team"].merge(m, on=["team", "period"], suffixes=("", "_catalog"))
    assert len(got) == 4
    assert got["enps"].astype(float).fillna(-999).tolist() == pytest.approx(got["enps_catalog"].astype(float).fillna(-999).tolist())
    assert (got["passives"] == got["passives_catalog"]).all()


def test_sentence(ds):
    f = enps(ds, period=["2025-Q3", "2025-Q4"])
    assert enps_sentence(f, "2025-Q3") == "eNPS in 2025-Q3 was +14 (3 promoters, 2 passives, 2 detractors of 7 answers)."
    assert enps_sentence(f) == (
        "eNPS in 2025-Q4 was +100 (1 promoters, 0 passives, 0 detractors of 1 answers), up from +14 in 2025-Q3."
    )


def test_without_pulse_table(tmp_path):
    ds = analysis.load(write_tables(tmp_path / "nopulse", reps=REPS, opportunities=OPPS))
    f = enps(ds, period="2025-Q3")
    assert f.empty and "pulse_responses" in f.attrs["unavailable"]
    assert enps_sentence(f).startswith("eNPS is not available")


def test_sample_agrees_with_catalog():
    ds = analysis.load(ROOT / "data" / "sample")
    f = enps(ds, period="2026-Q3")
    m = analysis.metrics(ds, ["enps", "pulse_responses"], by="team", grain="quarter", periods="2026-Q3")
    teams = f[f.level == "team"].merge(m, on=["team", "period"], suffixes=("", "_catalog"))
    assert len(teams) == 5
    assert teams["enps"].astype(float).tolist() == pytest.approx(teams["enps_catalog"].astype(float).tolist())
    comp = f[f.level == "company"].iloc[0]
    assert comp.responses == teams.responses.sum() == 85  # anonymous answers carry their team
    assert comp.enps == pytest.approx(100 * (15 - 22) / 85)
