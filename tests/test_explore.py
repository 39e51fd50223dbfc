"""The explorer: static views for headless runs, widgets for live sessions, quick on the sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import analysis
from analysis.paths import NOTEBOOKS, SAMPLE_DATA
from analysis.reports.explore import Explorer


@pytest.fixture(scope="module")
def explorer():
    return Explorer(analysis.load(SAMPLE_DATA))


def test_view_is_static_and_quick(explorer):
    out = explorer.view(["win_rate", "revenue"], by="team", grain="quarter", periods=["2026-Q2", "2026-Q3"])
    html = "".join(x._repr_html_() for x in out)
    assert "<svg" in html and "wb-table" in html
    assert explorer.seconds < 1.0  # "well under a second" on the sample


def test_view_matches_the_engine(explorer):
    frame = explorer.frame(["revenue"], grain="quarter", periods=["2026-Q3"])
    direct = analysis.metrics(explorer.ds, ["revenue"], grain="quarter", periods=["2026-Q3"])
    assert frame.revenue.tolist() == direct.revenue.tolist()


def test_default_periods_end_at_the_data(explorer):
    assert explorer.periods("quarter", 2) == ["2026-Q2", "2026-Q3"]


def test_widget_builds(explorer):
    import ipywidgets

    assert isinstance(explorer.widget(), ipywidgets.VBox)


@pytest.mark.slow
def test_notebook_runs_headless(tmp_path: Path):
    from analysis.reports.render import execute_notebook

    out = execute_notebook(NOTEBOOKS / "explore.ipynb", tmp_path / "explore.ipynb", {"data": str(SAMPLE_DATA)},
                           cwd=NOTEBOOKS, timeout=240)
    nb = json.loads(Path(out).read_text())
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert html.count("<svg") >= 2  # the static views were kept outside any widget
