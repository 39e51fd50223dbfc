"""Forecast: win probabilities, weighted pipeline, time-series forecast with backtest, simulation.

Fixture ``probs_ds`` (as_of 2025-06-30, min_history_deals 2, history 24 months; config default
probabilities: prospecting 0.1, closing 0.9, nurturing 0.05; commit >= 0.7, best case >= 0.4):

deal owner status close       amount stage history                     notes
C1   R1    won    2025-03-01  -      Prosp 01-05, Demo 02-01          passes prosp, qual, research (skipped), demo
C2   R1    lost   2025-02-15  -      Prosp 01-06, Lost                passes prosp
C3   R2    won    2025-04-01  300    Demo 02-01                       enters at demo
C4   R2    lost   2025-04-02  -      Demo 02-02, Lost
C5   R3    lost   2025-05-01  -      (none)                           counts in the overall rate only
C6   R3    won    2025-07-15  400    Demo 05-01, Won 07-15            closed after as_of: open then
C7   R1    lost   2022-01-10  -      Demo 2021-12-01, Lost            outside the 24-month window
D1   R1    open   2025-08-15  1000   Prospecting
D2   R1    open   2025-09-30  300.10 Demo
D3   R2    open   2025-06-01  200    Closing                          overdue -> 2025-Q3
D4   R3    open   2025-12-31  50     Qualification
D5   R3    open   2025-11-01  10     Nurture

Probabilities by hand: month-end snapshots 2023-07-31 .. 2025-06-30; a deal open at a snapshot
counts once per snapshot, won / lost by as_of, else censored (C6, D*); C5 has no history.
prospecting: C1@01-31 won, C2@01-31 lost -> 2 deals, 100 / 200 = 0.5 (history)
demo: C1@02-28 won, C3@02-28 and @03-31 won (300 each), C4@02-28 and @03-31 lost (100 each)
      -> 3 deals (2 won), 5 observations (3 won), amount 700 / 900 = 7/9 (count rate 3/5)
qualification, research, objection_handling: no observation, no default -> overall 0.4 (2 won of
the 5 deals C1..C5 closed in the window); closing config 0.9; nurturing config 0.05.

Weighted pipeline at 2025-06-30 (cents rounded half to even per deal):
2025-Q3 commit     D3 200 x 0.9 = 180, D2 300.10 x 7/9 = 233.41, C6 400 x 7/9 = 311.11 -> 900.10 / 724.52
2025-Q3 best_case  D1 1000 x 0.5 = 500
2025-Q4 best_case  D4 50 x 0.4 = 20.00 (0.4 is exactly the best-case threshold)
2025-Q4 pipeline   D5 10 x 0.05 = 0.50
"""

from __future__ import annotations

import math
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.steering import forecast as fc
from analysis.steering.forecast import ForecastError

from .conftest import write_tables

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
Z80 = 1.2815515655446004

REPS = """\
rep_id,name,team
R1,Ann,East
R2,Bob,East
R3,Cy,West
"""

