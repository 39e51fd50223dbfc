"""Charts live in JupyterLab, a picture elsewhere, an inline-SVG figure in the report; axes,
cards and tables written by the one formatter."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import altair as alt
import nbformat
import pandas as pd
import pytest

from analysis.format import Numbers
from analysis.reports import charts, render

HOSTILE = "<script>alert(1)</script>"
LINE = pd.DataFrame({"days": [0, 10, 20, 30], "share": [1.0, 0.7, 0.5, 0.4]})
BARS = pd.DataFrame({"step": ["a", "b", "c"], "amount": [0.0, 17_500_000, 35_000_000]})


def _line() -> alt.Chart:
    return alt.Chart(LINE, title="Half the deals are won within 20 days").mark_line().encode(
        x="days:Q", y=alt.Y("share:Q", axis=charts.axis(kind="percent")))


def _bars(numbers: Numbers, title: str = "Pipeline by step") -> alt.Chart:
    return alt.Chart(BARS, title=title).mark_bar().encode(
        x="step:N", y=alt.Y("amount:Q", title="Pipeline", axis=charts.axis(numbers, "money")), tooltip=["step"])


@pytest.fixture(scope="module")
def figure() -> charts.Figure:
    caption = f"Source: CRM {HOSTILE}\n\nsecond paragraph with $5M and $3M, *stars* and _under_ \\ back"
    return charts.show(_bars(Numbers("USD"), title=f"Top step: {HOSTILE}"), caption=caption)


def test_the_output_is_live_chart_picture_and_report_figure(figure, monkeypatch):
    import IPython.display
    from IPython.core.formatters import DisplayFormatter

    sent = []
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data, metadata: sent.append((data, metadata)))
    assert DisplayFormatter().format(figure) == ({}, {})  # display() publishes the figure's own bundle
    assert sent == [figure._repr_mimebundle_()]
    data, metadata = sent[0]  # what the .ipynb keeps
    assert set(data) == {charts.VEGALITE_MIME, "image/png", "text/markdown", "text/plain"}  # no text/html
    spec = data[charts.VEGALITE_MIME]
    assert spec["$schema"].endswith(f"/v{charts.LAB_VEGALITE_VERSION}.json")
    assert spec["title"]["text"] == ["Top step: <script>alert(1)</script>"]  # Vega draws text, never HTML
    assert metadata[charts.VEGALITE_MIME]["embed_options"]["actions"]["editor"] is False
    png = base64.b64decode(data["image/png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert metadata["image/png"]["width"] > 300 and metadata["image/png"]["height"] > 150
    assert data["text/plain"].startswith("[chart] Top step")
    md = data["text/markdown"]
    assert "\n" not in md and md == figure.html.replace("\n", " ")  # one markdown HTML block
    assert md.count("<figure") == 1 and 'class="marks wb-chart"' in md and "&lt;script&gt;" in md
    assert HOSTILE not in md and figure.rows == 3
    assert charts.output_html(data) == md and charts.output_html({"text/html": ["<p>", "x</p>"]}) == "<p>x</p>"


def test_nbconvert_passes_the_figure_through_unchanged(figure):
    from nbconvert.filters.markdown import markdown2html

    # a blank line, "$...$" (math), "*", "_" and a backslash in the caption change nothing
    assert markdown2html(figure.markdown).strip() == figure.markdown


def _page(data: dict, metadata: dict, path: Path) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("show()", outputs=[
        nbformat.v4.new_output("display_data", data=data, metadata=metadata)])]
    nb.cells[0].id = "cell"
    nbformat.write(nb, str(path))
    return render.to_html(path, "Figure")


def test_the_report_is_the_inline_svg_figure_it_was(figure, tmp_path: Path):
    data, metadata = figure._repr_mimebundle_()
    page = _page(data, metadata, tmp_path / "now.ipynb")
    assert page.count('class="marks wb-chart"') == 1 and page.count("<figcaption>") == 1
    assert "vegalite" not in page and "vega-embed" not in page and "data:image/png" not in page
    assert render.find_external_resources(page) == []
    # the page of the figure as text/html (before live charts) differs only in the output's wrapper
    before = _page({"text/html": figure.html, "text/plain": figure.text}, {}, tmp_path / "before.ipynb")
    now = page.replace('jp-RenderedMarkdown jp-OutputArea-output" data-mime-type="text/markdown"',
                       'jp-RenderedHTML jp-OutputArea-output" data-mime-type="text/html"')
    assert re.sub(r"\s+", " ", now) == re.sub(r"\s+", " ", before)


def test_jupyterlab_renders_this_vega_lite():
    """The mime type and Vega-Lite version are those of the installed JupyterLab's renderer."""
    import sys

    static = Path(sys.prefix) / "share" / "jupyter" / "lab" / "static"
    bundles = sorted(static.glob("*.js"))
    if not bundles:
        pytest.skip(f"no JupyterLab static files in {static}")
    text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in bundles)
    assert f'"{charts.VEGALITE_MIME}"' in text
    assert f'"{charts.LAB_VEGALITE_VERSION}"' in text


