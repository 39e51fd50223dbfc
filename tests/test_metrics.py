"""Every metric on a small hand-built dataset; expected values are worked out by hand below.

The dataset (company time zone America/New_York; quarter of interest 2025-Q3 = Jul-Sep):

deals   owner team  created      status close       amount cost account  notes
D1      R1    East  2025-04-10   won    2025-07-10  1000   200  A1       cycle 91 d, A1's first win
D2      R1    East  2025-07-01   lost   2025-08-01   500        A2       cycle 31 d
D3      R2    East  2025-06-01   won    2025-09-30  3000  1000  A2       cycle 121 d; R2 left 2025-08-15
D4      R3    West  2025-08-05   won    2025-09-15  2000        A1       cycle 41 d; A1 existing customer
D5      R3    West  2025-08-10   open   2025-10-20  4000        A3
D6      R2    East  2025-05-01   won    2025-06-15   600        A3       Q2
D7      R1    East  2025-05-02   lost   2025-06-20   400        A1       Q2
D8      R1    East  2024-07-01   won    2024-08-01   800        A2       2024-Q3 (a year ago)
D9      R1    East  2025-10-01T03:30Z -> 2025-09-30 23:30 New York, open, 700, A3

2025-Q3: won D1 D3 D4 -> revenue 6000, 3 won; lost D2 -> 1 lost, 500 lost; win rate 3/4.
"""

from __future__ import annotations

from datetime import date
from io import StringIO

import pandas as pd
import pytest

import analysis
from analysis.errors import ConfigError, UnknownNameError
from analysis.semantic.catalog import build_catalog
from analysis.semantic.engine import compare, metrics, wilson_interval

from .conftest import write_tables

