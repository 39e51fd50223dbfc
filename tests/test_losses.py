"""Lead funnel, loss analysis and won-vs-lost engagement on a small hand-built dataset.

Period of interest 2026-Q3 (Jul 1 - Sep 30 2026); no config, so timestamps are local wall time.

Leads (cohort = created in Q3: L1-L7, L10, L11 = 9 leads)

lead  created           owner source    status        response  converted_at  opportunity
L1    07-01 09:00       S1    inbound   converted     30 min    07-02         O1 (won)
L2    07-05 10:00       S1    inbound   converted     10 min    07-06         O2 (lost)
L3    07-10 08:00       S1    inbound   qualified     60 min
L4    08-01 12:00       S1    outbound  open          never
L5    08-02 12:00       S2    outbound  disqualified  20 min
L6    08-03 12:00       S2    outbound  qualified     60 min    08-10         (none)
L7    09-30 23:30       S2    referral  open          never
L10   09-15 10:00       -     -         open          never
L11   09-01 09:00       S2    referral  open          45 min                  O5 (won)
L8    06-30 23:59 and L9 10-01 00:00 fall outside the quarter.

qualified = L1 L2 L3 L6 L11 (5); opportunity = L1 L2 L6 L11 (4); won = L1 L11 (2).
Responses 10 20 30 45 60 60 -> median 37.5; never answered L4 L7 L10 (3 of 9).

Deals closed in Q3 (owner A1 = East, A2 = West)

deal  owner status created     close       amount reason      history (chain steps, up to close)
O1    A1    won    2026-06-01  2026-07-15  1000                cycle 44 d
O5    A1    won    2026-08-01  2026-09-30  3000                cycle 60 d
O2    A1    lost   2026-07-01  2026-08-01   500   price       prospecting, demo, qualification
                                                               (closing on 08-05 is after close)
                                                               -> furthest: demo; cycle 31 d
O3    A2    lost   2026-07-10  2026-07-12  2000   (missing)   prospecting; cycle 2 d -> 1 week
O6    A2    lost   2026-08-01  2026-09-10  1500   price       none, stage Nurturing -> nurturing; 40 d
O7    A1    lost   2026-09-01  2026-09-20   700   competitor  none, stage Closed Lost -> (unknown); 19 d
O4 (lost 06-20), O8 (open), O9 (won 10-01) are outside.

Activities linked to deals, on or before the close date:
O1: call 06-05, email 06-10, meeting 07-01, call 07-15 17:00 (close day) = 4 (call 07-16 excluded)
O5: call x3, email x2, demo = 6 (an activity without opportunity_id does not count)
O2: call, email = 2; O3: none = 0; O6: call = 1; O7: email x2 = 2 (call 09-21 excluded)
won  [4, 6]       mean 5,    sample variance 2
lost [2, 0, 1, 2] mean 1.25, sample variance 2.75 / 3
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.analytics import losses
from analysis.data.schema import LOSS_REASONS
from analysis.errors import UnknownNameError
from analysis.semantic.engine import MetricError

from .conftest import write_tables

P = "2026-Q3"

REPS = """\
rep_id,name,team,region,manager_id,role,hire_date,end_date
M1,Maya Manager,East,NA,,manager,2020-01-01,
S1,Sam Sdr,East,NA,M1,SDR,2021-01-01,
S2,Sue Sdr,West,NA,M1,SDR,2021-01-01,
A1,Ann Ae,East,NA,M1,AE,2021-01-01,
A2,Al Ae,West,NA,M1,AE,2021-01-01,
"""

LEADS = """\
lead_id,created_at,owner_id,source,status,first_response_at,converted_at,opportunity_id
L1,2026-07-01T09:00:00,S1,inbound,converted,2026-07-01T09:30:00,2026-07-02T10:00:00,O1
L2,2026-07-05T10:00:00,S1,inbound,converted,2026-07-05T10:10:00,2026-07-06T10:00:00,O2
L3,2026-07-10T08:00:00,S1,inbound,qualified,2026-07-10T09:00:00,,
L4,2026-08-01T12:00:00,S1,outbound,open,,,
L5,2026-08-02T12:00:00,S2,outbound,disqualified,2026-08-02T12:20:00,,
L6,2026-08-03T12:00:00,S2,outbound,qualified,2026-08-03T13:00:00,2026-08-10T09:00:00,
L7,2026-09-30T23:30:00,S2,referral,open,,,
L8,2026-06-30T23:59:00,S1,inbound,converted,2026-07-01T08:00:00,2026-07-01T09:00:00,O4
L9,2026-10-01T00:00:00,S1,inbound,open,,,
L10,2026-09-15T10:00:00,,,open,,,
L11,2026-09-01T09:00:00,S2,referral,open,2026-09-01T09:45:00,,O5
"""

OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date,product,loss_reason
O1,A1,2026-06-01T10:00:00,won,Closed Won,1000,2026-07-15,Core,
O2,A1,2026-07-01T10:00:00,lost,Closed Lost,500,2026-08-01,Core,price
O3,A2,2026-07-10T10:00:00,lost,Closed Lost,2000,2026-07-12,Add-on,
O4,A2,2026-05-01T10:00:00,lost,Closed Lost,800,2026-06-20,Core,price
O5,A1,2026-08-01T10:00:00,won,Closed Won,3000,2026-09-30,Add-on,
O6,A2,2026-08-01T10:00:00,lost,Nurturing,1500,2026-09-10,Core,price
O7,A1,2026-09-01T10:00:00,lost,Closed Lost,700,2026-09-20,Core,competitor
O8,A1,2026-09-01T10:00:00,open,Demo,999,2026-12-01,Core,
O9,A2,2026-08-01T10:00:00,won,Closed Won,400,2026-10-01,Core,
"""

