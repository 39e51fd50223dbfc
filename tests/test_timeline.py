"""One deal timeline: every module that asks "which deals were open then" gets the same answer.

Hand-built deals (company time zone UTC; moments 2025-02-15 as a date = the end of that day, and
2025-02-15T12:00 as an instant):

deal  status  close       stage history                                    open at 02-15 (day)   12:00
RE    won     2025-04-10  P 01-10, Lost 02-01, Q 03-01, Won 04-10         no: lost by history   no
NC    won     2025-02-10  P 01-05, Demo 01-20 (no closing row)            no: final record      no
UK    on_hold 2025-03-31  P 01-06                                          left out (status)     -
BC    lost    2025-01-15  (created 02-01: closes before it was created)   left out (load)       -
AF    lost    2025-01-25  P 01-03, Demo 02-05 (after close, no close row) no: final record      no
NH    open    -           (none), stage Qualification                     yes: current          yes
RW    open    -           P 01-02, Lost 01-30 (re-opened without a row)   yes: current          yes
LT    open    -           (created 02-15 15:00), P 02-15 15:00            yes (created by then) no: not yet
WT    won     2025-02-15  P 02-01, Won 02-15 10:00                         no                    no: won 10:00
WD    won     2025-02-15  P 02-01 (no closing row)                         no: closes that day   yes: until its end
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.analytics import funnel as F
from analysis.analytics import pipeline as pl
from analysis.data import timeline as tl
from analysis.steering import forecast as fc

from .conftest import write_tables

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"

REPS = """\
rep_id,name,team,role
R1,Ann,East,AE
R2,Bob,West,AE
"""

OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date
RE,R1,2025-01-10T09:00:00,won,Closed Won,100,2025-04-10
NC,R1,2025-01-05T09:00:00,won,Closed Won,200,2025-02-10
UK,R2,2025-01-06T09:00:00,on_hold,Prospecting,300,2025-03-31
BC,R2,2025-02-01T09:00:00,lost,Closed Lost,400,2025-01-15
AF,R2,2025-01-03T09:00:00,lost,Closed Lost,500,2025-01-25
NH,R1,2025-01-07T09:00:00,open,Qualification,600,2025-06-30
RW,R2,2025-01-02T09:00:00,open,Qualification,700,2025-06-30
LT,R1,2025-02-15T15:00:00,open,Prospecting,800,2025-06-30
WT,R2,2025-02-01T09:00:00,won,Closed Won,900,2025-02-15
WD,R1,2025-02-01T09:00:00,won,Closed Won,1000,2025-02-15
LAST,R1,2025-05-01T09:00:00,open,Prospecting,1,2025-06-30
"""

HISTORY = """\
opportunity_id,stage,entered_at
RE,Prospecting,2025-01-10T09:00:00
RE,Closed Lost,2025-02-01T09:00:00
RE,Qualification,2025-03-01T09:00:00
RE,Closed Won,2025-04-10T09:00:00
NC,Prospecting,2025-01-05T09:00:00
NC,Demo,2025-01-20T09:00:00
UK,Prospecting,2025-01-06T09:00:00
AF,Prospecting,2025-01-03T09:00:00
AF,Demo,2025-02-05T09:00:00
RW,Prospecting,2025-01-02T09:00:00
RW,Closed Lost,2025-01-30T09:00:00
LT,Prospecting,2025-02-15T15:00:00
WT,Prospecting,2025-02-01T09:00:00
WT,Closed Won,2025-02-15T10:00:00
WD,Prospecting,2025-02-01T09:00:00
LAST,Prospecting,2025-05-01T09:00:00
"""

DAY = date(2025, 2, 15)
NOON = datetime(2025, 2, 15, 12, 0)
OPEN_AT_DAY = {"NH", "RW", "LT"}
OPEN_AT_NOON = {"NH", "RW", "WD"}
AMOUNT = {"NH": 600, "RW": 700, "LT": 800, "WD": 1000}


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> analysis.Dataset:
    folder = write_tables(tmp_path_factory.mktemp("timeline"), reps=REPS, opportunities=OPPS, stage_history=HISTORY,
                          # one unknown status in 11 deals is more than the default 5% share
                          workbench="limits:\n  max_unparseable_share: 0.2\n")
    (folder / "workbench.csv").rename(folder / "workbench.yml")
    return analysis.load(folder)


