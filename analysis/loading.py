"""Loading a dataset into canonical ibis tables on the embedded DuckDB engine.

``load(source)`` accepts

* a directory of CSV / Parquet / Excel files named after the tables (``opportunities.csv``,
  ``activities.parquet``, ``reps.xlsx``; a sub-directory ``activities/`` of part files works too),
* a DuckDB database file (``crm.duckdb``, opened read-only),
* a database URL that ``ibis.connect`` understands (``duckdb:///crm.db``, ``postgres://...``),
* a mapping of table name to pandas DataFrame.

It returns a :class:`Dataset` whose tables are lazy ibis expressions with the canonical columns and
types of :mod:`analysis.schema`:

* IDs and text are strings (``007`` stays ``007``), surrounding spaces trimmed;
* category values are matched ignoring case, spaces and underscores and spelled canonically;
* timestamps are converted to the company time zone (``config.timezone``) and kept as local wall
  time (naive timestamps in the input are read as local time already); date-only columns
  (``close_date``) are never shifted;
* money and numbers are float64; a value that does not parse becomes NULL and is reported by
  :meth:`Dataset.quality`, never guessed;
* optional columns that the input lacks are present as typed NULLs, and
  :meth:`Dataset.has_column` tells which were really given;
* rows whose key repeats an earlier row's key are dropped (the first row in file order wins)
  and reported as duplicates;
* ``opportunities`` and ``stage_history`` carry a derived ``step`` column: the canonical funnel
  step of ``stage`` (``won``/``lost`` for closed stages, NULL for unknown stages).

CSV and Excel files are copied into the in-process database (they are small); Parquet files are
scanned in place, never copied into memory. Input files are only ever opened for reading.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from . import schema
from .config import STATUS_STAGES, Config, load_config
from .errors import DataError, UnknownNameError
from .schema import STEPS, Column, normalize_token

ROW = "_row"  # 1-based row number within its file (data rows, header excluded)
FILE = "_file"  # file the row came from


@dataclass(frozen=True)
class SourceFile:
    """One input file and what it holds."""

    table: str
    path: Path
    format: str

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass
class Source:
    """Where a dataset came from, for provenance."""

    location: str
    kind: str  # directory | duckdb | url | frames
    files: list[SourceFile] = field(default_factory=list)
    frames: Mapping[str, pd.DataFrame] | None = None

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 over every input file's name and content (or the frames' content)."""
        h = hashlib.sha256()
        if self.frames is not None:
            for name in sorted(self.frames):
                h.update(name.encode())
                h.update(pd.util.hash_pandas_object(self.frames[name], index=False).values.tobytes())
        for f in sorted(self.files, key=lambda f: f.path.name):
            h.update(f.path.name.encode())
            with f.path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        if self.kind in ("duckdb", "url") and not self.files:
            h.update(self.location.encode())
        return h.hexdigest()[:16]


@dataclass
class RawTable:
    """A table as read, before coercion: ibis expression with ``_file`` and ``_row``."""

    name: str
    expr: ibis.Table
    files: list[SourceFile]
    #: per category column: raw value -> canonical spelling, for values that differ
    maps: dict[str, dict[str, str]] = field(default_factory=dict)
    #: stage value -> canonical step (None until computed)
    steps: dict[str, str] | None = None
    #: trim spaces from text values (files of text: CSV, Excel); typed Parquet and database
    #: strings are taken as stored, which keeps scans of large tables cheap
    trim: bool = True

    @property
    def columns(self) -> list[str]:
        return [c for c in self.expr.columns if c not in (ROW, FILE)]


