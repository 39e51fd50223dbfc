"""Pipeline over time: as-of reconstruction, waterfall, close periods and the cycle survival curve.

The main fixture (company time zone UTC; period of interest 2025-Q3 = Jul 1 .. Sep 30):

deal owner team created           status close       amount  stage history               notes
D1   R1    East 2025-05-10 09:00  open   2025-12-15  100     Prosp 05-10, Qual 06-01,
                                                              Demo 08-01 10:00
D2   R1    East 2025-06-01 08:00  won    2025-08-15  200     Prosp 06-01, Demo 07-10, Won
D3   R2    East 2025-06-20 10:00  lost   2025-07-01   50.25  Qual 06-20, Lost 07-01      lost on P's first day
D4   R2    East 2025-07-05 10:00  won    2025-09-30  300     (none)                      closed on P's last day
D5   R3    West 2025-08-01 09:00  open   2025-11-30  400     Prosp 08-01 12:00           created in P, still open
D6   R1    East 2025-08-10 10:00  lost   2025-08-20   75.5   (none)                      created and lost in P
D7   R2    East 2025-09-10 10:00  won    2025-09-01  120     (none)                      bad: close < created
D8   R1    East 2025-04-01 10:00  won    2025-06-30  999     (none)                      closed before P
D9   R3    West 2025-06-15 10:00  won    2025-10-01   60     Prosp 06-15, Lost 06-25,    lost, re-opened, won
                                                              Qual 07-20, Won 10-01       the day after P
D10  R1    East 2025-10-02 10:00  open   2026-01-15   80     (none)                      created after P
D11  R2    East 2025-09-30 23:30  open   2025-12-31   10     (none)                      created late on P's last day
D12  R1    East 2025-03-01 10:00  lost   2025-02-01    5     (none)                      bad, before P
D13  R1    East 2025-06-30 23:59  open   2025-09-15    7     (none), stage Research      just before P; overdue later
D14  R3    West 2025-08-05 10:00  won    2025-06-01   30     (none)                      bad: close < created, in P
D15  R2    East 2025-10-05 10:00  open   (none)       20     (none), Qualification       undated

Waterfall 2025-Q3, worked by hand:
start    D1 100 + D2 200 + D3 50.25 + D13 7                  = 357.25 (4 deals; D9 lost 06-25)
created  D4 300 + D5 400 + D6 75.5 + D7 120 + D11 10 + D14 30 = 935.50 (6)
reopened D9 60 (its history re-opens it on 07-20)             =  60.00 (1)
won      D2 200 + D4 300 + D7 120 + D14 30                    = 650.00 (4)
lost     D3 50.25 + D6 75.5                                   = 125.75 (2)
end      D1 100 + D5 400 + D9 60 + D11 10 + D13 7             = 577.00 (5)
357.25 + 935.5 + 60 - 650 - 125.75 = 577.  East: 357.25 + 505.5 - 620 - 125.75 = 117;
West: 0 + 430 + 60 - 30 - 0 = 460.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analysis
from analysis.analytics import pipeline as pl
from analysis.data.periods import parse_period

from .conftest import write_tables

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"

REPS = """\
rep_id,name,team
R1,Ann,East
R2,Bob,East
R3,Cy,West
"""
OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date
D1,R1,2025-05-10T09:00:00,open,Demo,100,2025-12-15
D2,R1,2025-06-01T08:00:00,won,Closed Won,200,2025-08-15
D3,R2,2025-06-20T10:00:00,lost,Closed Lost,50.25,2025-07-01
D4,R2,2025-07-05T10:00:00,won,Closed Won,300,2025-09-30
D5,R3,2025-08-01T09:00:00,open,Prospecting,400,2025-11-30
D6,R1,2025-08-10T10:00:00,lost,Closed Lost,75.5,2025-08-20
D7,R2,2025-09-10T10:00:00,won,Closed Won,120,2025-09-01
D8,R1,2025-04-01T10:00:00,won,Closed Won,999,2025-06-30
D9,R3,2025-06-15T10:00:00,won,Closed Won,60,2025-10-01
D10,R1,2025-10-02T10:00:00,open,Prospecting,80,2026-01-15
D11,R2,2025-09-30T23:30:00,open,Prospecting,10,2025-12-31
D12,R1,2025-03-01T10:00:00,lost,Closed Lost,5,2025-02-01
D13,R1,2025-06-30T23:59:59,open,Research,7,2025-09-15
D14,R3,2025-08-05T10:00:00,won,Closed Won,30,2025-06-01
D15,R2,2025-10-05T10:00:00,open,Qualification,20,
"""
HISTORY = """\
opportunity_id,stage,entered_at
D1,Prospecting,2025-05-10T09:00:00
D1,Qualification,2025-06-01T10:00:00
D1,Demo,2025-08-01T10:00:00
D2,Prospecting,2025-06-01T08:00:00
D2,Demo,2025-07-10T10:00:00
D2,Closed Won,2025-08-15T12:00:00
D3,Qualification,2025-06-20T10:00:00
D3,Closed Lost,2025-07-01T09:00:00
D5,Prospecting,2025-08-01T12:00:00
D9,Prospecting,2025-06-15T10:00:00
D9,Closed Lost,2025-06-25T10:00:00
D9,Qualification,2025-07-20T10:00:00
D9,Closed Won,2025-10-01T10:00:00
"""


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    folder = write_tables(tmp_path_factory.mktemp("pipeline"), reps=REPS, opportunities=OPPS, stage_history=HISTORY)
    return analysis.load(folder)