STAGE_HISTORY = """\
opportunity_id,stage,entered_at
O2,Prospecting,2026-07-01T10:00:00
O2,Demo,2026-07-20T10:00:00
O2,Qualification,2026-07-25T10:00:00
O2,Closed Lost,2026-08-01T12:00:00
O2,Closing,2026-08-05T10:00:00
O3,Prospecting,2026-07-10T10:00:00
O3,Closed Lost,2026-07-12T10:00:00
O4,Closing,2026-06-01T10:00:00
O7,Closed Lost,2026-09-20T10:00:00
"""

ACTIVITIES = """\
activity_id,rep_id,type,occurred_at,opportunity_id,lead_id
X01,A1,call,2026-06-05T10:00:00,O1,
X02,A1,email,2026-06-10T10:00:00,O1,
X03,A1,meeting,2026-07-01T10:00:00,O1,
X04,A1,call,2026-07-15T17:00:00,O1,
X05,A1,call,2026-07-16T10:00:00,O1,
X06,A1,call,2026-08-02T10:00:00,O5,
X07,A1,call,2026-08-10T10:00:00,O5,
X08,A1,call,2026-08-20T10:00:00,O5,
X09,A1,email,2026-08-03T10:00:00,O5,
X10,A1,email,2026-09-01T10:00:00,O5,
X11,A1,demo,2026-09-15T10:00:00,O5,
X12,A1,call,2026-08-04T10:00:00,,L4
X13,A1,call,2026-07-02T10:00:00,O2,
X14,A1,email,2026-07-03T10:00:00,O2,
X15,A2,call,2026-08-05T10:00:00,O6,
X16,A1,email,2026-09-02T10:00:00,O7,
X17,A1,email,2026-09-03T10:00:00,O7,
X18,A1,call,2026-09-21T10:00:00,O7,
X19,A1,call,2026-09-05T10:00:00,O8,
X20,A2,call,2026-06-10T10:00:00,O4,
"""