PROBS_OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date
C1,R1,2025-01-05T09:00:00,won,Closed Won,100,2025-03-01
C2,R1,2025-01-06T09:00:00,lost,Closed Lost,100,2025-02-15
C3,R2,2025-02-01T09:00:00,won,Closed Won,300,2025-04-01
C4,R2,2025-02-02T09:00:00,lost,Closed Lost,100,2025-04-02
C5,R3,2025-03-01T09:00:00,lost,Closed Lost,100,2025-05-01
C6,R3,2025-05-01T09:00:00,won,Closed Won,400,2025-07-15
C7,R1,2021-12-01T09:00:00,lost,Closed Lost,100,2022-01-10
D1,R1,2025-05-01T09:00:00,open,Prospecting,1000,2025-08-15
D2,R1,2025-05-02T09:00:00,open,Demo,300.10,2025-09-30
D3,R2,2025-04-01T09:00:00,open,Closing,200,2025-06-01
D4,R3,2025-06-01T09:00:00,open,Qualification,50,2025-12-31
D5,R3,2025-06-02T09:00:00,open,Nurture,10,2025-11-01
"""

PROBS_HISTORY = """\
opportunity_id,stage,entered_at
C1,Prospecting,2025-01-05T09:00:00
C1,Demo,2025-02-01T09:00:00
C2,Prospecting,2025-01-06T09:00:00
C2,Closed Lost,2025-02-15T09:00:00
C3,Demo,2025-02-01T09:00:00
C4,Demo,2025-02-02T09:00:00
C4,Closed Lost,2025-04-02T09:00:00
C6,Demo,2025-05-01T09:00:00
C6,Closed Won,2025-07-15T09:00:00
C7,Demo,2021-12-01T09:00:00
C7,Closed Lost,2022-01-10T09:00:00
"""

STAGES = [
    {"name": "Prospecting", "step": "prospecting", "probability": 0.1},
    {"name": "Qualification", "step": "qualification"},
    {"name": "Research", "step": "research"},
    {"name": "Demo", "step": "demo"},
    {"name": "Negotiation", "step": "objection_handling"},
    {"name": "Closing", "step": "closing", "probability": 0.9},
    {"name": "Nurture", "step": "nurturing", "probability": 0.05},
]


@pytest.fixture
def probs_ds(tmp_path: Path):
    folder = write_tables(tmp_path / "probs", reps=REPS, opportunities=PROBS_OPPS, stage_history=PROBS_HISTORY)
    config = {
        "as_of": "2025-06-30",
        "stages": STAGES,
        "forecast": {"min_history_deals": 2, "history_months": 24, "commit_probability": 0.7,
                     "best_case_probability": 0.4},
    }
    return analysis.load(folder, config=config)


# -- win probabilities ---------------------------------------------------------------------------


def test_win_probabilities_from_history_with_fallbacks(probs_ds):
    p = fc.win_probabilities(probs_ds).set_index("step")
    assert list(p.index) == ["prospecting", "qualification", "research", "demo", "objection_handling", "closing",
                             "nurturing"]
    assert p.attrs["overall"] == pytest.approx(0.4)
    assert (p.attrs["overall_closed"], p.attrs["overall_won"]) == (5, 2)
    expected = {
        "prospecting": (2, 1, 0.5, "history"),
        "qualification": (0, 0, 0.4, "overall"),
        "research": (0, 0, 0.4, "overall"),
        "demo": (3, 2, 7 / 9, "history"),
        "objection_handling": (0, 0, 0.4, "overall"),
        "closing": (0, 0, 0.9, "config"),
        "nurturing": (0, 0, 0.05, "config"),
    }
    for step, (closed, won, prob, source) in expected.items():
        row = p.loc[step]
        assert (row.closed_deals, row.won_deals, row.source) == (closed, won, source), step
        assert row.probability == pytest.approx(prob), step
    assert math.isnan(p.loc["closing", "history_rate"])
    demo = p.loc["demo"]
    assert (demo.observations, demo.won_observations, demo.closed_amount, demo.won_amount) == (5, 3, 900.0, 700.0)
    assert demo.count_rate == pytest.approx(0.6)
    assert p.attrs["snapshots"][0] == date(2023, 7, 31) and p.attrs["snapshots"][-1] == date(2025, 6, 30)


def test_win_probabilities_as_of_and_window(probs_ds):
    # a year later C6 (won 2025-07-15, in demo at 05-31 and 06-30) has closed:
    # demo = 100 + 2 x 300 + 2 x 400 won of 1700 -> 15/17
    later = fc.win_probabilities(probs_ds, as_of="2026-06-30").set_index("step")
    assert later.loc["demo", "closed_deals"] == 4
    assert later.loc["demo", "probability"] == pytest.approx(15 / 17)
    # C7 (in demo at 2021-12-31, lost 2022-01-10) falls inside a 48-month window: 700 of 1000
    wide = probs_ds.config.model_copy(update={"forecast": probs_ds.config.forecast.model_copy(
        update={"history_months": 48})})
    ds2 = analysis.load(probs_ds.source.location, config=wide)
    d = fc.win_probabilities(ds2).set_index("step").loc["demo"]
    assert (d.closed_deals, d.won_deals, d.observations) == (4, 2, 6)
    assert d.probability == pytest.approx(0.7)
    # a step below min_history_deals without a config default falls back to the overall rate
    strict = probs_ds.config.model_copy(update={"forecast": probs_ds.config.forecast.model_copy(
        update={"min_history_deals": 3})})
    s = fc.win_probabilities(analysis.load(probs_ds.source.location, config=strict)).set_index("step")
    assert s.loc["prospecting", "source"] == "config" and s.loc["prospecting", "probability"] == 0.1
    assert s.loc["demo", "source"] == "history"


def test_win_probabilities_without_history_table(tmp_path):
    folder = write_tables(tmp_path / "nohist", reps=REPS, opportunities=PROBS_OPPS)
    ds = analysis.load(folder, config={"as_of": "2025-06-30", "stages": STAGES})
    p = fc.win_probabilities(ds).set_index("step")
    assert (p.closed_deals == 0).all()
    assert p.loc["closing", "source"] == "config" and p.loc["demo", "source"] == "overall"
    assert p.loc["demo", "probability"] == pytest.approx(0.4)
    assert "overall win rate is 40.0%" in fc.probabilities_sentence(fc.win_probabilities(ds))


# -- weighted pipeline ---------------------------------------------------------------------------


def test_open_deals_forecast_per_deal(probs_ds):
    d = fc.open_deals_forecast(probs_ds, by="team").set_index("opportunity_id")
    assert sorted(d.index) == ["C6", "D1", "D2", "D3", "D4", "D5"]
    assert d.loc["D2", "weighted"] == 233.41
    assert d.loc["C6", "weighted"] == 311.11
    assert d.loc["D3", "overdue"] and not d.loc["D1", "overdue"]
    assert d.loc["D3", "close_period"] == "2025-Q3"
    assert d.loc["D4", "close_period"] == "2025-Q4"
    assert dict(d.category) == {"C6": "commit", "D1": "best_case", "D2": "commit", "D3": "commit",
                                "D4": "best_case", "D5": "pipeline"}
    assert d.loc["D5", "probability_source"] == "config"
    assert d.loc["D4", "team"] == "West"


def test_weighted_pipeline_sums_and_categories(probs_ds):
    w = fc.weighted_pipeline(probs_ds)
    got = [tuple(r) for r in w[["close_period", "category", "deals", "amount", "weighted"]].itertuples(index=False)]
    assert got == [
        ("2025-Q3", "commit", 3, 900.10, 724.52),
        ("2025-Q3", "best_case", 1, 1000.0, 500.0),
        ("2025-Q4", "best_case", 1, 50.0, 20.0),
        ("2025-Q4", "pipeline", 1, 10.0, 0.5),
    ]
    t = fc.weighted_pipeline(probs_ds, by=["team"])
    east_q3 = t[(t.team == "East") & (t.close_period == "2025-Q3")]
    assert east_q3.weighted.sum() == pytest.approx(180 + 500 + 233.41)
    assert t.weighted.sum() == pytest.approx(w.weighted.sum())
    text = fc.pipeline_sentence(probs_ds, w)
    assert text.startswith("Weighted pipeline expected to close in 2025-Q3 is $1.2K from 4 open deals")
    assert "commit $725" in text


def test_weighted_pipeline_thresholds_move_categories(probs_ds):
    cfg = probs_ds.config.model_copy(update={"forecast": probs_ds.config.forecast.model_copy(
        update={"commit_probability": 0.5, "best_case_probability": 0.41})})
    ds = analysis.load(probs_ds.source.location, config=cfg)
    d = fc.open_deals_forecast(ds).set_index("opportunity_id")
    assert d.loc["D1", "category"] == "commit"  # 0.5 >= 0.5
    assert d.loc["D4", "category"] == "pipeline"  # 0.4 < 0.41


def test_weighted_pipeline_past_as_of_reconstructs(probs_ds):
    # at 2025-03-15 C3, C4 (closed in April) and C5 are open; only C1, C2 have closed
    d = fc.open_deals_forecast(probs_ds, as_of="2025-03-15").set_index("opportunity_id")
    assert {"C3", "C4", "C5"} <= set(d.index) and "C1" not in d.index
    assert d.attrs["as_of"] == date(2025, 3, 15)


def test_period_win_probabilities_by_hand(probs_ds):
    # 2025-Q3 as of 2025-06-30: snapshots the day before each of the last four quarters starts;
    # at 2025-03-31 C3 (300, won 04-01) and C4 (100, lost 04-02) are in demo -> 300 / 400 in Q2
    p = fc.period_win_probabilities(probs_ds, "2025-Q3").set_index("step")
    assert p.attrs["windows"] == ["2025-Q2", "2025-Q1", "2024-Q4", "2024-Q3"]
    demo = p.loc["demo"]
    assert (demo.closed_deals, demo.won_deals, demo.source) == (2, 1, "history")
    assert demo.probability == pytest.approx(0.75)
    assert p.attrs["by_window"].loc["demo", "2025-Q2"] == pytest.approx(0.75)
    # prospecting: C1, C2 were created after 2024-12-31 and closed before 2025-03-31: none seen
    assert p.loc["prospecting", "source"] == "config" and p.loc["prospecting", "probability"] == 0.1


# -- time-series forecast ------------------------------------------------------------------------


def test_seasonal_naive_values_and_interval():
    y = [10, 20, 30, 40, 12, 22, 32, 42]
    f = fc.seasonal_naive(y, 4, 5)
    assert list(f.forecast) == [12, 22, 32, 42, 12]
    # residuals y_t - y_{t-4} are all 2: sigma 2; k = 1 for h <= 4, 2 for h = 5
    assert f.high.iloc[0] - f.forecast.iloc[0] == pytest.approx(Z80 * 2)
    assert f.forecast.iloc[4] - f.low.iloc[4] == pytest.approx(Z80 * 2 * math.sqrt(2))
    short = fc.seasonal_naive([5, 7], 4, 2)  # shorter than a season: plain naive
    assert list(short.forecast) == [7, 7]
    assert short.high.iloc[1] - 7 == pytest.approx(Z80 * 2 * math.sqrt(2))
    one = fc.seasonal_naive([5], 4, 1)
    assert one.forecast.iloc[0] == 5 and math.isnan(one.low.iloc[0])


def test_accuracy_mape_and_bias():
    mape, bias, n = fc.accuracy([100, 0, 200, 50], [110, 5, 150, 50])
    assert n == 3  # the zero actual is skipped
    assert mape == pytest.approx((0.1 + 0.25 + 0.0) / 3)
    assert bias == pytest.approx((0.1 - 0.25 + 0.0) / 3)
    m0, b0, n0 = fc.accuracy([0, 0], [1, 2])
    assert n0 == 0 and math.isnan(m0) and math.isnan(b0)


QUARTERLY = [100, 200, 300, 400, 110, 210, 310, 410, 120, 220, 320, 420]  # 2022-Q1 .. 2024-Q4


@pytest.fixture
def series_ds(tmp_path: Path):
    rows = ["opportunity_id,owner_id,created_at,status,stage,amount,close_date"]
    quarter_starts = [f"{y}-{m:02d}" for y in (2022, 2023, 2024) for m in (1, 4, 7, 10)]
    for i, (ym, v) in enumerate(zip(quarter_starts, QUARTERLY)):
        rows.append(f"S{i:02d},R1,{ym}-02T09:00:00,won,Closed Won,{v},{ym}-20")
    folder = write_tables(tmp_path / "series", reps=REPS, opportunities="\n".join(rows) + "\n")
    return analysis.load(folder, config={"as_of": "2024-12-31"})


def test_revenue_forecast_naive_and_backtest_by_hand(series_ds):
    r = fc.revenue_forecast(series_ds, horizon=2, backtest_periods=4)
    assert list(r.history.period) == [f"{y}-Q{q}" for y in (2022, 2023, 2024) for q in (1, 2, 3, 4)]
    naive = r.forecast[r.forecast.model == "seasonal_naive"]
    assert list(naive.period) == ["2025-Q1", "2025-Q2"]
    assert list(naive.forecast) == [120, 220]
    # seasonal differences over the history are all 10: interval +- z * 10
    assert naive.high.iloc[0] - 120 == pytest.approx(Z80 * 10)
    bt = r.backtest[r.backtest.model == "seasonal_naive"]
    assert list(bt.period) == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
    assert list(bt.forecast) == [110, 210, 310, 410]
    acc = r.accuracy.set_index("model")
    mape = np.mean([10 / 120, 10 / 220, 10 / 320, 10 / 420])
    assert acc.loc["seasonal_naive", "mape"] == pytest.approx(mape)
    assert acc.loc["seasonal_naive", "bias"] == pytest.approx(-mape)
    assert acc.loc["ets", "periods"] == 4
    # the winner has the lower MAPE and its rows are flagged
    expected = "ets" if acc.loc["ets", "mape"] < acc.loc["seasonal_naive", "mape"] else "seasonal_naive"
    assert r.winner == expected and bool(acc.loc[expected, "is_winner"])
    assert set(r.best.model) == {expected} and len(r.best) == 2
    assert r.spec == "ETS(A,Ad,A) m=4"  # 12 quarters: three seasons
    assert "Time-series forecast of revenue for 2025-Q1" in r.sentence and "MAPE" in r.sentence
    ets = r.forecast[r.forecast.model == "ets"]
    assert (ets.low < ets.forecast).all() and (ets.forecast < ets.high).all()


def test_revenue_forecast_end_and_errors(series_ds):
    r = fc.revenue_forecast(series_ds, end="2024-Q2", backtest_periods=2)
    naive = r.forecast[r.forecast.model == "seasonal_naive"]
    assert list(naive.period) == ["2024-Q3", "2024-Q4"]
    assert list(naive.forecast) == [310, 410]
    assert list(r.backtest.period.unique()) == ["2024-Q1", "2024-Q2"]
    with pytest.raises(ForecastError, match="not complete"):
        fc.revenue_forecast(series_ds, end="2025-Q1")
    with pytest.raises(ForecastError, match="not a count or sum"):
        fc.revenue_forecast(series_ds, metric="win_rate")
    with pytest.raises(ForecastError, match="horizon"):
        fc.revenue_forecast(series_ds, horizon=0)


def test_revenue_forecast_is_deterministic(series_ds):
    a = fc.revenue_forecast(series_ds, seed=3, backtest_periods=2)
    b = fc.revenue_forecast(series_ds, seed=3, backtest_periods=2)
    pd.testing.assert_frame_equal(a.forecast, b.forecast)
    pd.testing.assert_frame_equal(a.backtest, b.backtest)
    pd.testing.assert_frame_equal(a.accuracy, b.accuracy)
    assert a.sentence == b.sentence


def test_ets_spec_by_length():
    assert fc.ets_forecast([1.0, 2.0], 4, 1)[1] == "none"
    assert fc.ets_forecast([5.0, 6.0, 5.5, 6.2], 4, 1)[1] == "ETS(A,N,N)"
    y = [float(v) for v in QUARTERLY]
    assert fc.ets_forecast(y[:8], 4, 1)[1] == "ETS(A,N,A) m=4"  # two seasons, not three
    assert fc.ets_forecast(y, 4, 1)[1] == "ETS(A,Ad,A) m=4"


# -- simulation ----------------------------------------------------------------------------------

SIM_OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date
W1,R1,2025-06-01T09:00:00,won,Closed Won,100,2025-07-10
W2,R2,2025-03-01T09:00:00,won,Closed Won,999,2025-06-20
O1,R1,2025-07-01T09:00:00,open,Closing,250,2025-09-10
O2,R2,2025-07-02T09:00:00,open,Prospecting,500,2025-09-20
O3,R3,2025-06-01T09:00:00,open,Closing,40,2025-07-01
O4,R3,2025-06-01T09:00:00,open,Closing,70,2025-10-15
"""
NEW_DEAL = "N1,R3,2025-05-20T09:00:00,won,Closed Won,30,2025-06-10\n"
SIM_QUOTAS = """\
owner,period_start,period_end,metric,target
R1,2025-07-01,2025-09-30,revenue,350
R2,2025-07-01,2025-09-30,revenue,1
West,2025-07-01,2025-09-30,revenue,40
R1,2025-07-01,2025-09-30,deals_won,5
"""


