"""The funnel on a small hand-built stage history; expected values are worked out by hand below.

Stage names are the canonical ones (no config needed); every entry is at midnight, so stint
lengths are whole days. Period of interest 2025-Q3 (Jul-Sep); Q2 = Apr-Jun.

deal owner team status amount  stage history (2025)                              what it shows
D1   R1    East won    1000    P 07-01, Q 07-03, R 07-08, D 07-10, OH 07-15,     straight through;
                               C 07-20, Won 07-25                                 in every Q3 cohort
D2   R1    East lost    200    P 07-01, Q 07-05, D 07-10, Lost 07-20             skips research
D3   R2    East open    300    Q 07-02, R 07-06, Q 07-09, R 07-12, D 07-20       backward + re-entry
D4   R2    East won     400    P 06-10, Q 06-15, Lost 06-20 | D 07-10, OH 07-20, re-opened lost deal
                               C 08-01, Won 08-15
D5   R3    West open     50    P 07-05, Q 07-07, Nurturing 07-10                 parked
D6   R3    West lost    600    D 05-01, OH 05-10, D 07-05, Lost 07-15            back to demo
D7   R1    East open     70    P 08-01, Q 08-02                                  the stalled deal
D8   R3    West lost     80    Q 04-01, D 04-05, Nurturing 04-10, Q 04-20,       parked, came back
                               Lost 04-25                                         to an earlier step
D9   R2    East open     90    R 09-28                                           enters at research

(P prospecting, Q qualification, R research, D demo, OH objection handling, C closing.)

First passes in 2025-Q3 (re-entries and Q2 passes excluded; "skip" = passed by skipping):

step          cohort                         entered adv won lost open conversion
prospecting   D1 D2 D5 D7                     4       4   1   0    0    1.0
qualification D1 D2 D3 D5 D7                  5       3   1   0    2    0.6   (D5, D7 open)
research      D1 D2(skip) D3 D4(skip) D9      5       4   2   0    1    0.8   (D9 open)
demo          D1 D2 D3 D4                     4       2   2   1    1    0.5   (D2 lost, D3 open)
objection     D1 D4                           2       2   2   0    0    1.0
closing       D1 D4                           2       2   2   0    0    1.0
won           D1 D4                           2       NA  2   0    0    NA
Nurturing: D5 -> 1. D6's demo on 07-05 is a re-entry (its first pass was in Q2). D9 entered the
funnel at research: prospecting and qualification are not passed.

2025-Q2: prospecting D4 (1, adv 1, won 1); qualification D4 D8 (2, adv 2: D8 reached demo);
research D8 skip (1, adv 1); demo D6 D8 (2, adv 1: D6 reached OH and its later move back does not
undo it; D8 lost at demo); objection D6 (1, adv 0, lost 1); closing and won: 0 -> NA.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.analytics import funnel as F
from analysis.errors import UnknownNameError

from .conftest import write_tables

REPS = """\
rep_id,name,team,region,manager_id,role,hire_date,end_date
R1,Ann,East,NA,,AE,2024-01-01,
R2,Bob,East,NA,,AE,2024-01-01,
R3,Cy,West,EU,,AE,2024-01-01,
"""

OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date
D1,R1,2025-07-01T00:00:00,won,Closed Won,1000,2025-07-25
D2,R1,2025-07-01T00:00:00,lost,Closed Lost,200,2025-07-20
D3,R2,2025-07-02T00:00:00,open,Demo,300,2025-12-31
D4,R2,2025-06-10T00:00:00,won,Closed Won,400,2025-08-15
D5,R3,2025-07-05T00:00:00,open,Nurturing,50,2025-12-31
D6,R3,2025-05-01T00:00:00,lost,Closed Lost,600,2025-07-15
D7,R1,2025-08-01T00:00:00,open,Qualification,70,2025-12-31
D8,R3,2025-04-01T00:00:00,lost,Closed Lost,80,2025-04-25
D9,R2,2025-09-28T00:00:00,open,Research,90,2025-12-31
"""

