"""Compute engines: where the canonical tables live and every metric is computed.

The metric code is ibis, written once; this module holds what differs by engine, behind one
interface:

* :func:`name` -- which engine an ibis connection or expression runs on (``duckdb``, ``pyspark``,
  ``postgres``);
* :func:`spark` -- a Spark session for ``engine: spark`` (local mode by default, a cluster through
  ``spark_master``, Spark Connect through ``spark_remote`` / ``SPARK_REMOTE``);
* :func:`place` -- the canonical tables of a dataset loaded from files, put on another engine;
* :func:`materialize` -- a derived table computed once on the engine (DuckDB keeps its own
  Parquet cache, see :meth:`analysis.data.loading.Dataset.cached`);
* :func:`copy_to_database` -- ``python -m analysis load-db``: a dataset's canonical tables copied
  into a database schema.

Where the data is read. Files (CSV, Excel, Parquet, the CRM presets) are always read and checked
by the import layer in the embedded DuckDB: it owns the file dialects, the locales, the
data-quality rules and their messages, and reading a year of a 5,000-rep company takes seconds
there. The canonical tables it produces are then handed to Spark as Parquet (local mode) or Arrow
(Spark Connect), and every query after that runs on Spark. A PostgreSQL source is read, checked
and computed in PostgreSQL itself; nothing is copied out.

Time. Canonical timestamps are wall time in the company time zone (the import converts them),
held without a zone: DuckDB ``TIMESTAMP``, Spark ``TIMESTAMP_NTZ`` read from Parquet, PostgreSQL
``timestamp without time zone``. Spark's session time zone is pinned to UTC (ibis does so) and
PostgreSQL sessions run in UTC, so no engine shifts a wall time again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis

from analysis.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from analysis.data.config import Config
    from analysis.data.loading import Dataset

__all__ = ["ENGINES", "check_engine", "copy_to_database", "materialize", "name", "place", "spark"]

#: what ``engine:`` / ``--engine`` accept (a PostgreSQL source is chosen by its URL)
ENGINES = ("duckdb", "spark")


def name(obj: Any) -> str:
    """The engine of an ibis backend or expression: ``duckdb``, ``pyspark``, ``postgres`` ...;
    ``""`` for an expression over tables of several backends, or of none."""
    backend = obj
    if hasattr(obj, "get_backend"):
        try:
            backend = obj.get_backend()
        except Exception:  # noqa: BLE001 - several backends, or none: not one engine
            return ""
    return str(getattr(backend, "name", "") or "")


def check_engine(engine: str | None) -> str | None:
    """``engine`` spelt canonically, or a :class:`ConfigError` naming the accepted values."""
    if engine is None:
        return None
    value = str(engine).strip().lower()
    if value in ("postgres", "postgresql"):
        raise ConfigError("--engine postgres: a PostgreSQL source computes in PostgreSQL; give its URL as the data "
                          "(postgresql://user@host:5432/db?schema=crm) and leave --engine out")
    if value not in ENGINES:
        raise ConfigError(f"--engine {engine!r}: unknown engine; use one of {', '.join(ENGINES)}")
    return value


_SPARK: dict[str, Any] = {}


def spark(config: Config) -> Any:
    """The ibis PySpark backend of this process (one Spark session, made on first use).

    ``spark_remote`` (or ``SPARK_REMOTE``) connects to a Spark Connect server; else
    ``spark_master`` (default ``local[*]``) starts or joins a classic session."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("engine: spark needs pyspark: pip install -e '.[spark]' (and a Java 17 runtime, "
                          "Debian's openjdk-17-jre-headless)") from None
    remote = config.spark_remote or os.environ.get("SPARK_REMOTE") or None
    master = config.spark_master or "local[*]"
    key = f"remote:{remote}" if remote else f"master:{master}"
    if key in _SPARK:
        return _SPARK[key]
    if not remote and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ConfigError("engine: spark needs a Java runtime: install Debian's openjdk-17-jre-headless "
                          "(or set JAVA_HOME)")
    builder = SparkSession.builder.appName("sales-workbench")
    if remote:
        builder = builder.remote(remote)
    else:
        builder = (builder.master(master)
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")  # no progress bars in logs or reports
                   .config("spark.sql.shuffle.partitions", os.environ.get("WORKBENCH_SPARK_PARTITIONS", "8"))
                   .config("spark.driver.memory", spark_memory(config.memory_limit))
                   .config("spark.sql.ansi.enabled", "false")  # Spark 4's ANSI mode fails a query on 1/0
                   .config("spark.sql.parquet.inferTimestampNTZ.enabled", "true"))
    try:
        session = builder.getOrCreate()
    except Exception as err:  # noqa: BLE001 - a JVM or cluster that cannot start: one line
        where = remote or master
        raise ConfigError(f"engine: spark: cannot start a Spark session on {where} "
                          f"({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}); "
                          "check the Java runtime and spark_master / spark_remote in workbench.yml") from None
    if not remote:  # a failed query is a Python exception with one line; the JVM's log would repeat it
        session.sparkContext.setLogLevel("FATAL")
    backend = ibis.pyspark.connect(session)
    session.conf.set("spark.sql.ansi.enabled", "false")
    _SPARK[key] = backend
    return backend