def _open_sets(ds: analysis.Dataset, when) -> dict[str, set[str]]:
    """The open deals at ``when`` as each module reports them (ids; step known where a module
    needs a step)."""
    asof = pl.pipeline_as_of(ds, when)
    return {
        "timeline": set(tl.open_deals(ds, tl.moment(ds, when)).to_pandas().opportunity_id),
        "pipeline_as_of": set(asof.opportunity_id),
        "stall_candidates": set(F.stall_candidates(ds, as_of=when).opportunity_id),
        "known_step": set(asof[asof.step.notna()].opportunity_id),
    }


def test_open_deals_hand_worked(ds):
    day, noon = _open_sets(ds, DAY), _open_sets(ds, NOON)
    assert day["timeline"] == day["pipeline_as_of"] == OPEN_AT_DAY
    assert noon["timeline"] == noon["pipeline_as_of"] == OPEN_AT_NOON
    # the stalled list judges every open deal whose step is known
    assert day["stall_candidates"] == day["known_step"]
    assert noon["stall_candidates"] == noon["known_step"]


def test_every_module_agrees_at_a_day(ds):
    m = analysis.metrics(ds, ["open_deals", "open_pipeline"], grain="day", periods=[DAY.isoformat()])
    assert int(m.open_deals.iloc[0]) == len(OPEN_AT_DAY)
    assert float(m.open_pipeline.iloc[0]) == sum(AMOUNT[d] for d in OPEN_AT_DAY)
    snap = F.funnel_snapshot(ds, as_of=DAY)
    assert int(snap.deals.sum()) == len(OPEN_AT_DAY)
    assert float(snap.amount.sum()) == sum(AMOUNT[d] for d in OPEN_AT_DAY)
    by_step = pl.pipeline_by_step(ds, DAY)
    assert int(by_step.deals.sum()) == len(OPEN_AT_DAY)
    forecast = fc.snapshot_deals(ds, [DAY])
    assert set(forecast.opportunity_id) == _open_sets(ds, DAY)["known_step"]
    # the forecast's open deals at the day are the pipeline's
    assert set(fc.open_deals_forecast(ds, as_of=DAY).opportunity_id) == OPEN_AT_DAY


def test_steps_at_the_moment(ds):
    got = pl.pipeline_as_of(ds, DAY).set_index("opportunity_id")
    assert got.loc["NH", ["step", "step_source"]].tolist() == ["qualification", "current"]
    # re-opened without a row: open again, in its current stage
    assert got.loc["RW", ["step", "step_source"]].tolist() == ["qualification", "current"]
    assert got.loc["LT", ["step", "step_source"]].tolist() == ["prospecting", "history"]


def test_a_moment_is_read_one_way(ds):
    """Text without a time is a date, the end of that day, in every module."""
    for text in ("2025-02-15", "20250215"):
        m = tl.moment(ds, text)
        assert (m.day, m.has_time, m.upto) == (DAY, False, datetime(2025, 2, 16))
        assert set(pl.pipeline_as_of(ds, text).opportunity_id) == OPEN_AT_DAY
        assert int(F.funnel_snapshot(ds, as_of=text).deals.sum()) == len(OPEN_AT_DAY)
        assert fc.open_deals_forecast(ds, as_of=text).attrs["as_of"] == DAY
    assert tl.moment(ds, "2025-02-15T12:00").has_time
    with pytest.raises(pl.PipelineError, match="2025-02-30"):
        pl.pipeline_as_of(ds, "2025-02-30")
    with pytest.raises(F.FunnelError, match="yesterday"):
        F.funnel_snapshot(ds, as_of="yesterday")


def test_now_is_the_snapshot_day(ds):
    """One "now": the data's last day (no as_of in the config), never the wall clock."""
    assert tl.snapshot_day(ds) == date(2025, 5, 1) == ds.last_date()
    now = set(pl.pipeline_as_of(ds, tl.snapshot_day(ds)).opportunity_id)
    assert set(pl.pipeline_as_of(ds, None).opportunity_id) == now
    assert int(F.funnel_snapshot(ds).deals.sum()) == len(now)
    assert F.funnel_snapshot(ds).attrs["as_of"] == "2025-05-01"
    assert set(F.stall_candidates(ds).opportunity_id) <= now
    assert now == {"NH", "RW", "LT", "LAST"}


