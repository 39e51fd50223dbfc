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
* money and numbers are float64; numbers and dates written as text are read under the config's
  ``locale`` (:mod:`analysis.locale`); a value that does not parse, or reads differently by
  locale, becomes NULL and is reported by :meth:`Dataset.quality`, never guessed;
* every value a data-quality rule flags is left out of every figure, and rows without a usable
  required value are left out (:mod:`analysis.values` holds those rules, shared with
  :mod:`analysis.validation`);
* amounts and costs of deals in another currency are converted to the reporting currency at
  the rate in force on the close date (``fx_rates``); deals without a rate are left out and
  named by ``validate``, never summed in their own currency;
* a CRM export (``source:`` a preset, or a ``columns:`` mapping; :mod:`analysis.mapping`) is
  mapped onto the canonical tables first;
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

import codecs
import contextlib
import copy
import functools
import hashlib
import itertools
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from analysis.data import engines, schema
from analysis.data.config import Config, Stage, load_config
from analysis.data.values import (
    CANONICAL_DTYPES,
    FILE,
    PARSED_TYPES,
    ROW,
    Context,
    canonical_category,
    checked_table,
    coerce,
    context,
    parsed_columns,
    step_expr,
    unread,
)
from analysis.errors import ConfigError, DataError, MissingTableError

__all__ = ["Dataset", "load", "read_raw", "coerce", "step_expr", "canonical_category", "ROW", "FILE",
           "CANONICAL_DTYPES", "convert_currency"]


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
    #: the preset (or "columns") that mapped a CRM export onto the canonical tables
    preset: str | None = None
    #: what the mapping wants the user to know (e.g. rep ids derived from owner names)
    notes: list[str] = field(default_factory=list)

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


#: Bump when what the load cache holds changes meaning (the code's own hash is in the key too).
CACHE_VERSION = 1
#: Files up to this size are identified by their content too (a rewrite within one tick of the
#: file system's clock keeps size and times); larger ones by size, times and inode.
CACHE_HASH_BELOW = 32 << 20
#: Load caches kept per cache folder (the least recently used go first).
CACHE_ENTRIES = 32


