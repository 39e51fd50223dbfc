"""Import presets and column mappings: native CRM exports read unchanged into the canonical model.

A *mapping* says which files make each canonical table (SPEC section 2) and how each canonical
column is computed from the files' own headers. The shipped presets (``presets/*.yml``:
salesforce, hubspot, pipedrive) are mappings, and a user's ``columns:`` in ``workbench.yml`` is
the **same document**: ``python -m analysis presets show salesforce`` prints a preset, which can
be pasted under ``columns:`` and adapted. Only ``tables`` is required; ``name``, ``description``,
``detect`` and ``stages`` are optional (``detect`` is only used by ``source: auto``).

The language
------------
::

    name: salesforce                      # optional; presets only
    description: one line                 # optional
    detect: <files>                       # optional: files whose presence recognises the export
    stages:                               # optional: the CRM's stages, as the config's stages:
      - {name: Prospecting, step: prospecting, probability: 0.1}
    tables:
      <canonical table>: <table>          # reps, opportunities, stage_history, activities, ...

``<files>`` selects files of the folder (not sub-folders); names match case-insensitively:

* ``Opportunity.csv`` or a glob ``hubspot-crm-exports-all-deals-*.csv``,
* a list of those (all matching files),
* ``{files: <name or list>, headers: [h, ...]}``: only files whose first line holds every
  header (matched ignoring case and surrounding spaces).

``<table>`` is one of

* ``{from: <files>, where:, unpivot:, columns:, extra:}``: the selected files are read as one
  table (several files are concatenated, headers matched by name);
* ``{union: [<table>, ...]}``: rows of every part whose files are present, concatenated (Task.csv
  + Event.csv, each part with its own ``columns``);
* ``{one_of: [<table>, ...]}``: the first alternative whose files are present
  (OpportunityHistory.csv, else OpportunityFieldHistory.csv).

plus, on any of them: ``distinct: true`` (one row per value of the table's key, e.g. reps from
the deals' owner names; the first row in file order wins, rows without a key are dropped),
``drop_repeats: true`` (stage_history only: drop a row when the deal's previous row, in time
order, has the same stage: snapshot histories log amount changes too), ``note:`` (said to the
user when this part is used) and ``hint:`` (how to export the file, said when it is missing).

* ``where: <condition>`` keeps the rows that satisfy it (``{Field: StageName}``).
* ``unpivot: {headers: <regex>, value: <name>}`` turns every header that fully matches the
  regular expression into rows, one per non-empty cell: the regex's named groups become columns
  named after the groups, the cell becomes column ``<name>`` (HubSpot ``Date entered <stage>
  (<pipeline>)``). Headers that do not match are kept. No matching header: the table is left
  out with a note.
* ``columns: {<canonical column>: <value>}`` (without ``columns``, headers that are canonical
  column names, ignoring case, are taken as they are); ``extra: {<name>: <value>}`` adds
  non-canonical columns (for custom dimensions), names in lower case.

``<value>``, the text of one canonical column, is one of:

* ``Header``: the header's value (the exact name, else matched ignoring case and surrounding
  spaces); ``{col: Header}`` is the same in the long form that takes modifiers;
* ``{const: text}``: the same text on every row (``null``: empty);
* ``{first: [<value>, ...]}``: the first non-empty value; alternatives whose headers are absent
  are skipped;
* ``{case: [{when: <condition>, then: <value>}, ...], else: <value>}``: the value of the first
  branch whose condition holds (no ``else``: empty); a branch with ``optional: true`` is skipped
  when a header it needs is absent;
* ``{id_of: <value>}``: a stable id made from a name: ``id_`` + 10 hex digits of the MD5 of the
  name trimmed, inner spaces collapsed, lower-cased; empty stays empty. ``owner_id`` and
  ``reps.rep_id`` made from the same owner names get the same ids.

Modifiers, applied in this order, to any long form:

* ``prefix: "006"`` (or a list): keep the value only if it starts with a prefix, else empty;
* ``map: {raw: canonical}``: respell values (matched trimmed and ignoring case); values not in
  the map keep their text, unless ``default: text`` is given, which they then become (empty stays
  empty); a ``null`` in the map empties the value;
* ``reciprocal: true``: ``1 / value`` in SQL (``rate_to_reporting`` = 1 / ConversionRate), written
  with 18 decimals; an empty value stays empty; a value that is not a plain number (or is 0) is
  passed on as ``1/<value>`` so that the loader reports it with file and row, never guessed;
* ``optional: true``: when a header it needs is absent, the column is left out (the loader then
  treats it as not given) instead of being a fatal problem.

``<condition>``: ``{Header: test, ...}``, every test must hold (matching trimmed, ignoring case):
a text or number (equals), ``true`` / ``false`` (true, 1, yes, y, t / false, 0, no, n, f), a list
(any of), ``null`` (empty), ``{not: test}``. ``_file`` (the file name) can be tested too.

Every value is text: amounts and dates are parsed later by the loader under the configured
locale, so a mapping never turns ``299.000`` into a number. Each row keeps ``_row`` and
``_file`` of the source row it came from (an unpivoted or distinct row: that source row), so
problems are reported with file and row. A header that a column (not marked ``optional``) or a
``where`` needs and the file lacks is a fatal ``missing_column`` problem naming the closest
header; a missing file of a required table (reps, opportunities) is a fatal ``missing_table``
problem with the ``hint``; missing files of other tables leave those tables out.

Example, a home-made export mapped in ``workbench.yml``::

    columns:
      tables:
        opportunities:
          from: pipeline-*.csv
          columns:
            opportunity_id: Deal ID
            owner_id: {id_of: Salesperson}
            created_at: Opened
            status: {col: Result, map: {Signed: won, Dropped: lost}, default: open}
            stage: Phase
            amount: {first: [Net Value, Gross Value]}
            close_date:
              case:
                - when: {Result: [Signed, Dropped]}
                  then: Decided On
              else: Target Date
        reps:
          from: pipeline-*.csv
          distinct: true
          columns: {rep_id: {id_of: Salesperson}, name: Salesperson}

API
---
:func:`preset_names`, :func:`preset_descriptions`, :func:`preset`, :func:`preset_text`,
:func:`detect`, :func:`check_mapping`, :func:`map_tables` (returns :class:`Mapped`),
:func:`stable_id` (the ``id_of`` rule in Python).
"""

