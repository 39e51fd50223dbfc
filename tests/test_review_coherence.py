"""A review never contradicts itself: related figures are labelled, every line of a team or rep
review is about that scope (or says it is the company's), and figures go through one formatter."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from analysis.analytics import funnel, pipeline
from analysis.paths import SAMPLE_DATA
from analysis.reports import review
from analysis.reports import steering_review as steering

REP = "R0005"


@pytest.fixture(scope="module")
def company() -> review.Review:
    return review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA)


@pytest.fixture(scope="module")
def rep() -> review.Review:
    return review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA, scope="rep", scope_value=REP)


def _texts(items: list) -> list[str]:
    return [getattr(x, "text", str(x)) for x in items]


def test_the_two_cycle_figures_are_labelled_as_different_groups_of_deals(company: review.Review):
    s = pipeline.cycle_summary(company.ds, period=company.period).iloc[0]
    texts = _texts(review.cycle_section(company))
    won = next(t for t in texts if t.startswith("Won-deal cycle"))
    created = next(t for t in texts if t.startswith("Time to win of deals created in 2026-Q3"))
    assert f"the {int(s.won_deals):,} deals won in 2026-Q3" in won
    assert f"took {s.mean_days:.0f} days on average" in won and f"(median {s.median_days:.0f})" in won
    assert f"within {s.km_median_days:.0f} days" in created and "measure different deals" in created
    chart = next(t for t in texts if t.startswith("[chart]"))
    # the Kaplan-Meier chart is titled as the created cohort, never as "the deals that get won"
    assert "Time to win of deals created in 2026-Q3" in chart and "get won take" not in chart


def test_rep_review_stage_order_line_is_the_reps(rep: review.Review, company: review.Review):
    _, mine = funnel.transitions(rep.ds, period=rep.period, where={"rep_id": REP})
    _, everyone = funnel.transitions(company.ds, period=company.period)
    assert 0 < mine["deals"] < everyone["deals"]
    line = next(t for t in _texts(review.funnel_section(rep)) if "broke the stage order" in t)
    assert line.startswith(f"{mine['out_of_order_share']:.0%} of {rep.rep_name(REP)}'s deals")
    assert f"({mine['skips']:,} skipped steps, {mine['backward']:,} moves back, {mine['reopened']:,} re-opened" in line
    company_line = next(t for t in _texts(review.funnel_section(company)) if "broke the stage order" in t)
    assert company_line.startswith(f"{everyone['out_of_order_share']:.0%} of the deals")


def test_transitions_of_a_scope_are_the_moves_of_its_deals_only(company: review.Review):
    opps = company.ds.df("opportunities")
    ids = set(opps[opps.owner_id == REP].opportunity_id)
    frame, summary = funnel.transitions(company.ds, period=company.period, where={"rep_id": REP})
    h = company.ds.df("stage_history").sort_values(["opportunity_id", "entered_at"], kind="stable")
    h = h[h.opportunity_id.isin(ids)]
    moved = h[h.opportunity_id.duplicated()]  # every row after a deal's first is a move
    start, end = pd.Timestamp(company.period.start), pd.Timestamp(company.period.end)
    moved = moved[(moved.entered_at >= start) & (moved.entered_at < end)]
    assert summary["transitions"] == len(moved)
    assert summary["deals"] == moved.opportunity_id.nunique()
    assert int(frame.transitions.sum()) == len(moved)


def test_time_in_stage_of_a_rep_review_is_the_reps(rep: review.Review, company: review.Review):
    mine = review.stage_time_section(rep)[0].text
    everyone = review.stage_time_section(company)[0].text
    tis = funnel.time_in_stage(rep.ds, period=rep.period, by="rep_id")
    tis = tis[tis.rep_id == REP].dropna(subset=["median_days"])
    slowest = tis.sort_values("median_days", ascending=False).iloc[0]
    assert f"(median {slowest.median_days:.0f} days)" in mine
    assert mine != everyone


def test_company_figures_in_a_rep_review_say_they_are_the_companys(rep: review.Review):
    enps = _texts(steering.enps_section(rep))
    assert enps[0].startswith("Company-wide: eNPS in 2026-Q3")
    team = rep.reps.set_index("rep_id").team[REP]
    assert enps[1].startswith(f"Team {team}")
    exp = _texts(steering.experiments_section(rep))
    assert exp[0] == "Experiments (company-wide)" and "not only" in exp[1]
    assert "This review covers one team" in _texts(review.breakdown(rep, "team"))[0]
    assert "This review covers one rep" in _texts(review.breakdown(rep, "rep_id"))[0]


def test_money_in_tables_and_cards_carries_the_currency(company: review.Review):
    html_out = "".join(x.html for x in review.pipeline_section(company) if hasattr(x, "html"))
    amounts = re.findall(r"<td[^>]*>([^<]*\d{1,3}(?:,\d{3})+[^<]*)</td>", html_out)
    assert amounts and all(company.numbers.money(0, compact=False).replace("0", "") in a for a in amounts)
    cards = review.headline(company)[0].html
    revenue = company.numbers.money(float(review.metrics(company.ds, ["revenue"], grain="quarter",
                                                             periods=["2026-Q3"]).revenue.iloc[0]), compact=False)
    assert revenue in cards



def test_a_display_locale_writes_every_figure_its_way(tmp_path):
    """id-ID: dot thousands, comma decimals, jt/M abbreviations, the currency's symbol; in
    sentences, cards, tables and chart axes alike (nothing left in en-US style)."""
    config = tmp_path / "workbench.yml"
    config.write_text((SAMPLE_DATA / "workbench.yml").read_text(encoding="utf-8") + "\ndisplay_locale: id-ID\n",
                      encoding="utf-8")
    r = review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA, config=str(config))
    items = [*review.headline(r), *review.pipeline_section(r), *review.breakdown(r, "team"), *review.losses_section(r),
             *review.stage_time_section(r)]
    text = " ".join(getattr(x, "text", "") for x in items)
    html_out = " ".join(getattr(x, "html", "") for x in items)
    assert re.search(r"Revenue was US\$22,5 jt in 2026-Q3", text)
    assert "US$22.511.669" in html_out  # the revenue card, in full
    assert not re.search(r"\d,\d{3}\b", re.sub(r"<[^>]+>", " ", html_out))  # no en-US thousands anywhere
    assert re.search(r"<td[^>]*>US\$\d{1,3}(\.\d{3})+</td>", html_out)  # table money in full, id-ID
    waterfall = next(x for x in items if getattr(x, "spec", None) and "Open pipeline" in x.text)
    exprs = re.findall(r'"labelExpr": "((?:[^"\\]|\\.)*)"', json.dumps(waterfall.spec))
    assert any("US$" in e and " jt" in e for e in exprs)  # the money axis writes US$ and jt too