HISTORY = {
    "D1": [("Prospecting", "07-01"), ("Qualification", "07-03"), ("Research", "07-08"), ("Demo", "07-10"),
           ("Objection Handling", "07-15"), ("Closing", "07-20"), ("Closed Won", "07-25")],
    "D2": [("Prospecting", "07-01"), ("Qualification", "07-05"), ("Demo", "07-10"), ("Closed Lost", "07-20")],
    "D3": [("Qualification", "07-02"), ("Research", "07-06"), ("Qualification", "07-09"), ("Research", "07-12"),
           ("Demo", "07-20")],
    "D4": [("Prospecting", "06-10"), ("Qualification", "06-15"), ("Closed Lost", "06-20"), ("Demo", "07-10"),
           ("Objection Handling", "07-20"), ("Closing", "08-01"), ("Closed Won", "08-15")],
    "D5": [("Prospecting", "07-05"), ("Qualification", "07-07"), ("Nurturing", "07-10")],
    "D6": [("Demo", "05-01"), ("Objection Handling", "05-10"), ("Demo", "07-05"), ("Closed Lost", "07-15")],
    "D7": [("Prospecting", "08-01"), ("Qualification", "08-02")],
    "D8": [("Qualification", "04-01"), ("Demo", "04-05"), ("Nurturing", "04-10"), ("Qualification", "04-20"),
           ("Closed Lost", "04-25")],
    "D9": [("Research", "09-28")],
}

ACTIVITIES = """\
activity_id,rep_id,type,occurred_at,opportunity_id
A1,R1,call,2025-08-20T10:00:00,D7
A2,R1,email,2025-10-05T10:00:00,D7
A3,R2,call,2025-07-25T09:00:00,D3
A4,R1,call,2025-08-21T10:00:00,
"""


def _history_csv() -> str:
    rows = ["opportunity_id,stage,entered_at"]
    # written newest first: the functions must order the rows themselves
    for deal, entries in reversed(list(HISTORY.items())):
        rows += [f"{deal},{stage},2025-{day}T00:00:00" for stage, day in reversed(entries)]
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> analysis.Dataset:
    folder = write_tables(
        tmp_path_factory.mktemp("funnel"),
        reps=REPS,
        opportunities=OPPS,
        stage_history=_history_csv(),
        activities=ACTIVITIES,
    )
    return analysis.load(folder)


@pytest.fixture(scope="module")
def sample() -> analysis.Dataset:
    root = Path(__file__).resolve().parents[1]
    return analysis.load(root / "data" / "sample")


def rows(frame: pd.DataFrame, *cols: str) -> dict[str, tuple]:
    """step -> tuple of the given columns (NA as None)."""
    return {
        r["step"]: tuple(None if pd.isna(r[c]) else r[c] for c in cols)
        for _, r in frame.iterrows()
    }


COUNTS = ("entered", "advanced", "won", "lost", "open")


# -- stage_funnel -----------------------------------------------------------------------------


def test_q3_cohorts_by_hand(ds):
    f = F.stage_funnel(ds, "2025-Q3")
    assert list(f.columns) == F.FUNNEL_COLUMNS
    assert list(f.step) == list(F.FUNNEL_STEPS)
    assert rows(f, *COUNTS) == {
        "prospecting": (4, 4, 1, 0, 0),
        "qualification": (5, 3, 1, 0, 2),
        "research": (5, 4, 2, 0, 1),
        "demo": (4, 2, 2, 1, 1),
        "objection_handling": (2, 2, 2, 0, 0),
        "closing": (2, 2, 2, 0, 0),
        "won": (2, None, 2, 0, 0),
    }
    conv = dict(zip(f.step, f.conversion))
    assert conv["qualification"] == pytest.approx(0.6)
    assert conv["demo"] == pytest.approx(0.5)
    assert pd.isna(conv["won"])
    demo = f.set_index("step").loc["demo"]
    assert demo.leakage == pytest.approx(0.5)
    assert demo.won_rate == pytest.approx(0.5)
    # Wilson interval of 2 of 4
    assert demo.conversion_low == pytest.approx(0.1500, abs=1e-4)
    assert demo.conversion_high == pytest.approx(0.8500, abs=1e-4)
    assert f.attrs["nurturing"] == 1


def test_skipped_step_counts_as_passed(ds):
    """D2 (qualification -> demo) and re-opened D4 (qualification ... lost -> demo) pass research."""
    f = F.stage_funnel(ds, "2025-Q3", steps=["research"])
    assert list(f.step) == ["research"]
    # D1 and D3 entered research; D2 and D4 skipped it (advanced by definition); D9 is open there
    assert rows(f, *COUNTS)["research"] == (5, 4, 2, 0, 1)