@pytest.fixture(scope="module")
def sample():
    return analysis.load(SAMPLE)


def _row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(frame), bool)
    for k, v in where.items():
        mask &= (frame[k] == v).to_numpy()
    assert mask.sum() == 1, (where, frame)
    return frame[mask].iloc[0]


# -- pipeline as of ------------------------------------------------------------------------------


def test_pipeline_as_of_day_takes_steps_from_history(ds):
    df = pl.pipeline_as_of(ds, date(2025, 6, 30), by="team")
    assert list(df.columns) == ["opportunity_id", "owner_id", "team", "step", "stage", "step_source", "amount",
                                "close_date"]
    got = {r.opportunity_id: (r.step, r.step_source, r.amount) for r in df.itertuples()}
    assert got == {
        "D1": ("qualification", "history", 100.0),
        "D2": ("prospecting", "history", 200.0),
        "D3": ("qualification", "history", 50.25),
        # D9 was lost on 06-25 by its history and re-opened on 07-20: closed on 06-30
        # no history: the current step of a still-open deal; created 23:59:59 on the day counts
        "D13": ("research", "current", 7.0),
    }  # D8 closed on 06-30 (gone at the end of the day); D12 closed at creation (bad close date)
    assert dict(zip(df.opportunity_id, df.team)) == {"D1": "East", "D2": "East", "D3": "East", "D13": "East"}
    # close_date is the final record's date: D2's actual close
    assert pd.Timestamp(_row(df, opportunity_id="D2").close_date) == pd.Timestamp("2025-08-15")


def test_pipeline_as_of_moment_within_a_day(ds):
    late = pl.pipeline_as_of(ds, datetime(2025, 8, 1, 10, 30))
    got = {r.opportunity_id: (None if pd.isna(r.step) else r.step, r.step_source) for r in late.itertuples()}
    assert got == {
        "D1": ("demo", "history"),  # entered Demo at 10:00
        "D2": ("demo", "history"),
        "D4": (None, "none"),  # won since, no history: its step then is unknown
        "D5": ("prospecting", "first_history"),  # created 09:00, first recorded stage 12:00
        "D9": ("qualification", "history"),  # re-opened 07-20
        "D13": ("research", "current"),
    }
    early = pl.pipeline_as_of(ds, "2025-08-01T09:30:00")
    assert _row(early, opportunity_id="D1").step == "qualification"
    # a date means the end of that day
    assert _row(pl.pipeline_as_of(ds, date(2025, 8, 1)), opportunity_id="D1").step == "demo"
    # an aware datetime is converted to the company time zone (UTC here)
    aware = pd.Timestamp("2025-08-01T05:30:00-05:00")
    assert _row(pl.pipeline_as_of(ds, aware), opportunity_id="D1").step == "demo"


def test_pipeline_as_of_rejects_bad_dates(ds):
    with pytest.raises(pl.PipelineError, match="2025-13-40"):
        pl.pipeline_as_of(ds, "2025-13-40")