class Dataset:
    """A loaded dataset: canonical ibis tables, the config and the source.

    Tables are reached as ``ds.opportunities``, ``ds["opportunities"]`` or ``ds.table(name)``;
    ``ds.df(name)`` executes one into pandas. Tables the source lacks raise a clear error;
    ``ds.has(name)`` tests for them first.
    """

    def __init__(
        self,
        con: Any,
        raw: dict[str, RawTable],
        config: Config,
        source: Source,
        *,
        missing_columns: dict[str, list[str]] | None = None,
    ) -> None:
        self.con = con
        self.raw = raw
        self.config = config
        self.source = source
        self._missing_columns = missing_columns or {}
        for rt in raw.values():
            _value_maps(rt, config)
        self.tables: dict[str, ibis.Table] = {
            name: canonical_table(rt, config, duplicates=False) for name, rt in raw.items()
        }
        self._dedupe()
        self._register()

    def _register(self) -> None:
        """Name each canonical table in the in-process DuckDB (a view over Parquet files, a
        typed table for CSV / Excel / DataFrame inputs), so queries compile against a plain
        table instead of re-deriving every column each time."""
        if getattr(self.con, "name", "") != "duckdb":
            return
        for name, expr in list(self.tables.items()):
            lazy = any(f.format == "parquet" for f in self.raw[name].files) or self.source.kind in ("duckdb", "url")
            kind = "VIEW" if lazy else "TABLE"
            sql = ibis.to_sql(expr, dialect="duckdb")
            self.con.raw_sql(f'CREATE OR REPLACE {kind} "canon__{name}" AS {sql}')
            self.tables[name] = self.con.table(f"canon__{name}")

    def cached(self, key: str, build) -> ibis.Table:
        """A derived table computed once per dataset (materialized in DuckDB when possible)."""
        store = self.__dict__.setdefault("_derived", {})
        if key not in store:
            expr = build()
            if getattr(self.con, "name", "") == "duckdb":
                sql = ibis.to_sql(expr, dialect="duckdb")
                self.con.raw_sql(f'CREATE OR REPLACE TEMP TABLE "derived__{key}" AS {sql}')
                expr = self.con.table(f"derived__{key}")
            store[key] = expr
        return store[key]

    # -- access ----------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        """True when the source holds table ``name``."""
        return name in self.tables

    def has_column(self, table: str, column: str) -> bool:
        """True when the input really had ``column`` (optional columns are otherwise NULL)."""
        return table in self.raw and column in self.raw[table].columns

    def table(self, name: str) -> ibis.Table:
        """Canonical ibis table ``name``."""
        if name in self.tables:
            return self.tables[name]
        schema.table(name)  # raises for names that are not tables at all
        raise UnknownNameError(
            f"table {name!r} is not in {self.source.location}; add {name}.csv or {name}.parquet "
            "to use the metrics that need it"
        )

    def __getitem__(self, name: str) -> ibis.Table:
        return self.table(name)

    def __getattr__(self, name: str) -> ibis.Table:
        if name.startswith("_") or name not in schema.TABLES:
            raise AttributeError(name)
        return self.table(name)

    def df(self, name: str) -> pd.DataFrame:
        """Execute table ``name`` into a pandas DataFrame."""
        return self.table(name).to_pandas()

    def rows_read(self, name: str) -> int:
        """Rows read for table ``name`` (before duplicates are dropped); counted once."""
        cache = self.__dict__.setdefault("_rows_read", {})
        if name not in cache:
            cache[name] = int(self.raw[name].expr.count().to_pyarrow().as_py())
        return cache[name]

    def row_counts(self) -> dict[str, int]:
        """Rows read per table (before duplicates are dropped)."""
        return {name: self.rows_read(name) for name in self.raw}

    def quality(self, *, as_of: date | datetime | None = None, thorough: bool = True):
        """All data-quality findings (see :func:`analysis.validation.check`), cached.

        ``thorough=False`` skips the duplicate and reference checks of tables larger than
        ``config.duplicate_check_max_rows`` (minutes on 50 million rows) and says so in a note.
        """
        from .validation import check

        key = (str(as_of), thorough)
        cache = self.__dict__.setdefault("_quality", {})
        if key not in cache:
            cache[key] = check(self, as_of=as_of, thorough=thorough)
        return cache[key]

    def last_date(self) -> date:
        """The data's snapshot day: ``config.as_of``, else the latest deal created or closed or
        activity logged. Stalled deals, coverage and default periods are measured from it."""
        if self.config.as_of:
            return self.config.as_of
        cache = self.__dict__.setdefault("_last_date", [])
        if not cache:
            o = self.table("opportunities")
            closed = o.filter(o.status.isin(["won", "lost"]))
            days = [o.created_at.max().date().to_pyarrow().as_py(), closed.close_date.max().to_pyarrow().as_py()]
            if self.has("activities"):
                days.append(self.table("activities").occurred_at.max().date().to_pyarrow().as_py())
            days = [d for d in days if d is not None]
            if not days:
                raise DataError(f"{self.source.location}: no dated deals or activities")
            cache.append(max(days))
        return cache[0]

    def __repr__(self) -> str:
        return f"Dataset({self.source.location!r}, tables={sorted(self.tables)})"

    # -- internals ---------------------------------------------------------------------------

    def _dedupe(self) -> None:
        """Keep the first row per key where keys repeat; count what was dropped.

        An exact distinct count of 50 million IDs costs about 20 s and 3 GB, so tables larger
        than ``config.duplicate_check_max_rows`` are not checked here: :meth:`quality` (and
        ``python -m analysis validate``) still reports their duplicates.
        """
        self.duplicates: dict[str, int] = {}
        self.unchecked_duplicates: list[str] = []
        for name, rt in self.raw.items():
            key = schema.TABLES[name].key
            if key is None or key not in rt.columns:
                continue
            t = self.tables[name]
            limit = self.config.duplicate_check_max_rows
            if self.rows_read(name) > limit:
                self.unchecked_duplicates.append(name)
                continue
            n_rows, n_keys = (
                t.aggregate(n=t[key].count(), k=t[key].nunique()).to_pyarrow().to_pylist()[0].values()
            )
            dropped = int(n_rows) - int(n_keys)
            if dropped:
                self.duplicates[name] = dropped
                self.tables[name] = canonical_table(rt, self.config, duplicates=True)