def test_waterfall_counts_a_reopening(ds):
    w = pl.pipeline_waterfall(ds, "2025-03").iloc[0]
    # RE: lost 02-01 (closed at the start of March), re-opened 03-01, open at the end of March
    assert (w.reopened_deals, w.reopened) == (1, 100.0)
    assert w.end_deals == w.start_deals + w.created_deals + w.reopened_deals - w.won_deals - w.lost_deals
    april = pl.pipeline_waterfall(ds, "2025-04").iloc[0]
    assert (april.won_deals, april.won) == (1, 100.0)  # RE won 04-10


# -- on the sample: every month end -----------------------------------------------------------------


def test_sample_agrees_at_every_month_end(sample):
    first = sample.table("opportunities").created_at.min().to_pyarrow().as_py().date()
    last = tl.snapshot_day(sample)
    ends = [d.date() for d in pd.date_range(first, last, freq="ME")]
    assert len(ends) >= 12
    months = [d.strftime("%Y-%m") for d in ends]
    m = analysis.metrics(sample, ["open_deals", "open_pipeline"], grain="month", periods=months).set_index("period")
    forecast = fc.snapshot_deals(sample, ends)
    for day, month in zip(ends, months):
        asof = pl.pipeline_as_of(sample, day)
        assert len(asof) == int(m.loc[month, "open_deals"]), month
        assert asof.amount.sum() == pytest.approx(float(m.loc[month, "open_pipeline"]), abs=0.01), month
        snap = F.funnel_snapshot(sample, as_of=day)
        assert int(snap.deals.sum()) == len(asof), month
        known = set(asof[asof.step.notna()].opportunity_id)
        assert set(forecast[forecast.snapshot == pd.Timestamp(day)].opportunity_id) == known, month
    for day in ends[-3:]:  # the stalled list judges the same deals (three months: it is slower)
        asof = pl.pipeline_as_of(sample, day)
        assert set(F.stall_candidates(sample, as_of=day).opportunity_id) == set(asof[asof.step.notna()].opportunity_id)


@pytest.fixture(scope="module")
def sample() -> analysis.Dataset:
    return analysis.load(SAMPLE)


@pytest.fixture(scope="module")
def no_closing_rows(tmp_path_factory: pytest.TempPathFactory, sample) -> analysis.Dataset:
    """The sample with every won / lost row removed from its stage history, as many exports are."""
    folder = tmp_path_factory.mktemp("no_closing_rows")
    for f in SAMPLE.iterdir():
        if f.name == "stage_history.parquet":
            h = pd.read_parquet(f)
            h[~h.stage.str.lower().str.startswith("closed")].to_parquet(folder / f.name, index=False)
        elif f.is_file():
            (folder / f.name).write_bytes(f.read_bytes())
    return analysis.load(folder)


def test_without_closing_rows_the_stalled_list_is_of_open_deals(no_closing_rows):
    ds = no_closing_rows
    day = date(2026, 3, 31)
    stalled = F.stalled_deals(ds, as_of=day)
    assert len(stalled) > 0
    o = tl.deals(ds).to_pandas().set_index("opportunity_id")
    for deal in stalled.opportunity_id:
        status, closed_on = o.loc[deal, "status"], o.loc[deal, "closed_on"]
        assert status == "open" or pd.Timestamp(closed_on) > pd.Timestamp(day), deal
    asof = pl.pipeline_as_of(ds, day)
    assert set(stalled.opportunity_id) <= set(asof.opportunity_id)
    m = analysis.metrics(ds, ["open_deals"], grain="month", periods=["2026-03"])
    assert int(F.funnel_snapshot(ds, as_of=day).deals.sum()) == len(asof) == int(m.open_deals.iloc[0])


def test_stalled_list_last_activity_is_each_deals_own(sample):
    day = date(2026, 9, 30)
    stalled = F.stalled_deals(sample, as_of=day)
    assert len(stalled) > 20
    a = sample.table("activities").select("opportunity_id", "occurred_at").to_pandas()
    a = a[a.opportunity_id.isin(set(stalled.opportunity_id)) & (a.occurred_at < pd.Timestamp("2026-10-01"))]
    last = a.groupby("opportunity_id").occurred_at.max()
    for deal, got in zip(stalled.opportunity_id, stalled.last_activity_at):
        want = last.get(deal)
        assert (pd.isna(got) and want is None) or got == want, deal