def test_entry_point_is_not_a_skip(ds):
    """D9 starts at research: it never passed prospecting or qualification."""
    f = F.stage_funnel(ds, "2025-09")
    assert rows(f, *COUNTS)["research"] == (1, 0, 0, 0, 1)
    assert rows(f, "entered")["prospecting"] == (0,)
    assert rows(f, "entered")["qualification"] == (0,)


def test_reentry_is_counted_once(ds):
    """D3 enters qualification twice and research twice in July: counted once in each."""
    july = F.stage_funnel(ds, "2025-07")
    assert rows(july, "entered", "advanced", "open")["qualification"] == (4, 3, 1)  # D1 D2 D3 D5
    # D6's return to demo in July is a re-entry of a step first passed in May: not in July's cohort
    assert rows(july, "entered")["demo"] == (4,)  # D1 D2 D3 D4


def test_backward_move_keeps_advanced(ds):
    """D6: demo -> objection handling -> back to demo -> lost. Its demo pass (Q2) advanced."""
    q2 = F.stage_funnel(ds, "2025-Q2")
    got = rows(q2, *COUNTS)
    assert got["demo"] == (2, 1, 0, 1, 0)  # D6 advanced; D8 lost at demo
    assert got["objection_handling"] == (1, 0, 0, 1, 0)  # D6 lost there
    assert got["prospecting"] == (1, 1, 1, 0, 0)  # D4: re-opened later and won


def test_reopened_deal_judged_by_final_status(ds):
    """D4 was lost in June at qualification, re-opened in July and won."""
    q2 = rows(F.stage_funnel(ds, "2025-Q2"), *COUNTS)
    assert q2["qualification"] == (2, 2, 1, 0, 0)  # D4 (won) and D8 (reached demo, lost later)
    q3 = rows(F.stage_funnel(ds, "2025-Q3"), *COUNTS)
    assert q3["won"] == (2, None, 2, 0, 0)


def test_deal_in_several_cohorts_of_one_period(ds):
    """D1 passes all seven steps in July: it is in each July cohort."""
    july = F.stage_funnel(ds, "2025-07")
    assert (july.entered >= 1).all()
    aug = F.stage_funnel(ds, "2025-08")
    # August: D7 (prospecting, qualification), D4 (closing, won)
    assert rows(aug, "entered")["prospecting"] == (1,)
    assert rows(aug, "entered")["closing"] == (1,)
    assert rows(aug, "entered")["won"] == (1,)


def test_empty_step_gives_na(ds):
    q2 = F.stage_funnel(ds, "2025-Q2")
    closing = q2.set_index("step").loc["closing"]
    assert closing.entered == 0 and closing.advanced == 0
    for c in ("conversion", "conversion_low", "conversion_high", "leakage", "won_rate"):
        assert pd.isna(closing[c]), c
    empty = F.stage_funnel(ds, "2024-Q1")
    assert len(empty) == 7 and (empty.entered == 0).all() and empty.conversion.isna().all()
    assert empty.attrs["nurturing"] == 0


def test_periods_add_up(ds):
    months = [F.stage_funnel(ds, f"2025-{m:02d}") for m in (7, 8, 9)]
    quarter = F.stage_funnel(ds, "2025-Q3")
    total = sum(m.set_index("step")[["entered", "won", "lost", "open"]] for m in months)
    pd.testing.assert_frame_equal(total, quarter.set_index("step")[["entered", "won", "lost", "open"]])


def test_grouping_by_team_adds_up(ds):
    by = F.stage_funnel(ds, "2025-Q3", by="team")
    assert list(by.columns) == ["team", *F.FUNNEL_COLUMNS]
    assert set(by.team) == {"East", "West"} and len(by) == 14
    whole = F.stage_funnel(ds, "2025-Q3").set_index("step")
    summed = by.groupby("step")[["entered", "won", "lost", "open"]].sum()
    for c in ("entered", "won", "lost", "open"):
        assert (summed.loc[whole.index, c] == whole[c]).all(), c
    west = rows(by[by.team == "West"], *COUNTS)
    assert west["prospecting"] == (1, 1, 0, 0, 0)  # D5
    assert west["qualification"] == (1, 0, 0, 0, 1)
    assert west["demo"][0] == 0 and pd.isna(by[(by.team == "West") & (by.step == "demo")].conversion.iloc[0])
    assert by.attrs["nurturing_by"] == {("West",): 1}