# -- reading --------------------------------------------------------------------------------


def _find_files(directory: Path) -> tuple[dict[str, list[SourceFile]], list[tuple[str, str, str]]]:
    """Map table names to their files in ``directory``; also return ambiguity problems."""
    found: dict[str, list[SourceFile]] = {}
    problems: list[tuple[str, str, str]] = []
    entries = {p.name.lower(): p for p in directory.iterdir()}
    for name in schema.TABLES:
        candidates = []
        for suffix in schema.FILE_SUFFIXES:
            p = entries.get(name + suffix)
            if p is not None and p.is_file():
                candidates.append(SourceFile(name, p, suffix.lstrip(".")))
        part_dir = entries.get(name)
        if part_dir is not None and part_dir.is_dir():
            parts = sorted(
                q for q in part_dir.iterdir() if q.suffix.lower() in schema.FILE_SUFFIXES and q.is_file()
            )
            formats = {q.suffix.lower() for q in parts}
            if len(formats) > 1:
                problems.append(("ambiguous_table", name,
                    f"{part_dir}: mixes {', '.join(sorted(formats))} part files; keep one format per table"
                ))
                continue
            if parts and candidates:
                problems.append(("ambiguous_table", name,
                                 f"{directory}: table {name} is given both as {part_dir.name}/ and as a file; keep one"))
                continue
            candidates.extend(SourceFile(name, q, q.suffix.lower().lstrip(".")) for q in parts)
        single = [c for c in candidates if c.path.parent == directory]
        if len(single) > 1:
            problems.append(("ambiguous_table", name,
                f"{directory}: table {name} is given twice ({', '.join(c.path.name for c in single)}); keep one"
            ))
            continue
        if candidates:
            found[name] = candidates
    return found, problems


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _read_files(con: Any, name: str, files: list[SourceFile]) -> ibis.Table:
    """Register ``files`` of one table in DuckDB and return the raw ibis table."""
    fmt = files[0].format
    raw_name = f"raw__{name}"
    if fmt == "parquet":
        paths = "[" + ", ".join(_sql_str(f.path) for f in files) + "]"
        con.raw_sql(
            f'CREATE OR REPLACE VIEW "{raw_name}" AS SELECT * EXCLUDE (file_row_number, filename), '
            f"file_row_number + 1 AS {ROW}, parse_filename(filename) AS {FILE} "
            f"FROM read_parquet({paths}, file_row_number = true, filename = true, union_by_name = true)"
        )
        return con.table(raw_name)
    parts = []
    for i, f in enumerate(files):
        part = f"{raw_name}__{i}"
        if fmt == "csv":
            con.raw_sql(
                f'CREATE OR REPLACE TABLE "{part}" AS SELECT * FROM read_csv({_sql_str(f.path)}, '
                "all_varchar = true, header = true, auto_detect = true)"
            )
        else:
            frame = _read_excel(f.path)
            con.con.register(f"{part}__df", frame)
            con.raw_sql(f'CREATE OR REPLACE TABLE "{part}" AS SELECT * FROM "{part}__df"')
            con.con.unregister(f"{part}__df")
        parts.append(
            f'SELECT *, CAST(rowid + 1 AS BIGINT) AS {ROW}, {_sql_str(f.path.name)} AS {FILE} FROM "{part}"'
        )
    con.raw_sql(f'CREATE OR REPLACE VIEW "{raw_name}" AS ' + " UNION ALL BY NAME ".join(parts))
    return con.table(raw_name)