from __future__ import annotations

import codecs
import copy
import csv
import difflib
import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import ibis
import ibis.expr.datatypes as dt
import yaml

from analysis.data import schema
from analysis.errors import ConfigError, DataError, UnknownNameError

__all__ = [
    "Mapped",
    "check_mapping",
    "detect",
    "map_tables",
    "preset",
    "preset_descriptions",
    "preset_names",
    "preset_text",
    "stable_id",
]

PRESET_DIR = Path(__file__).with_name("presets")
ROW = "_row"
FILE = "_file"

TOP_KEYS = ("name", "description", "detect", "stages", "tables")
SOURCE_KEYS = ("from", "union", "one_of")
TABLE_KEYS = (*SOURCE_KEYS, "where", "unpivot", "columns", "extra", "distinct", "drop_repeats", "note", "hint")
FROM_ONLY = ("where", "unpivot", "columns", "extra")
OPERATORS = ("col", "const", "first", "case", "id_of")
MODIFIERS = ("prefix", "map", "default", "reciprocal", "optional")
VALUE_KEYS = (*OPERATORS, "else", *MODIFIERS)
TRUE = ("true", "1", "yes", "y", "t")
FALSE = ("false", "0", "no", "n", "f")
ID_PREFIX = "id_"
ID_HEX = 10
#: bytes read at most to find a file's first line
HEAD_LIMIT = 4 << 20


# -- presets ---------------------------------------------------------------------------------


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yml"))


def preset_text(name: str) -> str:
    """The preset file as shipped (to print, copy under ``columns:`` and adapt)."""
    return _preset_path(name).read_text(encoding="utf-8")


def preset(name: str) -> dict:
    """The parsed preset ``name`` (a fresh copy); unknown names raise :class:`UnknownNameError`."""
    return copy.deepcopy(_parsed(_preset_path(name)))


def preset_descriptions() -> dict[str, str]:
    """Preset name -> one line saying which export files it reads."""
    return {n: str(_parsed(_preset_path(n)).get("description", "")).strip() for n in preset_names()}


def _preset_path(name: str) -> Path:
    names = preset_names()
    key = str(name).strip().lower()
    if key not in names:
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownNameError(f"unknown preset {name!r}{hint} Known presets: {', '.join(names)}")
    return PRESET_DIR / f"{key}.yml"