REPS = """\
rep_id,name,team,region,manager_id,role,hire_date,end_date
M1,Maya,East,NA,,manager,2020-01-01,
R1,Ann,East,NA,M1,AE,2024-01-01,
R2,Bob,East,NA,M1,AE,2024-01-01,2025-08-15
R3,Cy,West,EU,M1,AE,2025-08-01,
"""
ACCOUNTS = """\
account_id,name,segment
A1,Acme,SMB
A2,Globex,Enterprise
A3,Initech,SMB
"""
OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date,account_id,deal_type,product,cost,lead_source
D1,R1,2025-04-10T10:00:00,won,Closed Won,1000,2025-07-10,A1,new_business,Core,200,inbound
D2,R1,2025-07-01T10:00:00,lost,Closed Lost,500,2025-08-01,A2,new_business,Core,,inbound
D3,R2,2025-06-01T10:00:00,won,Closed Won,3000,2025-09-30,A2,expansion,Add-on,1000,outbound
D4,R3,2025-08-05T10:00:00,won,Closed Won,2000,2025-09-15,A1,expansion,Core,,outbound
D5,R3,2025-08-10T10:00:00,open,Demo,4000,2025-10-20,A3,new_business,Core,,inbound
D6,R2,2025-05-01T10:00:00,won,Closed Won,600,2025-06-15,A3,new_business,Add-on,,inbound
D7,R1,2025-05-02T10:00:00,lost,Closed Lost,400,2025-06-20,A1,new_business,Core,,inbound
D8,R1,2024-07-01T10:00:00,won,Closed Won,800,2024-08-01,A2,new_business,Core,,inbound
D9,R1,2025-10-01T03:30:00Z,open,Qualification,700,2025-11-30,A3,new_business,Core,,inbound
"""
LEADS = """\
lead_id,created_at,owner_id,source,status,first_response_at,converted_at,opportunity_id,account_id
L1,2025-07-01T09:00:00,R1,inbound,converted,2025-07-01T09:30:00,,D2,A2
L2,2025-07-02T10:00:00,R1,outbound,disqualified,2025-07-02T11:30:00,,,
L3,2025-08-01T08:00:00,R3,inbound,open,,,,
L4,2025-09-01T08:00:00,R3,event,converted,2025-09-01T08:10:00,2025-09-02T08:00:00,,
"""
ACTIVITIES = """\
activity_id,rep_id,type,occurred_at,duration_s,direction,outcome,opportunity_id,lead_id,account_id
C1,R1,call,2025-07-03T10:00:00,300,outbound,connected,,,
C2,R1,call,2025-07-03T11:00:00,0,outbound,no_answer,,,
C3,R1,call,2025-07-04T10:00:00,600,outbound,meeting_booked,,,
C4,R3,call,2025-08-04T10:00:00,120,outbound,positive,,,
E1,R1,email,2025-07-05T10:00:00,,outbound,replied,,,
E2,R1,email,2025-07-05T11:00:00,,outbound,,,,
E3,R2,email,2025-07-06T10:00:00,,inbound,replied,,,
DM1,R1,demo,2025-07-15T10:00:00,1800,outbound,completed,D2,,
DM2,R3,demo,2025-08-20T10:00:00,0,outbound,no_show,,,
MT1,R1,meeting,2025-07-05T15:00:00,1800,outbound,completed,D1,,
MT2,R1,meeting,2025-07-20T15:00:00,1800,outbound,completed,D1,,
"""
QUOTAS = """\
owner,period_start,period_end,metric,target
R1,2025-07-01,2025-09-30,revenue,3000
R2,2025-07-01,2025-09-30,revenue,2000
R3,2025-07-01,2025-09-30,revenue,1000
East,2025-07-01,2025-09-30,revenue,6000
R1,2025-07-01,2025-09-30,deals_won,2
"""
SUBSCRIPTIONS = """\
contract_id,account_id,start_date,end_date,annual_value,renewed_from
S1,A1,2025-01-01,2025-12-31,1200,
S2,A2,2024-07-01,2025-08-31,2400,
S3,A3,2025-08-01,2026-07-31,600,
"""
SPEND = """\
period_start,period_end,category,amount
2025-07-01,2025-07-31,sales,300
2025-08-01,2025-08-31,marketing,200
2025-04-01,2025-04-30,sales,999
"""
PULSE = """\
answered_at,score,rep_id,team
2025-07-10T10:00:00,10,R1,East
2025-07-10T10:00:00,9,R2,East
2025-07-10T10:00:00,7,R3,West
2025-07-10T10:00:00,6,,West
"""
CONFIG = "timezone: America/New_York\n"

Q3 = "2025-Q3"


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    folder = write_tables(
        tmp_path_factory.mktemp("hand"),
        reps=REPS, accounts=ACCOUNTS, opportunities=OPPS, leads=LEADS, activities=ACTIVITIES,
        quotas=QUOTAS, subscriptions=SUBSCRIPTIONS, spend=SPEND, pulse=PULSE,
    )
    (folder / "workbench.yml").write_text(CONFIG)
    return analysis.load(folder)


def one(ds, ids, period=Q3, grain="quarter", **kw):
    df = metrics(ds, ids, grain=grain, periods=[period], **kw)
    assert len(df) == 1, df
    return df.iloc[0]


# -- outcomes --------------------------------------------------------------------------------


def test_bookings(ds):
    r = one(ds, ["revenue", "deals_won", "deals_lost", "win_rate", "win_rate_amount", "avg_deal_size", "lost_amount"])
    assert r.revenue == 6000
    assert r.deals_won == 3 and r.deals_lost == 1
    assert r.win_rate == pytest.approx(0.75)
    assert (r.win_rate_numerator, r.win_rate_denominator) == (3, 4)
    assert r.win_rate_amount == pytest.approx(6000 / 6500)
    assert r.avg_deal_size == pytest.approx(2000)
    assert r.lost_amount == 500


def test_win_rate_interval_is_wilson(ds):
    r = one(ds, ["win_rate"])
    # Wilson 95% for 3 of 4, worked by hand: center (0.75 + 1.92/4)/(1 + 3.84/4) ...
    assert r.win_rate_low == pytest.approx(0.30064, abs=1e-4)
    assert r.win_rate_high == pytest.approx(0.95441, abs=1e-4)
    assert r.win_rate_low <= r.win_rate <= r.win_rate_high


def test_sales_cycle(ds):
    r = one(ds, ["sales_cycle_days", "sales_cycle_days_median", "sales_cycle_days_closed"])
    assert r.sales_cycle_days == pytest.approx((91 + 121 + 41) / 3)
    assert r.sales_cycle_days_median == 91
    assert r.sales_cycle_days_closed == pytest.approx((91 + 121 + 41 + 31) / 4)


def test_pipeline_created_uses_company_time_zone(ds):
    r = one(ds, ["opportunities_created", "pipeline_created"])
    # D2, D4, D5 and D9 (03:30 UTC on Oct 1 is Sep 30 23:30 in New York)
    assert r.opportunities_created == 4
    assert r.pipeline_created == 500 + 2000 + 4000 + 700
    q4 = one(ds, ["opportunities_created"], period="2025-Q4")
    assert q4.opportunities_created == 0


def test_open_pipeline_at_period_end(ds):
    r = one(ds, ["open_pipeline", "open_deals"])
    assert r.open_deals == 2 and r.open_pipeline == 4700  # D5 and D9
    q2 = one(ds, ["open_pipeline", "open_deals"], period="2025-Q2")
    # end of Q2: D1 (closes Jul 10), D3 (closes Sep 30) were open; D2, D4, D5 not yet created
    assert q2.open_deals == 2 and q2.open_pipeline == 4000


def test_profit(ds):
    r = one(ds, ["won_cost", "avg_profit_per_deal", "margin_pct"])
    assert r.won_cost == 1200
    assert r.avg_profit_per_deal == pytest.approx((6000 - 1200) / 3)
    assert r.margin_pct == pytest.approx(0.8)


def test_accounts_and_cac(ds):
    r = one(ds, ["accounts_won", "arpa", "new_customers", "spend", "cac"])
    assert r.accounts_won == 2 and r.arpa == pytest.approx(3000)
    assert r.new_customers == 1  # A1; A2 first won 2024, A3 in Q2
    assert r.spend == 500 and r.cac == pytest.approx(500)


def test_arr_and_churn(ds):
    r = one(ds, ["arr", "churn_rate", "revenue_churn_rate"])
    assert r.arr == 1800  # S1 + S3 active on Sep 30
    assert r.churn_rate == pytest.approx(0.5)  # A2 churned of A1, A2 active on Jul 1
    assert (r.churn_rate_numerator, r.churn_rate_denominator) == (1, 2)
    assert r.revenue_churn_rate == pytest.approx(2400 / 3600)


def test_arr_from_deals_without_subscriptions(tmp_path):
    opps = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date,contract_months
X1,R1,2025-01-01,won,Closed Won,2400,2025-02-10,24
X2,R1,2025-01-01,won,Closed Won,600,2025-03-01,6
X3,R1,2025-01-01,won,Closed Won,900,2025-10-01,12
"""
    folder = write_tables(tmp_path / "arr", reps="rep_id,name\nR1,Ann\n", opportunities=opps)
    r = one(analysis.load(folder), ["arr"])
    # X1: 2400 / 2 = 1200 a year, active until 2027-02-10; X2 ended 2025-09-01; X3 starts after Q3
    assert r.arr == 1200