def _read_excel(path: Path) -> pd.DataFrame:
    """First sheet of a workbook, every cell as text (dates in ISO 8601)."""
    frame = pd.read_excel(path, sheet_name=0, dtype=object, keep_default_na=False, na_values=[""])

    def text(v: Any) -> Any:
        if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
            return None
        if isinstance(v, (pd.Timestamp, datetime)):
            return v.isoformat() if (v.hour or v.minute or v.second) else v.date().isoformat()
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    out = pd.DataFrame({c: [text(v) for v in frame[c]] for c in frame.columns}, dtype=object)
    out.columns = [str(c).strip() for c in out.columns]
    return out


def _rename_columns(expr: ibis.Table, table: schema.Table) -> ibis.Table:
    """Match canonical column names ignoring case and surrounding spaces."""
    canon = {c.lower(): c for c in table.column_names}
    renames = {}
    for col in expr.columns:
        target = canon.get(col.strip().lower())
        if target and target != col and target not in expr.columns:
            renames[target] = col
    return expr.rename(renames) if renames else expr


# -- coercion ---------------------------------------------------------------------------------


def _category_map(column: Column) -> dict[str, str]:
    mapping = {normalize_token(v): v for v in column.allowed or ()}
    if column.name == "status":
        mapping.update(STATUS_STAGES)  # "Closed Won" -> won
    return mapping


def _token(expr: ibis.StringValue) -> ibis.StringValue:
    return expr.lower().re_replace(r"[\s_\-]", "")


def coerce(
    expr: ibis.Value, column: Column, mapping: dict[str, str] | None = None, *, trim: bool = True
) -> ibis.Value:
    """Coerce a raw column to its canonical type; values that do not parse become NULL.

    ``mapping`` (category columns) lists the raw values to respell, found once at load time;
    without it the column is normalised row by row. ``trim`` strips surrounding spaces from
    text (an empty text is missing either way).
    """
    t = expr.type()
    kind = column.type
    if kind in ("id", "string", "category"):
        if t.is_floating():
            expr = expr.try_cast("int64") if kind == "id" else expr
        out = expr.cast("string")
        out = (out.strip() if trim or not t.is_string() else out).nullif("")
        if kind == "category":
            if mapping is None:
                out = _token(out).substitute(_category_map(column), else_=out)
            elif mapping:
                out = out.substitute(mapping, else_=out)
        return out
    if kind == "timestamp":
        if t.is_string():
            return expr.nullif("").try_cast(dt.Timestamp(timezone="UTC")).cast(dt.Timestamp())
        if t.is_timestamp():
            return expr.cast(dt.Timestamp()) if t.timezone else expr
        if t.is_date():
            return expr.cast(dt.Timestamp())
        return ibis.null(dt.Timestamp())
    if kind == "date":
        if t.is_string():
            return expr.nullif("").strip().substr(0, 10).try_cast(dt.date)
        if t.is_timestamp():
            return expr.date()
        if t.is_date():
            return expr
        return ibis.null(dt.date)
    if kind in ("money", "number"):
        if t.is_string():
            return expr.nullif("").strip().try_cast(dt.float64)
        if t.is_numeric() or t.is_boolean():
            return expr.cast(dt.float64)
        return ibis.null(dt.float64)
    if kind == "integer":
        return expr.nullif("").try_cast(dt.int64) if t.is_string() else expr.try_cast(dt.int64)
    raise AssertionError(kind)


