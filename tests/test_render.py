"""Presentation and rendering: charts, KPI cards, tables, papermill runs, the offline HTML report.

One rendered report (``tests/fixtures/render_demo.ipynb``: KPI cards, a table and two charts
with a hostile rep name ``<script>alert(1)</script>``, sections A and B) is shared by the
module (a papermill run costs several seconds). Browser checks use headless Chromium with the
network disabled; they are skipped only when ``chromium`` is not installed (CI installs it
in ``.ci/run``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import altair as alt
import pandas as pd
import pytest

from analysis.errors import WorkbenchError
from analysis.reports import charts, render
from analysis.reports.render import RenderError

DEMO = Path(__file__).parent / "fixtures" / "render_demo.ipynb"
HOSTILE = "<script>alert(1)</script>"
CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (CI installs Debian's chromium in .ci/run)"
)

# src= / href= attributes that point at the network (http, https or protocol-relative)
URL_ATTR = re.compile(r"""\b(?:src|href|xlink:href|srcset)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


# -- the shared rendered report ---------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Path:
    """reports/quarterly/2025-Q3/company.html rendered from the demo (with a PDF if possible)."""
    root = tmp_path_factory.mktemp("reports")
    render.render(
        DEMO,
        {"title": "Demo run", "name": HOSTILE},
        root / "quarterly" / "2025-Q3" / "company.html",
        title="Demo review 2025-Q3",
        pdf=CHROMIUM is not None,
        meta={"cadence": "quarterly", "period": "2025-Q3", "scope": "company"},
    )
    return root


@pytest.fixture(scope="module")
def report(reports: Path) -> Path:
    return reports / "quarterly" / "2025-Q3" / "company.html"


@pytest.fixture(scope="module")
def page(report: Path) -> str:
    return report.read_text(encoding="utf-8")


@pytest.mark.slow
def test_render_writes_report_notebook_and_record(report: Path):
    folder = report.parent
    assert report.stat().st_size > 0
    assert (folder / "company.ipynb").is_file()
    record = json.loads((folder / "company.json").read_text())
    assert record["title"] == "Demo review 2025-Q3"
    assert record["parameters"] == {"title": "Demo run", "name": HOSTILE}
    assert record["meta"]["scope"] == "company"
    assert record["rendered_at"] and record["duration_seconds"] > 0
    assert not (folder / "company.failed.ipynb").exists()
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], "temporary files left"
    assert report.stat().st_mode & 0o044, "report must be readable by others (mkstemp gives 0600)"


@pytest.mark.slow
def test_report_loads_nothing_from_the_network(page: str):
    assert not URL_ATTR.findall(page)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", page, re.I)
    assert render.find_external_resources(page) == []
    assert "<script" not in page.lower(), "the report needs no JavaScript at all"


@pytest.mark.slow
def test_code_and_prompts_are_hidden(page: str, report: Path):
    for source in ("import altair", "charts.kpi_cards(", "raise ValueError", "fail = False"):
        assert source not in page
    assert "In&nbsp;[" not in page and "Out[" not in page
    # warnings stay in the executed notebook, out of the reader's way
    assert "demo warning for the analyst only" not in page
    assert "demo warning for the analyst only" in (report.parent / "company.ipynb").read_text()


@pytest.mark.slow
def test_table_of_contents_lists_the_sections(page: str):
    nav = re.search(r'<nav class="wb-toc".*?</nav>', page, re.S)
    assert nav is not None
    links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', nav.group(0))
    assert [text for _, text in links] == ["Section A", "Section B", "Trend", "Appendix"]
    for anchor, _ in links:
        assert f'id="{anchor}"' in page
    assert page.index('<h1 id="Demo-review"') < nav.start() < page.index('id="Section-A"')
    assert "<title>Demo review 2025-Q3</title>" in page


@pytest.mark.slow
def test_data_is_escaped(page: str):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE not in page


@pytest.mark.slow
def test_print_css(page: str):
    assert "@media print" in page
    assert re.search(r"h2\s*\{[^}]*break-before:\s*page", page)
    assert re.search(r"figure[^{]*\{[^}]*break-inside:\s*avoid", page)
    assert re.search(r"svg[^{]*\{[^}]*max-width:\s*100%", page)


from .browser import charts_drawn  # noqa: E402