def test_growth_previous_period(ds):
    r = one(ds, ["revenue", "revenue_growth"])
    assert r.revenue_growth == pytest.approx((6000 - 600) / 600)
    monthly = metrics(ds, ["revenue", "revenue_growth"], grain="month", periods=["2025-08", "2025-09"])
    # Jul 1000, Aug 0, Sep 5000: growth from 0 is not available
    assert monthly.revenue.tolist() == [0, 5000]
    assert monthly.revenue_growth.iloc[0] == pytest.approx(-1.0)
    assert pd.isna(monthly.revenue_growth.iloc[1])


# -- leads and activities ------------------------------------------------------------------------


def test_leads(ds):
    r = one(ds, ["leads_created", "leads_converted", "lead_conversion_rate", "lead_response_minutes", "leads_unanswered"])
    assert r.leads_created == 4 and r.leads_converted == 2
    assert r.lead_conversion_rate == pytest.approx(0.5)
    assert r.lead_response_minutes == pytest.approx(30)  # median of 30, 90, 10; L3 never answered
    assert r.leads_unanswered == 1


def test_activity_counts_and_rates(ds):
    r = one(ds, [
        "calls", "emails", "meetings", "demos", "connected_calls", "avg_call_minutes", "positive_call_rate",
        "meetings_booked", "email_reply_rate", "demo_completion_rate", "activities",
    ])
    assert (r.calls, r.emails, r.meetings, r.demos, r.activities) == (4, 3, 2, 2, 11)
    assert r.connected_calls == 3
    assert r.avg_call_minutes == pytest.approx((300 + 600 + 120) / 3 / 60)
    assert r.positive_call_rate == pytest.approx(2 / 3)
    assert r.meetings_booked == 1
    assert r.email_reply_rate == pytest.approx(0.5)  # E1 of E1, E2 (E3 is inbound)
    assert r.demo_completion_rate == pytest.approx(0.5)