def spark_memory(limit: str) -> str:
    """``memory_limit`` (``1GB``, ``512MiB``, ``1.5GB``) in Spark's notation (``1024m``): in local
    mode the driver is the whole engine, so it gets the engine's share of the memory, as DuckDB does
    (on a cluster the executors' memory is the cluster's setting)."""
    import re

    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B)", limit.strip()).groups()
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[unit[0]]
    return f"{max(int(float(number) * scale), 256)}m"


def place(ds: Dataset, con: Any) -> None:
    """Put the canonical tables of ``ds`` (read and checked in DuckDB) on engine ``con`` and
    make it the dataset's engine: every later query runs there. The raw tables (for the
    data-quality report) stay in DuckDB.

    In local mode DuckDB writes each table as a Parquet file (streamed, nothing held in memory)
    that Spark reads; a cluster or Spark Connect server cannot see this machine's files, so the
    rows go through the session instead (``createDataFrame``, Arrow-backed)."""
    import copy

    ds.imported = copy.copy(ds)  # the dataset as the import left it, in DuckDB: its quality checks run there
    for memo in ("_derived", "_derived_parts"):  # DuckDB's derived tables stay with the import's copy
        ds.__dict__.pop(memo, None)
    session = getattr(con, "_session", None)
    remote = type(session).__module__.startswith("pyspark.sql.connect")
    local = not remote and str(session.sparkContext.master).startswith("local")
    folder = None
    if local:
        folder = Path(tempfile.mkdtemp(prefix="workbench-spark-"))
        weakref.finalize(ds, shutil.rmtree, folder, ignore_errors=True)
    else:
        session.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    token = os.urandom(4).hex()
    tables = {}
    for table, expr in ds.tables.items():
        view = f"canon__{table}__{token}"
        if folder is not None:
            path = folder / f"{table}.parquet"
            expr.to_parquet(path)
            tables[table] = con.read_parquet(str(path), table_name=view)
        else:
            session.createDataFrame(expr.to_pyarrow().to_pandas()).createOrReplaceTempView(view)
            tables[table] = con.table(view)
    ds.tables = tables
    ds.con = con


def materialize(expr: ibis.Table) -> ibis.Table:
    """``expr`` computed once and kept on its engine (a cached DataFrame in Spark, a temporary
    table in PostgreSQL); DuckDB's derived tables go through the dataset's Parquet cache.

    PostgreSQL's autovacuum never analyzes temporary tables: without statistics its planner
    takes nested loops over thousands of rows (a loss-reason query ran for over ten minutes),
    so each one is analyzed as it is made."""
    cached = expr.cache()
    if name(cached) == "postgres":
        backend = cached.get_backend()
        with backend.raw_sql(f'ANALYZE "{cached.op().name}"'):
            pass
    return cached


def copy_to_database(ds: Dataset, url: str, *, replace: bool = False) -> dict[str, int]:
    """Copy the canonical tables of ``ds`` into the database schema of ``url``
    (``postgresql://user@host:port/db?schema=crm``); returns rows per table. The schema is
    created when missing; tables already there are replaced only with ``replace``.

    Each table is created with its canonical types, then filled by PostgreSQL's bulk ``COPY``,
    fed Arrow batches of 100,000 rows as DuckDB streams them (psycopg writes each value in
    PostgreSQL's own text form: doubles round-trip exactly, NULL stays NULL apart from the empty
    text), so memory stays flat whatever the table's size. Amounts are already in the reporting
    currency, so ``currency`` is written as that currency."""
    from analysis.data import schema as model

    try:
        con = ibis.connect(url.split("?", 1)[0])
    except Exception as err:  # noqa: BLE001 - any driver error becomes one line
        raise DataError(f"cannot connect to {url}: {str(err).strip().splitlines()[0]}") from None
    if name(con) != "postgres":
        raise DataError(f"{url}: load-db writes to PostgreSQL; give postgresql://user@host:5432/db?schema=crm")
    target = _url_schema(url)
    if target:
        con.create_database(target, force=True)
    existing = set(con.list_tables(database=target)) if target else set(con.list_tables())
    clash = sorted(existing & set(ds.tables))
    if clash and not replace:
        raise DataError(f"{url}: tables {', '.join(clash)} already exist; add --replace to overwrite them")
    counts = {}
    for table, expr in ds.tables.items():
        spec = model.TABLES[table]
        columns = [c.name for c in spec.columns if c.name in expr.columns and ds.has_column(table, c.name)]
        if table == "opportunities" and "currency" in columns:  # amounts are converted already
            expr = expr.mutate(currency=ibis.literal(ds.config.currency))
        rows = expr.select(*columns)
        con.create_table(table, schema=rows.schema(), database=target, overwrite=True)
        qualified = f'"{target}"."{table}"' if target else f'"{table}"'
        names = ", ".join(f'"{c}"' for c in columns)
        counts[table] = 0
        with con.con.cursor() as cursor, con.con.transaction():
            with cursor.copy(f"COPY {qualified} ({names}) FROM STDIN") as copy:
                for batch in rows.to_pyarrow_batches(chunk_size=100_000):
                    for row in zip(*(column.to_pylist() for column in batch.columns)):
                        copy.write_row(row)
                    counts[table] += batch.num_rows
        with con.raw_sql(f"ANALYZE {qualified}"):  # statistics for the planner before the first query
            pass
    con.disconnect()
    return counts


def _url_schema(url: str) -> str | None:
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(url).query)
    return (query.get("schema") or [None])[0]