def test_pipeline_by_step(ds):
    df = pl.pipeline_by_step(ds, date(2025, 6, 30))
    assert list(df.step) == list(analysis.schema.STEPS)
    got = {r.step: (r.deals, r.amount) for r in df.itertuples() if r.deals}
    assert got == {"prospecting": (1, 200.0), "qualification": (2, 150.25), "research": (1, 7.0)}
    by = pl.pipeline_by_step(ds, date(2025, 6, 30), by="team")
    assert len(by) == len(analysis.schema.STEPS) and set(by.team) == {"East"}  # West's D9 was lost on 06-25
    assert by.amount.sum() == pytest.approx(357.25)
    july = pl.pipeline_by_step(ds, date(2025, 7, 31), by="team")
    assert set(july.team) == {"East", "West"}
    assert _row(july, team="West", step="qualification").deals == 1  # D9, re-opened on 07-20


def test_pipeline_as_of_matches_open_pipeline_metric(ds):
    m = analysis.metrics(ds, ["open_pipeline", "open_deals"], grain="quarter", periods=["2025-Q2", "2025-Q3"])
    for label in ("2025-Q2", "2025-Q3"):
        p = parse_period(label)
        df = pl.pipeline_as_of(ds, p.last_day)
        row = _row(m, period=label)
        assert len(df) == row.open_deals
        assert df.amount.sum() == pytest.approx(float(row.open_pipeline))


# -- open pipeline by expected close period ----------------------------------------------------------


def test_open_pipeline_by_close_period(ds):
    df = pl.open_pipeline_by_close_period(ds)  # snapshot day 2025-10-05 (latest deal created)
    assert df.attrs["as_of"] == date(2025, 10, 5)
    rows = [(r.close_period, r.step, r.deals, r.amount) for r in df.itertuples()]
    assert rows == [
        ("overdue", "research", 1, 7.0),  # D13 expected 2025-09-15
        ("2025-Q4", "prospecting", 2, 410.0),  # D5, D11
        ("2025-Q4", "demo", 1, 100.0),  # D1
        ("2026-Q1", "prospecting", 1, 80.0),  # D10
        ("undated", "qualification", 1, 20.0),  # D15
    ]
    monthly = pl.open_pipeline_by_close_period(ds, grain="month", by="team")
    assert _row(monthly, team="West", close_period="2025-11").amount == 400.0
    # as of a past day: the reconstructed pipeline, its steps then, overdue relative to that day
    # as of a past day: the reconstructed pipeline with its steps then (D2, D6 and D14 had closed)
    past = pl.open_pipeline_by_close_period(ds, as_of=date(2025, 8, 20))
    rows = [(r.close_period, None if pd.isna(r.step) else r.step, r.deals, r.amount) for r in past.itertuples()]
    assert rows == [
        ("2025-Q3", "research", 1, 7.0),  # D13
        ("2025-Q3", None, 1, 300.0),  # D4: won since, no history
        ("2025-Q4", "prospecting", 1, 400.0),  # D5
        ("2025-Q4", "qualification", 1, 60.0),  # D9 (re-opened 07-20; its close_date is the final one)
        ("2025-Q4", "demo", 1, 100.0),  # D1
    ]
    # overdue is judged against the as-of day
    assert _row(pl.open_pipeline_by_close_period(ds, as_of=date(2025, 9, 20)), close_period="overdue").amount == 7.0

# -- created vs closed --------------------------------------------------------------------------------


def test_created_vs_closed_uses_the_metric_engine(ds):
    df = pl.created_vs_closed(ds, grain="quarter", periods=["2025-Q3"], by="team")
    m = analysis.metrics(ds, ["pipeline_created", "revenue", "lost_amount", "opportunities_created"],
                         grain="quarter", periods=["2025-Q3"], by="team")
    east = _row(df, team="East")
    # D7, D12 and D14 close before they were created: flagged by validate and left out of every figure
    assert east.pipeline_created == _row(m, team="East").pipeline_created == 385.5
    assert east.revenue == 500.0  # D2 + D4 (close_date in Q3)
    assert east.lost_amount == 125.75
    assert east.net_created == pytest.approx(385.5 - 500 - 125.75)
    assert "pipeline_coverage" in df.attrs["unavailable"]  # no revenue quotas in the fixture
    assert list(df.columns[:3]) == ["team", "period", "opportunities_created"]


# -- waterfall ----------------------------------------------------------------------------------------