def test_per_rep_working_day(ds):
    r = one(ds, ["rep_working_days", "calls_per_day", "calls_per_week"])
    # Q3 2025 has 66 weekdays; R1 all 66, R2 until Aug 15 (34), R3 from Aug 1 (43); M1 is a manager
    assert r.rep_working_days == 66 + 34 + 43
    assert r.calls_per_day == pytest.approx(4 / 143)
    assert r.calls_per_week == pytest.approx(4 / (143 / 5))
    by_rep = metrics(ds, ["rep_working_days", "calls_per_day"], by="rep_id", grain="quarter", periods=[Q3])
    days = dict(zip(by_rep.rep_id, by_rep.rep_working_days))
    assert days == {"R1": 66, "R2": 34, "R3": 43}


def test_activities_per_deal(ds):
    r = one(ds, ["activities_per_won_deal", "activities_per_lost_deal"])
    assert r.activities_per_won_deal == pytest.approx(1 / 3)  # MT1 on D1 (MT2 came after the close)
    assert r.activities_per_lost_deal == pytest.approx(1.0)  # DM1 on D2


def test_enps(ds):
    r = one(ds, ["enps", "promoters", "detractors", "pulse_responses"])
    assert (r.promoters, r.detractors, r.pulse_responses) == (2, 1, 4)
    assert r.enps == pytest.approx(25.0)


# -- targets -----------------------------------------------------------------------------------------


def test_quota_attainment_company_team_rep(ds):
    r = one(ds, ["revenue_target", "quota_attainment"])
    # East has a team quota (6000); West has none, so its reps' quotas (R3 1000)
    assert r.revenue_target == 7000
    assert r.quota_attainment == pytest.approx(6000 / 7000)
    teams = metrics(ds, ["revenue", "revenue_target", "quota_attainment"], by="team", grain="quarter", periods=[Q3])
    t = teams.set_index("team")
    assert t.loc["East", "revenue_target"] == 6000 and t.loc["East", "revenue"] == 4000
    assert t.loc["West", "quota_attainment"] == pytest.approx(2.0)
    reps = metrics(ds, ["quota_attainment"], by="rep_id", grain="quarter", periods=[Q3]).set_index("rep_id")
    assert reps.loc["R1", "quota_attainment"] == pytest.approx(1000 / 3000)
    assert reps.loc["R2", "quota_attainment"] == pytest.approx(3000 / 2000)


def test_compare_previous_year_ago_and_target(ds):
    c = compare(ds, ["revenue", "deals_won", "win_rate"], Q3).set_index("metric")
    rev = c.loc["revenue"]
    assert (rev.value, rev.previous, rev.year_ago) == (6000, 600, 800)
    assert rev.change == 5400 and rev.change_pct == pytest.approx(9.0)
    assert rev.yoy_change_pct == pytest.approx((6000 - 800) / 800)
    assert rev.target == 7000 and rev.attainment == pytest.approx(6000 / 7000)
    assert rev.previous_period == "2025-Q2" and rev.year_ago_period == "2024-Q3"
    assert c.loc["deals_won", "target"] == 2  # only R1 has a deals_won quota
    assert pd.isna(c.loc["win_rate", "target"])


# -- grouping ---------------------------------------------------------------------------------------


def test_rep_who_left_still_counts_for_team(ds):
    t = metrics(ds, ["revenue", "deals_won"], by="team", grain="quarter", periods=[Q3]).set_index("team")
    assert t.loc["East", "revenue"] == 1000 + 3000  # D3 by R2, who left in August
    assert t.loc["West", "revenue"] == 2000
    assert t.revenue.sum() == 6000


def test_new_vs_existing_customers(ds):
    df = metrics(ds, ["revenue", "deals_won"], by="customer_type", grain="quarter", periods=[Q3]).set_index("customer_type")
    assert df.loc["new", "revenue"] == 1000  # D1: A1's first win
    assert df.loc["existing", "revenue"] == 5000  # D3 (A2 won D8 in 2024), D4 (A1 won D1 earlier)