@lru_cache(maxsize=None)
def _parsed(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    check_mapping(data, f"preset {path.stem} ({path.name})")
    return data


def stable_id(name: str | None) -> str | None:
    """The ``id_of`` rule in Python: ``id_`` + 10 hex digits of MD5(trimmed, spaces collapsed,
    lower-cased name); None for an empty name."""
    if name is None:
        return None
    text = " ".join(str(name).split()).lower()
    if not text:
        return None
    return ID_PREFIX + hashlib.md5(text.encode("utf-8")).hexdigest()[:ID_HEX]


# -- validation ------------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _unknown(path: str, key: Any, known: tuple[str, ...] | list[str], what: str = "key") -> _Invalid:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return _Invalid(_join(path, key), f"unknown {what} {key!r}{hint} Known: {', '.join(known)}")


def check_mapping(mapping: dict, origin: str) -> None:
    """Raise :class:`ConfigError` (one line, naming the key path) when ``mapping`` is malformed.

    Checks the document shape, the canonical table and column names (with did-you-mean), the
    value expressions, conditions, regular expressions and stages. Whether headers exist is
    only known with the files: :func:`map_tables` reports those as problems.
    """
    try:
        _check_document(mapping)
    except _Invalid as err:
        raise ConfigError(f"{origin}: {err}") from None


def _check_document(m: Any) -> None:
    if not isinstance(m, dict):
        raise _Invalid("", f"a mapping must be a mapping with a tables: key, got {type(m).__name__}")
    for key in m:
        if key not in TOP_KEYS:
            raise _unknown("", key, TOP_KEYS)
    for key in ("name", "description"):
        if key in m and not isinstance(m[key], str):
            raise _Invalid(key, f"must be text, got {m[key]!r}")
    if "detect" in m:
        _check_files(m["detect"], "detect")
    if "stages" in m:
        _check_stages(m["stages"])
    if "tables" not in m:
        raise _Invalid("", "no tables: key; give tables: {opportunities: {from: ..., columns: ...}, ...}")
    tables = m["tables"]
    if not isinstance(tables, dict) or not tables:
        raise _Invalid("tables", "must map canonical table names to how to read them")
    for name, spec in tables.items():
        if name not in schema.TABLES:
            raise _unknown("tables", name, list(schema.TABLES), "table")
        _check_table(spec, schema.TABLES[name], _join("tables", name), top=True)


def _check_stages(stages: Any) -> None:
    from pydantic import ValidationError

    from analysis.data.config import Stage

    if not isinstance(stages, list):
        raise _Invalid("stages", "must be a list of {name, step, probability}")
    for i, s in enumerate(stages):
        path = _join("stages", i)
        if not isinstance(s, dict):
            raise _Invalid(path, f"must be {{name, step, probability}}, got {s!r}")
        try:
            Stage.model_validate(s)
        except ValidationError as err:
            e = err.errors()[0]
            loc = ".".join(str(p) for p in e["loc"])
            raise _Invalid(_join(path, loc) if loc else path, e["msg"].removeprefix("Value error, ")) from None


def _check_files(sel: Any, path: str) -> None:
    def names(v: Any, p: str) -> None:
        items = v if isinstance(v, list) else [v]
        if not items or not all(isinstance(x, str) and x.strip() for x in items):
            raise _Invalid(p, f"give a file name or glob (or a list of them), got {v!r}")
        for x in items:
            if "/" in x or "\\" in x:
                raise _Invalid(p, f"{x!r}: give a file name in the folder, not a path")

    if isinstance(sel, dict):
        for key in sel:
            if key not in ("files", "headers"):
                raise _unknown(path, key, ("files", "headers"))
        if "files" not in sel:
            raise _Invalid(path, "give files: (a file name or glob)")
        names(sel["files"], _join(path, "files"))
        h = sel.get("headers", [])
        if not isinstance(h, list) or not all(isinstance(x, str) for x in h):
            raise _Invalid(_join(path, "headers"), f"must be a list of header names, got {h!r}")
    else:
        names(sel, path)


def _exactly_one(spec: dict, known: Any, kinds: Any, path: str, words: str) -> str:
    """The one key of ``kinds`` that ``spec`` gives; unknown keys and zero or several kinds are
    errors naming ``path``."""
    for key in spec:
        if key not in known:
            raise _unknown(path, key, known)
    given = [k for k in kinds if k in spec]
    if len(given) != 1:
        got = f" (got {' and '.join(given)})" if given else ""
        raise _Invalid(path, f"give exactly one of {words}{got}")
    return given[0]


def _check_table(spec: Any, table: schema.Table, path: str, *, top: bool) -> None:
    if not isinstance(spec, dict):
        raise _Invalid(path, "must be a mapping with from:, union: or one_of:")
    source = _exactly_one(spec, TABLE_KEYS, SOURCE_KEYS, path, "from:, union: or one_of:")
    if source != "from":
        for key in FROM_ONLY:
            if key in spec:
                raise _Invalid(_join(path, key), f"goes with from:, inside each part of {source}:")
        parts = spec[source]
        if not isinstance(parts, list) or not parts:
            raise _Invalid(_join(path, source), "must be a list of tables ({from: ..., columns: ...})")
        for i, part in enumerate(parts):
            _check_table(part, table, _join(_join(path, source), i), top=False)
    else:
        _check_files(spec["from"], _join(path, "from"))
        if "where" in spec:
            _check_condition(spec["where"], _join(path, "where"))
        if "unpivot" in spec:
            _check_unpivot(spec["unpivot"], _join(path, "unpivot"))
        if "columns" in spec:
            cols = spec["columns"]
            if not isinstance(cols, dict) or not cols:
                raise _Invalid(_join(path, "columns"), "must map canonical column names to headers or values")
            for name, value in cols.items():
                if name not in table.column_names:
                    raise _unknown(_join(path, "columns"), name, table.column_names, f"column of {table.name}")
                _check_value(value, _join(_join(path, "columns"), name))
            missing = [c for c in table.required_columns if c not in cols]
            if missing:
                raise _Invalid(_join(path, "columns"),
                               f"no value for required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} of {table.name}")
            for c in table.required_columns:
                if isinstance(cols[c], dict) and cols[c].get("optional"):
                    raise _Invalid(_join(_join(path, "columns"), c), f"{c} is required in {table.name}; it cannot be optional")
        if "extra" in spec:
            extra = spec["extra"]
            if not isinstance(extra, dict) or not extra:
                raise _Invalid(_join(path, "extra"), "must map new column names to headers or values")
            for name, value in extra.items():
                p = _join(_join(path, "extra"), name)
                if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                    raise _Invalid(p, f"{name!r}: extra column names are lower case letters, digits and _")
                if name in table.column_names:
                    raise _Invalid(p, f"{name!r} is a canonical column of {table.name}; map it under columns:")
                _check_value(value, p)
    for key in ("distinct", "drop_repeats"):
        if key in spec and not isinstance(spec[key], bool):
            raise _Invalid(_join(path, key), f"must be true or false, got {spec[key]!r}")
    if spec.get("drop_repeats") and table.name != "stage_history":
        raise _Invalid(_join(path, "drop_repeats"), "only applies to stage_history")
    for key in ("note", "hint"):
        if key in spec and not isinstance(spec[key], str):
            raise _Invalid(_join(path, key), f"must be text, got {spec[key]!r}")
    if "hint" in spec and not top:
        raise _Invalid(_join(path, "hint"), "give hint: once, on the table itself")


def _check_unpivot(u: Any, path: str) -> None:
    if not isinstance(u, dict):
        raise _Invalid(path, "must be {headers: <regular expression>, value: <name>}")
    for key in u:
        if key not in ("headers", "value"):
            raise _unknown(path, key, ("headers", "value"))
    for key in ("headers", "value"):
        if not isinstance(u.get(key), str) or not u[key]:
            raise _Invalid(_join(path, key), "is required (text)")
    try:
        rx = re.compile(u["headers"])
    except re.error as err:
        raise _Invalid(_join(path, "headers"), f"not a regular expression ({err})") from None
    if rx.groups != len(rx.groupindex):
        raise _Invalid(_join(path, "headers"),
                       "name every group, (?P<stage>...), or make it non-capturing, (?:...)")
    if u["value"] in rx.groupindex:
        raise _Invalid(_join(path, "value"), f"{u['value']!r} is also a group name")


def _check_value(v: Any, path: str) -> None:
    if isinstance(v, str):
        if not v.strip():
            raise _Invalid(path, "empty header name")
        return
    if not isinstance(v, dict):
        raise _Invalid(path, f"give a header name or one of {', '.join('{' + o + ': ...}' for o in OPERATORS)}, got {v!r}")
    op = _exactly_one(v, VALUE_KEYS, OPERATORS, path, ", ".join(OPERATORS))
    arg = v[op]
    if op == "col":
        if not isinstance(arg, str) or not arg.strip():
            raise _Invalid(_join(path, "col"), f"must be a header name, got {arg!r}")
    elif op == "const":
        if isinstance(arg, (list, dict)):
            raise _Invalid(_join(path, "const"), f"must be a text, number, true/false or null, got {arg!r}")
    elif op == "first":
        if not isinstance(arg, list) or not arg:
            raise _Invalid(_join(path, "first"), "must be a list of values (headers or expressions)")
        for i, a in enumerate(arg):
            _check_value(a, _join(_join(path, "first"), i))
    elif op == "case":
        if not isinstance(arg, list) or not arg:
            raise _Invalid(_join(path, "case"), "must be a list of {when: ..., then: ...}")
        for i, branch in enumerate(arg):
            p = _join(_join(path, "case"), i)
            if not isinstance(branch, dict):
                raise _Invalid(p, "must be {when: {Header: value}, then: <value>}")
            for key in branch:
                if key not in ("when", "then", "optional"):
                    raise _unknown(p, key, ("when", "then", "optional"))
            if "when" not in branch or "then" not in branch:
                raise _Invalid(p, "needs both when: and then:")
            _check_condition(branch["when"], _join(p, "when"))
            _check_value(branch["then"], _join(p, "then"))
    elif op == "id_of":
        _check_value(arg, _join(path, "id_of"))
    if "else" in v:
        if op != "case":
            raise _Invalid(_join(path, "else"), "goes with case:")
        _check_value(v["else"], _join(path, "else"))
    if "prefix" in v:
        p = v["prefix"]
        items = p if isinstance(p, list) else [p]
        if not items or not all(isinstance(x, str) and x for x in items):
            raise _Invalid(_join(path, "prefix"), f"must be a text or a list of texts (quote numbers: '006'), got {p!r}")
    if "map" in v:
        mp = v["map"]
        if not isinstance(mp, dict) or not mp:
            raise _Invalid(_join(path, "map"), "must map raw values to values")
        for key, val in mp.items():
            if isinstance(key, bool) or not isinstance(key, (str, int, float)):
                raise _Invalid(_join(_join(path, "map"), str(key)),
                               "quote keys such as 'yes', 'no', 'true', 'on' (YAML reads them as true/false)")
            if isinstance(val, (list, dict, bool)):
                raise _Invalid(_join(_join(path, "map"), str(key)), f"must be a text or null, got {val!r}")
    if "default" in v:
        if "map" not in v:
            raise _Invalid(_join(path, "default"), "goes with map:")
        if isinstance(v["default"], (list, dict, bool)) or v["default"] is None:
            raise _Invalid(_join(path, "default"), f"must be a text, got {v['default']!r}")
    for key in ("reciprocal", "optional"):
        if key in v and not isinstance(v[key], bool):
            raise _Invalid(_join(path, key), f"must be true or false, got {v[key]!r}")


def _check_condition(c: Any, path: str) -> None:
    if not isinstance(c, dict) or not c:
        raise _Invalid(path, "must be {Header: value, ...}")
    for header, test in c.items():
        if not isinstance(header, str) or not header.strip():
            raise _Invalid(_join(path, header), "the key must be a header name")
        _check_test(test, _join(path, header))


def _check_test(test: Any, path: str) -> None:
    if test is None or isinstance(test, (str, int, float, bool)):
        return
    if isinstance(test, list):
        if not test or not all(x is None or isinstance(x, (str, int, float, bool)) for x in test):
            raise _Invalid(path, f"a list must hold values, got {test!r}")
        return
    if isinstance(test, dict):
        if list(test) != ["not"]:
            raise _unknown(path, next(k for k in test if k != "not") if any(k != "not" for k in test) else "not", ("not",))
        _check_test(test["not"], _join(path, "not"))
        return
    raise _Invalid(path, f"must be a value, a list of values, null or {{not: ...}}, got {test!r}")


# -- reading headers cheaply -----------------------------------------------------------------


def _first_line(path: Path) -> str:
    with path.open("rb") as fh:
        data = b""
        while len(data) < HEAD_LIMIT:
            chunk = fh.read(1 << 16)
            if not chunk:
                break
            data += chunk
            if b"\n" in chunk:
                break
    if data.startswith(b"\xef\xbb\xbf"):
        enc, data = "utf-8", data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        enc = "utf-16"
    elif len(data) > 3 and data[1:2] == b"\x00" and data[0:1] != b"\x00":
        enc = "utf-16-le"
    elif len(data) > 3 and data[0:1] == b"\x00" and data[1:2] != b"\x00":
        enc = "utf-16-be"
    else:
        line = data.split(b"\n", 1)[0]
        try:
            return line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            return line.decode("cp1252", errors="replace").rstrip("\r")
    text = codecs.decode(data, enc, errors="replace") if enc != "utf-8" else data.decode("utf-8", errors="replace")
    return text.split("\n", 1)[0].rstrip("\r").lstrip("\ufeff")


def _split_header(line: str) -> list[str]:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    delim = max(counts, key=lambda d: counts[d])
    if counts[delim] == 0:
        return [line.strip().strip('"').strip()] if line.strip() else []
    row = next(csv.reader([line], delimiter=delim), [])
    return [h.strip() for h in row]


def file_headers(path: Path) -> list[str]:
    """A file's headers, read cheaply (first line of a CSV; first row of a workbook; a Parquet
    schema); empty when the file cannot be read."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            from openpyxl import load_workbook

            wb = load_workbook(path, read_only=True, data_only=True)
            try:
                row = next(wb.worksheets[0].iter_rows(max_row=1, values_only=True), ())
            finally:
                wb.close()
            return [str(v).strip() for v in row if v is not None]
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if suffix in (".xls",):
            return []
        return _split_header(_first_line(path))
    except Exception:  # noqa: BLE001 - an unreadable file simply matches nothing
        return []


class _Folder:
    """The files of one folder, their headers (read once) and the tables read from them."""

    def __init__(self, directory: Path, read: Callable[[str, list[Path]], ibis.Table] | None = None):
        self.directory = Path(directory)
        self.entries = sorted((p for p in self.directory.iterdir() if p.is_file()), key=lambda p: p.name.lower())
        self._headers: dict[Path, set[str]] = {}
        self._read = read
        self._tables: dict[tuple[Path, ...], ibis.Table] = {}

    def headers(self, path: Path) -> set[str]:
        if path not in self._headers:
            self._headers[path] = {h.lower() for h in file_headers(path)}
        return self._headers[path]

    def select(self, sel: Any) -> list[Path]:
        patterns, headers = _selector(sel)
        found = [p for p in self.entries if any(fnmatch.fnmatchcase(p.name.lower(), pat.lower()) for pat in patterns)]
        if headers:
            want = [h.strip().lower() for h in headers]
            found = [p for p in found if all(h in self.headers(p) for h in want)]
        return found

    def read(self, table: str, paths: list[Path]) -> ibis.Table:
        """One raw table of ``paths`` (files of different formats are read apart and stacked)."""
        key = tuple(paths)
        if key not in self._tables:
            groups: dict[str, list[Path]] = {}
            for p in paths:
                groups.setdefault(p.suffix.lower(), []).append(p)
            parts = [self._read(table, ps) for ps in groups.values()]
            self._tables[key] = parts[0] if len(parts) == 1 else _stack(parts)
        return self._tables[key]


def _selector(sel: Any) -> tuple[list[str], list[str]]:
    if isinstance(sel, dict):
        files = sel["files"]
        return (files if isinstance(files, list) else [files]), list(sel.get("headers", []))
    return (sel if isinstance(sel, list) else [sel]), []


def _describe_files(sel: Any) -> str:
    patterns, headers = _selector(sel)
    text = " or ".join(patterns)
    return f"{text} with columns {', '.join(headers)}" if headers else text


def detect(directory: Path) -> str | None:
    """The preset whose export is recognisably in ``directory`` (its ``detect`` files, with
    their headers, are present), else None. Reads at most the first line of candidate files."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    folder = _Folder(directory)
    for name in preset_names():
        sel = _parsed(PRESET_DIR / f"{name}.yml").get("detect")
        if sel is not None and folder.select(sel):
            return name
    return None


# -- building tables -------------------------------------------------------------------------


@dataclass
class Mapped:
    """The canonical tables a mapping makes of a folder (text columns plus ``_row``/``_file``)."""

    tables: dict[str, ibis.Table] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _MissingHeaders(Exception):
    def __init__(self, headers: list[str]):
        super().__init__(", ".join(headers))
        self.headers = headers


class _Failed:
    """A table whose files are present but which cannot be built (problems were recorded)."""


FAILED = _Failed()


class _Source:
    """A raw table and its header lookup (exact, else ignoring case and surrounding spaces)."""

    def __init__(self, t: ibis.Table, files: list[Path]):
        self.t = t
        self.files = files
        self.exact = set(t.columns)
        self.folded: dict[str, str] = {}
        for c in t.columns:
            self.folded.setdefault(c.strip().lower(), c)

    @property
    def headers(self) -> list[str]:
        return [c for c in self.t.columns if c not in (ROW, FILE)]

    def name(self, header: str) -> str:
        if header in self.exact:
            return header
        c = self.folded.get(header.strip().lower())
        if c is None:
            raise _MissingHeaders([header])
        return c

    def col(self, header: str) -> ibis.StringValue:
        c = self.t[self.name(header)]
        return c if c.type().is_string() else c.cast("string")

    def where(self) -> str:
        names = [p.name for p in self.files]
        return names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1} more)"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _blank(v: ibis.StringValue) -> ibis.BooleanValue:
    return v.isnull() | (v.strip() == "")


