"""Shared fixtures: tiny hand-built datasets written to a temporary folder."""

from __future__ import annotations

import os
import re
import tempfile
import textwrap
from pathlib import Path

import pytest

# The load cache (analysis.data.loading.LoadCache) of the test runs lives apart from the user's:
# every worker and every notebook kernel the tests start share it, as a user's runs would.
os.environ.setdefault("WORKBENCH_CACHE", str(Path(tempfile.gettempdir()) / f"workbench-test-cache-{os.getuid()}"))
# Under pytest-xdist every worker is a DuckDB process of its own: one thread each keeps the
# workers from fighting over the cores (about 5% less CPU for the suite on 2 cores).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("WORKBENCH_THREADS", "1")

REPS_CSV = """\
rep_id,name,team,region,manager_id,role,hire_date,end_date
M1,Maya Manager,East,NA,,manager,2020-01-01,
007,Ann Archer,East,NA,M1,AE,2021-03-01,
008,Bob Baker,East,NA,M1,SDR,2022-05-01,2025-06-30
"""

OPPS_CSV = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date,account_id,deal_type,product
O1,007,2025-07-01T10:00:00,won,Closed Won,1000.50,2025-07-20,A1,new_business,Core
O2,007,2025-07-02T09:00:00,lost,Closed Lost,500,2025-08-01,A1,expansion,Core
O3,008,2025-07-03T09:00:00,open,Demo,250,2025-10-15,A2,new_business,Add-on
"""


def write_tables(folder: Path, **tables: str) -> Path:
    """Write CSV texts as ``<name>.csv`` files in ``folder`` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(textwrap.dedent(text))
    return folder


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """Three reps, three deals: the smallest usable dataset."""
    return write_tables(tmp_path / "tiny", reps=REPS_CSV, opportunities=OPPS_CSV)


@pytest.fixture(scope="session")
def sample_on_engines():
    """The sample on DuckDB, Spark and PostgreSQL (tests/engine_data.py), set up once for every
    ``engines`` test module (a Spark session and a PostgreSQL server take a minute to start);
    skipped when Java, pyspark, psycopg or PostgreSQL's programs are missing."""
    from analysis.paths import SAMPLE_DATA
    from tests import engine_data

    why = engine_data.missing()
    if why:
        pytest.skip(why)
    with engine_data.on_engines(SAMPLE_DATA) as out:
        yield out


def strip_render_ids(page: str) -> str:
    """A rendered review or section without the SVG element ids that differ from render to render,
    so that two renders of the same figures compare equal."""
    return re.sub(r'id="wb[^"]*"|aria-labelledby="[^"]*"|#wb[\w-]+', "", page)