def _sim_ds(tmp_path: Path, opps: str):
    """Q3 2025 as of 2025-08-15; closing wins with probability 1, prospecting with 0.

    W1 won in Q3 before as_of (100); O1 (250, p 1) and O3 (40, p 1, overdue) always win; O2
    (p 0) never; O4 closes after Q3. Without N1 the total is 390 in every simulation.
    """
    folder = write_tables(tmp_path / "sim", reps=REPS, opportunities=opps, quotas=SIM_QUOTAS)
    stages = [{"name": "Prospecting", "step": "prospecting", "probability": 0.0},
              {"name": "Closing", "step": "closing", "probability": 1.0}]
    return analysis.load(folder, config={"as_of": "2025-08-15", "stages": stages,
                                         "forecast": {"min_history_deals": 1000, "simulations": 2000}})


def test_simulation_degenerate_probabilities_exact(tmp_path):
    ds = _sim_ds(tmp_path, SIM_OPPS)
    s = fc.simulate_outcome(ds, "2025-Q3")
    row = s.summary.iloc[0]
    assert s.as_of == date(2025, 8, 15) and row.simulations == 2000
    assert row.won_to_date == 100 and row.open_deals == 3 and row.new_rate == 0
    assert (row.p10, row.p50, row.p90, row["mean"]) == (390, 390, 390, 390)
    assert (s.totals == 390).all()
    # company target: East has no team quota (reps 350 + 1) + West team quota 40 = 391 > 390
    assert row.target == 391 and row.p_reach_target == 0.0
    reps = s.groups["rep_id"].set_index("rep_id")
    assert reps.loc["R1", "p50"] == 350 and reps.loc["R1", "p_reach_target"] == 1.0  # exactly the quota
    assert reps.loc["R2", "p_reach_target"] == 0.0
    assert math.isnan(reps.loc["R3", "p_reach_target"])  # no quota
    teams = s.groups["team"].set_index("team")
    assert teams.loc["East", "target"] == 351 and teams.loc["East", "p_reach_target"] == 0.0
    assert teams.loc["West", "target"] == 40 and teams.loc["West", "p_reach_target"] == 1.0
    assert "P50 $390" in s.sentence and "0% chance of reaching the $391 quota" in s.sentence