def test_entered_splits_into_advanced_lost_open(sample):
    f = F.stage_funnel(sample, "2025")
    chain = f[f.step != "won"]
    assert (chain.entered == chain.advanced + chain.lost + chain.open).all()


def test_steps_option_and_errors(ds):
    with pytest.raises(UnknownNameError, match="did you mean 'demo'"):
        F.stage_funnel(ds, "2025-Q3", steps=["dem"])
    with pytest.raises(UnknownNameError, match="nurturing"):
        F.stage_funnel(ds, "2025-Q3", steps=["nurturing"])
    with pytest.raises(UnknownNameError):
        F.stage_funnel(ds, "2025-Q3", by="colour")


def test_backward_below_the_entry_step(tmp_path):
    """X enters at demo, goes back to qualification and prospecting, then forward again and is
    won: the first entries below its entry step are passes, re-entries are not, and the final
    jump demo -> won passes objection handling and closing. Y enters at demo, goes back to
    qualification and is lost: not advanced from either."""
    history = """\
opportunity_id,stage,entered_at
X,Demo,2025-01-01T00:00:00
X,Qualification,2025-01-05T00:00:00
X,Prospecting,2025-01-07T00:00:00
X,Qualification,2025-01-09T00:00:00
X,Research,2025-01-12T00:00:00
X,Demo,2025-01-15T00:00:00
X,Closed Won,2025-01-20T00:00:00
Y,Demo,2025-02-02T00:00:00
Y,Qualification,2025-02-03T00:00:00
Y,Closed Lost,2025-02-05T00:00:00
"""
    opps = (
        "opportunity_id,owner_id,created_at,status,stage,amount\n"
        "X,R1,2025-01-01,won,Closed Won,10\nY,R1,2025-02-02,lost,Closed Lost,10\n"
    )
    ds = analysis.load(write_tables(tmp_path, reps=REPS, opportunities=opps, stage_history=history))
    jan = rows(F.stage_funnel(ds, "2025-01"), *COUNTS)
    assert jan == {s: (1, None if s == "won" else 1, 1, 0, 0) for s in F.FUNNEL_STEPS}
    feb = rows(F.stage_funnel(ds, "2025-02"), *COUNTS)
    assert feb["demo"] == (1, 0, 0, 1, 0)
    assert feb["qualification"] == (1, 0, 0, 1, 0)
    assert feb["prospecting"] == (0, 0, 0, 0, 0)


# -- biggest_leak -----------------------------------------------------------------------------


def test_biggest_leak_small_volumes(ds):
    leak = F.biggest_leak(F.stage_funnel(ds, "2025-Q3"))
    # no step has 20 deals: the lowest conversion overall (demo 0.5 < qualification 0.6)
    assert leak["from"] == "demo" and leak["to"] == "objection_handling"
    assert leak["entered"] == 4 and leak["conversion"] == pytest.approx(0.5)
    assert leak["text"] == "The biggest leak is Demo → Objection handling: 50% of 4 deals advanced"


def test_biggest_leak_prefers_volume():
    frame = pd.DataFrame({
        "step": list(F.FUNNEL_STEPS),
        "entered": [100, 90, 80, 5, 70, 60, 50],
        "advanced": [90, 60, 75, 1, 66, 50, pd.NA],
    })
    leak = F.biggest_leak(frame)
    assert leak["from"] == "qualification" and leak["to"] == "research"  # demo has only 5 deals
    assert F.biggest_leak(frame.assign(entered=0, advanced=0))["from"] is None


def test_biggest_leak_on_sample_is_demo(sample):
    for period in ("2025", None):
        leak = F.biggest_leak(F.stage_funnel(sample, period))
        assert (leak["from"], leak["to"]) == ("demo", "objection_handling"), period
        assert leak["text"].startswith("The biggest leak is Demo → Objection handling: ")


# -- snapshot ---------------------------------------------------------------------------------