WON = [4, 6]
LOST = [2, 0, 1, 2]


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> analysis.Dataset:
    folder = write_tables(
        tmp_path_factory.mktemp("losses"),
        reps=REPS, leads=LEADS, opportunities=OPPS, stage_history=STAGE_HISTORY, activities=ACTIVITIES,
    )
    return analysis.load(folder)


@pytest.fixture(scope="module")
def sample() -> analysis.Dataset:
    root = Path(__file__).resolve().parents[1] / "data" / "sample"
    if not (root / "opportunities.csv").exists():
        pytest.skip("data/sample is not present")
    return analysis.load(root)


def _row(frame: pd.DataFrame, **where) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for k, v in where.items():
        mask &= frame[k].isna() if v is None else (frame[k] == v).fillna(False).astype(bool)
    rows = frame[mask]
    assert len(rows) == 1, f"{where}: {len(rows)} rows"
    return rows.iloc[0]


# -- lead funnel ---------------------------------------------------------------------------------


def test_lead_funnel_counts_and_conversions(ds):
    f = losses.lead_funnel(ds, P)
    assert list(f.stage) == ["lead", "qualified", "opportunity", "won"]
    assert list(f.leads) == [9, 5, 4, 2]
    assert pd.isna(f.conversion_from_previous.iloc[0])
    assert f.conversion_from_lead.iloc[0] == 1.0
    assert list(f.conversion_from_previous.iloc[1:]) == pytest.approx([5 / 9, 4 / 5, 2 / 4])
    assert list(f.conversion_from_lead.iloc[1:]) == pytest.approx([5 / 9, 4 / 9, 2 / 9])
    low, high = analysis.wilson_interval(4, 5)
    assert f.conversion_from_previous_low.iloc[2] == pytest.approx(low)
    assert f.conversion_from_previous_high.iloc[2] == pytest.approx(high)
    low, high = analysis.wilson_interval(2, 9)
    assert (f.conversion_from_lead_low.iloc[3], f.conversion_from_lead_high.iloc[3]) == pytest.approx((low, high))


def test_lead_funnel_by_source_and_sdr(ds):
    f = losses.lead_funnel(ds, P, by="source")
    got = {(r.source if isinstance(r.source, str) else None, r.stage): r.leads for r in f.itertuples()}
    expected = {
        "inbound": [3, 3, 2, 1],   # L1 L2 L3; L1 L2 have opportunities, O1 won
        "outbound": [3, 1, 1, 0],  # L4 L5 L6; L6 qualified with converted_at only
        "referral": [2, 1, 1, 1],  # L7 L11; L11 open but linked to won O5
        None: [1, 0, 0, 0],        # L10 without source: its own group, not dropped
    }
    for src, counts in expected.items():
        assert [got[(src, s)] for s in losses.FUNNEL_STAGES] == counts
    inbound_opp = _row(f, source="inbound", stage="opportunity")
    assert inbound_opp.conversion_from_previous == pytest.approx(2 / 3)

    g = losses.lead_funnel(ds, P, by="owner_id")
    assert list(g.columns[:3]) == ["owner_id", "rep_name", "stage"]
    s1 = g[g.owner_id == "S1"]
    assert set(s1.rep_name) == {"Sam Sdr"}
    assert list(s1.leads) == [4, 3, 2, 1]
    assert list(g[g.owner_id == "S2"].leads) == [4, 2, 2, 1]
    # groups add up to the total at every stage
    assert g.groupby("stage", sort=False).leads.sum().tolist() == [9, 5, 4, 2]


