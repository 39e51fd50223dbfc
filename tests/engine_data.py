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
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

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


def normalised(frame: pd.DataFrame, keys: list[str] | None = None, money: Iterable[str] = ()) -> pd.DataFrame:
    """``frame`` as the engines are compared: rows sorted by ``keys`` (default: its text columns;
    missing values first), index reset, attrs dropped, every float column float64 rounded, the
    ``money`` columns to the cent and the rest to 9 decimals (the last bits of a float depend on
    the order an engine adds in; nothing else may differ)."""
    money = set(money)
    out = frame.copy()
    out.attrs = {}
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c].dtype):
            out[c] = out[c].astype("float64").round(2 if c in money else 9)
    if keys is None:
        keys = [c for c in out.columns if not pd.api.types.is_numeric_dtype(out[c].dtype)
                and not pd.api.types.is_bool_dtype(out[c].dtype)]
    if keys:
        text = pd.DataFrame({c: out[c].map(lambda v: "\x00" if v is None or v is pd.NA or v != v else str(v))
                             for c in keys})
        out = out.iloc[np.lexsort([text[c].to_numpy() for c in reversed(keys)])]
    return out.reset_index(drop=True)