CANONICAL_DTYPES = {
    "id": dt.string,
    "string": dt.string,
    "category": dt.string,
    "timestamp": dt.Timestamp(),
    "date": dt.date,
    "money": dt.float64,
    "number": dt.float64,
    "integer": dt.int64,
}


def canonical_category(value: str, column: Column) -> str:
    """The canonical spelling of one category value (unknown values are returned as given)."""
    return _category_map(column).get(normalize_token(value), value)


def step_expr(stage: ibis.StringValue, config: Config, steps: dict[str, str] | None = None) -> ibis.StringValue:
    """Canonical step of a stage column (config first, then canonical names, then closed stages).

    ``steps`` maps each stage value of the data to its step, found once at load time; without
    it the stage names are normalised row by row.
    """
    if steps is not None:
        return stage.substitute(steps, else_=ibis.null(dt.string)) if steps else ibis.null(dt.string)
    mapping: dict[str, str] = {}
    mapping.update(STATUS_STAGES)
    mapping.update({normalize_token(s): s for s in STEPS})
    mapping.update({normalize_token(s.name): s.step for s in config.stages})
    exact = {s.name: s.step for s in config.stages}
    normalised = _token(stage).substitute(mapping, else_=ibis.null(dt.string))
    if not exact:
        return normalised
    # configured names as written map directly (no per-row string normalisation)
    return ibis.cases((stage.isin(list(exact)), stage.substitute(exact)), else_=normalised)


def canonical_table(rt: RawTable, config: Config, *, duplicates: bool) -> ibis.Table:
    """The canonical view of a raw table: every schema column, typed; extra columns as text."""
    spec = schema.TABLES[rt.name]
    raw = rt.expr
    cols: dict[str, ibis.Value] = {}
    for column in spec.columns:
        if column.name in raw.columns:
            cols[column.name] = coerce(raw[column.name], column, rt.maps.get(column.name), trim=rt.trim)
        else:
            cols[column.name] = ibis.null(CANONICAL_DTYPES[column.type])
    for extra in rt.columns:
        if extra not in cols:
            cols[extra] = raw[extra].cast("string") if not raw[extra].type().is_numeric() else raw[extra]
    if rt.name in ("opportunities", "stage_history"):
        cols["step"] = step_expr(cols["stage"], config, rt.steps)
    if duplicates and spec.key:
        keyed = raw.mutate(_dup_key=coerce(raw[spec.key], spec.column(spec.key), trim=rt.trim))
        rank = ibis.row_number().over(group_by=keyed._dup_key, order_by=[keyed[FILE], keyed[ROW]])
        keyed = keyed.mutate(_dup_rank=rank)
        keyed = keyed.filter((keyed._dup_rank == 0) | keyed._dup_key.isnull()).drop("_dup_rank", "_dup_key")
        return canonical_table(RawTable(rt.name, keyed, rt.files, rt.maps, rt.steps, rt.trim), config, duplicates=False)
    return raw.select(**cols)


MAX_DISTINCT = 10_000