def test_lead_response_counts_never_answered(ds):
    r = losses.lead_response(ds, P)
    row = r.iloc[0]
    assert (row.leads, row.responded, row.unanswered) == (9, 6, 3)
    assert row.median_response_minutes == pytest.approx(37.5)  # median of 10 20 30 45 60 60
    assert row.unanswered_share == pytest.approx(3 / 9)

    by = losses.lead_response(ds, P, by="owner_id")
    s1, s2, none = _row(by, owner_id="S1"), _row(by, owner_id="S2"), _row(by, owner_id=None)
    assert (s1.leads, s1.unanswered, s1.median_response_minutes) == (4, 1, pytest.approx(30.0))
    assert (s2.leads, s2.unanswered, s2.median_response_minutes) == (4, 1, pytest.approx(45.0))
    assert (none.leads, none.unanswered, none.unanswered_share) == (1, 1, 1.0)
    assert pd.isna(none.median_response_minutes)  # no response at all: not available, not 0


def test_lead_funnel_agrees_with_metrics(ds):
    m = analysis.metrics(
        ds, ["leads_created", "lead_conversion_rate", "lead_response_minutes", "leads_unanswered"],
        grain="quarter", periods=[P],
    ).iloc[0]
    f = losses.lead_funnel(ds, P)
    r = losses.lead_response(ds, P).iloc[0]
    assert m.leads_created == f.leads.iloc[0]
    assert m.lead_conversion_rate == pytest.approx(f.conversion_from_lead.iloc[2])
    assert m.lead_response_minutes == pytest.approx(r.median_response_minutes)
    assert m.leads_unanswered == r.unanswered


def test_lead_funnel_by_team_and_unknown_grouping(ds):
    f = losses.lead_funnel(ds, P, by="team")
    assert list(_row(f, team="East", stage="lead")[["leads"]]) == [4]
    with pytest.raises(UnknownNameError, match="did you mean 'source'"):
        losses.lead_funnel(ds, P, by="sourec")
    with pytest.raises(MetricError, match="does not link"):
        losses.lead_funnel(ds, P, by="activity_type")


# -- loss analysis ---------------------------------------------------------------------------------


def test_loss_reasons_with_missing_reason(ds):
    f = losses.loss_analysis(ds, P)
    assert f.attrs["lost_deals"] == 4
    # price first; ties on count (1 each) ordered by amount: (not given) 2000 before competitor 700
    assert list(f.loss_reason[:3]) == ["price", "(not given)", "competitor"]
    assert set(f.loss_reason) == {*LOSS_REASONS, "(not given)"}
    price = _row(f, loss_reason="price")
    assert (price.lost_deals, price.share, price.amount_lost) == (2, 0.5, 2000.0)
    assert price.amount_share == pytest.approx(2000 / 4700)
    assert (price.share_low, price.share_high) == pytest.approx(analysis.wilson_interval(2, 4))
    ng = _row(f, loss_reason="(not given)")
    assert (ng.lost_deals, ng.amount_lost, ng.amount_share) == (1, 2000.0, pytest.approx(2000 / 4700))
    trust = _row(f, loss_reason="trust")
    assert (trust.lost_deals, trust.amount_lost, trust.share) == (0, 0.0, 0.0)
    assert f.lost_deals.sum() == 4 and f.share.sum() == pytest.approx(1.0)
    assert f.amount_share.sum() == pytest.approx(1.0)
    assert losses.top_loss_pattern(f) == "Price is the top loss reason (50% of 4 lost deals, $2K)"


def test_lost_at_step_from_stage_history(ds):
    f = losses.loss_analysis(ds, P, by="step")
    lost = f[f.lost_deals > 0]
    got = {(r.step, r.loss_reason): r.lost_deals for r in lost.itertuples()}
    assert got == {
        ("demo", "price"): 1,                # O2: furthest chain step, not the last one; closing after close ignored
        ("prospecting", "(not given)"): 1,   # O3
        ("nurturing", "price"): 1,           # O6: no history, its own stage is a canonical step
        ("(unknown)", "competitor"): 1,      # O7: only Closed Lost
    }
    assert list(dict.fromkeys(f.step)) == ["prospecting", "demo", "nurturing", "(unknown)"]  # chain order
    demo = _row(f, step="demo", loss_reason="price")
    assert (demo.share, demo.amount_share) == (1.0, 1.0)