def test_group_by_account_and_deal_dimensions(ds):
    seg = metrics(ds, ["revenue"], by="segment", grain="quarter", periods=[Q3]).set_index("segment")
    assert seg.loc["SMB", "revenue"] == 3000 and seg.loc["Enterprise", "revenue"] == 3000
    prod = metrics(ds, ["revenue", "win_rate"], by=["product"], grain="quarter", periods=[Q3]).set_index("product")
    assert prod.loc["Core", "revenue"] == 3000 and prod.loc["Core", "win_rate"] == pytest.approx(2 / 3)
    act = metrics(ds, ["activities"], by="activity_type", grain="quarter", periods=[Q3]).set_index("activity_type")
    assert act.activities.to_dict() == {"call": 4, "demo": 2, "email": 3, "meeting": 2}


def test_filters(ds):
    r = one(ds, ["revenue", "calls"], filters={"team": "West"})
    assert r.revenue == 2000 and r.calls == 1


def test_unavailable_metrics_say_why(tmp_path):
    folder = write_tables(tmp_path / "min", reps=REPS, opportunities=OPPS)
    small = analysis.load(folder)
    df = metrics(small, ["revenue", "calls", "won_cost", "arr"], grain="quarter", periods=[Q3])
    assert df.revenue.iloc[0] == 6000
    assert pd.isna(df.calls.iloc[0]) and df.won_cost.iloc[0] == 1200
    why = df.attrs["unavailable"]
    assert why["calls"] == "needs the activities table, which is not in the data"
    assert "needs the subscriptions table or opportunities.contract_months" == why["arr"]
    # cost column present in OPPS: available
    assert "won_cost" not in why


def test_unsplittable_dimension_is_unavailable(ds):
    df = metrics(ds, ["spend", "revenue"], by="team", grain="quarter", periods=[Q3])
    assert df.attrs["unavailable"]["spend"] == "cannot be split by team: spend does not link to it"
    assert df.spend.isna().all()


def test_zero_denominator_is_not_available(ds):
    r = one(ds, ["win_rate", "avg_deal_size", "demo_completion_rate"], period="2025-Q1")
    assert pd.isna(r.win_rate) and pd.isna(r.avg_deal_size)
    assert r.win_rate_denominator == 0 and pd.isna(r.win_rate_low)


def test_periods_default_to_the_data_span(ds):
    df = metrics(ds, ["revenue"], grain="quarter")
    # from D8's creation (2024-07-01) to the last close (2025-09-30); D9 is Q3 in New York
    assert df.period.tolist() == ["2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3"]
    assert df.revenue.tolist() == [800, 0, 0, 600, 6000]


def test_quarter_is_the_sum_of_its_months(ds):
    months = metrics(ds, ["revenue", "deals_won", "calls"], grain="month", periods=["2025-07", "2025-08", "2025-09"])
    quarter = one(ds, ["revenue", "deals_won", "calls"])
    for m in ("revenue", "deals_won", "calls"):
        assert months[m].sum() == quarter[m]


def test_fiscal_year_periods(tmp_path):
    folder = write_tables(tmp_path / "fy", reps=REPS, opportunities=OPPS)
    (folder / "workbench.yml").write_text("timezone: America/New_York\nfiscal_year_start_month: 7\n")
    fy = analysis.load(folder)
    df = metrics(fy, ["revenue"], grain="quarter", periods=["FY2026-Q1"])
    assert df.period.tolist() == ["FY2026-Q1"] and df.revenue.iloc[0] == 6000
    df = metrics(fy, ["revenue"], grain="year", periods=["FY2025", "FY2026"])
    assert df.revenue.tolist() == [600 + 800, 6000]  # FY2025 = Jul 2024 - Jun 2025


def test_currency_conversion_at_close_date(tmp_path):
    opps = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date,currency