def _key(v: ibis.StringValue) -> ibis.StringValue:
    return v.strip().lower()


def _test(v: ibis.StringValue, test: Any) -> ibis.BooleanValue:
    if test is None:
        return _blank(v)
    if isinstance(test, dict):
        return ~_test(v, test["not"])
    if isinstance(test, bool):
        return _key(v).isin(list(TRUE if test else FALSE)).fill_null(False)
    if isinstance(test, list):
        conds = [_test(v, x) for x in test]
        out = conds[0]
        for c in conds[1:]:
            out = out | c
        return out
    return (_key(v) == _text(test).strip().lower()).fill_null(False)


def _condition(cond: dict, src: _Source) -> ibis.BooleanValue:
    missing: list[str] = []
    out = None
    for header, test in cond.items():
        try:
            c = _test(src.col(header), test)
        except _MissingHeaders as m:
            missing += m.headers
            continue
        out = c if out is None else out & c
    if missing:
        raise _MissingHeaders(missing)
    return out


def _value(spec: Any, src: _Source) -> ibis.StringValue:
    if isinstance(spec, str):
        return src.col(spec)
    op = next(k for k in OPERATORS if k in spec)
    arg = spec[op]
    if op == "col":
        v = src.col(arg)
    elif op == "const":
        v = ibis.null(dt.string) if arg is None else ibis.literal(_text(arg), dt.string)
    elif op == "first":
        alts, missing = [], []
        for a in arg:
            try:
                alts.append(_value(a, src).strip().nullif(""))
            except _MissingHeaders as m:
                missing += m.headers
        if not alts:
            raise _MissingHeaders(missing)
        v = alts[0] if len(alts) == 1 else ibis.coalesce(*alts)
    elif op == "case":
        missing, branches = [], []
        for branch in arg:
            try:
                branches.append((_condition(branch["when"], src), _value(branch["then"], src)))
            except _MissingHeaders as m:
                if branch.get("optional"):
                    continue  # a branch marked optional is skipped when its headers are absent
                missing += m.headers
        other = ibis.null(dt.string)
        if "else" in spec:
            try:
                other = _value(spec["else"], src)
            except _MissingHeaders as m:
                missing += m.headers
        if missing:
            raise _MissingHeaders(missing)
        v = ibis.cases(*branches, else_=other)
    else:  # id_of
        base = _value(arg, src).strip().re_replace(r"\s+", " ").lower()
        v = ibis.cases(
            (base.isnull() | (base == ""), ibis.null(dt.string)),
            else_=ibis.literal(ID_PREFIX) + base.hexdigest("md5").substr(0, ID_HEX),
        )
    v = v.cast(dt.string)
    if "prefix" in spec:
        prefixes = spec["prefix"] if isinstance(spec["prefix"], list) else [spec["prefix"]]
        s = v.strip()
        ok = s.startswith(prefixes[0])
        for p in prefixes[1:]:
            ok = ok | s.startswith(p)
        v = ibis.cases((ok.fill_null(False), s), else_=ibis.null(dt.string))
    if "map" in spec:
        k = _key(v)
        pairs = [
            (k == _text(raw).strip().lower(), ibis.null(dt.string) if new is None else ibis.literal(_text(new), dt.string))
            for raw, new in spec["map"].items()
        ]
        if "default" in spec:
            other = ibis.cases((_blank(v), ibis.null(dt.string)), else_=ibis.literal(_text(spec["default"]), dt.string))
        else:
            other = v
        v = ibis.cases(*pairs, else_=other)
    if spec.get("reciprocal"):
        s = v.strip()
        x = s.try_cast(dt.float64)
        inv = (ibis.literal(1.0) / x).try_cast(dt.Decimal(38, 18)).cast(dt.string)
        v = ibis.cases(
            (_blank(v), ibis.null(dt.string)),
            ((x != 0) & x.notnull() & inv.notnull(), inv),
            else_=ibis.literal("1/") + s,
        )
    return v.cast(dt.string)