def test_simulation_new_business_and_seed(tmp_path):
    # N1 (R3, created 2025-05-20 >= Q2 start + 46 days, won in Q2) is the only analogous deal of
    # the one past quarter on record: lambda = 1, amounts always 30 -> total = 390 + 30 * Poisson(1)
    ds = _sim_ds(tmp_path, SIM_OPPS + NEW_DEAL)
    s = fc.simulate_outcome(ds, "2025-Q3", n=10_000, seed=11)
    row = s.summary.iloc[0]
    assert row.new_rate == 1.0 and row.new_expected == 30.0
    # Poisson(1): P(N=0) = .368, P(N<=1) = .736, P(N<=2) = .920
    assert (row.p10, row.p50, row.p90) == (390, 420, 450)
    assert row["mean"] == pytest.approx(420, abs=2)
    assert row.p_reach_target == pytest.approx(1 - math.exp(-1), abs=0.02)  # 391 needs one new deal
    west = s.groups["team"].set_index("team").loc["West"]
    assert west.p_reach_target == 1.0 and west["mean"] == pytest.approx(70, abs=2)
    again = fc.simulate_outcome(ds, "2025-Q3", n=10_000, seed=11)
    np.testing.assert_array_equal(s.totals, again.totals)
    pd.testing.assert_frame_equal(s.groups["rep_id"], again.groups["rep_id"])
    other = fc.simulate_outcome(ds, "2025-Q3", n=10_000, seed=12)
    assert not np.array_equal(s.totals, other.totals)