def test_waterfall_hand_worked(ds):
    w = pl.pipeline_waterfall(ds, "2025-Q3")
    assert len(w) == 1
    r = w.iloc[0]
    assert r.period == "2025-Q3"
    # D7 (120) and D14 (30), created in Q3, closed before they were created: left out at load
    assert (r.start, r.created, r.won, r.lost, r.end) == (357.25, 785.5, 500.0, 125.75, 577.0)
    assert (r.moved_in, r.moved_out, r.amount_change, r.reopened) == (0, 0, 0, 60.0)  # D9, re-opened 07-20
    counts = (r.start_deals, r.created_deals, r.won_deals, r.lost_deals, r.reopened_deals, r.end_deals)
    assert counts == (4, 4, 2, 2, 1, 5)
    assert list(w.columns) == ["period", "start", "created", "won", "lost", "moved_in", "moved_out",
                               "amount_change", "reopened", "end", "start_deals", "created_deals", "won_deals",
                               "lost_deals", "moved_in_deals", "moved_out_deals", "reopened_deals", "end_deals"]


def test_waterfall_by_team_hand_worked(ds):
    w = pl.pipeline_waterfall(ds, "2025-Q3", by="team")
    assert list(w.team) == ["East", "West"]
    east, west = _row(w, team="East"), _row(w, team="West")
    assert (east.start, east.created, east.won, east.lost, east.end) == (357.25, 385.5, 500.0, 125.75, 117.0)
    assert (west.start, west.created, west.won, west.lost, west.end) == (0.0, 400.0, 0.0, 0.0, 460.0)
    assert (west.reopened, west.reopened_deals) == (60.0, 1)  # D9
    assert (west.start_deals, west.created_deals, west.won_deals, west.end_deals) == (0, 1, 0, 2)


def test_waterfall_edge_cases_one_by_one(ds):
    """Each edge case of the fixture, as a one-deal group (by=rep is too coarse: use the deal)."""
    # month of September 2025: D4 closes on the last day, D7 (closed before created: left out), D11 late
    w = pl.pipeline_waterfall(ds, "2025-09", by="rep_id")
    r2 = _row(w, rep_id="R2")
    # R2: start D4 300 (created 07-05, open); created D11 10; won D4 300 (on 09-30)
    assert (r2.start, r2.created, r2.won, r2.lost, r2.end) == (300.0, 10.0, 300.0, 0.0, 10.0)
    # August: D6 created and lost within the month; D2 won; D5 created and still open; D14 left out
    aug = pl.pipeline_waterfall(ds, "2025-08", by="team")
    east, west = _row(aug, team="East"), _row(aug, team="West")
    assert (east.created, east.won, east.lost) == (75.5, 200.0, 75.5)
    assert (west.created, west.won, west.end) == (400.0, 0.0, 460.0)
    # the quarter after: start equals the previous end; D9 won on its first day
    q4 = pl.pipeline_waterfall(ds, "2025-Q4").iloc[0]
    assert q4.start == 577.0 and q4.won == 60.0 and q4.created == 100.0  # D10 80 + D15 20


def test_waterfall_matches_metrics_on_clean_data(ds):
    """Start / end are the open_pipeline metric; created is pipeline_created (bad dates included)."""
    m = analysis.metrics(ds, ["open_pipeline", "pipeline_created"], grain="quarter", periods=["2025-Q2", "2025-Q3"])
    w = pl.pipeline_waterfall(ds, "2025-Q3").iloc[0]
    assert w.start == float(_row(m, period="2025-Q2").open_pipeline)
    assert w.end == float(_row(m, period="2025-Q3").open_pipeline)
    assert w.created == float(_row(m, period="2025-Q3").pipeline_created)


def test_waterfall_check_names_the_group():
    frame = pd.DataFrame({
        "team": ["East"], "start": [Decimal("10.00")], "created": [Decimal("5")], "won": [Decimal("3")],
        "lost": [Decimal(0)], "moved_in": [Decimal(0)], "moved_out": [Decimal(0)], "amount_change": [Decimal(0)],
        "reopened": [Decimal(0)], "end": [Decimal("12.01")], "start_deals": [1], "created_deals": [1],
        "won_deals": [1], "lost_deals": [0], "moved_in_deals": [0], "moved_out_deals": [0], "reopened_deals": [0],
        "end_deals": [1],
    })
    with pytest.raises(AssertionError, match=r"2025-Q3.*East.*-0\.01"):
        pl._assert_reconciles(frame, ["team"], "2025-Q3")
    frame["end"] = [Decimal("12")]
    pl._assert_reconciles(frame, ["team"], "2025-Q3")
    frame["end_deals"] = [2]
    with pytest.raises(AssertionError, match="deal counts"):
        pl._assert_reconciles(frame, ["team"], "2025-Q3")