def cache_folder() -> Path | None:
    """Where the workbench keeps what it learns about data files: ``$WORKBENCH_CACHE``, else
    ``$XDG_CACHE_HOME/sales-workbench`` (``~/.cache/sales-workbench``). ``WORKBENCH_CACHE=off``
    (or ``0``, ``no``, ``false``, empty) turns caching off."""

    env = os.environ.get("WORKBENCH_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "no", "false") else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sales-workbench"


#: Datasets whose derived tables are kept on disk (the least recently loaded go first).
DERIVED_ENTRIES = 4


@functools.cache
def _package_hash() -> str:
    """Hash of the whole package's code and catalog: derived tables are built by every layer."""
    h = hashlib.sha256(str(CACHE_VERSION).encode())
    root = Path(__file__).parents[1]
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.yml")]):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@functools.cache
def _code_hash() -> str:
    """Hash of the code that decides what a load finds (this package's data layer)."""
    h = hashlib.sha256(str(CACHE_VERSION).encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


class LoadCache:
    """What the scans of a load found (category values, column ranges, parse and duplicate
    counts, row counts; the snapshot day and currency counts with the day they were made), kept
    on disk so that the next load of the same files skips those scans: the review's notebook
    after the command that started it, a second query, tomorrow's unchanged export.

    The key is the data's identity: every file's path, size, modification and change times and
    inode, the content of files under :data:`CACHE_HASH_BELOW`, the whole config, the preset,
    and the code of the data layer. A changed file, config or package gives a new key; what
    cannot be read back (a truncated or foreign file) counts as absent. Writes are atomic; a
    folder that cannot be written just means no cache.
    """

    def __init__(self, path: Path, derived: Path):
        self.path = path
        #: folder of derived tables (Parquet) of this data; their code is the whole package's
        self.derived = derived

    @classmethod
    def of(cls, source: Source, config: Config) -> LoadCache | None:
        folder = cache_folder()
        if folder is None or source.kind not in ("directory", "duckdb") or not source.files:
            return None
        import json

        try:
            ident = []
            for f in sorted(source.files, key=lambda f: str(f.path)):
                st = f.path.stat()
                entry = [str(f.path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
                if st.st_size < CACHE_HASH_BELOW:
                    entry.append(hashlib.sha256(f.path.read_bytes()).hexdigest())
                ident.append(entry)
            key = json.dumps({"files": ident, "config": config.model_dump(mode="json"), "preset": source.preset,
                              "kind": source.kind, "code": _code_hash(), "ibis": ibis.__version__},
                             sort_keys=True, default=str)
        except (OSError, TypeError, ValueError):
            return None
        digest = hashlib.sha256(key.encode())
        load_key = digest.hexdigest()[:32]
        digest.update(_package_hash().encode())
        return cls(folder / "load" / f"{load_key}.pickle", folder / "derived" / digest.hexdigest()[:32])

    def read(self) -> dict[str, Any]:
        import pickle

        try:
            with self.path.open("rb") as fh:
                value = pickle.load(fh)
            self.path.touch()  # recently used
            if self.derived.is_dir():
                self.derived.touch()
        except Exception:  # noqa: BLE001 - a missing, partial or foreign file is no cache
            return {}
        return value if isinstance(value, dict) and value.get("version") == CACHE_VERSION else {}

    def write(self, value: dict[str, Any]) -> None:
        import pickle

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump({**value, "version": CACHE_VERSION}, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
            entries = sorted(self.path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in entries[CACHE_ENTRIES:]:
                old.unlink(missing_ok=True)
            kept = sorted((p for p in self.derived.parent.glob("*") if p.is_dir()),
                          key=lambda p: p.stat().st_mtime, reverse=True) if self.derived.parent.is_dir() else []
            for old in kept[DERIVED_ENTRIES:]:
                if old != self.derived:  # runs still using its files hold hard links to them
                    shutil.rmtree(old, ignore_errors=True)
        except Exception:  # noqa: BLE001 - no cache is slower, never wrong
            with contextlib.suppress(Exception):
                os.unlink(tmp)


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
    #: what is known of typed columns before any rule runs (see :func:`_facts`): rules that these
    #: facts prove cannot fire are left out of every scan
    facts: dict[str, dict] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The input's own columns (not ``_row``, ``_file`` or the parsed ``__c`` values)."""
        return [c for c in self.expr.columns if c not in (ROW, FILE) and not c.startswith("__")]


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
        #: what scans of these files found before (see :class:`LoadCache`); refreshed below
        self._cache = LoadCache.of(source, config)
        known = self._cache.read() if self._cache is not None else {}
        self._learned: dict[str, Any] = {"tables": {}, "sql": {}}
        #: SQL of the views over Parquet and databases that an earlier load compiled (an ibis
        #: compile takes ~0.05 s a table): view name -> SQL
        self._known_sql: dict[str, str] = dict(known.get("sql", {}))
        for rt in raw.values():
            seen = known.get("tables", {}).get(rt.name, {})
            if "maps" in seen:
                rt.maps, rt.steps, rt.facts = seen["maps"], seen["steps"], seen["facts"]
            else:
                _value_maps(rt, config)
            self._learn(rt.name, maps=rt.maps, steps=rt.steps, facts=copy.deepcopy(rt.facts))
            self._parse(rt)
        #: today in the company time zone: records dated later are errors
        self.today = datetime.now(config.tz).date()
        # what depends on today (the snapshot, the plausible dates of canonical tables) is reused on that day only
        today = known if known.get("today") == self.today.isoformat() else {}
        self._learned["today"] = self.today.isoformat()
        self._learned["quality"] = dict(today.get("quality", {}))
        self._known_sql.update(today.get("sql_today", {}))  # canonical views depend on today
        self._learned["sql_today"] = {}
        #: the day the data was taken (the latest plausible record), whatever ``config.as_of`` says
        self.snapshot = today["snapshot"] if "snapshot" in today else _snapshot(raw, config, self.today)
        self._learned["snapshot"] = self.snapshot
        self.context: Context = context(config, self.snapshot or self.today, self.today)
        #: (table, column) -> why the column cannot be used (most of its values did not parse)
        self.unusable_columns: dict[tuple[str, str], str] = {}
        self._rows_read = {name: t["rows"] for name, t in known.get("tables", {}).items() if "rows" in t}
        self._check_parse_shares(known.get("tables", {}))
        self.tables: dict[str, ibis.Table] = {
            name: canonical_table(rt, config, self.context, duplicates=False) for name, rt in raw.items()
        }
        self._dedupe(known.get("tables", {}))
        self._convert_currency(today.get("fx"))
        self._register()
        if self._cache is not None:
            for name, n in self._rows_read.items():
                self._learn(name, rows=n)
            if self._learned != {k: v for k, v in known.items() if k != "version"}:
                self._cache.write(self._learned)

    def _learn(self, table: str, **facts: Any) -> None:
        """Remember what a scan of ``table`` found, for the load cache."""
        self._learned["tables"].setdefault(table, {}).update(facts)

    def _parse(self, rt: RawTable) -> None:
        """Parse every canonical column once (``__c`` beside the raw text; see
        :func:`analysis.values.parsed_columns`): a table in DuckDB for files that are read into
        it, a view over Parquet and databases. Rules, checks and canonical tables read it."""
        expr = rt.expr.mutate(**parsed_columns(rt, self.config))
        if engines.name(self.con) != "duckdb":
            rt.expr = expr
            return
        lazy = any(f.format == "parquet" for f in rt.files) or self.source.kind in ("duckdb", "url") or not rt.trim
        name = f"parsed__{rt.name}"
        if lazy:
            sql = self._known_sql.get(name) or ibis.to_sql(expr, dialect="duckdb")
            self._learned["sql"][name] = sql
            self.con.raw_sql(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {sql}')
        else:  # parsed once per file: the next load reads the Parquet the first one kept
            self._materialize(name, lambda: ibis.to_sql(expr, dialect="duckdb"), self._derived_file(f"{name}.parquet"))
        rt.expr = self.con.table(name)

    def _check_parse_shares(self, known: Mapping[str, dict] | None = None) -> None:
        """A column whose values mostly fail to read is unusable: fatal for a required column,
        treated as absent (metrics that need it are "not available", never 0) otherwise.
        ``known``: per table, the counts of an earlier load of the same files (no scan)."""
        share = self.config.limits.max_unparseable_share
        problems: list[tuple[str, str, str]] = []
        for name, rt in self.raw.items():
            spec = schema.TABLES[name]
            cols = [c for c in spec.columns if c.name in rt.columns and rt.expr[c.name].type().is_string()
                    and (c.type in PARSED_TYPES or (c.required and c.allowed))]
            if not cols:
                continue
            aggs: dict[str, Any] = {}
            loc = self.config.parsed_locale
            for i, c in enumerate(cols):
                text = rt.expr[c.name].strip()
                aggs[f"g{i}"] = (text.notnull() & (text != "")).sum()
                aggs[f"f{i}"] = unread(rt.expr[c.name], rt.expr[f"__{c.name}"], c).fill_null(False).sum()
            counts = (known or {}).get(name, {}).get("shares")
            if counts is None or set(counts) != set(aggs):
                counts = rt.expr.aggregate(**aggs).to_pyarrow().to_pylist()[0]
            self._learn(name, shares=dict(counts))
            for i, c in enumerate(cols):
                given, failed = int(counts[f"g{i}"] or 0), int(counts[f"f{i}"] or 0)
                if not given or failed / given <= share:
                    continue
                examples = _failed_examples(rt, c)
                what = (f"{failed:,} of {given:,} values of {name}.{c.name} ({failed / given:.0%}) cannot be read "
                        f"(e.g. {examples})")
                fix = _parse_fix(c, loc)
                if c.required:
                    problems.append(("mostly_unparseable", name, f"{what}; {fix}"))
                else:
                    self.unusable_columns[(name, c.name)] = f"column {c.name} of {name} could not be read: {what}; {fix}"
                    drop = [x for x in (c.name, f"__{c.name}", f"__{c.name}__amb") if x in rt.expr.columns]
                    rt.expr = rt.expr.drop(*drop)  # used as if absent: never half-read
        if problems:
            messages = [p[2] for p in problems]
            raise DataError(messages[0] if len(messages) == 1 else
                            f"{len(messages)} fatal problems: " + "; ".join(messages), problems)

    def _convert_currency(self, known: Mapping[str, Any] | None = None) -> None:
        """Deal amounts and costs in the reporting currency; deals without a rate left out.
        ``known``: the counts of an earlier load of the same files on the same day (no scans)."""
        self.fx_missing: list[dict] = []
        #: (currency, date) given two different rates: neither is used
        self.fx_conflicts: list[dict] = []
        #: deals whose converted amount is above limits.max_amount (left out)
        self.fx_implausible = 0
        if "opportunities" not in self.tables or not self.has_column("opportunities", "currency"):
            return
        o = self.tables["opportunities"]
        fx = self.tables.get("fx_rates")
        known = known or {}
        if fx is not None:
            key = fx.select(_c=fx.currency.strip().upper(), _d=fx.date, _r=fx.rate_to_reporting)
            per_day = key.group_by(["_c", "_d"]).aggregate(_n=key._r.nunique())
            clash = per_day.filter(per_day._n > 1)
            self.fx_conflicts = known["conflicts"] if "conflicts" in known else [
                {"currency": r["_c"], "date": r["_d"], "rates": int(r["_n"])}
                for r in clash.order_by(["_c", "_d"]).to_pyarrow().to_pylist()]
            if self.fx_conflicts:
                fx = fx.anti_join(clash, (fx.currency.strip().upper() == clash._c) & (fx.date == clash._d))
        converted, missing = convert_currency(o, fx, self.config.currency)
        limit = self.config.limits.max_amount
        too_big = (converted.amount.abs() > limit) | (converted.cost.abs() > limit)
        self.fx_implausible = known["implausible"] if "implausible" in known else int(
            converted.filter(too_big.fill_null(False)).count().to_pyarrow().as_py())
        if self.fx_implausible:
            converted = converted.filter(~too_big.fill_null(False))
        stats = known["missing"] if "missing" in known else missing.group_by(currency=missing._cur).aggregate(
            deals=missing.count(), first=missing._fx_day.min(), last=missing._fx_day.max()
        ).order_by(ibis.desc("deals")).to_pyarrow().to_pylist()
        self.fx_missing = stats
        self.tables["opportunities"] = converted
        self._learned["fx"] = {"implausible": self.fx_implausible, "missing": stats,
                               **({"conflicts": self.fx_conflicts} if fx is not None else {})}
        n_missing = sum(r["deals"] for r in stats)
        if n_missing:
            total = int(o.count().to_pyarrow().as_py())
            if n_missing * 2 > total:
                listed = ", ".join(f"{r['currency']} ({r['deals']:,} deals)" for r in stats[:5])
                raise DataError(
                    f"table opportunities: {n_missing:,} of {total:,} deals are in another currency than the "
                    f"reporting currency {self.config.currency} with no exchange rate ({listed}); set currency: "
                    "in workbench.yml to the deals' currency, or add fx_rates (currency, date, rate_to_reporting)",
                    [("fx_unusable", "opportunities", f"{n_missing:,} of {total:,} deals have no exchange rate to the "
                      f"reporting currency {self.config.currency} ({listed})")],
                )

    def _register(self) -> None:
        """Name each canonical table in the in-process DuckDB (a view over Parquet files, a
        typed table for CSV / Excel / DataFrame inputs), so queries compile against a plain
        table instead of re-deriving every column each time."""
        if engines.name(self.con) != "duckdb":  # a database: temporary tables in it
            for name, expr in list(self.tables.items()):
                self.tables[name] = engines.materialize(expr)
            return
        for name, expr in list(self.tables.items()):
            lazy = any(f.format == "parquet" for f in self.raw[name].files) or self.source.kind in ("duckdb", "url")
            if lazy:
                sql = self._known_sql.get(f"canon__{name}") or ibis.to_sql(expr, dialect="duckdb")
                self._learned["sql_today"][f"canon__{name}"] = sql
                self.con.raw_sql(f'CREATE OR REPLACE VIEW "canon__{name}" AS {sql}')
            else:  # canonical tables depend on today too (dates after it are errors)
                self._materialize(f"canon__{name}", functools.partial(ibis.to_sql, expr, dialect="duckdb"),
                                  self._derived_file(f"canon__{name}.{self.today}.parquet"))
            self.tables[name] = self.con.table(f"canon__{name}")

    def kept(self, name: str, key: Any, build: Callable[[], Any]) -> Any:
        """A small result (a dict of numbers, a short frame) computed once per data, config and
        code: ``build()`` the first time, then read back, in this process and in the next ones
        (it is pickled beside the derived tables, see :meth:`cached`). ``key`` is anything with a
        stable ``repr`` that, with ``name``, identifies the result. Without a load cache (data
        given as frames, ``WORKBENCH_CACHE=off``) it is kept in this dataset only. The caller
        copies what it hands out when the value is mutable."""
        import pickle

        memo = self.__dict__.setdefault("_kept", {})
        digest = self._kept_digest(name, key)
        if digest in memo:
            return memo[digest]
        file = self._derived_file(f"kept/{name}-{digest}.pickle")
        if file is not None:
            try:
                with file.open("rb") as fh:
                    memo[digest] = pickle.load(fh)
                return memo[digest]
            except Exception:  # noqa: BLE001 - missing, partial or foreign: compute it
                pass
        value = memo[digest] = build()
        if file is not None:
            with contextlib.suppress(OSError, pickle.PicklingError, TypeError, AttributeError):
                file.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".", suffix=".tmp")
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, file)
        return value

    def _kept_digest(self, name: str, key: Any) -> str:
        return hashlib.sha256(repr((name, key, self.config.model_dump(mode="json"))).encode()).hexdigest()[:32]

    def has_kept(self, name: str, key: Any) -> bool:
        """Whether :meth:`kept` would read ``name`` and ``key`` back rather than build it."""
        digest = self._kept_digest(name, key)
        if digest in self.__dict__.get("_kept", {}):
            return True
        file = self._derived_file(f"kept/{name}-{digest}.pickle")
        return file is not None and file.is_file()

    def cached(self, key: str, build) -> ibis.Table:
        """A derived table computed once per dataset: in DuckDB, materialized, and kept as Parquet
        in the load cache's folder (see :class:`LoadCache`) so that the next process that loads
        the same files and code reads it instead of computing it again."""
        store = self.__dict__.setdefault("_derived", {})
        if key not in store:
            if engines.name(self.con) != "duckdb":
                store[key] = engines.materialize(build())
                return store[key]
            name = f"derived__{key}"
            self._materialize(name, lambda: ibis.to_sql(build(), dialect="duckdb"), self._derived_file(f"{key}.parquet"))
            store[key] = self.con.table(name)
        return store[key]

    def _materialize(self, name: str, sql: Any, file: Path | None) -> None:
        """Table ``name`` of query ``sql`` (text, or a function giving it): read from ``file``
        when an earlier run kept it there, else computed in memory and kept in ``file``."""
        if file is not None and file.is_file():
            self._view_of(name, [file])
            return
        sql = sql() if callable(sql) else sql
        self.con.raw_sql(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {sql}')
        if file is not None and self._save(name, "", file):
            self.con.raw_sql(f'DROP TABLE "{name}"')
            self._view_of(name, [file])

    def cached_parts(self, key: str, parts: list, build, column: str) -> ibis.Table:
        """A derived table made of parts (months of activities...), each computed once per
        dataset when first asked for: ``build(missing_parts)`` gives the rows of those parts, and
        its ``column`` holds each row's part. In DuckDB each part is also kept as a Parquet file
        (see :meth:`cached`), so the next process computes only the parts no run has asked for
        yet; elsewhere the expression of the parts asked is returned, computed by the engine."""
        if engines.name(self.con) != "duckdb":  # kept on the engine, per set of parts asked
            memo = self.__dict__.setdefault("_derived_parts_elsewhere", {})
            wanted = (key, tuple(sorted(parts, key=str)))
            if wanted not in memo:
                memo[wanted] = engines.materialize(build(list(parts)))
            return memo[wanted]
        store = self.__dict__.setdefault("_derived_parts", {})
        done: dict = store.setdefault(key, {})  # part -> Parquet file, or None (in the table only)
        name = f"derived__{key}"
        missing = [p for p in parts if p not in done]
        folder = self._derived_file(key)
        for p in list(missing):
            file = folder / f"{p}.parquet" if folder is not None else None
            if file is not None and file.is_file():
                done[p] = file
                missing.remove(p)
        if missing:
            sql = ibis.to_sql(build(missing), dialect="duckdb")
            fresh = f"{name}__new"
            self.con.raw_sql(f'CREATE OR REPLACE TEMP TABLE "{fresh}" AS {sql}')
            for p in missing:
                file = folder / f"{p}.parquet" if folder is not None else None
                where = f'WHERE "{column}" = {_sql_literal(p)}'
                done[p] = file if file is not None and self._save(fresh, where, file) else None
            kept = f"{name}__kept"
            if any(f is None for f in done.values()):  # parts that live in memory only
                self.con.raw_sql(f'CREATE TEMP TABLE IF NOT EXISTS "{kept}" AS SELECT * FROM "{fresh}" LIMIT 0')
                self.con.raw_sql(f'INSERT INTO "{kept}" SELECT * FROM "{fresh}" WHERE "{column}" IN '
                                 f'({", ".join(_sql_literal(p) for p in missing if done[p] is None) or "NULL"})')
            self.con.raw_sql(f'DROP TABLE "{fresh}"')
        files = sorted({f for f in done.values() if f is not None})
        selects = [self._scan_sql(files)] if files else []
        if any(f is None for f in done.values()):
            selects.append(f'SELECT * FROM "{name}__kept"')
        if not selects:  # nothing asked yet: an empty table of the right shape
            sql = ibis.to_sql(build([]), dialect="duckdb")
            self.con.raw_sql(f'CREATE OR REPLACE TEMP TABLE "{name}__kept" AS {sql}')
            selects.append(f'SELECT * FROM "{name}__kept"')
        self.con.raw_sql(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {" UNION ALL BY NAME ".join(selects)}')
        return self.con.table(name)

    def _derived_file(self, name: str) -> Path | None:
        """Where derived table (file) or parts (folder) ``name`` are kept (None: no load cache)."""
        return None if self._cache is None else self._cache.derived / name

    def _save(self, table: str, where: str, file: Path) -> bool:
        """Write ``table``'s rows (``where``) to ``file`` as Parquet, atomically; False when the
        folder cannot be written (the table then stays in memory only)."""

        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            self.con.raw_sql(f'COPY (SELECT * FROM "{table}" {where}) TO {_sql_str(tmp)} (FORMAT parquet)')
            os.replace(tmp, file)
            return True
        except Exception:  # noqa: BLE001 - a cache that cannot be written only costs time
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False

    def _view_of(self, name: str, files: list[Path]) -> None:
        self.con.raw_sql(f'CREATE OR REPLACE TEMP VIEW "{name}" AS {self._scan_sql(files)}')

    def _scan_sql(self, files: list[Path]) -> str:
        """SQL reading the rows of cached Parquet ``files`` through their pins (see :meth:`_pin`)."""
        pins = [self._pin(f) for f in files]
        links = [str(p) for p in pins if isinstance(p, Path)]
        parts = [f"SELECT * FROM read_parquet({_sql_list(links)})"] if links else []
        parts += [f'SELECT * FROM "{p}"' for p in pins if isinstance(p, str)]
        return " UNION ALL BY NAME ".join(parts)

    def _pin(self, file: Path) -> Path | str:
        """A hard link to a cached file in this connection's own folder, so that the cache
        pruning a dataset's files (another process, see :class:`LoadCache`) cannot pull them from
        under a view that reads them; the folder goes with the connection. Where there are no
        hard links (another file system) the file is read into a table in memory, whose name is
        returned instead."""

        pins = self.__dict__.setdefault("_pins", {})
        if file not in pins:
            spill = getattr(self.con, "_workbench_spill", None)
            link = Path(str(spill)) / "pinned" / f"{len(pins)}-{file.name}" if spill else None
            try:
                if link is None:
                    raise OSError("the connection has no folder of its own")
                link.parent.mkdir(parents=True, exist_ok=True)
                os.link(file, link)
                pins[file] = link
            except OSError:
                table = f"pinned__{len(pins)}"
                self.con.raw_sql(f'CREATE OR REPLACE TEMP TABLE "{table}" AS SELECT * FROM read_parquet({_sql_str(file)})')
                pins[file] = table
        return pins[file]

    # -- access ----------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        """True when the source holds table ``name``."""
        return name in self.tables

    def has_column(self, table: str, column: str) -> bool:
        """True when the input really had ``column`` (optional columns are otherwise NULL) and
        enough of its values could be read (see :attr:`unusable_columns`)."""
        return table in self.raw and column in self.raw[table].columns

    def column_problem(self, table: str, column: str) -> str | None:
        """Why ``table.column`` cannot be used (absent, or most values unreadable), else None."""
        if (table, column) in self.unusable_columns:
            return self.unusable_columns[(table, column)]
        if table in self.raw and column not in self.raw[table].columns:
            return f"needs column {column} of {table}, which the data does not have"
        return None

    def table(self, name: str) -> ibis.Table:
        """Canonical ibis table ``name``."""
        if name in self.tables:
            return self.tables[name]
        schema.table(name)  # raises for names that are not tables at all
        message = (f"table {name!r} is not in {self.source.location}; add {name}.csv or {name}.parquet "
                   "to use the metrics that need it")
        raise MissingTableError(message, [("missing_table", name, message)])

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
        cache = self._rows_read
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
        from analysis.data.validation import check

        key = (str(as_of), thorough)
        cache = self.__dict__.setdefault("_quality", {})
        if key not in cache:
            # an earlier run's report of the same files, config and code, made today (date rules
            # compare with today), is this one: the load cache keeps it (see LoadCache)
            stored = self._learned.setdefault("quality", {})
            if key in stored and self._learned.get("today") == self.today.isoformat():
                cache[key] = copy.deepcopy(stored[key])
            else:
                # the checks read the raw files where the import read them (DuckDB), whatever
                # engine computes the figures (see analysis.data.engines.place)
                cache[key] = check(self.__dict__.get("imported", self), as_of=as_of, thorough=thorough)
                if self._cache is not None:
                    stored[key] = copy.deepcopy(cache[key])
                    self._cache.write(self._learned)
        return cache[key]

    def period(self, value: Any):
        """A period label (``2025-Q3``, ``FY2026``, an int year) or a :class:`Period` read in
        this dataset's fiscal calendar: the one period parser of every module."""
        from analysis.data.periods import parse_period

        return parse_period(value, fiscal_start_month=self.config.fiscal_year_start_month)

    def last_date(self) -> date:
        """The data's snapshot day: ``config.as_of``, else the latest deal created or closed or
        activity logged, not later than today (a record dated after today is an error, not the
        snapshot). Stalled deals, coverage and default periods are measured from it."""
        if self.config.as_of:
            return self.config.as_of
        if self.snapshot is None:
            raise DataError(f"{self.source.location}: no dated deals or activities (no created_at, "
                            "close_date or occurred_at could be read); check the dates with validate")
        return self.snapshot

    def __repr__(self) -> str:
        return f"Dataset({self.source.location!r}, tables={sorted(self.tables)})"

    # -- internals ---------------------------------------------------------------------------

    def _dedupe(self, known: Mapping[str, dict] | None = None) -> None:
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
            limit = self.config.duplicate_check_max_rows
            if self.rows_read(name) > limit:
                self.unchecked_duplicates.append(name)
                continue
            k = rt.expr[f"__{key}"]  # the parsed key of every row read, as the first-row-wins rule ranks them
            counted = (known or {}).get(name, {}).get("keys")
            n_rows, n_keys = counted if counted is not None else (
                rt.expr.aggregate(n=k.count(), k=k.nunique()).to_pyarrow().to_pylist()[0].values()
            )
            self._learn(name, keys=(int(n_rows), int(n_keys)))
            dropped = int(n_rows) - int(n_keys)
            if dropped:
                self.duplicates[name] = dropped
                self.tables[name] = canonical_table(rt, self.config, self.context, duplicates=True)


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


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join(_sql_str(v) for v in values) + "]"


def _sql_literal(value: Any) -> str:
    """A part's value as SQL: a date, a number or text."""
    if isinstance(value, datetime):
        return f"TIMESTAMP {_sql_str(value.isoformat(sep=' '))}"
    if isinstance(value, date):
        return f"DATE {_sql_str(value.isoformat())}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return _sql_str(str(value))


def read_raw(con: Any, name: str, files: list[SourceFile], config: Config | None = None) -> ibis.Table:
    """Register ``files`` of one table in DuckDB and return the raw ibis table: the files' own
    headers as text columns (Parquet keeps its types), plus ``_row`` and ``_file``.

    CSV: the text encoding is detected (UTF-8 with or without BOM, UTF-16 with BOM, else
    Windows-1252, Excel's default on Windows) unless ``config.encoding`` says; the dialect is
    sniffed from the whole file, so a quoted field after row 20,000 reads. A header naming a
    column twice is refused. Input files are only read.
    """
    config = config or Config()
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
            _read_csv(con, part, f.path, config, name)
        else:
            frame = _read_excel(f.path, config, name)
            con.con.register(f"{part}__df", frame)
            con.raw_sql(f'CREATE OR REPLACE TABLE "{part}" AS SELECT * FROM "{part}__df"')
            con.con.unregister(f"{part}__df")
        parts.append(
            f'SELECT *, CAST(rowid + 1 AS BIGINT) AS {ROW}, {_sql_str(f.path.name)} AS {FILE} FROM "{part}"'
        )
    con.raw_sql(f'CREATE OR REPLACE VIEW "{raw_name}" AS ' + " UNION ALL BY NAME ".join(parts))
    return con.table(raw_name)


def _decode_error(path: Path, encoding: str, err: UnicodeDecodeError) -> DataError:
    return DataError(
        f"{path}: cannot be read as {encoding} text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
        "save it as UTF-8, or set encoding: in workbench.yml (utf-8, utf-16, cp1252, latin-1)"
    )


def _encoding_of(path: Path, configured: str | None) -> str:
    """The text encoding of a CSV file: the configured one, a BOM's, UTF-8, or Windows-1252."""
    if configured:
        return configured
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        try:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            pass
    try:
        path.read_bytes().decode("cp1252")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: neither UTF-8 nor Windows-1252 text (byte 0x{err.object[err.start]:02x} at offset "
            f"{err.start}); save it as UTF-8, or set encoding: in workbench.yml"
        ) from None
    return "cp1252"


def _read_csv(con: Any, table: str, path: Path, config: Config, label: str) -> None:
    encoding = _encoding_of(path, config.encoding)
    source = path
    tmp: Path | None = None
    if encoding.startswith("utf-16") and config.encoding:
        with path.open("rb") as fh:
            head = fh.read(4096)
        if not head.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in head:
            raise DataError(f"{path}: does not look like {encoding} text (no byte order mark, no zero bytes); "
                            "remove encoding: from workbench.yml (UTF-8 is read by default) or set the right one")
    if config.encoding and encoding in ("utf-8", "utf-8-sig"):
        try:
            path.read_bytes().decode(encoding)
        except UnicodeDecodeError as err:
            raise _decode_error(path, encoding, err) from None
    elif encoding not in ("utf-8", "utf-8-sig"):
        try:
            text = path.read_bytes().decode(encoding)
        except UnicodeDecodeError as err:
            raise _decode_error(path, encoding, err) from None
        if text.startswith("\ufeff"):
            text = text[1:]
        fd, name = tempfile.mkstemp(suffix=".csv", prefix="workbench-")
        tmp = Path(name)
        with open(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        source = tmp
    try:
        con.raw_sql(
            f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM read_csv({_sql_str(source)}, '
            "all_varchar = true, header = true, auto_detect = true, sample_size = -1)"
        )
        header = _csv_header(con, source)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    _refuse_repeated_headers(path, header, label)


def _refuse_repeated_headers(path: Path, header: list[str], label: str, *, blanks_named: bool = False) -> None:
    """A header that names a column twice (ignoring case and spaces) is refused: which to use
    would be a guess. ``blanks_named``: empty header cells get names of their own (Excel)."""
    seen: set[str] = set()
    for h in (str(h).strip() for h in header):
        if (h or not blanks_named) and h.lower() in seen:
            raise DataError(
                f"{path}: the header names column {h!r} twice; rename or delete one so that it is clear which to use",
                [("duplicate_column", label or path.name, f"{path.name}: column {h!r} is named twice in the header")],
            )
        seen.add(h.lower())


def _csv_header(con: Any, path: Path) -> list[str]:
    """The header fields exactly as written (DuckDB renames a repeated name to ``name_1``)."""
    sniff = con.con.execute(f"SELECT Delimiter, Quote, Escape FROM sniff_csv({_sql_str(path)}, sample_size = -1)").fetchone()
    import csv

    with path.open(encoding="utf-8-sig", newline="") as fh:
        delimiter = sniff[0] if sniff[0] and len(sniff[0]) == 1 else ","
        quote = sniff[1] if sniff[1] and len(sniff[1]) == 1 and sniff[1] != "\x00" else '"'
        reader = csv.reader(fh, delimiter=delimiter, quotechar=quote)
        return next(reader, [])


def _read_excel(path: Path, config: Config | None = None, label: str = "") -> pd.DataFrame:
    """First sheet of a workbook, every cell as text: dates in ISO 8601, typed numbers written so
    that the config's locale reads them back exactly."""
    from analysis.data.locale import plain_number_text

    loc = config.parsed_locale if config is not None else None
    frame = pd.read_excel(path, sheet_name=0, dtype=object, keep_default_na=False, na_values=[""], header=None)

    def text(v: Any) -> Any:
        if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
            return None
        if isinstance(v, (pd.Timestamp, datetime)):
            return v.isoformat() if (v.hour or v.minute or v.second) else v.date().isoformat()
        if isinstance(v, date):
            return v.isoformat()
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, (int, float)):
            return plain_number_text(v, loc)
        return str(v)

    if frame.empty:
        return pd.DataFrame()
    header = [str(h).strip() if h is not None and not (isinstance(h, float) and pd.isna(h)) else "" for h in frame.iloc[0]]
    _refuse_repeated_headers(path, header, label, blanks_named=True)
    body = frame.iloc[1:]
    out = pd.DataFrame({h or f"column{i + 1}": [text(v) for v in body.iloc[:, i]] for i, h in enumerate(header)},
                       dtype=object)
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


# -- what the rules need -------------------------------------------------------------------------


def _snapshot(raw: dict[str, RawTable], config: Config, today: date) -> date | None:
    """The data's snapshot day: the latest deal created or closed or activity logged among
    dates that are plausible (not before ``limits.earliest_date``, not after today). None when
    no such date exists. ``config.as_of`` (the day the analysis looks from) does not change it:
    a deal closed after that day is real, one closed after the data was taken is not."""
    lo, hi = config.limits.earliest_date, today
    days: list[date] = []

    def latest(rt: RawTable, column: str, where: Any = None) -> None:
        if column not in rt.columns:
            return
        c = schema.TABLES[rt.name].column(column)
        f = rt.facts.get(column, {})
        if where is None and f.get("max") is not None and _as_day(f["min"]) >= lo and _as_day(f["max"]) <= hi:
            days.append(_as_day(f["max"]))  # known from the load's facts: no scan
            return
        v = rt.expr[f"__{column}"]
        d = v.date() if c.type == "timestamp" else v
        ok = (d >= ibis.literal(lo)) & (d <= ibis.literal(hi))
        if where is not None:
            ok = ok & where
        out = d.max(where=ok).to_pyarrow().as_py()
        if out is not None:
            days.append(out.date() if isinstance(out, datetime) else out)

    if "opportunities" in raw:
        rt = raw["opportunities"]
        latest(rt, "created_at")
        if "status" in rt.columns:
            latest(rt, "close_date", rt.expr["__status"].isin(["won", "lost"]))
    if "activities" in raw:
        latest(raw["activities"], "occurred_at")
    return max(days) if days else None


def _as_day(v: Any) -> date:
    return v.date() if isinstance(v, datetime) else v


def _failed_examples(rt: RawTable, c: schema.Column) -> str:
    failed = unread(rt.expr[c.name], rt.expr[f"__{c.name}"], c).fill_null(False)
    rows = rt.expr.filter(failed).select(FILE, ROW, c.name).order_by([FILE, ROW]).limit(3).to_pyarrow().to_pylist()
    return "; ".join(f"{r[FILE]} row {r[ROW]}: {r[c.name]!r}" for r in rows)


def _parse_fix(c: schema.Column, loc: Any) -> str:
    if c.allowed:
        return f"use {', '.join(c.allowed)} (or map the values with columns: in workbench.yml)"
    if c.type in ("money", "number", "integer"):
        if loc is None:
            return ("set locale: in workbench.yml to the file's number format (id-ID reads 'Rp 56.100.000' and "
                    "'1.500,50'; en-US reads '$1,500.50')")
        return f"the values do not follow locale {loc.name or loc}; check the locale: setting"
    if loc is None:
        return ("write dates as ISO 8601 (2025-07-14) or set locale: in workbench.yml (id-ID or en-GB read "
                "14/07/2025 day first; en-US reads 07/14/2025)")
    return f"the dates do not follow locale {loc.name or loc}; check the locale: setting"


def convert_currency(o: ibis.Table, fx: ibis.Table | None, reporting: str) -> tuple[ibis.Table, ibis.Table]:
    """Deals with amount and cost in the reporting currency, and the deals left out for want of
    a rate (with ``_cur`` and ``_fx_day``).

    A deal in another currency is converted at the latest rate of its currency dated on or
    before its close date (the creation date while it has none). A deal whose currency has no
    such rate is left out: its amount is never summed in its own currency.
    """
    reporting = reporting.strip().upper()
    cur = o.currency.strip().upper().nullif("")
    o = o.mutate(_cur=cur, _fx_day=o.close_date.coalesce(o.created_at.date()), _rid=ibis.row_number())
    o = o.mutate(_foreign=(o._cur.notnull() & (o._cur != reporting)).fill_null(False))
    if fx is None:
        latest = None
    else:
        rates = fx.select(_rcur=fx.currency.strip().upper(), _day=fx.date, _rate=fx.rate_to_reporting)
        needs = o.filter(o._foreign)
        pairs = needs.join(rates, (needs._cur == rates._rcur) & (rates._day <= needs._fx_day))
        latest = pairs.mutate(_rk=ibis.row_number().over(group_by=pairs._rid, order_by=ibis.desc(pairs._day)))
        latest = latest.filter(latest._rk == 0).select(_rid2=latest._rid, _rate=latest._rate)
    if latest is None:
        j = o.mutate(_rate=ibis.null(dt.float64), _rid2=ibis.null(dt.int64))
    else:
        j = o.left_join(latest, o._rid == latest._rid2)
    no_rate = j._foreign & j._rate.isnull()
    missing = j.filter(no_rate)
    kept = j.filter(~no_rate)
    factor = ibis.cases((kept._foreign, kept._rate), else_=ibis.literal(1.0))
    kept = kept.mutate(amount=kept.amount * factor, cost=kept.cost * factor)
    return kept.drop("_cur", "_fx_day", "_rid", "_rid2", "_rate", "_foreign"), missing


# -- canonical tables -------------------------------------------------------------------------


def canonical_table(rt: RawTable, config: Config, ctx: Context, *, duplicates: bool) -> ibis.Table:
    """The canonical view of a raw table: every schema column, typed, with every flagged value
    (and every row without a usable required value) left out; extra columns as text."""
    spec = schema.TABLES[rt.name]
    raw = rt.expr
    if duplicates and spec.key:
        keyed = raw.mutate(_dup_key=coerce(raw[spec.key], spec.column(spec.key), trim=rt.trim))
        rank = ibis.row_number().over(group_by=keyed._dup_key, order_by=[keyed[FILE], keyed[ROW]])
        keyed = keyed.mutate(_dup_rank=rank)
        keyed = keyed.filter((keyed._dup_rank == 0) | keyed._dup_key.isnull()).drop("_dup_rank", "_dup_key")
        rt = RawTable(rt.name, keyed, rt.files, rt.maps, rt.steps, rt.trim, rt.facts)
        raw = keyed
    t, _ = checked_table(rt, config, ctx)
    t = t.filter(t.__keep)
    cols: dict[str, ibis.Value] = {}
    for column in spec.columns:
        if column.name in rt.columns:
            cols[column.name] = t[f"__{column.name}__f"]
        else:
            cols[column.name] = ibis.null(CANONICAL_DTYPES[column.type])
    for extra in rt.columns:
        if extra not in cols:
            cols[extra] = t[extra].cast("string") if not t[extra].type().is_numeric() else t[extra]
    if rt.name in ("opportunities", "stage_history"):
        stage = t["__stage__f"] if "stage" in rt.columns else cols["stage"]
        cols["step"] = step_expr(stage, config, rt.steps)
    return t.select(**cols)


MAX_DISTINCT = 10_000


def _value_maps(rt: RawTable, config: Config) -> None:
    """Find each category column's distinct values once and respell them in Python, so that
    scans of large tables compare exact strings instead of normalising every row.

    Two scans per table, whatever its number of category columns: the facts scan
    (:func:`_facts`) also estimates each column's distinct count, then one GROUP BY GROUPING SETS
    lists the values of every column with at most :data:`MAX_DISTINCT` of them (an estimate
    errs by a few percent, so columns near the limit are listed and counted exactly)."""
    spec = schema.TABLES[rt.name]
    wanted = [c for c in spec.columns if c.type == "category" and c.name in rt.columns]
    stage = "stage" if rt.name in ("opportunities", "stage_history") and "stage" in rt.columns else None
    cols = [*wanted, *([spec.column("stage")] if stage else [])]
    values = {f"v{i}": coerce(rt.expr[c.name], schema.Column(c.name, "string"), trim=rt.trim) for i, c in enumerate(cols)}
    estimates = _facts(rt, {k: v.approx_nunique() for k, v in values.items()})
    found: dict[int, list] = {}
    few = [i for i in range(len(cols)) if f"v{i}" in estimates and (estimates[f"v{i}"] or 0) <= MAX_DISTINCT * 1.25]
    if few and engines.name(rt.expr) == "duckdb":
        names = [f"v{i}" for i in few]
        sub = ibis.to_sql(rt.expr.select(**{n: values[n] for n in names}), dialect="duckdb")
        quoted = ", ".join(f'"{n}"' for n in names)
        sets = ", ".join(f'("{n}")' for n in names)
        sql = f"SELECT {quoted}, GROUPING_ID({quoted}) AS g FROM ({sub}) AS t GROUP BY GROUPING SETS ({sets})"
        rows = rt.expr.get_backend().raw_sql(sql).fetch_arrow_table().to_pylist()
        for j, (n, i) in enumerate(zip(names, few)):
            bit = 1 << (len(names) - 1 - j)  # GROUPING_ID sets the bit of each column not grouped by
            found[i] = [row[n] for row in rows if not row["g"] & bit]
    for i in range(len(cols)):
        if i not in found and (estimates.get(f"v{i}") or 0) <= MAX_DISTINCT * 1.25:  # no estimate, other engines
            found[i] = values[f"v{i}"].as_table().distinct().limit(MAX_DISTINCT + 1).to_pyarrow().column(0).to_pylist()
    for i, c in enumerate(cols):
        distinct = found.get(i)
        if distinct is None or len(distinct) > MAX_DISTINCT:
            continue  # free text in a category column: fall back to row-by-row normalisation
        distinct = [v for v in distinct if v is not None]
        if c.name == "stage":
            rt.steps = {v: st for v in distinct if (st := config.step_of(v)) is not None}
        else:
            rt.maps[c.name] = {v: canonical_category(v, c) for v in distinct if canonical_category(v, c) != v}
            rt.facts[c.name] = {"values": {rt.maps[c.name].get(v, v) for v in distinct}}


def _facts(rt: RawTable, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Range and non-finite count of each typed number, date and timestamp column, in one scan:
    a rule that they prove cannot fire (no negative amount when the minimum is 0) costs nothing
    on the scans of large Parquet tables. ``extra`` aggregates ride along in the same scan; their
    values are returned (empty when the scan fails)."""
    spec = schema.TABLES[rt.name]
    aggs: dict[str, Any] = dict(extra or {})
    cols = []
    for c in spec.columns:
        if c.name not in rt.columns or c.type not in PARSED_TYPES:
            continue
        raw = rt.expr[c.name]
        t = raw.type()
        if t.is_string():
            continue
        if c.type in ("money", "number") and not (t.is_numeric() or t.is_boolean()):
            continue
        if c.type in ("date", "timestamp") and not (t.is_date() or t.is_timestamp()):
            continue
        v = coerce(raw, c, trim=rt.trim)
        i = len(cols)
        cols.append(c)
        if c.type in ("money", "number"):
            bad = v.isnan() | v.isinf()
            aggs[f"n{i}"] = bad.fill_null(False).sum()
            v = ibis.cases((bad, ibis.null(dt.float64)), else_=v)
        aggs[f"lo{i}"] = v.min()
        aggs[f"hi{i}"] = v.max()
    if not aggs:
        return {}
    try:
        row = rt.expr.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    except Exception:  # noqa: BLE001 - facts only save work; without them every rule runs
        return {}
    for i, c in enumerate(cols):
        f = rt.facts.setdefault(c.name, {})
        f["min"], f["max"] = row[f"lo{i}"], row[f"hi{i}"]
        if f"n{i}" in row:
            f["nonfinite"] = int(row[f"n{i}"] or 0)
    return {k: row[k] for k in (extra or {})}


# -- entry point -------------------------------------------------------------------------------


def _spill_folder(con: Any) -> Path:
    """A spill folder of this connection's own: DuckDB names its spill files the same in every
    process (``duckdb_temp_storage_S160K-0.tmp``), so two runs sharing a folder (a company and a
    team review rendered at once) overwrite each other's files and read back garbage. Folders
    left by dead processes are removed; this one goes when the connection is collected or the
    process exits."""
    import secrets
    import weakref

    uid = os.getuid() if hasattr(os, "getuid") else 0
    base = Path(tempfile.gettempdir()) / f"workbench-duckdb-{uid}"  # DuckDB makes only the last folder
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        for old in base.iterdir():
            pid = old.name.split("-", 1)[0]
            if old.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass  # no folder yet, or not ours to list
    folder = base / f"{os.getpid()}-{secrets.token_hex(4)}"
    weakref.finalize(con, shutil.rmtree, folder, ignore_errors=True)
    con._workbench_spill = folder  # also holds the connection's pins of cached files (Dataset._pin)
    return folder


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (also as another user); on Windows, where
    ``os.kill(pid, 0)`` would stop it, always True (callers then go by age)."""
    if os.name == "nt":  # pragma: no cover
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user
        return True
    return True


def _connect_duckdb(config: Config, path: str | None = None) -> Any:
    """An in-memory DuckDB in the company time zone; a database file is attached read-only."""
    con = ibis.duckdb.connect()
    con.raw_sql(f"SET TimeZone = {_sql_str(config.timezone)}")
    # no progress-bar widget in notebooks: reports must not carry widget output
    con.raw_sql("SET enable_progress_bar = false")
    # bounded memory: large aggregations spill to disk instead of growing past the limit
    con.raw_sql(f"SET temp_directory = {_sql_str(_spill_folder(con))}")
    con.raw_sql(f"SET memory_limit = {_sql_str(config.memory_limit)}")
    threads = os.environ.get("WORKBENCH_THREADS", "").strip()
    if threads.isdigit() and int(threads) > 0:  # several runs sharing a machine (tests, a scheduler)
        con.raw_sql(f"SET threads = {int(threads)}")
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


def load(source: Any, config: Any = None, *, preset: str | None = None, engine: str | None = None) -> Dataset:
    """Load a dataset; raise :class:`DataError` listing every fatal problem.

    Parameters
    ----------
    source
        A directory of table files, a DuckDB file, a database URL, or a mapping of table names to
        pandas DataFrames.
    config
        A :class:`~analysis.config.Config`, a mapping, or the path of a ``workbench.yml``; by default
        the ``workbench.yml`` beside the data, else the defaults.
    preset
        Overrides the config's ``source:`` (``auto``, ``canonical`` or a preset name such as
        ``salesforce``): how the folder's files map onto the canonical tables.
    engine
        Overrides the config's ``engine:`` (``duckdb`` or ``spark``): where the canonical tables
        live and every figure is computed (:mod:`analysis.data.engines`). A ``postgresql://``
        source computes in PostgreSQL.

    Notes
    -----
    Fatal problems: a missing required table (``reps``, ``opportunities``), a missing required
    column, a file that cannot be read, a table given twice, a required table without rows, a
    column named twice, a required column whose values mostly cannot be read, deals mostly in
    a currency without exchange rates. Everything else (unparseable values,
    duplicates, dangling references...) is reported by :meth:`Dataset.quality`.
    """
    engine = engines.check_engine(engine)  # before any file is read
    problems: list[tuple[str, str, str]] = []
    raw_frames: dict[str, ibis.Table] = {}
    files_by_table: dict[str, list[SourceFile]] = {}

    is_folder = not isinstance(source, Mapping) and Path(str(source)).expanduser().is_dir()
    if preset not in (None, "", "auto", "canonical") and not is_folder:
        raise ConfigError(f"--source {preset}: a preset reads a folder of export files; {source} is not a folder")
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
            except ModuleNotFoundError as err:
                extra = "postgres" if text.startswith("postgres") else text.split("://", 1)[0]
                raise DataError(f"cannot connect to {text}: the driver is not installed ({err.name}); "
                                f"pip install -e '.[{extra}]'") from None
            except Exception as err:  # noqa: BLE001 - any driver error becomes one line
                raise DataError(f"cannot connect to {text}: {str(err).strip().splitlines()[0]}") from None
            src = Source(text, "url")
        elif path.is_dir():
            cfg = load_config(config, data_dir=path)
            if preset is not None:
                cfg = _with_source(cfg, preset)
            con = _connect_duckdb(cfg)
            src = Source(str(path), "directory")
            mapping, label = _mapping_for(path, cfg)
            if mapping is not None:
                cfg, raw_frames, files_by_table, problems, notes = _read_mapped(con, path, cfg, mapping, label)
                src.preset = label
                src.notes = list(notes)
                for files in files_by_table.values():
                    src.files.extend(files)
            else:
                files_by_table, problems = _find_files(path)
                for name, files in files_by_table.items():
                    try:
                        raw_frames[name] = read_raw(con, name, files, cfg)
                        src.files.extend(files)
                    except DataError as err:
                        problems.extend(err.problems if err.problems[0][1] != "-" else
                                        [("unreadable_file", name, str(err))])
                    except Exception as err:  # noqa: BLE001 - reported as a fatal problem below
                        problems.append(("unreadable_file", name, _unreadable(files[0], err)))
                if "opportunities" not in files_by_table:
                    from analysis.data.mapping import detect

                    found = detect(path)
                    if found:
                        problems.append(("missing_table", "opportunities",
                                         f"{path} looks like a {found} export: read it with source: {found} in "
                                         f"workbench.yml or --source {found}"))
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
                f"missing required table {name} in {src.location}: copy a dataset into that schema with "
                f"python -m analysis load-db FOLDER URL, or name the schema with ?schema=" if src.kind == "url" else
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
            close = _closest_headers(missing, rt.columns)
            problems.append(("missing_column", name,
                f"table {name}: missing required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}{close} (columns found: {', '.join(rt.columns) or 'none'}){hint}"
            ))
        elif name in schema.REQUIRED_TABLES and not int(rt.expr.count().to_pyarrow().as_py()):
            where = ", ".join(sorted({f.path.name for f in rt.files})) or name
            problems.append(("empty_table", name,
                             f"table {name} ({where}) has a header but no rows; export the data again with its rows"))
    if problems:
        messages = [p[2] for p in problems]
        summary = messages[0] if len(messages) == 1 else f"{len(messages)} fatal problems: " + "; ".join(messages)
        raise DataError(summary, problems)
    chosen = engine or cfg.engine
    if src.kind == "url" and engines.name(con) != "duckdb":
        if engine is not None and chosen != "duckdb":
            raise ConfigError(f"--engine {chosen}: {src.location} is a database and computes there; leave --engine out")
        chosen = None
    elif chosen == "spark":
        cfg = cfg.model_copy(update={"engine": "spark"})
    ds = Dataset(con, raw, cfg, src, missing_columns=missing_cols)
    if chosen == "spark":
        engines.place(ds, engines.spark(cfg))
    return ds


def _unreadable(f: SourceFile, err: Exception) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{f.path}: cannot be read as {f.format.upper()} ({first}); fix or re-export the file"


def _closest_headers(missing: list[str], columns: list[str]) -> str:
    """' (closest headers: amount -> 'Amount ($)'?; ...)' for the missing columns that resemble a header."""
    found = [f"{m} -> {hit!r}?" for m in missing if (hit := schema.closest_header(m, columns))]
    return f" (closest header{'s' if len(found) > 1 else ''}: {', '.join(found)}; rename it or map it with columns: in workbench.yml)" if found else ""


def _with_source(cfg: Config, name: str) -> Config:
    from analysis.data.config import parse_config

    data = cfg.model_dump(exclude_unset=True)
    data["source"] = name
    return parse_config(data, origin="--source")


def _mapping_for(path: Path, cfg: Config) -> tuple[dict | None, str | None]:
    """The mapping that reads ``path``: the config's ``columns:``, a named preset, or the preset
    ``auto`` recognises (said on stderr in one line); None for the canonical model."""
    if cfg.source == "canonical" and cfg.columns is None:
        return None, None
    if cfg.source == "auto" and cfg.columns is None and (
        any((path / f"opportunities{suffix}").exists() for suffix in schema.FILE_SUFFIXES) or (path / "opportunities").is_dir()
    ):
        return None, None  # the canonical tables are there
    from analysis.data import mapping as mapping_mod

    if cfg.columns is not None:
        mapping_mod.check_mapping(cfg.columns, "workbench.yml columns")
        return cfg.columns, "columns"
    if cfg.source == "auto":
        found = mapping_mod.detect(path)
        if found is None:
            return None, None
        print(f"note: {path} looks like a {found} export; reading it with the {found} preset "
              f"(set source: in workbench.yml to choose)", file=sys.stderr)
        return mapping_mod.preset(found), found
    return mapping_mod.preset(cfg.source), cfg.source


def _read_mapped(con: Any, path: Path, cfg: Config, mapping: dict, label: str):
    """Read a CRM export through a mapping (:func:`analysis.mapping.map_tables`): the config
    with the mapping's stages (unless the config has its own), the canonical raw tables, their
    files, fatal problems and notes for the user."""
    from analysis.data.mapping import map_tables

    count = itertools.count()

    def read(table: str, paths: list[Path]) -> ibis.Table:
        fmt = paths[0].suffix.lower().lstrip(".")
        return read_raw(con, f"{table}__{next(count)}", [SourceFile(table, p, fmt) for p in paths], cfg)

    mapped = map_tables(path, mapping, read)
    if mapped.stages and not cfg.stages:
        cfg = cfg.model_copy(update={"stages": tuple(Stage(**s) for s in mapped.stages)})
    files = {t: [SourceFile(t, p, p.suffix.lower().lstrip(".")) for p in ps] for t, ps in mapped.files.items()}
    return cfg, dict(mapped.tables), files, list(mapped.problems), list(mapped.notes)


def _database_tables(con: Any) -> dict[str, ibis.Table]:
    names = {n.lower(): n for n in con.list_tables()}
    return {t: con.table(names[t]) for t in schema.TABLES if t in names}