def test_snapshot_now(ds):
    s = F.funnel_snapshot(ds)
    assert list(s.columns) == ["step", "deals", "amount"]
    assert list(s.step) == [*F.FUNNEL_STEPS[:6], "nurturing"]
    got = {r.step: (r.deals, r.amount) for r in s.itertuples() if r.deals}
    assert got == {"qualification": (1, 70.0), "research": (1, 90.0), "demo": (1, 300.0), "nurturing": (1, 50.0)}
    assert s.attrs["label"].startswith("Snapshot of open deals as of ")


def test_snapshot_as_of_a_past_date(ds):
    s = F.funnel_snapshot(ds, as_of=date(2025, 7, 12))
    got = {r.step: (r.deals, r.amount) for r in s.itertuples() if r.deals}
    # D1 D2 D4 (re-opened on 07-10) D6 at demo; D3 entered research on 07-12 (end of day counts)
    assert got == {"demo": (4, 1000 + 200 + 400 + 600.0), "research": (1, 300.0), "nurturing": (1, 50.0)}
    assert s.attrs["label"] == "Snapshot of open deals as of 2025-07-12"
    june = F.funnel_snapshot(ds, as_of="2025-06-30", by="team")
    # D4 was lost on 06-20 (re-opened only in July); D6 sits in objection handling
    got = {(r.team, r.step): r.deals for r in june.itertuples() if r.deals}
    assert got == {("West", "objection_handling"): 1}


# -- time in stage ----------------------------------------------------------------------------


def test_time_in_stage_by_hand(ds):
    t = F.time_in_stage(ds)
    assert list(t.columns) == ["step", "n", "p25_days", "median_days", "p75_days", "p90_days", "mean_days"]
    got = rows(t, "n", "median_days", "p75_days", "mean_days")
    # qualification stints: D1 5, D2 5, D3 4 and 3, D4 5, D5 3, D8 4 and 5 (D7's is running)
    assert got["qualification"] == pytest.approx((8, 4.5, 5.0, 34 / 8))
    # demo: D1 5, D2 10, D4 10, D6 9 and 10, D8 5 (D3's is running)
    assert got["demo"] == pytest.approx((6, 9.5, 10.0, 49 / 6))
    assert got["prospecting"] == pytest.approx((5, 2.0, 4.0, 2.8))
    assert got["objection_handling"] == pytest.approx((3, 12.0, 34.0, 73 / 3))
    assert got["nurturing"] == pytest.approx((1, 10.0, 10.0, 10.0))  # D8; D5's is running
    assert t.attrs["running"] == 4  # D3 demo, D5 nurturing, D7 qualification, D9 research
    q2 = rows(F.time_in_stage(ds, period="2025-Q2"), "n", "median_days")
    assert q2["qualification"] == (3, 5.0)  # D4 5, D8 4 and 5
    assert q2["closing"] == (0, None)


# -- stalled deals ----------------------------------------------------------------------------


def test_stalled_deals(ds):
    s = F.stalled_deals(ds, as_of=date(2025, 9, 30))
    assert list(s.columns) == [
        "opportunity_id", "rep_id", "step", "days_in_step", "threshold_days", "amount", "last_activity_at"
    ]
    # D7: 60 days in qualification (p75 5) -> 12x; D5: 83 days parked (p75 10) -> 8.3x;
    # D3: 73 days in demo (p75 10) -> 7.3x. D9: 3 days in research (p75 5.5) is not stalled.
    assert list(s.opportunity_id) == ["D7", "D5", "D3"]
    assert list(s.days_in_step) == pytest.approx([60.0, 83.0, 73.0])
    assert list(s.threshold_days) == pytest.approx([5.0, 10.0, 10.0])
    assert list(s.rep_id) == ["R1", "R3", "R2"]
    # the activity of 2025-10-05 is after as_of
    assert s.last_activity_at.iloc[0] == pd.Timestamp("2025-08-20 10:00")
    assert pd.isna(s.last_activity_at.iloc[1])
    strict = F.stalled_deals(ds, as_of=date(2025, 9, 30), quantile=0.99)
    assert "D7" in set(strict.opportunity_id)
    with pytest.raises(F.FunnelError):
        F.stalled_deals(ds, quantile=1.5)