def test_simulation_as_of_rules(tmp_path):
    ds = _sim_ds(tmp_path, SIM_OPPS)
    with pytest.raises(ForecastError, match="not before the last day"):
        fc.simulate_outcome(ds, "2025-Q3", as_of="2025-09-30")
    # a past period defaults to the day before it starts: Q2 as of 2025-03-31
    s = fc.simulate_outcome(ds, "2025-Q2", n=200)
    assert s.as_of == date(2025, 3, 31)
    # W2 (won in June) was open then, in no known step, and no deal had closed yet: no overall
    # rate either, so its probability is not available and it is left out of the simulation
    d = fc.open_deals_forecast(ds, as_of="2025-03-31").set_index("opportunity_id")
    assert math.isnan(d.loc["W2", "probability"]) and d.loc["W2", "probability_source"] == "none"
    assert d.loc["W2", "category"] == "pipeline" and math.isnan(d.loc["W2", "weighted"])
    assert math.isnan(fc.weighted_pipeline(ds, as_of="2025-03-31", deals=d.reset_index()).weighted.iloc[0])
    row = s.summary.iloc[0]
    assert (row.won_to_date, row.open_deals, row.p50) == (0, 0, 0)


# -- the sample dataset --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    return analysis.load(SAMPLE)


def test_sample_runs_and_is_sane(sample):
    p = fc.win_probabilities(sample)
    assert p.probability.between(0, 1).all() and (p.source == "history").all()
    d = fc.open_deals_forecast(sample)
    w = fc.weighted_pipeline(sample, deals=d)
    assert w.deals.sum() == len(d) and w.amount.sum() == pytest.approx(d.amount.sum())
    assert (w.weighted <= w.amount).all()
    assert fc.pipeline_sentence(sample, w).startswith("Weighted pipeline expected to close in 2026-Q4")
    r = fc.revenue_forecast(sample)
    assert r.history.period.iloc[-1] == "2026-Q3" and list(r.best.period) == ["2026-Q4", "2027-Q1"]
    assert (r.forecast.low <= r.forecast.forecast).all() and (r.forecast.forecast <= r.forecast.high).all()
    assert r.accuracy.mape.between(0, 1).all()
    t0 = time.perf_counter()
    s = fc.simulate_outcome(sample, "2026-Q3", n=10_000)
    elapsed = time.perf_counter() - t0
    row = s.summary.iloc[0]
    assert row.p10 <= row.p50 <= row.p90 and row.open_deals > 0
    assert 0 <= row.p_reach_target <= 1
    for frame in s.groups.values():
        probs = frame.p_reach_target.dropna()
        assert len(probs) and probs.between(0, 1).all()
        assert (frame.p10 <= frame.p90).all()
    assert elapsed < 10, f"10,000 simulations took {elapsed:.1f} s"