def test_loss_by_rep_and_team_add_up(ds):
    reps = losses.loss_analysis(ds, P, by="rep_id")
    assert list(reps.columns[:2]) == ["rep_id", "rep_name"]
    a1 = reps[(reps.rep_id == "A1") & (reps.lost_deals > 0)]
    assert dict(zip(a1.loss_reason, a1.lost_deals)) == {"competitor": 1, "price": 1}
    assert list(a1.loss_reason) == ["competitor", "price"]  # tie on count: larger amount first
    assert set(a1.rep_name) == {"Ann Ae"}
    teams = losses.loss_analysis(ds, P, by="team")
    per_team = teams.groupby("team").lost_deals.sum()
    assert per_team.to_dict() == {"East": 2, "West": 2}
    m = analysis.metrics(ds, ["deals_lost"], by="team", grain="quarter", periods=[P])
    assert dict(zip(m.team, m.deals_lost)) == per_team.to_dict()
    both = losses.loss_analysis(ds, P, by=["team", "step"])
    assert both.lost_deals.sum() == 4


def test_no_lost_deals(ds):
    f = losses.loss_analysis(ds, "2026-Q1")
    assert list(f.loss_reason) == list(LOSS_REASONS)
    assert f.lost_deals.sum() == 0 and f.share.isna().all()
    assert losses.top_loss_pattern(f) == "No deals were lost in the period."
    assert losses.loss_analysis(ds, "2026-Q1", by="rep_id").empty


# -- engagement ----------------------------------------------------------------------------------


def test_engagement_means_and_touches(ds):
    e = losses.engagement(ds, P)
    won, lost = _row(e, outcome="won", activity_type="all"), _row(e, outcome="lost", activity_type="all")
    assert (won.deals, won.activities, lost.deals, lost.activities) == (2, 10, 4, 5)
    assert won.mean_activities == pytest.approx(5.0)
    assert won.sd_activities == pytest.approx(math.sqrt(2))
    assert lost.mean_activities == pytest.approx(1.25)
    assert lost.sd_activities == pytest.approx(math.sqrt(2.75 / 3))
    # touches per week = activities / max(1, cycle days / 7)
    won_touches = [4 * 7 / 44, 6 * 7 / 60]
    lost_touches = [2 * 7 / 31, 0 / 1, 1 * 7 / 40, 2 * 7 / 19]
    assert won.mean_touches_per_week == pytest.approx(np.mean(won_touches))
    assert lost.mean_touches_per_week == pytest.approx(np.mean(lost_touches))
    assert lost.sd_touches_per_week == pytest.approx(np.std(lost_touches, ddof=1))
    # by type; deals without an activity of the type count as 0
    means = {(r.outcome, r.activity_type): r.mean_activities for r in e.itertuples()}
    assert means[("won", "call")] == pytest.approx(2.5)      # [2, 3]
    assert means[("lost", "call")] == pytest.approx(0.5)     # [1, 0, 1, 0]
    assert means[("won", "email")] == pytest.approx(1.5)     # [1, 2]
    assert means[("lost", "email")] == pytest.approx(0.75)   # [1, 0, 0, 2]
    assert means[("won", "demo")] == pytest.approx(0.5)
    assert means[("won", "message")] == 0.0
    assert list(e.activity_type[:7]) == ["all", "call", "email", "meeting", "demo", "message", "other"]