@pytest.mark.slow
@needs_chromium
def test_charts_are_drawn_by_an_offline_browser(page: str, tmp_path: Path):
    """Open a copy of the report (plus a measuring script) in Chromium with the network cut."""
    drawn = charts_drawn(page, tmp_path)
    assert len(drawn) == 2
    for chart in drawn:
        assert chart["width"] > 100 and chart["height"] > 100, chart
        assert chart["marks"] >= 3, chart
    assert drawn[0]["title"] == f"Won deals lead: {HOSTILE}"
    assert drawn[1]["title"].startswith("Revenue grew five months out of six")


@pytest.mark.slow
@needs_chromium
def test_pdf_is_written(report: Path):
    pdf = report.with_suffix(".pdf")
    assert pdf.is_file() and pdf.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert json.loads(report.with_suffix(".json").read_text())["pdf"] == "company.pdf"


def test_pdf_without_chromium_says_what_to_install(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    (tmp_path / "r.html").write_text("<p>x</p>")
    with pytest.raises(RenderError, match="install Debian's chromium"):
        render.print_pdf(tmp_path / "r.html", tmp_path / "r.pdf")


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.slow
def _earlier_report(report: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A report folder holding a good earlier render, and its files' bytes."""
    folder = tmp_path / "quarterly" / "2025-Q3"
    folder.mkdir(parents=True)
    for suffix in (".html", ".ipynb", ".json"):
        shutil.copy2(report.with_suffix(suffix), folder / f"company{suffix}")
    return folder, {p.name: p.read_bytes() for p in folder.iterdir()}


def test_failed_run_keeps_the_earlier_report(report: Path, tmp_path: Path):
    folder, before = _earlier_report(report, tmp_path)

    with pytest.raises(RenderError) as caught:
        render.render(DEMO, {"fail": True}, folder / "company.html", title="Demo review 2025-Q3")
    message = str(caught.value)
    assert "\n" not in message
    assert "ValueError: demo failure requested" in message
    assert "company.failed.ipynb" in message
    assert caught.value.ename == "ValueError"
    assert isinstance(caught.value, WorkbenchError)

    after = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "company.failed.ipynb"}
    assert after == before, "the earlier report and its files must be byte-identical"
    failed = folder / "company.failed.ipynb"
    assert failed.is_file() and "demo failure requested" in failed.read_text()


def test_unknown_parameter_is_refused_with_a_suggestion(tmp_path: Path):
    target = tmp_path / "quarterly" / "2025-Q3" / "company.html"
    with pytest.raises(RenderError) as caught:
        render.render(DEMO, {"nmae": "x"}, target, title="Demo")
    message = str(caught.value)
    assert "\n" not in message
    assert "unknown parameter 'nmae'" in message and "did you mean 'name'?" in message
    assert not target.parent.exists() or not any(target.parent.iterdir()), "nothing may be written"


def test_validate_parameters_lists_the_parameters_cell():
    declared = render.validate_parameters(DEMO, {"fail": True})
    assert list(declared) == ["title", "fail", "name", "sleep"]
    with pytest.raises(RenderError, match="not found"):
        render.validate_parameters(DEMO.with_name("missing.ipynb"), {})


def test_parameters_must_be_literals():
    with pytest.raises(RenderError, match="parameter 'title'"):
        render.validate_parameters(DEMO, render._plain({"title": object()}))
    assert render._plain({"p": Path("/x"), "d": pd.Timestamp("2025-07-01").date()}) == {
        "p": "/x",
        "d": "2025-07-01",
    }


# -- the kernel -------------------------------------------------------------------------------


def test_kernel_is_this_interpreter():
    folder = render.ensure_kernel()
    assert folder == Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3"
    stamp = (folder / "kernel.json").stat().st_mtime_ns
    render.ensure_kernel()  # idempotent
    assert (folder / "kernel.json").stat().st_mtime_ns == stamp
    km = render._kernel_manager_class()(kernel_name="python3")
    assert Path(km.kernel_spec.resource_dir) == folder
    assert km.kernel_spec.argv[0] in {"python", "python3", sys.executable}


def test_kernel_is_installed_into_a_fresh_prefix(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    folder = render.ensure_kernel()
    assert folder == tmp_path / "share" / "jupyter" / "kernels" / "python3"
    assert json.loads((folder / "kernel.json").read_text())["argv"][0] == sys.executable


# -- index ------------------------------------------------------------------------------------


def _fake_report(root: Path, rel: str, when: str, title: str | None = None, scope: tuple | None = None) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<html></html>")
    record = {"rendered_at": when, "title": title or rel}
    if scope:
        record.update(scope=scope[0], scope_value=scope[1])
    path.with_suffix(".json").write_text(json.dumps(record))


def test_write_index_groups_by_cadence_newest_first(tmp_path: Path):
    _fake_report(tmp_path, "quarterly/2025-Q2/company.html", "2025-07-02T08:00:00+00:00")
    _fake_report(tmp_path, "quarterly/2025-Q3/team-east-7b5c1e.html", "2025-10-02T09:00:00+00:00",
                 scope=("team", "East"))
    _fake_report(tmp_path, "quarterly/2025-Q3/company.html", "2025-10-02T08:00:00+00:00", scope=("company", ""))
    _fake_report(tmp_path, "quarterly/2024-Q4/company.html", "2025-01-03T08:00:00+00:00")
    _fake_report(tmp_path, "annual/2024/company.html", "2025-01-05T08:00:00+00:00")
    _fake_report(tmp_path, "monthly/2025-09/company.html", "2025-10-01T07:30:00+00:00")
    _fake_report(tmp_path, "semiannual/2025-H1/<b>.html", "2025-07-03T08:00:00+00:00", title=HOSTILE)
    (tmp_path / "quarterly" / "2025-Q3" / ".company.x1y2.html").write_text("half written")
    (tmp_path / "monthly" / "2025-09" / "company.pdf").write_bytes(b"%PDF-")

    index = render.write_index(tmp_path)
    text = index.read_text()
    assert index == tmp_path / "index.html"
    headings = re.findall(r"<h2>([^<]+)</h2>", text)
    assert headings == ["Monthly", "Quarterly", "Semiannual", "Annual"]
    links = re.findall(r'<a href="([^"]+\.html)">', text)
    assert links == [
        "monthly/2025-09/company.html",
        "quarterly/2025-Q3/company.html",
        "quarterly/2025-Q3/team-east-7b5c1e.html",
        "quarterly/2025-Q2/company.html",
        "quarterly/2024-Q4/company.html",
        "semiannual/2025-H1/%3Cb%3E.html",
        "annual/2024/company.html",
    ]
    assert '<a href="monthly/2025-09/company.pdf">PDF</a>' in text
    # the scope column shows the scope's name from the record (the file name without one)
    scopes = re.findall(r"<tr><td>2025-Q3</td><td>([^<]*)</td>", text)
    assert scopes == ["Company", "Team East"]
    assert "<tr><td>2025-H1</td><td>&lt;b&gt;</td>" in text
    assert "2025-10-02 08:00 UTC" in text
    assert HOSTILE not in text and "&lt;script&gt;" in text and "<b>" not in text
    assert ".company.x1y2" not in text
    assert render.find_external_resources(text) == [] and not URL_ATTR.findall(text)


@pytest.mark.slow
def test_write_index_lists_the_rendered_report_and_failed_runs(reports: Path, tmp_path: Path):
    text = render.write_index(reports).read_text()
    assert '<a href="quarterly/2025-Q3/company.html">Demo review 2025-Q3</a>' in text
    (tmp_path / "monthly" / "2025-10").mkdir(parents=True)
    (tmp_path / "monthly" / "2025-10" / "company.failed.ipynb").write_text("{}")
    text = render.write_index(tmp_path).read_text()
    assert "last run failed" in text and 'href="monthly/2025-10/company.failed.ipynb"' in text


# -- HTML checks ------------------------------------------------------------------------------


def test_find_external_resources():
    page = (
        '<script src="https://cdn.example/require.js"></script>'
        '<link rel="stylesheet" href="//fonts.example/css">'
        "<style>@import url(https://fonts.example/x.css);</style>"
        '<img src="http://img.example/a.png">'
        '<a href="https://docs.example/metric">docs</a>'
        '<svg xmlns="http://www.w3.org/2000/svg"></svg>'
        '<script>import("https://cdn.jsdelivr.net/npm/vega@5")</script>'
        '<script type="application/vnd.jupyter.widget-state+json">{"u": "https://x"}</script>'
    )
    assert render.find_external_resources(page) == [  # in page order
        "https://cdn.example/require.js",
        "//fonts.example/css",
        "https://fonts.example/x.css",
        "http://img.example/a.png",
        "https://cdn.jsdelivr.net/npm/vega@5",
    ]
    chart = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x:Q")
    assert render.find_external_resources(chart.to_html()), "Altair's own HTML loads Vega from a CDN"


# -- charts, KPI cards, tables (no papermill) -------------------------------------------------


def _can_cut_network() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    return subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_cut_network(), reason="`unshare -n` (root or user namespaces) is not available")
def test_charts_draw_with_the_network_cut():
    """vl-convert fetches no font, schema or script: draw a chart in a namespace with no network."""
    code = (
        "import altair as alt, pandas as pd\n"
        "from analysis.reports import charts\n"
        "df = pd.DataFrame({'status': ['won', 'lost'], 'deals': [3, 2]})\n"
        "fig = charts.show(alt.Chart(df, title='Offline').mark_bar().encode(x='status:N', y='deals:Q'))\n"
        "print(fig.html.count('<svg'))\n"
    )
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "1"


DEALS = pd.DataFrame({"status": ["won", "lost", "open"], "deals": [12, 7, 9]})


def _status_chart(title="Open pipeline is thin: 9 deals") -> alt.Chart:
    return alt.Chart(DEALS, title=title).mark_bar().encode(
        x="status:N", y="deals:Q", color=alt.Color("status:N", scale=charts.status_scale())
    )


def test_theme_is_registered_and_enabled():
    assert alt.theme.active == charts.THEME_NAME
    assert charts.THEME_NAME in alt.theme.names()
    spec = charts._spec(_status_chart())
    assert spec["config"]["font"] == charts.FONT
    assert spec["encoding"]["color"]["scale"]["range"] == [
        charts.STATUS_COLORS["won"], charts.STATUS_COLORS["lost"], charts.STATUS_COLORS["open"]
    ]
    with alt.theme.enable("dark"):  # a notebook switching themes does not change reports
        assert charts._spec(_status_chart())["config"]["font"] == charts.FONT
    with pytest.raises(charts.PresentationError, match="unknown deal status 'pending'"):
        charts.status_scale(["won", "pending"])


def test_show_gives_an_accessible_offline_figure():
    fig = charts.show(_status_chart(f"Top rep: {HOSTILE}"), caption="Source: CRM <export>")
    out, _ = fig._repr_mimebundle_()
    assert "text/html" not in out  # JupyterLab would show it before the live Vega-Lite chart
    assert "image/png" in out and any(k.startswith("application/vnd.vegalite") for k in out)
    body = fig.html
    assert body.count("<figure") == 1 and "<figcaption>" in body
    assert "Top rep: &lt;script&gt;alert(1)&lt;/script&gt;" in body and HOSTILE not in body
    assert "Source: CRM &lt;export&gt;" in body
    svg_open = re.search(r"<svg\b[^>]*>", body).group(0)
    assert 'role="img"' in svg_open and "aria-labelledby=" in svg_open
    assert re.search(r'<title id="[^"]+">Top rep: &lt;script&gt;', body)
    assert "<script" not in body.lower() and render.find_external_resources(body) == []
    assert out["text/plain"].startswith("[chart] Top rep")


def test_inline_svgs_do_not_share_ids():
    clip = alt.Chart(DEALS, title="Clipped").mark_bar(clip=True).encode(x="status:N", y="deals:Q")
    first, second = charts.to_svg(clip), charts.to_svg(clip)
    ids_1 = set(re.findall(r'\bid="([^"]+)"', first))
    ids_2 = set(re.findall(r'\bid="([^"]+)"', second))
    assert len(ids_1) > 1 and not ids_1 & ids_2
    for ref in re.findall(r"url\(#([^)]+)\)", first):
        assert ref in ids_1


def test_charts_need_a_title_and_no_network():
    untitled = alt.Chart(DEALS).mark_bar().encode(x="status:N", y="deals:Q")
    with pytest.raises(charts.PresentationError, match="chart has no title"):
        charts.show(untitled)
    assert "<title" in charts.to_svg(untitled, alt_text="Deals by status")
    big = alt.Chart(pd.DataFrame({"x": range(6000)}), title="Too many points").mark_point().encode(x="x:Q")
    with pytest.raises(charts.PresentationError, match="aggregate before charting"):
        charts.show(big)
    remote = alt.Chart("https://example.com/deals.csv", title="Remote").mark_bar().encode(x="a:N", y="b:Q")
    with pytest.raises(charts.PresentationError, match="vl-convert could not draw chart 'Remote'"):
        charts.to_svg(remote)


def test_kpi_cards_arrows_follow_direction():
    body = charts.kpi_cards(
        [
            {"label": "Revenue", "value": "$1.2M", "comparison": "+8% vs Q2", "change": 0.08},
            {"label": "Sales cycle", "value": "41 d", "comparison": "+3 d vs Q2", "change": 3,
             "direction": "lower"},
            charts.KPI("Win rate", "31%", [charts.Comparison("-2 pts vs target", -0.02),
                                           ("flat vs last year", 0), ("vs plan", None)]),
            {"label": HOSTILE, "value": HOSTILE},
        ]
    ).html
    assert "<li" not in body and "<ul" not in body  # no list bullets in JupyterLab
    body = re.sub(r' style="[^"]*"', "", body)  # inline styles: they survive JupyterLab's sanitizer
    assert 'class="wb-good" role="listitem"><span class="wb-arrow" aria-hidden="true">&#9650;</span> +8% vs Q2' in body
    assert 'class="wb-bad" role="listitem"><span class="wb-arrow" aria-hidden="true">&#9650;</span> +3 d vs Q2' in body
    assert 'class="wb-bad" role="listitem"><span class="wb-arrow" aria-hidden="true">&#9660;</span> -2 pts vs target' in body
    assert "(up, better)" in body and "(up, worse)" in body and "(unchanged)" in body
    assert '<div class="wb-flat" role="listitem">vs plan</div>' in body
    assert HOSTILE not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert body.count('<div class="wb-kpi" role="listitem">') == 4
    with pytest.raises(charts.PresentationError, match="did you mean 'direction'"):
        charts.kpi_cards([{"label": "x", "value": "1", "directon": "lower"}])
    with pytest.raises(charts.PresentationError, match="use 'higher' or 'lower'"):
        charts.kpi_cards([{"label": "x", "value": "1", "direction": "up"}])


def test_table_formats_at_presentation_time():
    df = pd.DataFrame(
        {
            "rep": [HOSTILE, "Ann"],
            "revenue": [1234567.891, 0.0],
            "win_rate": [0.3125, float("nan")],
            "deals": [12, 3],
        }
    )
    before = df.copy()
    body = charts.table(df, formats={"revenue": "{:,.0f}", "win_rate": ".1%"}, caption="Reps & <deals>").html
    assert re.search(r'<th scope="col"[^>]*text-align:left">Rep</th>', body)  # text left, header a label
    assert re.search(r'<td class="num"[^>]*text-align:right">1,234,568</td>', body)  # numbers right
    body = re.sub(r' style="[^"]*"', "", body)
    assert "<caption>Reps &amp; &lt;deals&gt;</caption>" in body
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in body and HOSTILE not in body
    assert '<td class="num">1,234,568</td>' in body and '<td class="num">31.2%</td>' in body
    assert '<td class="na" title="not available">n/a</td>' in body
    assert '<td class="num">12</td>' in body
    assert '<th scope="row">' not in body  # default RangeIndex is not shown
    pd.testing.assert_frame_equal(df, before)  # numbers stay numbers
    indexed = re.sub(r' style="[^"]*"', "", charts.table(df.set_index("rep"), formats={"revenue": lambda v: f"${v:,.0f}"}).html)
    assert '<th scope="row">&lt;script&gt;' in indexed and "$1,234,568" in indexed
    with pytest.raises(charts.PresentationError, match="did you mean 'revenue'"):
        charts.table(df, formats={"revenu": "{:,.0f}"})
    with pytest.raises(charts.PresentationError, match="does not fit value"):
        charts.table(df, formats={"rep": "{:,.0f}"})


def test_a_hung_cell_fails_after_the_cell_timeout_and_keeps_the_earlier_report(report: Path, tmp_path: Path):
    import time

    folder, before = _earlier_report(report, tmp_path)
    started = time.perf_counter()
    with pytest.raises(RenderError) as caught:
        render.render(DEMO, {"sleep": 120}, folder / "company.html", title="Demo review 2025-Q3", timeout=3)
    assert time.perf_counter() - started < 60
    assert "\n" not in str(caught.value) and "a cell ran longer than 3 s" in str(caught.value)
    after = {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.endswith("failed.ipynb")}
    assert after == before
    assert render.CELL_TIMEOUT >= 600  # generous by default: a review's slowest cell at scale takes a minute