def test_outcome_backtest_on_sample(sample):
    t0 = time.perf_counter()
    b = fc.outcome_backtest(sample, periods=4)
    elapsed = time.perf_counter() - t0
    assert list(b.period) == ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"]
    assert list(b.as_of) == [date(2025, 9, 30), date(2025, 12, 31), date(2026, 3, 31), date(2026, 6, 30)]
    assert (b.p10 <= b.p50).all() and (b.p50 <= b.p90).all()
    assert list(b.inside) == list((b.p10 <= b.actual) & (b.actual <= b.p90))
    # actuals are the revenue metric of each quarter
    rev = analysis.metrics(sample, ["revenue"], grain="quarter")
    rev = dict(zip(rev["period"], rev["revenue"]))
    for r in b.itertuples():
        assert r.actual == pytest.approx(rev[r.period], abs=0.01)
        assert r.won_from_open + r.won_new == pytest.approx(r.actual, abs=0.01)
    # calibration on the sample: most actuals inside P10-P90, P50 within 15% on average
    assert b.attrs["coverage"] >= 0.75 and b.attrs["mape"] < 0.15
    assert "of the last 4 quarters" in fc.backtest_sentence(sample, b)
    assert elapsed < 10, f"backtest took {elapsed:.1f} s"
    with pytest.raises(ForecastError, match="periods"):
        fc.outcome_backtest(sample, periods=0)


def test_forecast_sentence_without_an_interval_says_so():
    from analysis.steering.forecast import ForecastResult, forecast_sentence

    ds = analysis.load(SAMPLE)
    fc_ = pd.DataFrame({"period": ["2026-Q4"], "model": ["seasonal_naive"], "forecast": [100.0], "low": [float("nan")],
                        "high": [float("nan")], "is_winner": [True]})
    acc = pd.DataFrame({"model": ["seasonal_naive", "ets"], "periods": [1, 1], "mape": [0.1, 0.2], "bias": [0.0, 0.0],
                        "is_winner": [True, False]})
    result = ForecastResult("revenue", "quarter", pd.DataFrame(), fc_, pd.DataFrame(), acc, "seasonal_naive", "ETS(A,N,N)")
    text = forecast_sentence(ds, result)
    assert "n/a" not in text and "no interval" in text


# -- seasonal new business, calibration and the headline -----------------------------------------


def _season_opps(last: str, *, q4_deals: int = 4, other_deals: int = 2) -> str:
    """Deals of 100 created on the 2nd day of each quarter and won on its 20th, 2022-Q1 up to the
    quarter starting ``last`` (YYYY-MM): Q4 has twice the deals (and revenue) of the others."""
    rows = ["opportunity_id,owner_id,created_at,status,stage,amount,close_date"]
    for y in (2022, 2023, 2024, 2025):
        for m in (1, 4, 7, 10):
            if f"{y}-{m:02d}" > last:
                continue
            for k in range(q4_deals if m == 10 else other_deals):
                rows.append(f"N{y}{m:02d}{k},R{1 + k % 3},{y}-{m:02d}-02T09:00:00,won,Closed Won,100,{y}-{m:02d}-20")
    return "\n".join(rows) + "\n"


def _season_ds(tmp_path: Path, name: str, last: str):
    folder = write_tables(tmp_path / name, reps=REPS, opportunities=_season_opps(last))
    return analysis.load(folder, config={"as_of": "2025-06-30", "forecast": {"simulations": 400}})


@pytest.fixture(scope="module")
def season_ds(tmp_path_factory):
    return _season_ds(tmp_path_factory.mktemp("season"), "season", "2025-04")


