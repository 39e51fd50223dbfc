"""Every analytics chart draws offline from its function's real output, with a finding as title."""

from __future__ import annotations

import pytest

import analysis
from analysis.analytics import funnel, losses, pipeline
from analysis.paths import SAMPLE_DATA
from analysis.reports import charts, figures


@pytest.fixture(scope="module")
def ds():
    return analysis.load(SAMPLE_DATA)


def svg(chart) -> str:
    out = charts.to_svg(chart)
    assert out.lstrip().startswith("<svg") and "http://" not in out.replace("http://www.w3.org", "")
    return out


def title(chart) -> str:
    t = chart.to_dict().get("title", "")
    return str(t.get("text", "") if isinstance(t, dict) else t)


def test_funnel_and_leak_charts_name_the_weakest_step(ds):
    f = funnel.stage_funnel(ds, "2026-Q3")
    for make in (figures.funnel_chart, figures.leakage_chart):
        chart = make(f)
        svg(chart)
        assert "Demo" in title(chart), title(chart)


def test_time_in_stage_boxplot_and_stalled_table(ds):
    tis = funnel.time_in_stage(ds)
    assert (tis.p25_days <= tis.median_days).all() and (tis.median_days <= tis.p75_days).all()
    assert (tis.p75_days <= tis.p90_days).all()
    chart = figures.time_in_stage_chart(tis)
    svg(chart)
    assert title(chart).startswith("Deals wait longest in")
    html_out = figures.stalled_table(funnel.stalled_deals(ds, as_of=ds.last_date()), {"R0039": "<b>x</b>"})._repr_html_()
    assert "Days in step" in html_out and "&lt;b&gt;x&lt;/b&gt;" in html_out


def test_loss_and_engagement_charts(ds):
    la = losses.loss_analysis(ds, "2026-Q3")
    chart = figures.loss_reasons_chart(la)
    svg(chart)
    assert "No urgency is the top loss reason" in title(chart)
    svg(figures.engagement_chart(losses.engagement(ds, "2026-Q3")))


def test_waterfall_and_survival_charts(ds):
    wf = pipeline.pipeline_waterfall(ds, "2026-Q3")
    chart = figures.waterfall_chart(wf, currency="USD")
    svg(chart)
    grew = wf.end.iloc[0] >= wf.start.iloc[0]
    assert title(chart).startswith("Open pipeline grew" if grew else "Open pipeline shrank")
    km = pipeline.cycle_survival(ds, period="2026-Q2")
    svg(figures.survival_chart(km))


def test_step_labels():
    assert figures.step_label("objection_handling") == "Objection handling"
    assert figures.step_label(None) == "(unknown)"


def test_money_axes_titles_and_tables_use_the_datasets_formatter(ds):
    import re

    from analysis.format import Numbers

    wf = pipeline.pipeline_waterfall(ds, "2026-Q3")
    change = abs(float(wf.end.iloc[0]) - float(wf.start.iloc[0]))
    for numbers, symbol in ((Numbers("USD"), "$"), (Numbers("IDR", "id-ID"), "Rp ")):
        chart = figures.waterfall_chart(wf, numbers=numbers)
        assert title(chart).endswith(f"by {numbers.money(change)}")
        labels = re.findall(r"<text[^>]*>([^<]*)</text>", svg(chart))
        ticks = [t for t in labels if t.startswith(symbol)]
        assert len(ticks) >= 3 and all(t == symbol + "0" or t.endswith(("M", " jt")) for t in ticks), labels
    stalled = funnel.stalled_deals(ds, as_of=ds.last_date())
    body = figures.stalled_table(stalled, numbers=Numbers("USD"))._repr_html_()
    first = stalled.amount.iloc[0]
    assert f">{Numbers('USD').money(first, compact=False)}</td>" in body and "$" in body
