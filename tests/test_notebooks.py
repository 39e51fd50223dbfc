"""Every notebook in notebooks/ runs top to bottom as shipped (nbval, outputs not compared).

The review notebook is also rendered end to end by tests/test_review.py, the explorer and the
planning notebook through papermill with assertions on their outputs; this run catches a
notebook that only works with papermill's injected parameters, and any notebook added later.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.paths import NOTEBOOKS

pytestmark = pytest.mark.slow

NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOK_FILES}
    assert {"review.ipynb", "explore.ipynb"} <= names


@pytest.mark.parametrize("notebook", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_notebook_runs_as_shipped_under_nbval(notebook):
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:cacheprovider", str(notebook)],
        capture_output=True, text=True, cwd=NOTEBOOKS, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