def test_new_business_gets_the_seasonality_of_the_time_series(season_ds):
    """Revenue 200 a quarter, 400 in Q4: the ETS seasonal factors are 1.6 (Q4) and 0.8 (others).

    2024-Q4 as of 2024-09-30: analogous quarters 2023-Q4 (4 deals), 2024-Q1..Q3 (2 each), each
    brought to Q4's season: 4 x 1.6/1.6, 2 x 1.6/0.8 (three times) -> lambda = 4 (flat: 2.5).
    2024-Q3 as of 2024-06-30: 2 x 0.8/0.8, 4 x 0.8/1.6, 2, 2 -> lambda = 2: Q4 twice Q3."""
    ds = season_ds
    sf = fc.seasonal_factors(ds, as_of="2024-09-30").set_index("season")
    assert sf.attrs["end"] == "2024-Q3" and sf.attrs["periods"] == 11 and sf.attrs["reason"] == ""
    assert sf.factor.to_dict() == pytest.approx({3: 1.6, 0: 0.8, 1: 0.8, 2: 0.8}, rel=1e-3)
    q4 = fc.simulate_outcome(ds, "2024-Q4", as_of="2024-09-30", by=()).summary.iloc[0]
    q3 = fc.simulate_outcome(ds, "2024-Q3", as_of="2024-06-30", by=()).summary.iloc[0]
    assert q4.new_rate == pytest.approx(4.0, rel=1e-3) and q4.season_factor == pytest.approx(1.6, rel=1e-3)
    assert q3.new_rate == pytest.approx(2.0, rel=1e-3) and q3.season_factor == pytest.approx(0.8, rel=1e-3)
    assert q4.new_expected == pytest.approx(2 * q3.new_expected, rel=1e-3)
    assert q4.seasonality.startswith("ETS(A,N,A) m=4 on 11 quarters")
    # the time series reports the same factors (one estimate, two users)
    r = fc.revenue_forecast(ds, end="2024-Q3", backtest_periods=0)
    pd.testing.assert_frame_equal(r.seasonality, fc.seasonal_factors(ds, as_of="2024-09-30"))
    # fewer than two years of complete quarters: no factor, said so, counts used as they are
    short = fc.seasonal_factors(ds, as_of="2023-09-30")
    assert short.factor.isna().all() and "7 quarters of history" in short.attrs["reason"]
    s = fc.simulate_outcome(ds, "2023-Q4", as_of="2023-09-30", by=()).summary.iloc[0]
    assert s.season_factor == 1.0 and s.new_rate == 2.5 and s.seasonality.startswith("none: 7 quarters")


def test_seasonality_and_simulation_use_nothing_after_as_of(tmp_path, season_ds):
    before = _season_ds(tmp_path, "before", "2024-07")
    after = season_ds  # adds 2024-Q4 .. 2025-Q2
    assert after.table("opportunities").count().execute() > before.table("opportunities").count().execute()
    a = fc.simulate_outcome(before, "2024-Q4", as_of="2024-09-30", n=300, by=())
    b = fc.simulate_outcome(after, "2024-Q4", as_of="2024-09-30", n=300, by=())
    pd.testing.assert_frame_equal(a.summary, b.summary)
    np.testing.assert_array_equal(a.totals, b.totals)
    pd.testing.assert_frame_equal(fc.seasonal_factors(before, as_of="2024-09-30"),
                                  fc.seasonal_factors(after, as_of="2024-09-30"))
    # the calibration replays the same quarters (each replay is a simulation as of a day before)
    assert fc.scored_periods(before, as_of="2024-09-30") == fc.scored_periods(after, as_of="2024-09-30")