def test_waterfall_on_sample_reconciles_by_team(sample):
    started = time.perf_counter()
    w = pl.pipeline_waterfall(sample, "2026-Q3", by="team")  # raises if any team does not reconcile
    elapsed = time.perf_counter() - started
    assert len(w) >= 2 and elapsed < 5
    flows = w.start + w.created + w.moved_in - w.won - w.lost - w.moved_out + w.amount_change + w.reopened
    np.testing.assert_allclose(flows, w.end, rtol=0, atol=0.005)
    deals = (w.start_deals + w.created_deals + w.moved_in_deals - w.won_deals - w.lost_deals
             - w.moved_out_deals + w.reopened_deals)
    assert (deals == w.end_deals).all()
    # the sample has no bad close dates: every line is the metric of the same name
    m = analysis.metrics(sample, ["open_pipeline", "pipeline_created", "revenue", "lost_amount"], by="team",
                         grain="quarter", periods=["2026-Q2", "2026-Q3"])
    q2, q3 = m[m.period == "2026-Q2"].set_index("team"), m[m.period == "2026-Q3"].set_index("team")
    w = w.set_index("team")
    for col, metric, frame in (("start", "open_pipeline", q2), ("end", "open_pipeline", q3),
                               ("created", "pipeline_created", q3), ("won", "revenue", q3),
                               ("lost", "lost_amount", q3)):
        np.testing.assert_allclose(w[col], frame.loc[w.index, metric].astype(float), rtol=0, atol=0.005)
    total = pl.pipeline_waterfall(sample, "2026-Q3").iloc[0]
    assert total.end_deals == w.end_deals.sum()
    assert total.end == pytest.approx(w.end.sum(), abs=0.01)


# -- property: the waterfall always reconciles and follows its written rules --------------------------

_TEAMS = {"R1": "East", "R2": "East", "R3": "West", "R4": None}