def test_engagement_agrees_with_metrics(ds):
    m = analysis.metrics(ds, ["activities_per_won_deal", "activities_per_lost_deal"], grain="quarter", periods=[P])
    e = losses.engagement(ds, P)
    won, lost = _row(e, outcome="won", activity_type="all"), _row(e, outcome="lost", activity_type="all")
    assert m.activities_per_won_deal.iloc[0] == pytest.approx(won.mean_activities)  # 5.0
    assert m.activities_per_lost_deal.iloc[0] == pytest.approx(lost.mean_activities)  # 1.25
    m = analysis.metrics(ds, ["activities_per_won_deal", "activities_per_lost_deal"], by="team",
                         grain="quarter", periods=[P])
    e = losses.engagement(ds, P, by="team")
    for r in m.itertuples():
        got = e[(e.team == r.team) & (e.activity_type == "all")].set_index("outcome").mean_activities
        for outcome, want in (("won", r.activities_per_won_deal), ("lost", r.activities_per_lost_deal)):
            if pd.isna(want):
                assert pd.isna(got[outcome])
            else:
                assert got[outcome] == pytest.approx(want)
    west_won = _row(e, team="West", outcome="won", activity_type="all")
    assert west_won.deals == 0 and pd.isna(west_won.mean_activities)


def test_welch_interval_by_hand_and_numpy(ds):
    e = losses.engagement(ds, P)
    snapshot = e.copy()
    c = losses.won_vs_lost(e)
    pd.testing.assert_frame_equal(e, snapshot)  # the input is not modified
    row = _row(c, activity_type="all", measure="activities_per_deal")
    # by hand: v1 = 2/2 = 1, v2 = (2.75/3)/4 = 0.2291667, se = sqrt(1.2291667) = 1.108678
    # df = 1.2291667**2 / (1**2/1 + 0.2291667**2/3) = 1.510851 / 1.017506 = 1.484857
    assert row.difference == pytest.approx(3.75)
    assert row.df == pytest.approx(1.484857, rel=1e-6)
    t = losses.t_quantile(0.975, 1.484857)
    assert row.ci_low == pytest.approx(3.75 - t * 1.108678, rel=1e-6)
    assert row.ci_high == pytest.approx(3.75 + t * 1.108678, rel=1e-6)
    # numpy reference on the per-deal numbers
    w, l_ = np.array(WON, float), np.array(LOST, float)
    v1, v2 = w.var(ddof=1) / len(w), l_.var(ddof=1) / len(l_)
    se = np.sqrt(v1 + v2)
    dfw = (v1 + v2) ** 2 / (v1**2 / (len(w) - 1) + v2**2 / (len(l_) - 1))
    tq = losses.t_quantile(0.975, dfw)
    assert (row.ci_low, row.ci_high) == pytest.approx((w.mean() - l_.mean() - tq * se, w.mean() - l_.mean() + tq * se))
    assert row.ci_low < 0 < row.ci_high  # two won deals: too few to tell
    assert row.verdict.startswith("No clear difference in activities between won and lost deals (won 5.0 vs lost 1.2")


def test_won_vs_lost_degenerate_groups(ds):
    c = losses.won_vs_lost(losses.engagement(ds, P, by="team"))
    west = _row(c, team="West", activity_type="all", measure="activities_per_deal")
    assert (west.won_deals, west.lost_deals) == (0, 2)
    assert pd.isna(west.ci_low) and west.verdict.startswith("Not enough deals")
    empty = losses.won_vs_lost(losses.engagement(ds, "2026-Q1"))
    assert empty.difference.isna().all()


def test_welch_interval_against_numpy_reference():
    rng = np.random.default_rng(7)
    a, b = rng.poisson(30, 40).astype(float), rng.poisson(22, 65).astype(float)
    diff, low, high, df = losses.welch_interval(a.mean(), a.std(ddof=1), len(a), b.mean(), b.std(ddof=1), len(b))
    v1, v2 = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    ref_df = (v1 + v2) ** 2 / (v1**2 / (len(a) - 1) + v2**2 / (len(b) - 1))
    half = losses.t_quantile(0.975, ref_df) * math.sqrt(v1 + v2)
    assert df[0] == pytest.approx(ref_df)
    assert (low[0], high[0]) == pytest.approx((a.mean() - b.mean() - half, a.mean() - b.mean() + half))
    # equal zero spreads: the interval is the difference itself
    d, lo, hi, dfz = losses.welch_interval(3.0, 0.0, 5, 1.0, 0.0, 5)
    assert (d[0], lo[0], hi[0]) == (2.0, 2.0, 2.0) and np.isnan(dfz[0])