def _value_maps(rt: RawTable, config: Config) -> None:
    """Find each category column's distinct values once and respell them in Python, so that
    scans of large tables compare exact strings instead of normalising every row."""
    spec = schema.TABLES[rt.name]
    wanted = [c for c in spec.columns if c.type == "category" and c.name in rt.columns]
    stage = "stage" if rt.name in ("opportunities", "stage_history") and "stage" in rt.columns else None
    for c in [*wanted, *([spec.column("stage")] if stage else [])]:
        values = coerce(rt.expr[c.name], schema.Column(c.name, "string"), trim=rt.trim)
        distinct = values.as_table().distinct().limit(MAX_DISTINCT + 1).to_pyarrow().column(0).to_pylist()
        if len(distinct) > MAX_DISTINCT:
            continue  # free text in a category column: fall back to row-by-row normalisation
        distinct = [v for v in distinct if v is not None]
        if c.name == "stage":
            rt.steps = {v: st for v in distinct if (st := config.step_of(v)) is not None}
        else:
            rt.maps[c.name] = {v: canonical_category(v, c) for v in distinct if canonical_category(v, c) != v}


# -- entry point -------------------------------------------------------------------------------


def _connect_duckdb(config: Config, path: str | None = None) -> Any:
    """An in-memory DuckDB in the company time zone; a database file is attached read-only."""
    con = ibis.duckdb.connect()
    con.raw_sql(f"SET TimeZone = {_sql_str(config.timezone)}")
    # no progress-bar widget in notebooks: reports must not carry widget output
    con.raw_sql("SET enable_progress_bar = false")
    # bounded memory: large aggregations spill to disk instead of growing past the limit
    spill = Path(tempfile.gettempdir()) / "workbench-duckdb"
    con.raw_sql(f"SET temp_directory = {_sql_str(spill)}")
    con.raw_sql(f"SET memory_limit = {_sql_str(config.memory_limit)}")
    if path:
        if not Path(path).is_file():
            raise DataError(f"{path}: no such DuckDB file")
        con.raw_sql(f"ATTACH {_sql_str(path)} AS src (READ_ONLY)")
    return con


def _attached_tables(con: Any) -> dict[str, ibis.Table]:
    """Views over the attached database's tables, with a row number for locating problems."""
    names = {
        r[0].lower(): r[0]
        for r in con.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'src'"
        ).fetchall()
    }
    out = {}
    for t in schema.TABLES:
        if t in names:
            con.raw_sql(
                f'CREATE OR REPLACE VIEW "raw__{t}" AS SELECT *, CAST(rowid + 1 AS BIGINT) AS {ROW}, '
                f'{_sql_str(names[t])} AS {FILE} FROM src.main."{names[t]}"'
            )
            out[t] = con.table(f"raw__{t}")
    return out


def _missing_columns(name: str, columns: list[str]) -> list[str]:
    present = {c.strip().lower() for c in columns}
    return [c for c in schema.TABLES[name].required_columns if c.lower() not in present]