def _closest(header: str, src: _Source) -> str:
    close = schema.closest_header(header, list(src.headers))
    if close:
        return f"closest header: {close!r}"
    shown = ", ".join(src.headers[:12]) + (", ..." if len(src.headers) > 12 else "")
    return f"headers: {shown or 'none'}"


class _Builder:
    def __init__(self, directory: Path, read: Callable[[str, list[Path]], ibis.Table]):
        self.folder = _Folder(directory, read)
        self.problems: list[tuple[str, str, str]] = []
        self.notes: list[str] = []

    def missing_column(self, table: str, src: _Source, headers: list[str], column: str) -> None:
        names = list(dict.fromkeys(headers))
        which = " or ".join(repr(h) for h in names)
        self.problems.append((
            "missing_column", table,
            f"{src.where()}: no column {which} ({_closest(names[0], src)}); needed for {table}.{column}",
        ))

    def build(self, spec: dict, table: schema.Table, files: list[Path]) -> Any:
        """The table of ``spec``: an ibis table, None (its files are absent) or FAILED."""
        if "from" in spec:
            out = self._from(spec, table, files)
        elif "union" in spec:
            parts = [self.build(p, table, files) for p in spec["union"]]
            if any(p is FAILED for p in parts):
                return FAILED
            present = [p for p in parts if p is not None]
            out = _stack(present) if present else None
        else:
            out = None
            for alt in spec["one_of"]:
                out = self.build(alt, table, files)
                if out is not None:
                    break
        if out is None or out is FAILED:
            return out
        if spec.get("distinct"):
            out = _distinct(out, table)
        if spec.get("drop_repeats"):
            out = _drop_repeats(out)
        if spec.get("note"):
            self.notes.append(f"{table.name}: {spec['note']}")
        return out

    def _from(self, spec: dict, table: schema.Table, files: list[Path]) -> Any:
        paths = self.folder.select(spec["from"])
        if not paths:
            return None
        patterns, _ = _selector(spec["from"])
        if len(paths) > 1 and any(any(ch in p for ch in "*?[") for p in patterns):
            self.notes.append(
                f"{table.name}: {len(paths)} files match {_describe_files(spec['from'])} "
                f"({', '.join(p.name for p in paths)}); they are read together"
            )
        try:
            raw = self.folder.read(table.name, paths)
        except (DataError, ConfigError):
            raise
        except Exception as err:  # noqa: BLE001 - an unreadable file is a fatal problem, in one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            self.problems.append(("unreadable_file", table.name,
                                  f"{', '.join(p.name for p in paths)}: cannot be read ({first}); fix or re-export the file"))
            return FAILED
        src = _Source(raw, paths)
        if "unpivot" in spec:
            src = self._unpivot(spec["unpivot"], src, table)
            if src is None or src is FAILED:
                return src
        t = src.t
        failed = False
        if "where" in spec:
            try:
                t = t.filter(_condition(spec["where"], src))
            except _MissingHeaders as m:
                self.missing_column(table.name, src, m.headers, "where")
                failed = True
        cols: dict[str, ibis.Value] = {}
        if "columns" in spec:
            items = list(spec["columns"].items())
        else:
            items = [(c, c) for c in table.column_names if c.lower() in src.folded or c in table.required_columns]
        for name, value in items + list(spec.get("extra", {}).items()):
            try:
                cols[name] = _value(value, src)
            except _MissingHeaders as m:
                if isinstance(value, dict) and value.get("optional"):
                    continue
                self.missing_column(table.name, src, m.headers, name)
                failed = True
        if failed:
            return FAILED
        files.extend(p for p in paths if p not in files)
        order = [c for c in table.column_names if c in cols] + [c for c in cols if c not in table.column_names]
        return t.select(*[cols[c].name(c) for c in order], t[ROW].cast(dt.int64).name(ROW), t[FILE].cast(dt.string).name(FILE))

    def _unpivot(self, u: dict, src: _Source, table: schema.Table) -> Any:
        rx = re.compile(u["headers"])
        groups = sorted(rx.groupindex, key=rx.groupindex.get)
        melted = {c: rx.fullmatch(c) for c in src.headers}
        melted = {c: m for c, m in melted.items() if m}
        if not melted:
            self.notes.append(
                f"{table.name}: no header of {src.where()} matches {u['headers']!r}; {table.name} is not available"
            )
            return None
        kept = [c for c in src.t.columns if c not in melted]
        clash = [n for n in [*groups, u["value"]] if n.strip().lower() in {k.strip().lower() for k in kept}]
        if clash:
            self.problems.append(("bad_mapping", table.name,
                                  f"{src.where()}: unpivot names {', '.join(map(repr, clash))} are also headers; rename the groups"))
            return FAILED
        pieces = [
            ibis.struct({**{g: ibis.literal(m.group(g), dt.string) for g in groups},
                         u["value"]: src.t[c].cast(dt.string)})
            for c, m in melted.items()
        ]
        t = src.t.select(*kept, __cells=ibis.array(pieces).unnest()).unpack("__cells")
        t = t.filter(~_blank(t[u["value"]]))
        return _Source(t, src.files)