def test_live_specs_compile_with_vega_lite_5():
    import vl_convert as vlc

    oldest = min((v for v in vlc.get_vegalite_versions() if v.startswith("5.")),
                 key=lambda v: tuple(int(x) for x in v.split(".")))
    for chart in (_line(), _bars(Numbers("IDR", "id-ID"))):
        vega = vlc.vegalite_to_vega(charts.live_spec(chart, caption="a note"), vl_version=oldest)
        assert vega["marks"]


def test_interactivity_is_decided_per_chart_type():
    line = charts.live_spec(_line())
    assert line["params"] == [{"name": "wb_zoom", "select": {"type": "interval", "encodings": ["x", "y"]},
                               "bind": "scales"}]
    assert line["config"]["mark"]["tooltip"] is True
    bars = charts.live_spec(_bars(Numbers("USD")))
    assert "params" not in json.dumps(bars) and bars["config"]["mark"]["tooltip"] is True
    series = alt.Chart(pd.DataFrame({"t": pd.date_range("2026-01-01", periods=3), "v": [1, 2, 3]}),
                       title="Up").mark_line().encode(x="t:T", y="v:Q")
    layered = alt.layer(series, series.mark_point())
    spec = charts.live_spec(layered)
    assert [layer.get("params") for layer in spec["layer"]] == [
        [{"name": "wb_zoom", "select": {"type": "interval", "encodings": ["x"]}, "bind": "scales"}], None]


def _tick_labels(chart: alt.Chart) -> list[str]:
    svg = charts.to_svg(chart)
    return [t.replace("&amp;", "&") for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_money_axes_write_what_the_text_writes():
    usd = _tick_labels(_bars(Numbers("USD")))
    assert "$35M" in usd and "$0" in usd and not any("35,000,000" in t or "G" in t for t in usd)
    idr = _tick_labels(_bars(Numbers("IDR", "id-ID")))
    assert "Rp 35 jt" in idr and "Rp 0" in idr
    assert "40%" in _tick_labels(_line())


@pytest.mark.parametrize("numbers", [Numbers("USD"), Numbers("IDR", "id-ID"), Numbers("EUR", "de-DE"),
                                     Numbers("IDR", currency_display="code")])
def test_vega_and_python_write_the_same_figures(numbers):
    """The axis expression is the formatter written again in Vega: both must agree."""
    values = [0, 999.4, 999.5, 1_250, 12_000, 999_949, 999_950, 35_000_000, 22_500_000_000, -1_250, -0.3,
              2.5e12, 1_234_500_000_000_000]
    df = pd.DataFrame({"v": values, "i": range(len(values))})
    chart = alt.Chart(df, title="t").mark_text().encode(y=alt.Y("i:O", axis=None), text="m:N").transform_calculate(
        m=numbers.vega_expr("money", "datum.v"))
    drawn = [t for t in _tick_labels(chart) if t != "t"]
    assert drawn == [numbers.money(v) for v in values]
    counts = chart.transform_calculate(m=numbers.vega_expr("count", "datum.v"))
    assert [t for t in _tick_labels(counts) if t != "t"] == [numbers.number(v, compact=True) for v in values]


def test_kpi_cards_look_the_same_untrusted():
    body = charts.kpi_cards([{"label": "Revenue", "value": Numbers("USD").money(1_200_000), "comparison": "+8%",
                              "change": 0.08}]).html
    assert "<ul" not in body and "<li" not in body  # no list styling can add a bullet
    card = re.search(r'<div class="wb-kpi" role="listitem" style="([^"]+)"', body)
    assert card and "border:1px solid" in card.group(1)
    assert re.search(r'class="wb-kpis" role="list" style="display:flex;', body)
    assert re.search(r'<span class="wb-sr" style="position:absolute;[^"]*"> \(up, better\)</span>', body)
    assert ">$1.2M</div>" in body


def test_tables_align_label_and_carry_the_currency():
    df = pd.DataFrame({"rep_id": ["R1", "R2"], "win_rate": [0.3125, None], "amount": [27_116_811, 950.0],
                       "deals": [12, 3], "mixed": [1, None]}).astype({"mixed": object})
    body = charts.table(df, formats={"amount": "money", "win_rate": "percent"}, labels={"win_rate": "Win rate"},
                        numbers=Numbers("IDR", "id-ID")).html
    heads = re.findall(r'<th scope="col"(?: class="num")? style="[^"]*text-align:(\w+)">([^<]*)</th>', body)
    assert heads == [("left", "Rep"), ("right", "Win rate"), ("right", "Amount"), ("right", "Deals"),
                     ("right", "Mixed")]
    assert re.search(r'text-align:left">R1</td>', body)
    assert re.search(r'text-align:right">Rp 27\.116\.811</td>', body) and ">31,3%</td>" in body
    assert re.search(r'class="na" title="not available" style="[^"]*text-align:right">n/a</td>', body)
    with pytest.raises(charts.PresentationError, match="pass numbers=ds.config.numbers"):
        charts.table(df, formats={"amount": "money"})
    with pytest.raises(charts.PresentationError, match="did you mean 'win_rate'"):
        charts.table(df, labels={"win_rat": "x"})
    assert [charts.column_label(c) for c in ("rep_id", "win_rate", "Days in step", ("a_b", ""))] == [
        "Rep", "Win rate", "Days in step", "A b"]