def _reference(deals: list[dict], p) -> dict[str, tuple[Decimal, int]]:
    """The waterfall's rules in plain Python, for the whole company."""
    out = {k: [Decimal(0), 0] for k in ("start", "created", "won", "lost", "end")}
    for d in deals:
        created = d["created_at"].date()
        closed_on = None
        if d["status"] in ("won", "lost"):
            if d["close_date"] is None or d["close_date"] < created:
                continue  # flagged (no close date / closed before created) and left out of every figure
            closed_on = d["close_date"]
        start = created < p.start and (closed_on is None or closed_on >= p.start)
        new = p.start <= created < p.end
        end = created < p.end and (closed_on is None or closed_on >= p.end)
        closes = closed_on is not None and p.start <= closed_on < p.end and (start or new)
        for k, flag in (("start", start), ("created", new), ("end", end),
                        ("won", closes and d["status"] == "won"), ("lost", closes and d["status"] == "lost")):
            if flag:
                out[k][0] += d["amount"]
                out[k][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


@st.composite
def _deal_sets(draw):
    n = draw(st.integers(1, 18))
    deals = []
    for i in range(n):
        created = datetime(2025, 1, 1) + timedelta(days=draw(st.integers(0, 420)), minutes=draw(st.integers(0, 1439)))
        status = draw(st.sampled_from(["open", "won", "lost"]))
        offset = draw(st.one_of(st.none(), st.integers(-20, 200)))
        close = None if offset is None else created.date() + timedelta(days=offset)
        cents = draw(st.integers(0, 10_000_000))
        deals.append({"opportunity_id": f"D{i}", "owner_id": draw(st.sampled_from(sorted(_TEAMS))),
                      "created_at": created, "status": status, "close_date": close,
                      "amount": Decimal(cents) / 100})
    periods = draw(st.lists(st.sampled_from(
        [f"2025-{m:02d}" for m in range(1, 13)] + [f"2025-Q{q}" for q in range(1, 5)] + ["2026-Q1", "2025-H2"]
    ), min_size=1, max_size=2, unique=True))
    return deals, periods


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # new draws every run
@given(_deal_sets())
def test_waterfall_always_reconciles(case):
    deals, periods = case
    reps = pd.DataFrame({"rep_id": list(_TEAMS), "name": list(_TEAMS), "team": list(_TEAMS.values())})
    opps = pd.DataFrame({
        "opportunity_id": [d["opportunity_id"] for d in deals],
        "owner_id": [d["owner_id"] for d in deals],
        "created_at": [d["created_at"].isoformat() for d in deals],
        "status": [d["status"] for d in deals],
        "stage": ["Demo" for _ in deals],
        "amount": [str(d["amount"]) for d in deals],
        "close_date": [d["close_date"].isoformat() if d["close_date"] else None for d in deals],
    })
    ds = analysis.load({"reps": reps, "opportunities": opps})
    for label in periods:
        p = parse_period(label)
        whole = pl.pipeline_waterfall(ds, p).iloc[0]
        teams = pl.pipeline_waterfall(ds, p, by="team")  # raises AssertionError if a team does not reconcile
        ref = _reference(deals, p)
        for line, (amount, count) in ref.items():
            assert whole[line] == pytest.approx(float(amount), abs=1e-6), (label, line)
            assert whole[f"{line}_deals"] == count, (label, line)
            assert teams[f"{line}_deals"].sum() == count
            assert teams[line].sum() == pytest.approx(float(amount), abs=1e-4)
        assert whole.reopened == 0 and whole.reopened_deals == 0
        assert teams.team.isna().sum() <= 1  # R4 has no team: one NULL group at most


# -- the sales cycle as a survival curve ----------------------------------------------------------------

KM_REPS = """\
rep_id,name,team
R1,Ann,East
R3,Cy,West
"""
# January cohort (East):  K1 won after 10 days, K2 lost after 15 (censored), K3 won after 20,
#   K4 open, censored at the as-of day 2025-02-19 after 30 days, K5 won after 40.
#   S(10) = 4/5 = 0.8; S(20) = 0.8 * 2/3 = 0.5333; S(40) = 0. KM median 40 days.
# February cohort (West): K6 won and K7 lost on the same day 10: both at risk, S(10) = 1/2.
KM_OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date
K1,R1,2025-01-01T10:00:00,won,Closed Won,100,2025-01-11
K2,R1,2025-01-02T10:00:00,lost,Closed Lost,100,2025-01-17
K3,R1,2025-01-03T10:00:00,won,Closed Won,100,2025-01-23
K4,R1,2025-01-20T10:00:00,open,Demo,100,2025-06-30
K5,R1,2025-01-06T10:00:00,won,Closed Won,100,2025-02-15
K6,R3,2025-02-01T10:00:00,won,Closed Won,100,2025-02-11
K7,R3,2025-02-01T11:00:00,lost,Closed Lost,100,2025-02-11
"""


@pytest.fixture(scope="module")
def km_ds(tmp_path_factory):
    folder = write_tables(tmp_path_factory.mktemp("km"), reps=KM_REPS, opportunities=KM_OPPS)
    return analysis.load(folder, config={"as_of": "2025-02-19"})


def test_kaplan_meier_by_hand(km_ds):
    km = pl.cycle_survival(km_ds, period="2025-01")
    assert list(km.columns) == ["days", "at_risk", "events", "censored", "survival"]
    assert km.days.tolist() == [0, 10, 15, 20, 30, 40]
    assert km.at_risk.tolist() == [5, 5, 4, 3, 2, 1]
    assert km.events.tolist() == [0, 1, 0, 1, 0, 1]
    assert km.censored.tolist() == [0, 0, 1, 0, 1, 0]
    np.testing.assert_allclose(km.survival, [1, 0.8, 0.8, 0.8 * 2 / 3, 0.8 * 2 / 3, 0.0])
    assert km.attrs["share_won"] == pytest.approx(0.6)


def test_kaplan_meier_ties_and_groups(km_ds):
    feb = pl.cycle_survival(km_ds, period="2025-02")
    assert feb[["days", "at_risk", "events", "censored"]].values.tolist() == [[0, 2, 0, 0], [10, 2, 1, 1]]
    assert feb.survival.tolist() == [1.0, 0.5]
    by = pl.cycle_survival(km_ds, by="team")
    assert list(by.columns[:2]) == ["team", "days"]
    assert by[by.team == "West"].survival.tolist() == [1.0, 0.5]
    np.testing.assert_allclose(by[by.team == "East"].survival.iloc[-1], 0.0)
    assert by.attrs["share_won"] == {"East": 0.6, "West": 0.5}


def test_kaplan_meier_as_of_censors_later_closes(km_ds):
    # on 2025-01-20: K3 and K5 not closed yet (censored at 17 and 14 days), K4 created that day (0)
    km = pl.cycle_survival(km_ds, period="2025-01", as_of=date(2025, 1, 20))
    assert km[["days", "at_risk", "events", "censored"]].values.tolist() == [
        [0, 5, 0, 1], [10, 4, 1, 0], [14, 3, 0, 1], [15, 2, 0, 1], [17, 1, 0, 1]]
    np.testing.assert_allclose(km.survival, [1, 0.75, 0.75, 0.75, 0.75])
    assert np.isnan(pl.cycle_summary(km_ds, period="2025-01", as_of=date(2025, 1, 20)).km_median_days.iloc[0])


def test_cycle_summary_by_hand_and_against_the_engine(km_ds):
    s = pl.cycle_summary(km_ds, period="2025-01")
    r = s.iloc[0]
    # won in January: K1 (10 days) and K3 (20); the January cohort's KM median is 40
    assert (r.period, r.won_deals, r.mean_days, r.median_days) == ("2025-01", 2, 15.0, 15.0)
    assert (r.cohort_deals, r.cohort_won, r.cohort_lost, r.cohort_open) == (5, 3, 1, 1)
    assert (r.share_won, r.km_median_days) == (0.6, 40.0)
    m = analysis.metrics(km_ds, ["sales_cycle_days", "sales_cycle_days_median"], grain="month",
                         periods=["2025-01", "2025-02"])
    for label in ("2025-01", "2025-02"):
        s = pl.cycle_summary(km_ds, period=label).iloc[0]
        assert s.mean_days == float(_row(m, period=label).sales_cycle_days)
        assert s.median_days == float(_row(m, period=label).sales_cycle_days_median)


def test_cycle_summary_matches_engine_on_sample(sample):
    s = pl.cycle_summary(sample, period="2026-Q2", by="team").set_index("team")
    m = analysis.metrics(sample, ["sales_cycle_days", "sales_cycle_days_median", "deals_won"], by="team",
                         grain="quarter", periods=["2026-Q2"]).set_index("team")
    np.testing.assert_allclose(s.mean_days, m.loc[s.index, "sales_cycle_days"].astype(float), rtol=1e-12)
    np.testing.assert_allclose(s.median_days, m.loc[s.index, "sales_cycle_days_median"].astype(float), rtol=1e-12)
    assert (s.won_deals == m.loc[s.index, "deals_won"].astype(int)).all()
    km = pl.cycle_survival(sample, period="2026-Q2")
    assert km.survival.is_monotonic_decreasing and km.survival.iloc[0] <= 1
    assert km.at_risk.iloc[0] == km.events.sum() + km.censored.sum()


def test_without_stage_history_steps_are_current_or_unknown(km_ds):
    df = pl.pipeline_as_of(km_ds, date(2025, 1, 21))
    got = {r.opportunity_id: (None if pd.isna(r.step) else r.step, r.step_source) for r in df.itertuples()}
    # K2 was lost on 01-17; K3 and K5 were open then (closed since: step unknown), K4 still open
    assert got == {"K3": (None, "none"), "K4": ("demo", "current"), "K5": (None, "none")}


def test_empty_periods(km_ds):
    w = pl.pipeline_waterfall(km_ds, "2024-Q1")
    assert len(w) == 1 and w.iloc[0].end == 0 and w.iloc[0].start_deals == 0
    assert pl.pipeline_waterfall(km_ds, "2024-Q1", by="team").empty
    assert pl.cycle_survival(km_ds, period="2024-01").empty
    s = pl.cycle_summary(km_ds, period="2024-01").iloc[0]
    assert (s.won_deals, s.cohort_deals, s.cohort_open) == (0, 0, 0)
    assert np.isnan(s.mean_days) and np.isnan(s.share_won) and np.isnan(s.km_median_days)


def test_unknown_dimension_is_named(ds):
    with pytest.raises(analysis.UnknownNameError, match="did you mean 'team'"):
        pl.pipeline_waterfall(ds, "2025-Q3", by="teem")