# reference values: closed-form t distribution functions (df = 1, 2, 4, 5, 10, 30, 1000 have
# finite sums in tan / sin / cos) inverted by bisection; df = 1e7 from the normal quantile
# 1.959963984540054 + (z**3 + z) / (4 df)
@pytest.mark.parametrize(
    "q, df, expected",
    [
        (0.975, 1, 12.706204736174698),  # tan(pi * 0.475)
        (0.975, 2, 4.302652729749461),
        (0.975, 5, 2.570581835636314),
        (0.975, 10, 2.228138851986273),
        (0.975, 30, 2.042272456301234),
        (0.975, 1000, 1.962339080826423),
        (0.95, 4, 2.1318467863266495),
        (0.025, 10, -2.228138851986273),
        (0.5, 3, 0.0),
        (0.975, 1e7, 1.9599642217672),
    ],
)
def test_t_quantile_reference_values(q, df, expected):
    assert losses.t_quantile(q, df) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_t_quantile_closed_forms_and_fractional_df():
    for q in (0.6, 0.9, 0.975, 0.995):
        assert losses.t_quantile(q, 1) == pytest.approx(math.tan(math.pi * (q - 0.5)), rel=1e-11)
        a = 4 * q * (1 - q)
        assert losses.t_quantile(q, 2) == pytest.approx((2 * q - 1) * math.sqrt(2 / a), rel=1e-11)
    dfs = np.array([1.3, 1.484857, 2.5, 7.7, 123.4, 5000.5])
    t = losses.t_quantile(0.975, dfs)
    assert losses.t_cdf(t, dfs) == pytest.approx(np.full(len(dfs), 0.975), abs=1e-12)
    assert np.all(np.diff(t) < 0)  # heavier tails for fewer degrees of freedom
    with pytest.raises(ValueError):
        losses.t_quantile(1.0, 3)


# -- the sample data -------------------------------------------------------------------------------


def test_sample_won_deals_have_more_activities(sample):
    e = losses.engagement(sample, P)
    c = losses.won_vs_lost(e)
    row = _row(c, activity_type="all", measure="activities_per_deal")
    assert row.difference > 0 and row.ci_low > 0
    assert row.verdict.startswith("Won deals had ") and " more activities than lost ones (95% CI " in row.verdict
    touches = _row(c, activity_type="all", measure="touches_per_week")
    assert touches.difference > 0
    m = analysis.metrics(sample, ["activities_per_won_deal", "activities_per_lost_deal"], grain="quarter", periods=[P])
    assert m.activities_per_won_deal.iloc[0] == pytest.approx(row.won_mean)
    assert m.activities_per_lost_deal.iloc[0] == pytest.approx(row.lost_mean)


def test_sample_losses_and_funnel(sample):
    f = losses.loss_analysis(sample, P, by="step")
    m = analysis.metrics(sample, ["deals_lost"], grain="quarter", periods=[P])
    assert f.lost_deals.sum() == m.deals_lost.iloc[0]
    assert set(f.step) <= {*losses.CHAIN_STEPS, "nurturing", "(unknown)"}
    assert losses.top_loss_pattern(losses.loss_analysis(sample, P)).endswith(")")
    funnel = losses.lead_funnel(sample, P, by="source")
    stages = funnel.pivot_table(index="source", columns="stage", values="leads", aggfunc="sum")
    assert (stages["won"] <= stages["opportunity"]).all() and (stages["opportunity"] <= stages["qualified"]).all()
    assert (stages["qualified"] <= stages["lead"]).all()