F1,R1,2025-07-01,won,Closed Won,100,2025-07-10,EUR
F2,R1,2025-07-01,won,Closed Won,100,2025-08-10,EUR
F3,R1,2025-07-01,won,Closed Won,100,2025-08-10,USD
F4,R1,2025-07-01,won,Closed Won,100,2025-08-10,
"""
    fx = "currency,date,rate_to_reporting\nEUR,2025-07-01,1.10\nEUR,2025-08-01,1.20\nEUR,2025-09-01,9.99\n"
    folder = write_tables(tmp_path / "fx", reps="rep_id,name\nR1,Ann\n", opportunities=opps, fx_rates=fx)
    r = one(analysis.load(folder), ["revenue"])
    assert r.revenue == pytest.approx(110 + 120 + 100 + 100)


# -- catalog and errors ------------------------------------------------------------------------------


def test_catalog_covers_the_spec():
    cat = build_catalog()
    spec_ids = [
        "revenue", "deals_won", "deals_lost", "win_rate", "win_rate_amount", "avg_deal_size", "sales_cycle_days",
        "opportunities_created", "pipeline_created", "quota_attainment", "arr", "arpa", "avg_profit_per_deal",
        "margin_pct", "churn_rate", "cac", "revenue_growth", "pipeline_velocity", "pipeline_coverage",
        "lead_response_minutes", "lead_conversion_rate", "calls", "emails", "meetings", "demos",
        "avg_call_minutes", "positive_call_rate", "meetings_booked", "email_reply_rate", "demo_completion_rate",
        "activities_per_won_deal", "activities_per_lost_deal", "enps",
    ]
    for mid in spec_ids:
        m = cat.get(mid)
        assert m.label and m.description and m.formula and m.unit
        assert m.direction in ("higher", "lower") and m.kind in ("lead", "lag")
    glossary = cat.to_frame()
    assert {"id", "label", "formula", "unit", "direction", "kind", "tables"} <= set(glossary.columns)


def test_unknown_metric_and_dimension_suggest(ds):
    with pytest.raises(UnknownNameError, match="did you mean 'win_rate'"):
        metrics(ds, ["win_rat"])
    with pytest.raises(UnknownNameError, match="did you mean 'team'"):
        metrics(ds, ["revenue"], by="teams")


def test_custom_metrics_from_config(tmp_path):
    folder = write_tables(tmp_path / "custom", reps=REPS, opportunities=OPPS, activities=ACTIVITIES)
    (folder / "workbench.yml").write_text(
        "timezone: America/New_York\n"
        "metrics:\n"
        "  - {id: long_calls, label: Calls over 5 minutes, type: count, source: activities,\n"
        "     where: {type: call, duration_s: {gt: 299}}, unit: count}\n"
        "  - {id: demos_per_won_deal, type: ratio, numerator: demos, denominator: deals_won, unit: number}\n"
        "  - {id: net_wins, type: derived, expr: deals_won - deals_lost, unit: count}\n"
    )
    custom = analysis.load(folder)
    r = one(custom, ["long_calls", "demos_per_won_deal", "net_wins"])
    assert r.long_calls == 2  # C1 300 s, C3 600 s
    assert r.demos_per_won_deal == pytest.approx(2 / 3)
    assert r.net_wins == 2
    assert build_catalog(custom.config).get("long_calls").label == "Calls over 5 minutes"


@pytest.mark.parametrize(
    "metric, message",
    [
        ({"id": "x", "type": "count", "source": "activites"}, "unknown source 'activites' (did you mean 'activities'?)"),
        ({"id": "x", "type": "count", "source": "activities", "where": {"typ": "call"}}, "activities has no column 'typ'"),
        ({"id": "x", "type": "ratio", "numerator": "calls", "denominator": "dealz_won"}, "refers to unknown metric 'dealz_won'"),
        ({"id": "x", "type": "derived", "expr": "__import__('os')"}, "may only use metric ids"),
        ({"id": "revenue", "type": "count", "source": "activities"}, "a built-in metric has this id"),
        ({"id": "x", "type": "derived", "expr": "x + 1"}, "circular definition"),
    ],
)
def test_invalid_custom_metrics_are_named(metric, message):
    from analysis.data.config import parse_config

    with pytest.raises(ConfigError, match="invalid metric definitions") as err:
        build_catalog(parse_config({"metrics": [metric]}))
    assert message in str(err.value)


def test_wilson_reference_values():
    low, high = wilson_interval(2, 3)
    assert (round(low, 4), round(high, 4)) == (0.2077, 0.9385)
    low, high = wilson_interval(40, 80)
    # p = 0.5, n = 80: half width 1.96 * sqrt(0.25/80 + 1.96**2/25600) / 1.048 = 0.1070
    assert (round(low, 4), round(high, 4)) == (0.3930, 0.6070)
    low, high = wilson_interval(0, 0)
    assert pd.isna(low) and pd.isna(high)


def test_inputs_are_not_mutated(ds):
    before = ds.df("opportunities")
    metrics(ds, ["revenue", "win_rate"], by="team", grain="quarter")
    pd.testing.assert_frame_equal(ds.df("opportunities"), before)


def test_compare_by_team(ds):
    c = compare(ds, ["revenue", "win_rate"], Q3, by="team").set_index(["team", "metric"])
    east, west = c.loc[("East", "revenue")], c.loc[("West", "revenue")]
    assert (east.value, east.previous, east.year_ago, east.target) == (4000, 600, 800, 6000)
    assert (west.value, west.previous, west.target) == (2000, 0, 1000)  # no West deals in Q2: 0, not n/a
    assert west.attainment == pytest.approx(2.0)
    assert pd.isna(c.loc[("West", "win_rate"), "previous"])  # no closed deals: not available
    assert c.loc[("East", "win_rate"), "value"] == pytest.approx(2 / 3)


def test_compare_never_turns_unavailable_into_zero(tmp_path):
    folder = write_tables(tmp_path / "min", reps=REPS, opportunities=OPPS)
    c = compare(analysis.load(folder), ["calls", "revenue"], Q3).set_index("metric")
    assert pd.isna(c.loc["calls", "value"]) and pd.isna(c.loc["calls", "previous"])
    assert c.loc["revenue", "value"] == 6000


def test_activity_cube_agrees_with_the_row_level_path(ds):
    ids = ["calls", "connected_calls", "avg_call_minutes", "email_reply_rate", "demo_completion_rate"]
    month = one(ds, ids, period="2025-07", grain="month")  # month grain: the pre-aggregated cube
    days = metrics(ds, ids, grain="day", periods=[f"2025-07-{d:02d}" for d in range(1, 32)])  # row level
    assert month.calls == days.calls.sum() == 3
    assert month.connected_calls == days.connected_calls.sum() == 2
    assert month.avg_call_minutes == pytest.approx((300 + 600) / 2 / 60)
    assert month.email_reply_rate_numerator == days.email_reply_rate_numerator.sum() == 1
    # a filter on a deal attribute cannot use the cube and still gives the same rows
    by_type = metrics(ds, ["activities"], by="activity_type", grain="month", periods=["2025-07"])
    assert dict(zip(by_type.activity_type, by_type.activities)) == {"call": 3, "demo": 1, "email": 3, "meeting": 2}


def test_custom_dimension_from_config(tmp_path):
    reps = REPS.replace("hire_date,end_date", "hire_date,end_date,tier").replace(
        "2020-01-01,\n", "2020-01-01,,gold\n").replace("R1,Ann,East,NA,M1,AE,2024-01-01,\n", "R1,Ann,East,NA,M1,AE,2024-01-01,,gold\n")
    reps = reps.replace("2025-08-15\n", "2025-08-15,silver\n").replace("R3,Cy,West,EU,M1,AE,2025-08-01,\n", "R3,Cy,West,EU,M1,AE,2025-08-01,,silver\n")
    folder = write_tables(tmp_path / "dim", reps=reps, opportunities=OPPS, activities=ACTIVITIES)
    (folder / "workbench.yml").write_text(CONFIG + "dimensions:\n  tier: {table: reps, column: tier}\n")
    d = analysis.load(folder)
    df = metrics(d, ["revenue", "calls"], by="tier", grain="quarter", periods=[Q3]).set_index("tier")
    assert df.loc["gold", "revenue"] == 1000 and df.loc["silver", "revenue"] == 5000  # R1 / R2 + R3
    assert df.loc["gold", "calls"] == 3 and df.loc["silver", "calls"] == 1


@pytest.mark.parametrize("by", [None, "rep_id", "team"])
def test_a_period_without_any_data_gives_zeros_and_not_available(ds, by):
    """Every metric for a period before the data starts: counts 0, rates NA, no crash (pandas 3
    cannot outer-merge two empty Arrow string keys; the engine must not ask it to)."""
    ids = [m.id for m in build_catalog(ds.config)]
    frame = metrics(ds, ids, by=by, grain="quarter", periods=["2019-Q1"])
    assert len(frame) >= 1
    assert (frame.revenue == 0).all() and frame.win_rate.isna().all()
    assert frame.pipeline_coverage.isna().all()