def load(source: Any, config: Any = None) -> Dataset:
    """Load a dataset; raise :class:`DataError` listing every fatal problem.

    Parameters
    ----------
    source
        A directory of table files, a DuckDB file, a database URL, or a mapping of table names to
        pandas DataFrames.
    config
        A :class:`~analysis.config.Config`, a mapping, or the path of a ``workbench.yml``; by default
        the ``workbench.yml`` beside the data, else the defaults.

    Notes
    -----
    Fatal problems: a missing required table (``reps``, ``opportunities``), a missing required
    column, a file that cannot be read, a table given twice. Everything else (unparseable values,
    duplicates, dangling references...) is reported by :meth:`Dataset.quality`.
    """
    problems: list[tuple[str, str, str]] = []
    raw_frames: dict[str, ibis.Table] = {}
    files_by_table: dict[str, list[SourceFile]] = {}

    if isinstance(source, Mapping):
        cfg = load_config(config)
        con = _connect_duckdb(cfg)
        src = Source("<DataFrames>", "frames", frames=dict(source))
        for name, frame in source.items():
            if name not in schema.TABLES:
                schema.table(name)  # raises with a suggestion
            if not isinstance(frame, pd.DataFrame):
                raise DataError(f"table {name}: expected a pandas DataFrame, got {type(frame).__name__}")
            f = frame.reset_index(drop=True).copy()
            f[ROW] = range(1, len(f) + 1)
            f[FILE] = name
            con.con.register(f"raw__{name}__df", f)
            con.raw_sql(f'CREATE OR REPLACE TABLE "raw__{name}" AS SELECT * FROM "raw__{name}__df"')
            con.con.unregister(f"raw__{name}__df")
            raw_frames[name] = con.table(f"raw__{name}")
    else:
        text = str(source)
        path = Path(text).expanduser()
        if "://" in text and not path.exists():
            cfg = load_config(config)
            try:
                if text.startswith("duckdb://"):
                    con = _connect_duckdb(cfg, text.removeprefix("duckdb://"))
                    raw_frames = _attached_tables(con)
                else:
                    con = ibis.connect(text)
                    raw_frames = _database_tables(con)
            except DataError:
                raise
            except Exception as err:  # noqa: BLE001 - any driver error becomes one line
                raise DataError(f"cannot connect to {text}: {str(err).splitlines()[0]}") from None
            src = Source(text, "url")
        elif path.is_dir():
            cfg = load_config(config, data_dir=path)
            con = _connect_duckdb(cfg)
            src = Source(str(path), "directory")
            files_by_table, problems = _find_files(path)
            for name, files in files_by_table.items():
                try:
                    raw_frames[name] = _read_files(con, name, files)
                    src.files.extend(files)
                except Exception as err:  # noqa: BLE001 - reported as a fatal problem below
                    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                    problems.append(("unreadable_file", name,
                        f"{files[0].path}: cannot be read as {files[0].format.upper()} ({first}); "
                        "fix or re-export the file"
                    ))
        elif path.is_file() and path.suffix.lower() in (".duckdb", ".db", ".ddb"):
            cfg = load_config(config, data_dir=path.parent)
            try:
                con = _connect_duckdb(cfg, str(path))
            except Exception as err:  # noqa: BLE001
                raise DataError(f"{path}: cannot be opened as a DuckDB database ({str(err).splitlines()[0]})") from None
            src = Source(str(path), "duckdb", files=[SourceFile("*", path, "duckdb")])
            raw_frames = _attached_tables(con)
        elif path.exists():
            raise DataError(
                f"{path}: not a data source; give a directory of table files, a .duckdb file or a database URL"
            )
        else:
            raise DataError(f"{path}: no such file or directory; give the folder holding opportunities.csv and reps.csv")

    raw: dict[str, RawTable] = {}
    for name, expr in raw_frames.items():
        expr = _rename_columns(expr, schema.TABLES[name])
        if ROW not in expr.columns:
            expr = expr.mutate(**{ROW: ibis.row_number() + 1, FILE: ibis.literal(name)})
        files = files_by_table.get(name, [])
        typed = (bool(files) and all(f.format == "parquet" for f in files)) or src.kind in ("duckdb", "url")
        raw[name] = RawTable(name, expr, files, trim=not typed)

    for name in schema.REQUIRED_TABLES:
        if name not in raw and not any(p[1] == name for p in problems):
            problems.append(("missing_table", name,
                f"missing required table {name}: add {name}.csv (or .parquet / .xlsx) to {src.location}"
            ))
    missing_cols: dict[str, list[str]] = {}
    for name, rt in raw.items():
        missing = _missing_columns(name, rt.columns)
        if missing:
            missing_cols[name] = missing
            hint = ""
            if len(rt.columns) == 1 and any(ch in rt.columns[0] for ch in ",;\t|"):
                hint = "; the header was not split into columns: check that every row has as many fields as the header"
            problems.append(("missing_column", name,
                f"table {name}: missing required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} (columns found: {', '.join(rt.columns) or 'none'}){hint}"
            ))
    if problems:
        messages = [p[2] for p in problems]
        summary = messages[0] if len(messages) == 1 else f"{len(messages)} fatal problems: " + "; ".join(messages)
        raise DataError(summary, problems)
    return Dataset(con, raw, cfg, src, missing_columns=missing_cols)


def _database_tables(con: Any) -> dict[str, ibis.Table]:
    names = {n.lower(): n for n in con.list_tables()}
    return {t: con.table(names[t]) for t in schema.TABLES if t in names}