CAL_OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date
A1,R1,2023-12-15T09:00:00,won,Closed Won,1000,2024-02-10
A2,R1,2024-03-15T09:00:00,won,Closed Won,200,2024-05-10
A3,R2,2024-06-15T09:00:00,won,Closed Won,900,2024-08-10
A4,R2,2024-09-15T09:00:00,won,Closed Won,300,2024-11-10
A5,R3,2024-12-15T09:00:00,won,Closed Won,800,2025-02-10
A6,R3,2025-03-15T09:00:00,won,Closed Won,400,2025-05-10
A7,R1,2025-03-16T09:00:00,lost,Closed Lost,100,2025-05-12
A8,R2,2025-06-15T09:00:00,won,Closed Won,900,2025-08-10
A9,R3,2025-09-15T09:00:00,open,Closing,600,2025-11-10
"""


@pytest.fixture(scope="module")
def cal_ds(tmp_path_factory):
    """Every deal is created in the month before its quarter and sits in Closing (probability 1)
    until it closes: the simulation of a quarter is its Closing deals, exactly (no new business).
    Revenue 2024-Q1..2025-Q3: 1000, 200, 900, 300, 800, 400, 900; A7 (100) is lost in 2025-Q2."""
    history = ["opportunity_id,stage,entered_at"]
    for line in CAL_OPPS.splitlines()[1:]:
        oid, _, created, status, stage, _, close = line.split(",")
        history.append(f"{oid},Closing,{created}")
        if status != "open":
            history.append(f"{oid},{stage},{close}T12:00:00")
    folder = write_tables(tmp_path_factory.mktemp("cal"), reps=REPS, opportunities=CAL_OPPS, stage_history="\n".join(history) + "\n")
    stages = [{"name": "Prospecting", "step": "prospecting", "probability": 0.0},
              {"name": "Closing", "step": "closing", "probability": 1.0}]
    return analysis.load(folder, config={"as_of": "2025-09-30", "stages": stages,
                                         "forecast": {"min_history_deals": 1000, "simulations": 200}})


def test_calibration_counts_exact_and_the_simulation_wins_the_headline(cal_ds):
    ds = cal_ds
    cal = fc.simulation_calibration(ds, n=200)
    # replayed: the quarters the time series scores (3 quarters before each)
    assert cal.periods == ["2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3"] and cal.reason == ""
    assert list(cal.frame.forecast) == [300, 800, 500, 900] and list(cal.frame.actual) == [300, 800, 400, 900]
    assert list(cal.frame.inside) == [True, True, False, True]
    assert (cal.inside, cal.with_interval, cal.coverage) == (3, 4, 0.75)
    assert cal.count_text() == "3 of 4 quarters"
    assert cal.mape == pytest.approx(0.25 / 4) and cal.bias == pytest.approx(0.25 / 4)
    h = fc.headline(ds, "2025-Q4", n=200, replay_n=200)
    assert h.as_of == date(2025, 9, 30) and h.compared_on == ("2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3")
    assert h.chosen.method == "simulation" and h.chosen.value == 600
    ts = h.table.set_index("method").loc["time_series"]
    assert ts.mape > cal.mape and ts.backtest_periods == 4
    assert h.table.is_headline.tolist() == [True, False, False]
    assert ("P50 $600 (P10-P90 $600-$600); the actual fell inside P10-P90 in 3 of 4 quarters replayed as of the day "
            "before each; P50 off by 6.3% on average") in h.sentence
    assert "lower than that of the time series" in h.sentence


def test_the_time_series_wins_the_headline_when_its_error_is_lower(series_ds):
    # revenue 100, 200, 300, 400 (+10 a year), each quarter's deal created and won within it:
    # the time series forecasts it within a few percent, the simulation only knows a run rate
    h = fc.headline(series_ds, "2025-Q1", n=300, replay_n=300)
    t = h.table.set_index("method")
    assert h.chosen.method == "time_series" and t.loc["time_series", "mape"] < t.loc["simulation", "mape"]
    assert list(h.compared_on) == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
    r = fc.revenue_forecast(series_ds, horizon=1)
    assert h.chosen.value == r.best.forecast.iloc[0]
    assert t.loc["time_series", "mape"] == pytest.approx(r.accuracy.set_index("model").loc[r.winner, "mape"])
    assert "from the time series" in h.sentence and "lower than that of the simulation" in h.sentence


def test_headline_without_history_says_its_accuracy_is_unknown(tmp_path):
    ds = _sim_ds(tmp_path, SIM_OPPS)
    h = fc.headline(ds, "2025-Q3", n=200, replay_n=200)
    assert h.compared_on == () and h.chosen.method == "simulation"
    assert "its accuracy is unknown: too little history" in h.sentence and "no backtest was possible" in h.sentence
    assert " 0%" not in h.sentence and "0 of" not in h.sentence
    assert (h.table.backtest_periods == 0).all() and h.table.mape.isna().all()


def _cand(method: str, value: float, low: float = math.nan, high: float = math.nan):
    cal = fc.Calibration.of(method, "quarter", pd.DataFrame({"period": []}))
    label = {"simulation": "the simulation", "time_series": "the time series"}[method]
    return fc.Candidate(method, label, value, low, high, cal, True, f"({method} note)")


def test_disagreement_sentence_exactly_when_a_forecast_lies_outside_the_other_interval(series_ds):
    sim = _cand("simulation", 100, 80, 120)
    assert fc.disagreement_sentence(series_ds, sim, _cand("time_series", 110, 90, 130)) == ""
    assert fc.disagreement_sentence(series_ds, sim, _cand("time_series", 120, 100, 140)) == ""  # on the edge
    assert fc.disagreement_sentence(series_ds, sim, _cand("time_series", 119)) == ""  # no interval of its own
    text = fc.disagreement_sentence(series_ds, sim, _cand("time_series", 130, 90, 170))
    assert text.startswith("The time series' $130 lies above the simulation's P10-P90 ($80-$120).")
    assert "They can differ: the simulation (simulation note), while the time series (time_series note)." in text
    # the other inside the headline's interval, but the headline outside the other's
    text = fc.disagreement_sentence(series_ds, sim, _cand("time_series", 115, 114, 116))
    assert text.startswith("The simulation's P50 $100 lies below the time series' 80% interval ($114-$116).")
    assert fc.disagreement_sentence(series_ds, sim, _cand("time_series", 70)).startswith(
        "The time series' $70 lies below the simulation's P10-P90")


def test_period_probabilities_of_a_later_period_count_only_wins_within_it(cal_ds):
    # each deal sits in Closing from the month before its quarter and is won (A7 lost) within it
    ds = cal_ds
    closing = fc.period_win_probabilities(ds, "2025-Q4", as_of="2025-09-30").set_index("step").loc["closing"]
    # as of the day before: 2024-Q4 .. 2025-Q3 open A4, A5, A6 + A7, A8 -> won 2400 of 2500
    assert closing.history_rate == pytest.approx(2400 / 2500)
    # as of a quarter earlier: the deals open 93 days before each analogous quarter are won in
    # the quarter before it, never within it
    later = fc.period_win_probabilities(ds, "2025-Q4", as_of="2025-06-30").set_index("step").loc["closing"]
    assert later.observations > 0 and later.history_rate == 0.0
