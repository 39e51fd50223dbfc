"""The sample dataset on each engine, for the identical-figures tests (tests/test_engines.py)
and the engine benchmark (benchmarks/bench_engines.py).

    with on_engines(data) as ds:   # {"duckdb": Dataset, "spark": Dataset, "postgres": Dataset}
        ...

DuckDB reads the folder; Spark gets the canonical tables from the same folder
(``engine="spark"``); PostgreSQL gets them through ``load-db`` into a schema of a throwaway
server (:mod:`pgserver`) and computes there, with the folder's workbench.yml.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pgserver import PgServer, available

ENGINE_NAMES = ("duckdb", "spark", "postgres")


def missing() -> str | None:
    """None when all three engines can run here, else what is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: pip install -e '.[spark]'"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install -e '.[postgres]'"
    import shutil

    if shutil.which("java") is None:
        return "no Java runtime: install Debian's openjdk-17-jre-headless"
    return available()


@contextlib.contextmanager
def on_engines(data: str | Path, engines: tuple[str, ...] = ENGINE_NAMES) -> Iterator[dict]:
    """The dataset of folder ``data`` loaded on each engine (see module docstring)."""
    from analysis.data.engines import copy_to_database
    from analysis.data.loading import load

    data = Path(data)
    out = {"duckdb": load(data)}
    if "spark" in engines:
        out["spark"] = load(data, engine="spark")
    pg = None
    try:
        if "postgres" in engines:
            pg = PgServer().start()
            copy_to_database(out["duckdb"], pg.url("crm"))
            config = data / "workbench.yml"
            out["postgres"] = load(pg.url("crm"), config if config.is_file() else None)
            out["postgres_url"] = pg.url("crm")
        yield out
    finally:
        # the datasets go first: their temporary tables are dropped while the server still runs
        out.clear()
        gc.collect()
        if pg is not None:
            pg.stop()