def test_stalled_before_any_history_ended(ds):
    # on 2025-04-03 no stint has ended yet: no threshold, nothing flagged
    assert F.stalled_deals(ds, as_of=date(2025, 4, 3)).empty


# -- transitions ------------------------------------------------------------------------------


def test_transitions_classified(ds):
    frame, summary = F.transitions(ds)
    assert list(frame.columns) == ["from_step", "to_step", "kind", "transitions", "deals"]
    kinds = {(r.from_step, r.to_step): r.kind for r in frame.itertuples()}
    assert kinds[("qualification", "demo")] == "skipped"  # D2, D8
    assert kinds[("research", "qualification")] == "backward"  # D3
    assert kinds[("objection_handling", "demo")] == "backward"  # D6
    assert kinds[("lost", "demo")] == "reopened"  # D4
    assert kinds[("qualification", "nurturing")] == "forward"  # D5 parks
    assert kinds[("nurturing", "qualification")] == "backward"  # D8 parked from demo
    assert kinds[("demo", "lost")] == "forward"
    assert kinds[("closing", "won")] == "forward"
    pair = frame.set_index(["from_step", "to_step"])
    assert pair.loc[("prospecting", "qualification"), "transitions"] == 5  # D1 D2 D4 D5 D7
    assert pair.loc[("qualification", "research"), "transitions"] == 3  # D1, D3 twice
    assert pair.loc[("qualification", "research"), "deals"] == 2
    assert summary == {
        "deals": 8, "transitions": 29, "forward": 23, "skips": 2, "backward": 3, "reopened": 1,
        "repeat": 0, "unknown": 0, "out_of_order_deals": 5, "out_of_order_share": 5 / 8,
    }  # fmt: skip
    m = F.transition_matrix(frame)
    assert m.loc["prospecting", "qualification"] == 5 and m.loc["closing", "prospecting"] == 0


def test_transitions_in_a_period(ds):
    _, q3 = F.transitions(ds, period="2025-Q3")
    assert (q3["deals"], q3["transitions"]) == (7, 22)
    assert (q3["forward"], q3["skips"], q3["backward"], q3["reopened"]) == (18, 1, 2, 1)
    assert q3["out_of_order_share"] == pytest.approx(4 / 7)
    _, none = F.transitions(ds, period="2024-Q1")
    assert none["deals"] == 0 and none["out_of_order_share"] is None


def test_transitions_repeat_and_unknown(tmp_path):
    history = """\
opportunity_id,stage,entered_at
X1,Prospecting,2025-01-01T00:00:00
X1,Prospecting,2025-01-02T00:00:00
X1,Legal Review,2025-01-03T00:00:00
X1,Closed Won,2025-01-04T00:00:00
"""
    opps = "opportunity_id,owner_id,created_at,status,stage,amount\nX1,R1,2025-01-01,won,Closed Won,10\n"
    ds = analysis.load(write_tables(tmp_path, reps=REPS, opportunities=opps, stage_history=history))
    frame, summary = F.transitions(ds)
    assert {(r.from_step, r.to_step): r.kind for r in frame.itertuples()} == {
        ("prospecting", "prospecting"): "repeat",
        ("prospecting", "unknown"): "unknown",
        ("unknown", "won"): "unknown",
    }
    assert summary["out_of_order_deals"] == 0
    # the unmapped stage ends the prospecting stint (2 days, the repeat row does not split it)
    t = rows(F.time_in_stage(ds), "n", "median_days")
    assert t["prospecting"] == (1, 2.0)
    # and the deal's prospecting pass is advanced (it was won)
    assert rows(F.stage_funnel(ds, None), "entered", "advanced")["prospecting"] == (1, 1)


# -- the committed sample ---------------------------------------------------------------------


def test_sample_snapshot_matches_open_deals(sample):
    s = F.funnel_snapshot(sample)
    o = sample.table("opportunities")
    assert int(s.deals.sum()) == int(o.filter(o.status == "open").count().to_pyarrow().as_py())
    assert s.attrs["label"] == "Snapshot of open deals as of 2026-09-30"


def test_sample_is_fast(sample):
    start = time.perf_counter()
    F.stage_funnel(sample, "2025-Q3", by="team")
    assert time.perf_counter() - start < 10
