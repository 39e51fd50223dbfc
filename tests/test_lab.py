"""Browser tests: the notebooks in a real JupyterLab, driven by Debian's Chromium (Playwright).

Issue 14, item 8. A throwaway JupyterLab serves copies of the notebooks (``tests/lab.py``); the
browser runs them through the Run menu, changes widgets as a user would and reads what the page
shows. The network is cut: only the lab server answers.

* explorer: tick a metric, pick the charted metric, a dimension and a grain; the chart title and
  the table follow, and the table is the one the same widget builds in this process; widget
  latency (change to output updated) over several changes, printed as p50 / p95;
* plan: type a win rate into its slider; its readout and the dependent rows follow (the table is
  :func:`analysis.steering.plan.plan_from`'s with that override); "Reset all" brings the
  history plan back;
* review: a notebook executed by ``python -m analysis review`` opened untrusted shows every chart
  it holds as a visible picture, not as stripped text; run live (trusted), every chart is
  JupyterLab's interactive Vega-Lite renderer with tooltips;
* the harness itself: an SVG chart sanitized to text in an untrusted notebook is not counted as
  a chart; a Run All that stops at an error fails at once and names it.

All are marked ``lab`` and left out of ``make test`` (pyproject's addopts); ``.ci/run`` runs them
after it: ``python -m pytest -m lab``. Screenshots of a failing test go to its tmp folder; a few
are kept in /tmp/lab-shots/ for the issue's closing note, with ``latency.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from . import lab as L

pytestmark = pytest.mark.lab

ROOT = L.ROOT
SAMPLE = ROOT / "data" / "sample"


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    missing = L.have_browser()
    if missing:  # CI installs chromium and the test extra: there a missing browser is a failure
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(missing)
    root = L.lab_root(tmp_path_factory.mktemp("lab") / "root")
    data = _files(ROOT / "data")
    server = L.LabServer(root).start()
    try:
        yield server
    finally:
        server.stop()
    assert server.leftover == [], f"kernels still running after the lab stopped: {server.leftover}"
    assert _files(ROOT / "data") == data, "the notebooks in the lab wrote into the repo's data (linked read-only)"


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def browser():
    with L.chromium() as b:
        yield b


@pytest.fixture
def open_notebook(lab: L.LabServer, browser: L.Chromium, tmp_path: Path, request: pytest.FixtureRequest):
    """``open_notebook(path)`` opens a notebook of the lab root; on failure each one is screenshot
    (to the test's tmp folder and /tmp/lab-shots); at the end its page and kernel are closed and
    the test fails if the page asked for anything outside the lab."""
    opened: list[L.Notebook] = []
    refused = len(browser.refused)
    failed = request.session.testsfailed

    def open_(path: str) -> L.Notebook:
        nb = L.Notebook.open(browser, lab, path, shots=tmp_path)
        opened.append(nb)
        return nb

    yield open_
    for nb in opened:
        if request.session.testsfailed > failed:
            nb.shot(f"failed-{request.node.name}-{Path(nb.path).stem}", keep=True)
        nb.close()
    assert browser.refused[refused:] == [], "the page asked for something outside the lab (network is cut)"


def _parameters(notebook: Path) -> dict[str, Any]:
    """The values of a notebook's ``parameters`` cell (its defaults)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    ns: dict[str, Any] = {}
    exec("".join(cell["source"]), ns)  # noqa: S102 - the repo's own parameters cell: literals
    return {k: v for k, v in ns.items() if not k.startswith("__")}


@pytest.fixture(scope="module")
def sample():
    import analysis

    return analysis.load(SAMPLE)


@pytest.fixture(scope="module")
def executed_review(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The executed notebook the quarterly company review writes beside its HTML (one render)."""
    out = tmp_path_factory.mktemp("review")
    proc = subprocess.run([sys.executable, "-m", "analysis", "review", "--cadence", "quarterly", "--data",
                           str(SAMPLE), "--out", str(out)], check=False, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = sorted(out.glob("quarterly/*/company.ipynb"))
    assert len(found) == 1, f"expected one executed company.ipynb under {out}: {found}"
    return found[0]


# -- the explorer ---------------------------------------------------------------------------------


def _explorer_state(nb: L.Notebook) -> dict[str, Any]:
    root = nb.notebook.locator(".wb-explorer-output").first
    state = root.evaluate("""(root) => {
      const title = root.querySelector('.wb-explorer-chart-title');
      const table = root.querySelector('.wb-explorer-table table');
      const cell = (c) => c.innerText.trim();
      return {
        title: title ? title.innerText.trim() : null,
        caption: table && table.caption ? table.caption.innerText.trim() : null,
        headers: table ? Array.from(table.querySelectorAll('thead th')).map(cell) : [],
        rows: table ? Array.from(table.querySelectorAll('tbody tr')).map(
                r => Array.from(r.querySelectorAll('th, td')).map(cell)) : [],
        charts: root.querySelectorAll('.wb-explorer-chart .vega-embed, .wb-explorer-chart img, '
                                      + '.wb-explorer-chart svg.wb-chart').length,
        message: (root.querySelector('.wb-explorer-message') || {innerText: ''}).innerText.trim(),
      };
    }""")
    return state


def _table_of(browser: L.Chromium, html: str) -> dict[str, Any]:
    """Caption, headers and rows of the first table of an HTML fragment, as the browser reads it."""
    page = browser.new_page(width=1200, height=800)
    try:
        page.set_content(html)
        return page.evaluate("""() => {
          const t = document.querySelector('table');
          const cell = (c) => c.innerText.trim();
          return {caption: t.caption ? t.caption.innerText.trim() : null,
                  headers: Array.from(t.querySelectorAll('thead th')).map(cell),
                  rows: Array.from(t.querySelectorAll('tbody tr')).map(
                      r => Array.from(r.querySelectorAll('th, td')).map(cell))};
        }""")
    finally:
        page.context.close()


#: Most the median widget latency may be (change to output shown) on the sample. SPEC: "well
#: under a second" on a year of a 100-rep team; this bound, loose for a loaded CI machine,
#: catches a widget that recomputes everything or waits on something.
LATENCY_P50_BUDGET = 3.0


def _explorer_expect(s: dict[str, Any], *, title: str | None = None, header: str | None = None,
                     first_header: str | None = None, caption_has: str | None = None) -> bool:
    return ((title is None or s["title"] == title) and (header is None or header in s["headers"])
            and (first_header is None or s["headers"][:1] == [first_header])
            and (caption_has is None or caption_has in (s["caption"] or "")))


def test_explorer_widgets_change_the_output(open_notebook, browser: L.Chromium, sample):
    from analysis.reports.explore import CLASSES, Explorer, dimension_label

    used = {"root", "output", "chart", "chart-title", "table", "metric-<id>", "chart-metric", "by", "grain"}
    assert used <= set(CLASSES), f"the explorer no longer has the classes {used - set(CLASSES)} this test uses"
    ex = Explorer(sample)
    mirror = ex.widget()  # the same widget in this process: the table it shows is the expected one
    nb = open_notebook("notebooks/explore.ipynb")
    nb.run_all()
    assert nb.notebook.locator(".wb-explorer-output").count() == 1, \
        "the explorer's output (class wb-explorer-output) is not on the page"
    root = nb.notebook.locator(".wb-explorer-root").first
    read = partial(_explorer_state, nb)
    first = read()
    assert first["title"] == ex.label(mirror.chart_metric.value), first
    assert first["charts"] == 1, f"the explorer shows {first['charts']} charts, expected 1"
    nb.shot("explorer-start", keep=True, target=root)
    timings = L.Latencies(nb)

    def change(name: str, action, expect, apply_mirror) -> dict[str, Any]:
        """One change in the browser and the same in the mirror: the tables must be equal."""
        state = timings.change(name, action, read, expect)
        apply_mirror()
        want = _table_of(browser, mirror.table_out.outputs[0]["data"]["text/html"])
        assert (state["caption"], state["headers"], state["rows"]) == (want["caption"], want["headers"], want["rows"])
        assert state["charts"] == 1, f"{name}: the explorer shows {state['charts']} charts, expected 1"
        return state

    # tick metrics that are not picked: each becomes the charted one, its column joins the table
    added = [m for m in ("avg_deal_size", "deals_lost", "pipeline_created") if m in mirror.checks]
    assert len(added) >= 2, f"the catalog lacks the metrics this test ticks: {added}"
    for mid in added:
        box = root.locator(f".wb-explorer-metric-{mid} input[type=checkbox]")
        change(f"tick {mid}", box.check, partial(_explorer_expect, title=ex.label(mid), header=ex.header(mid)),
               partial(setattr, mirror.checks[mid], "value", True))

    # the charted metric: back to the win rate
    win = ex.label("win_rate")
    change("chart win_rate", partial(L.choose, root.locator(".wb-explorer-chart-metric"), win),
           partial(_explorer_expect, title=win), partial(setattr, mirror.chart_metric, "value", "win_rate"))

    # a dimension: one line per group, the group column first
    by = root.locator(".wb-explorer-by")
    for dim in ("team", "region", "team"):
        label = dimension_label(dim)
        state = change(f"by {dim}", partial(L.choose, by, label),
                       partial(_explorer_expect, title=f"{win} by {label.lower()}", first_header=label),
                       partial(setattr, mirror.by, "value", dim))
    nb.shot("explorer-by-team", keep=True, target=root)
    teams = set(sample.df("reps").team.dropna())
    assert {r[0] for r in state["rows"]} & teams and {r[0] for r in state["rows"]} <= teams | {"Others"}

    # the grain: months, then back to quarters
    grain = root.locator(".wb-explorer-grain")
    for g in ("month", "quarter"):
        state = change(f"grain {g}", partial(L.choose, grain, g.capitalize()),
                       partial(_explorer_expect, caption_has=f" by {g} "), partial(setattr, mirror.grain, "value", g))
    assert {r[0] for r in state["rows"]} <= teams | {"Others"}

    stats = timings.report("explorer")
    assert stats["to_output"]["n"] == len(added) + 6
    assert stats["to_output"]["p50"] < LATENCY_P50_BUDGET, stats


# -- the plan -----------------------------------------------------------------------------------------


def _plan_state(nb: L.Notebook) -> dict[str, Any]:
    box = nb.notebook.locator(".wb-plan").first
    return box.evaluate("""(box) => {
      const t = box.querySelector('.wb-plan-output table');
      const cell = (c) => c.innerText.trim();
      const readout = (k) => { const e = box.querySelector('.wb-plan-readout-' + k); return e ? e.innerText.trim() : null; };
      return {
        win_rate: readout('win-rate'),
        slider: (box.querySelector('.wb-plan-win-rate .widget-readout') || {innerText: null}).innerText,
        summary: (box.querySelector('.wb-plan-output p') || {innerText: ''}).innerText.trim(),
        error: (box.querySelector('.wb-plan-error') || {innerText: ''}).innerText.trim(),
        caption: t && t.caption ? t.caption.innerText.trim() : null,
        headers: t ? Array.from(t.querySelectorAll('thead th')).map(cell) : [],
        rows: t ? Array.from(t.querySelectorAll('tbody tr')).map(
                r => Array.from(r.querySelectorAll('th, td')).map(cell)) : [],
        charts: box.querySelectorAll('.wb-plan-output svg.wb-chart, .wb-plan-output .vega-embed, .wb-plan-output img').length,
      };
    }""")


def _needed(state: dict[str, Any], step: str) -> str:
    col = state["headers"].index("Needed")
    return next(r[col] for r in state["rows"] if r[0] == step)


def test_plan_slider_changes_the_plan_and_reset_restores_it(open_notebook, browser: L.Chromium, sample):
    from analysis.reports import plan_view
    from analysis.steering import plan

    params = _parameters(ROOT / "notebooks" / "plan.ipynb")
    history = plan.assumptions(sample, params["period"])
    target = params["target"]
    nb = open_notebook("notebooks/plan.ipynb")
    nb.run_all()
    assert nb.notebook.locator(".wb-plan").count() == 1, "the plan widget (class wb-plan) is not on the page"
    start = _plan_state(nb)
    assert not start["error"], start["error"]
    want = _table_of(browser, plan_view.plan_table(plan.plan_from(history, target)).html)
    assert (start["caption"], start["headers"], start["rows"]) == (want["caption"], want["headers"], want["rows"])
    assert "override" not in start["win_rate"]
    assert start["charts"] == 1

    slider = nb.notebook.locator(".wb-plan-win-rate").first
    read = partial(_plan_state, nb)
    timings = L.Latencies(nb)
    for rate in (0.4, 0.2, 0.55):
        want = _table_of(browser, plan_view.plan_table(plan.plan_from(history, target, win_rate=rate)).html)
        shown = f"{rate:.1%}"
        s = timings.change(f"win rate {shown}", partial(L.set_slider, slider, str(rate)), read,
                           partial(_plan_shows, readout=shown, rows=want["rows"]))
        assert (s["caption"], s["headers"]) == (want["caption"], want["headers"])
        assert "override" in s["win_rate"], s["win_rate"]
        assert s["slider"] == shown
        # the win rate sets the opportunities; the deals won follow from the deal size alone
        assert _needed(s, "Opportunities") != _needed(start, "Opportunities")
        assert _needed(s, "Deals won") == _needed(start, "Deals won")
        if rate == 0.4:
            nb.shot("plan-win-rate-40", keep=True, target=nb.notebook.locator(".wb-plan").first)

    reset = nb.notebook.locator(".wb-plan-reset button, button.wb-plan-reset").first
    back = timings.change("reset all", reset.click, read, partial(_plan_shows, rows=start["rows"]))
    assert back["win_rate"] == start["win_rate"] and back["slider"] == start["slider"]
    assert (back["summary"], back["caption"]) == (start["summary"], start["caption"])
    stats = timings.report("plan")
    assert stats["to_output"]["p50"] < LATENCY_P50_BUDGET, stats


def _plan_shows(s: dict[str, Any], *, rows: list, readout: str | None = None) -> bool:
    return s["rows"] == rows and (readout is None or (s["win_rate"] or "").startswith(readout))


# -- the review ---------------------------------------------------------------------------------------


def _wait_for_charts(nb: L.Notebook, expected: int, timeout: float = 60) -> list[dict]:
    """The charts shown once their count stops changing (or reaches ``expected``)."""
    deadline = time.monotonic() + timeout
    last: list[dict] = []
    steady = 0
    while time.monotonic() < deadline:
        shown = [c for c in L.charts_shown(nb) if c["visible"] and c["loaded"] and c["drawn"]]
        steady = steady + 1 if len(shown) == len(last) else 0
        last = shown
        if len(shown) == expected and steady >= 2 or steady >= 20:
            break
        time.sleep(0.25)
    return last


def test_executed_review_opened_untrusted_shows_every_chart(open_notebook, lab: L.LabServer, executed_review: Path):
    expected = L.charts_in(json.loads(executed_review.read_text(encoding="utf-8")))
    assert expected >= 5, f"the executed review holds only {expected} charts"
    shutil.copy2(executed_review, lab.root / "notebooks" / "review-untrusted.ipynb")
    nb = open_notebook("notebooks/review-untrusted.ipynb")
    assert nb.trusted() is False, "a notebook opened from disk should be untrusted"
    shown = _wait_for_charts(nb, expected)
    first = nb.notebook.locator(".jp-OutputArea-output").nth(shown[0]["output"]) if shown else None
    if first is not None:
        first.scroll_into_view_if_needed()
        nb.shot("review-untrusted", keep=True)
    all_found = L.charts_shown(nb)
    print(f"\nuntrusted review: {len(shown)} of {expected} charts visible, drawn as "
          f"{dict(Counter(c['kind'] for c in shown))}")
    assert len(shown) == expected, (
        f"{len(shown)} of the {expected} charts of the executed review are visible untrusted; "
        f"found {[(c['kind'], c['mime'], round(c['width']), round(c['height'])) for c in all_found]}")


def test_review_run_live_draws_interactive_charts_with_tooltips(open_notebook, lab: L.LabServer,
                                                                executed_review: Path):
    expected = L.charts_in(json.loads(executed_review.read_text(encoding="utf-8")))
    shutil.copy2(executed_review, lab.root / "notebooks" / "review-live.ipynb")
    nb = open_notebook("notebooks/review-live.ipynb")
    nb.restart_and_run_all()
    assert nb.trusted() is True, "a notebook run in the session should be trusted"
    shown = _wait_for_charts(nb, expected)
    kinds = [c["kind"] for c in shown]
    assert kinds == ["vega-embed"] * expected, f"expected {expected} interactive Vega-Lite charts, found {kinds}"

    # tooltips: hover over the first chart until the Vega tooltip shows
    embed = nb.notebook.locator(".vega-embed").first
    embed.scroll_into_view_if_needed()
    box = embed.bounding_box()
    tip = nb.page.locator("#vg-tooltip-element")
    text = ""
    for fy in (0.5, 0.6, 0.7, 0.4, 0.8, 0.3):
        for fx in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75):
            nb.page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            nb.page.wait_for_timeout(40)
            if tip.count() and tip.evaluate("e => e.classList.contains('visible')"):
                text = tip.inner_text().strip()
                break
        if text:
            break
    nb.shot("review-live-tooltip", keep=True)
    assert text, "no Vega tooltip appeared over the first chart"


def _png(width: int, height: int) -> bytes:
    """A plain blue PNG (hand-made: signature, IHDR, one IDAT, IEND)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x72\xb2" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_chart_count_misses_a_chart_stripped_to_text(open_notebook, lab: L.LabServer):
    """The counter of the review tests cannot pass on stripped charts: in an untrusted notebook an
    HTML output's inline SVG is sanitized away (its text stays), a PNG stays a picture."""
    import base64

    svg = ('<figure class="wb-figure"><svg class="wb-chart" xmlns="http://www.w3.org/2000/svg" width="300" '
           'height="120"><title>Deals won by month</title><rect width="300" height="120" fill="#0072B2"/>'
           '<text x="10" y="20">Deals won by month</text></svg></figure>')
    cells = [
        {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "svg_chart",
         "outputs": [{"output_type": "display_data", "metadata": {},
                      "data": {"text/html": svg, "text/plain": "[chart] Deals won by month"}}]},
        {"cell_type": "code", "execution_count": 2, "metadata": {}, "source": "png_chart",
         "outputs": [{"output_type": "display_data", "metadata": {},
                      "data": {"image/png": base64.b64encode(_png(300, 120)).decode(), "text/plain": "[chart]"}}]},
    ]
    notebook = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 4}
    (lab.root / "notebooks" / "stripped.ipynb").write_text(json.dumps(notebook))
    assert L.charts_in(notebook) == 2
    nb = open_notebook("notebooks/stripped.ipynb")
    assert nb.trusted() is False
    shown = _wait_for_charts(nb, 1, timeout=10)
    assert [c["kind"].split(":")[0] for c in shown] == ["img"], shown
    assert "Deals won by month" in nb.outputs(0).inner_text()  # the SVG's text is left, not its picture


def test_run_all_stops_at_a_failing_cell_and_names_its_error(open_notebook, lab: L.LabServer):
    """The harness never waits out a run that stopped: Run All halts at an error, the test says which."""
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
             for src in ("x = 1", "x / 0", "y = 2")]
    notebook = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 4}
    (lab.root / "notebooks" / "failing.ipynb").write_text(json.dumps(notebook))
    nb = open_notebook("notebooks/failing.ipynb")
    t = time.perf_counter()
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        nb.run_all()
    assert time.perf_counter() - t < 30
    assert [L.count(p) for p in nb.state()["prompts"]] == [1, 2, None]