def _stack(parts: list[ibis.Table]) -> ibis.Table:
    if len(parts) == 1:
        return parts[0]
    names: list[str] = []
    for p in parts:
        names += [c for c in p.columns if c not in names]
    aligned = []
    for p in parts:
        cols = []
        for c in names:
            if c in p.columns:
                cols.append(p[c].cast(dt.int64 if c == ROW else dt.string).name(c))
            else:
                cols.append(ibis.null(dt.int64 if c == ROW else dt.string).name(c))
        aligned.append(p.select(*cols))
    return ibis.union(*aligned, distinct=False)


def _distinct(t: ibis.Table, table: schema.Table) -> ibis.Table:
    keys = [table.key] if table.key and table.key in t.columns else [c for c in t.columns if c not in (ROW, FILE)]
    present = ibis.literal(True)
    for k in keys:
        present = present & ~_blank(t[k])
    t = t.filter(present)
    rank = ibis.row_number().over(group_by=[t[k] for k in keys], order_by=[t[FILE], t[ROW]])
    return t.mutate(__rank=rank).filter(lambda x: x.__rank == 0).drop("__rank")


def _drop_repeats(t: ibis.Table) -> ibis.Table:
    at = t.entered_at.strip().try_cast(dt.Timestamp(timezone="UTC"))
    t = t.mutate(__at=at)
    prev = t.stage.lag().over(group_by=t.opportunity_id, order_by=[t.__at, t[FILE], t[ROW]])
    t = t.mutate(__prev=prev)
    same = (_key(t.__prev) == _key(t.stage)).fill_null(False)
    return t.filter(~same).drop("__at", "__prev")


