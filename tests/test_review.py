"""The sample quarterly review: rendered end to end, offline, escaped, and failing cleanly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.format import money
from analysis.paths import NOTEBOOKS, SAMPLE_DATA
from analysis.reports import review
from analysis.reports import steering_review as steering
from analysis.reports.render import find_external_resources

from .browser import CHROMIUM, charts_drawn
from .conftest import OPPS_CSV, REPS_CSV, strip_render_ids, write_tables

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def report(out: Path) -> Path:
    """The sample's company review, rendered by the command a user runs (with ``--pdf`` where
    Chromium is installed: one render serves the HTML and the PDF tests)."""
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "review", "--cadence", "quarterly", "--period", "2026-Q3",
         "--data", str(SAMPLE_DATA), "--out", str(out), "--quiet", *(["--pdf"] if CHROMIUM else [])],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def page(report: Path) -> str:
    return report.read_text(encoding="utf-8")


def test_report_lands_under_a_predictable_name(report: Path, out: Path):
    assert report == out / "quarterly" / "2026-Q3" / "company.html"
    assert (report.parent / "company.ipynb").is_file()
    record = json.loads(report.with_suffix(".json").read_text())
    assert (record["scope"], record["scope_value"]) == ("company", "")
    index = (out / "index.html").read_text()
    assert "quarterly/2026-Q3/company.html" in index


def test_full_tables_are_attached_beside_the_report(report: Path, page: str):
    """The sample lists more stalled deals than the review shows: the whole list is a CSV beside it."""
    record = json.loads(report.with_suffix(".json").read_text())
    assert "company.stalled-deals.csv" in record["attachments"]
    stalled = pd.read_csv(report.parent / "company.stalled-deals.csv")
    ds = analysis.load(SAMPLE_DATA)
    from analysis.analytics import funnel

    expected = funnel.stalled_deals(ds, as_of=date(2026, 9, 30))
    assert stalled.opportunity_id.tolist() == expected.opportunity_id.tolist()
    assert 'href="company.stalled-deals.csv"' in page and f"All {len(expected):,} stalled deals" in page


def test_report_has_every_section_and_no_code(page: str):
    for heading in ["Summary", "Revenue trend", "Quota attainment", "Funnel and leaks",
                    "Time in stage and stalled deals", "Pipeline", "Win rate and deal size", "Sales cycle",
                    "Activity", "Won vs lost engagement", "Lead funnel", "New vs existing customers",
                    "Loss reasons", "Appendix: data quality", "Appendix: metric glossary",
                    "Appendix: how this report was made"]:
        assert heading in page, heading
    assert "review.show(" not in page and "review.setup(" not in page
    assert not find_external_resources(page)
    assert "widget-state" not in page  # no content lives only in widgets


def test_headline_figures_match_the_engine(page: str):
    ds = analysis.load(SAMPLE_DATA)
    c = analysis.compare(ds, ["revenue", "win_rate"], "2026-Q3").set_index("metric")
    revenue = money(c.loc['revenue', 'value'], "USD")
    win_rate = f"{c.loc['win_rate', 'value']:.1%}"
    assert f"Revenue was {revenue} in 2026-Q3" in page
    assert f"{c.loc['revenue', 'value']:,.0f}" in page  # the exact figure, on its card
    assert win_rate in page


def test_funnel_section_names_the_planted_leak(page: str):
    assert "The biggest leak is Demo → Objection handling" in page
    assert "Snapshot of open deals as of" in page


def _sections_of_the_notebook(r: review.Review) -> str:
    """Run every section call of notebooks/review.ipynb for ``r`` and return their HTML."""
    nb = json.loads((NOTEBOOKS / "review.ipynb").read_text())
    calls = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    calls = [c for c in calls if c.startswith("review.show(")]
    assert len(calls) >= 15
    shown: list = []
    for call in calls:
        eval(call.replace("review.show(", "shown.extend(", 1), {"review": review, "steering": steering, "r": r,
                                                                "shown": shown})
    return "".join(x._repr_html_() if hasattr(x, "_repr_html_") else str(x) for x in shown)


def test_rep_scope_never_names_another_rep():
    r = review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA, scope="rep", scope_value="R0028")
    reps = r.ds.df("reps")
    others = set(reps[reps.rep_id != "R0028"].name) | set(reps[reps.rep_id != "R0028"].rep_id)
    me = reps.set_index("rep_id").loc["R0028", "name"]
    html_out = _sections_of_the_notebook(r)
    assert me in html_out
    assert "You against your peers" in html_out and "Peer median" in html_out
    assert not [n for n in others if re.search(rf"\b{re.escape(n)}\b", html_out)]


def test_peer_benchmarks_are_the_median_and_top_quartile_of_same_role_peers():
    r = review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA, scope="rep", scope_value="R0028")
    reps = review.active_reps(r)
    peers = reps[(reps.role == "AE") & (reps.rep_id != "R0028")].rep_id
    df = analysis.metrics(r.ds, ["win_rate", "sales_cycle_days"], by="rep_id", grain="quarter", periods=["2026-Q3"],
                          filters={"rep_id": list(peers)})
    page = re.sub(r' style="[^"]*"', "", "".join(x._repr_html_() for x in review.peer_benchmarks(r)))
    row = re.search(r"<td>Win rate</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", page)
    assert row.group(2) == f"{df.win_rate.astype(float).median():.1%}"
    assert row.group(3) == f"{df.win_rate.astype(float).quantile(0.75):.1%}"
    cycle = re.search(r"<td>Sales cycle[^<]*</td><td>[^<]+</td><td>[^<]+</td><td>([^<]+)</td>", page)
    assert cycle.group(1) == f"{df.sales_cycle_days.astype(float).quantile(0.25):.1f} d"  # lower is better
    company = review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA)
    assert review.peer_benchmarks(company) == []


def test_provenance_states_how_it_was_made(page: str):
    ds = analysis.load(SAMPLE_DATA)
    assert ds.source.fingerprint in page
    assert analysis.__version__ in page
    assert "Metric catalog version" in page and "Parameter cadence" in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it in .ci/run)")
def test_every_chart_is_drawn_offline(page: str, tmp_path: Path):
    drawn = charts_drawn(page, tmp_path)
    assert len(drawn) == len(re.findall(r'class="[^"]*\bwb-chart\b', page)) >= 2
    for chart in drawn:
        assert chart["width"] > 100 and chart["height"] > 50, chart
        assert chart["marks"] >= 1, chart
    assert any(c["title"].startswith("Revenue per quarter") for c in drawn)


def test_bad_period_fails_in_one_line_and_keeps_the_good_report(report: Path, out: Path):
    before = report.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "review", "--cadence", "quarterly", "--period", "2026-13",
         "--data", str(SAMPLE_DATA), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "2026-13" in lines[0], proc.stderr
    assert report.read_bytes() == before


def test_wrong_grain_period_is_refused():
    with pytest.raises(review.ReviewError, match="needs a quarter"):
        review.setup(cadence="quarterly", period="2026-07", data=SAMPLE_DATA)


def test_default_period_is_the_last_complete_one_in_the_data():
    r = review.setup(cadence="quarterly", data=SAMPLE_DATA)
    assert r.period.label == "2026-Q3"
    assert review.setup(cadence="monthly", data=SAMPLE_DATA).period.label == "2026-09"


def test_unknown_scope_values_suggest(tmp_path: Path):
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=OPPS_CSV)
    with pytest.raises(review.ReviewError, match="did you mean '007'"):
        review.setup(cadence="quarterly", scope="rep", scope_value="07", data=folder)
    with pytest.raises(review.ReviewError, match="papermill -p turns 007 into 7"):
        review.setup(cadence="quarterly", scope="rep", scope_value=7, data=folder)
    with pytest.raises(review.ReviewError, match="cadence 'quartely' is not one of .* \\(did you mean 'quarterly'\\?\\)"):
        review.setup(cadence="quartely", data=folder)


def test_hostile_names_are_escaped(tmp_path: Path):
    reps = REPS_CSV.replace("Ann Archer", "<script>alert(1)</script>")
    folder = write_tables(tmp_path / "x", reps=reps, opportunities=OPPS_CSV)
    r = review.setup(cadence="quarterly", period="2025-Q3", data=folder)
    html_out = "".join(x._repr_html_() for x in review.breakdown(r, "rep_id"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_out
    assert "<script>alert" not in html_out


def test_same_data_and_parameters_give_the_same_figures():
    def figures_of():
        r = review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA)
        parts = [review.headline, review.attainment, review.funnel_section, review.pipeline_section,
                 review.losses_section, lambda q: review.breakdown(q, "team")]
        html_out = "".join(x._repr_html_() for f in parts for x in f(r))
        return strip_render_ids(html_out)

    assert figures_of() == figures_of()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it in .ci/run)")
def test_review_pdf(report: Path):
    pdf = report.with_suffix(".pdf")
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
    record = json.loads(report.with_suffix(".json").read_text())
    assert record["pdf"] == "company.pdf"


def test_plain_papermill_refuses_an_unknown_parameter(tmp_path: Path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as caught:
        pm.execute_notebook(str(NOTEBOOKS / "review.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"scope_valeu": "East", "data": str(SAMPLE_DATA)},
                            cwd=str(NOTEBOOKS), progress_bar=False, log_output=False)
    error = caught.value
    assert error.ename == "ReviewError"
    assert error.evalue == ("unknown parameter 'scope_valeu': did you mean 'scope_value'? "
                            "the review's parameters are cadence, period, scope, scope_value, data, config, source, engine")
    assert error.traceback == [f"ReviewError: {error.evalue}"], "one line, no traceback"


def test_notebook_parameters_survive_papermill_coercion():
    base = {"cadence": "annual", "period": 2025, "scope": "company", "scope_value": "", "data": str(SAMPLE_DATA),
            "config": "", "In": [], "Out": {}, "_": "", "review": review}
    r = review.from_notebook(base)
    assert r.period.label == "2025" and r.parameters["period"] == "2025"
    with pytest.raises(review.ReviewError, match=r"unknown parameter 'team'"):
        review.from_notebook({**base, "team": "East"})
    with pytest.raises(review.ReviewError, match=r"pass ids with -r"):
        review.from_notebook({**base, "scope": "rep", "scope_value": 7})


def test_comparisons_before_the_data_say_no_data_not_zero():
    """The sample starts on 2024-04-01: a review of 2024-Q3 has no 2023-Q3 to compare with."""
    r = review.setup(cadence="quarterly", period="2024-Q3", data=SAMPLE_DATA)
    cards = review.headline(r)[0].html
    assert "no data for 2023-Q3" in cards
    assert "in 2023-Q3" not in cards and "vs 2023-Q3" not in cards
    assert "vs 2024-Q2" in cards or "in 2024-Q2" in cards  # the previous quarter has data
    later = review.headline(review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA))[0].html
    assert "no data for" not in later