def map_tables(directory: Path, mapping: dict, read: Callable[[str, list[Path]], ibis.Table]) -> Mapped:
    """Build the canonical tables of ``mapping`` from the files of ``directory``.

    ``read(table, paths)`` reads files (CSV / Excel / Parquet, encoding and dialect handled) into
    one ibis table of the files' own headers as text plus ``_row`` (1-based data row) and
    ``_file`` (file name); it is called once per distinct set of files (``table`` is the
    canonical table that first needs them) and with files of one format at a time.

    Returns a :class:`Mapped`: each canonical table as text columns named canonically plus
    ``_row``/``_file`` of the source row, the files each came from, fatal problems (missing files
    of required tables, missing headers), the mapping's stages and notes for the user. A
    malformed mapping raises :class:`ConfigError`.
    """
    check_mapping(mapping, "mapping")
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: no such folder; give the folder holding the export files")
    out = Mapped(stages=[dict(s) for s in mapping.get("stages", [])])
    b = _Builder(directory, read)
    for name, spec in mapping["tables"].items():
        table = schema.TABLES[name]
        files: list[Path] = []
        t = b.build(spec, table, files)
        if t is FAILED:
            continue
        if t is None:
            if table.required:
                hint = f": {spec['hint']}" if spec.get("hint") else ""
                b.problems.append(("missing_table", name,
                                   f"{_describe_sources(spec)} not found in {directory}{hint}"))
            continue
        out.tables[name] = t
        out.files[name] = files
    out.problems = b.problems
    out.notes = b.notes
    return out


def _describe_sources(spec: dict) -> str:
    if "from" in spec:
        return _describe_files(spec["from"])
    parts = spec.get("union") or spec.get("one_of")
    return " or ".join(dict.fromkeys(_describe_sources(p) for p in parts))
