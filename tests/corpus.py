"""A corpus of bad inputs and faults for the command line, each with the exit code it must give.

The exit codes are one taxonomy for every command (``analysis.errors``): 0 success, 1 unusable
data, 2 bad arguments or config, 3 an internal error (a bug), 4 the environment (disk full,
output not writable, ``--out`` under a file, a read-only folder).

Each :class:`Case` builds its inputs in a scratch folder (or names a shared small dataset),
optionally injects a fault (a full standard output, a ``mkdir`` or file write that fails with an
errno, a function that raises like a bug) and states the exit code and a fragment of the one
``error: ...`` line. :func:`run_case` runs the command in-process through
``analysis.__main__.main`` (a few cases run a real ``python -m analysis`` subprocess) and checks
the outcome: the exit code, that a failure prints exactly one line on stderr that starts with
``error: `` and contains the fragment, no traceback, that every input file is byte-identical
afterwards, and for the CSV outputs that no cell would run as a spreadsheet formula.

Run it as a script for a count of outcomes per exit code (``python -m tests.corpus``, add
``-v`` for one line per case); ``tests/test_exit_codes.py`` asserts every case.
"""

from __future__ import annotations

import builtins
import contextlib
import csv
import errno
import hashlib
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# -- data builders ------------------------------------------------------------------------------

REPS_CSV = """\
rep_id,name,team,region,manager_id,role,hire_date,end_date
M1,Maya Manager,East,NA,,manager,2020-01-01,
007,Ann Archer,East,NA,M1,AE,2021-03-01,
008,Bob Baker,East,NA,M1,SDR,2022-05-01,2025-06-30
"""

OPPS_HEADER = "opportunity_id,owner_id,created_at,status,stage,amount,close_date,account_id,deal_type,product\n"

OPPS_CSV = OPPS_HEADER + """\
O1,007,2025-07-01T10:00:00,won,Closed Won,1000.50,2025-07-20,A1,new_business,Core
O2,007,2025-07-02T09:00:00,lost,Closed Lost,500,2025-08-01,A1,expansion,Core
O3,008,2025-07-03T09:00:00,open,Demo,250,2025-10-15,A2,new_business,Add-on
"""

#: Formula text a CRM export may carry (OWASP's examples, and one per trigger character).
FORMULAS = {
    "team": '=HYPERLINK("http://evil","team")',
    "product": "+cmd|' /C calc'!A0",
    "name": "@SUM(1+1)",
    "opportunity_id": "=1+1",
    "rep_id": "-2+3",
}


def write_tables(folder: Path, **tables: str) -> Path:
    """``<name>.csv`` per keyword (CSV text) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def small_sample(folder: Path) -> Path:
    """A small synthetic dataset (6 reps, 12 months to 2026-06-30; activities and stage history
    as Parquet, the rest CSV): every command runs, in a second or two."""
    from analysis.data.sample import write_sample

    if not (folder / "workbench.yml").exists():
        write_sample(folder, reps=6, months=12, seed=3, end=date(2026, 6, 30), format="mixed")
    return folder


def formula_sample(folder: Path, base: Path) -> Path:
    """``base`` (a :func:`small_sample`) with CRM text that is a spreadsheet formula: the first
    team, the Platform product, one rep's name, one rep's id and every opportunity id (``=O...``),
    consistently in every table."""
    import pandas as pd

    if (folder / "workbench.yml").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with (base / "reps.csv").open(encoding="utf-8", newline="") as fh:
        reps = list(csv.DictReader(fh))
    team = reps[0]["team"]
    seller = next(r for r in reps if r["role"] == "AE")
    mapping = {team: FORMULAS["team"], "Platform": FORMULAS["product"], seller["rep_id"]: FORMULAS["rep_id"]}

    def taint(column: str, value: str, row: dict[str, str]) -> str:
        if column == "opportunity_id" and value:
            return f"={value}"  # =O000001 is a formula (a name lookup) in a spreadsheet
        if column == "name" and row.get("rep_id") == seller["rep_id"]:
            return FORMULAS["name"]
        return mapping.get(value, value)

    for path in sorted(base.iterdir()):
        if path.suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh))
            header = rows[0]
            for row in rows[1:]:
                named = dict(zip(header, row))
                row[:] = [taint(header[i], v, named) for i, v in enumerate(row)]
            with (folder / path.name).open("w", encoding="utf-8", newline="") as fh:
                csv.writer(fh, lineterminator="\n").writerows(rows)
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            for column in frame.columns:
                if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
                    frame[column] = [v if not isinstance(v, str) else taint(column, v, {}) for v in frame[column]]
            frame.to_parquet(folder / path.name, index=False)
        else:
            shutil.copy2(path, folder / path.name)
    return folder


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Workspace:
    """Where one case runs: ``tmp`` its own scratch folder, ``shared`` datasets built once."""

    tmp: Path
    shared: Path
    inputs: list[Path] = field(default_factory=list)

    def input(self, path: Path) -> str:
        """Register ``path`` as an input (checked byte-identical afterwards); its text for argv."""
        self.inputs.append(Path(path))
        return str(path)

    def tiny(self, **tables: str) -> str:
        """A private folder of CSV tables (default: the three-deal dataset) as an input."""
        tables = tables or {"reps": REPS_CSV, "opportunities": OPPS_CSV}
        return self.input(write_tables(self.tmp / "data", **tables))

    def small(self) -> str:
        return self.input(small_sample(self.shared / "small"))

    def formula(self) -> str:
        return self.input(formula_sample(self.shared / "formula", small_sample(self.shared / "small")))

    def file(self, name: str = "a-file", text: str = "not a folder\n") -> Path:
        path = self.tmp / name
        self.tmp.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.inputs.append(path)
        return path


Build = Callable[[Workspace], list[str]]
Fault = Callable[[Workspace], contextlib.AbstractContextManager]


@dataclass(frozen=True)
class Case:
    """One bad input or fault: the command line it runs, and what must come out of it."""

    name: str
    build: Build
    code: int
    message: str = ""  #: a fragment of the error line (case-insensitive); "" for success
    fault: Fault | None = None
    subprocess: bool = False  #: run ``python -m analysis`` (else in-process ``main``)
    needs: str | None = None  #: "non-root" or "/dev/full": skipped when not met
    csv_out: bool = False  #: stdout is CSV whose cells must all be spreadsheet-safe
    quoted: str = ""  #: with ``csv_out``: CRM text that must come out neutralised (``'`` + it)
    stdout_to: str | None = None  #: with ``subprocess``: the file standard output goes to


@dataclass
class Outcome:
    case: Case
    code: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.skipped is not None or not self.problems


def _fingerprint(paths: list[Path]) -> dict[str, str]:
    prints: dict[str, str] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            prints[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return prints


def unsafe_cells(text: str) -> list[str]:
    """Cells of CSV ``text`` (header included) that a spreadsheet would run as a formula."""
    from analysis.reports.export import is_formula_like

    return [cell for row in csv.reader(io.StringIO(text)) for cell in row if is_formula_like(cell)]


def unmet(needs: str | None) -> str | None:
    if needs == "non-root" and hasattr(os, "geteuid") and os.geteuid() == 0:
        return "runs as root, which ignores folder permissions"
    if needs == "/dev/full" and not os.path.exists("/dev/full"):
        return "no /dev/full on this system"
    return None


def run_case(case: Case, tmp: Path, shared: Path) -> Outcome:
    """Build, run and check one case (see the module docstring)."""
    out = Outcome(case)
    out.skipped = unmet(case.needs)
    if out.skipped:
        return out
    tmp.mkdir(parents=True, exist_ok=True)
    ws = Workspace(tmp, shared)
    argv = case.build(ws)
    before = _fingerprint(ws.inputs)
    start = time.perf_counter()
    if case.subprocess:
        with contextlib.ExitStack() as stack:
            target = stack.enter_context(open(case.stdout_to, "w")) if case.stdout_to else subprocess.PIPE
            proc = subprocess.run([sys.executable, "-m", "analysis", *argv], stdout=target, stderr=subprocess.PIPE,
                                  text=True, cwd=ROOT, timeout=300, check=False)
        out.code, out.stdout, out.stderr = proc.returncode, proc.stdout or "", proc.stderr
    else:
        from analysis.__main__ import main

        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stdout(stdout))
            stack.enter_context(contextlib.redirect_stderr(stderr))
            if case.fault is not None:
                stack.enter_context(case.fault(ws))
            try:
                out.code = main(argv)
            except SystemExit as exit_:  # argparse
                out.code = exit_.code if isinstance(exit_.code, int) else 1
        out.stdout, out.stderr = stdout.getvalue(), stderr.getvalue()
    out.seconds = time.perf_counter() - start
    out.problems = _check(case, out, before, _fingerprint(ws.inputs))
    return out


def _check(case: Case, out: Outcome, before: dict[str, str], after: dict[str, str]) -> list[str]:
    problems = []
    if out.code != case.code:
        problems.append(f"exit code {out.code}, expected {case.code}")
    lines = out.stderr.splitlines()
    if "Traceback" in out.stderr:
        problems.append("a traceback on stderr")
    if case.code != 0:
        if len(lines) != 1 or not lines[0].startswith("error: "):
            problems.append(f"stderr is not one 'error: ' line: {out.stderr!r}")
        elif case.message.lower() not in lines[0].lower():
            problems.append(f"the error line lacks {case.message!r}: {lines[0]!r}")
    if before != after:
        changed = sorted(set(before) ^ set(after) | {k for k in before if after.get(k) != before[k]})
        problems.append(f"inputs changed: {changed[:3]}")
    if case.csv_out:
        bad = unsafe_cells(out.stdout)
        if bad or not out.stdout.strip():
            problems.append(f"CSV cells that run as formulas: {bad[:3]}" if bad else "no CSV output")
        elif case.quoted and not any(c.startswith("'" + case.quoted) for r in csv.reader(io.StringIO(out.stdout))
                                     for c in r):
            problems.append(f"the CRM text {case.quoted!r} did not reach the CSV (neutralised)")
    return problems


# -- faults ------------------------------------------------------------------------------------


@contextlib.contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def _os_error(code: int, path: Any = None) -> OSError:
    return OSError(code, os.strerror(code), *([str(path)] if path is not None else []))


class FullStream(io.StringIO):
    """A stream on a full disk: every write fails with ENOSPC."""

    def write(self, text: str) -> int:
        raise _os_error(errno.ENOSPC)


def full_stdout(ws: Workspace) -> contextlib.AbstractContextManager:
    """Standard output redirected to a full disk (``> /full/disk/out.csv``)."""
    return patched(sys, "stdout", FullStream())


def _under(path: Any, folder: Path) -> bool:
    try:
        return Path(os.fspath(path)).resolve().is_relative_to(folder.resolve())
    except (TypeError, ValueError):
        return False


def mkdir_fails(code: int, sub: str = "out") -> Fault:
    """Creating a folder under ``<tmp>/<sub>`` fails with ``code`` (read-only, full disk...)."""

    def fault(ws: Workspace) -> contextlib.AbstractContextManager:
        original = pathlib.Path.mkdir

        def mkdir(self, *args, **kwargs):
            if _under(self, ws.tmp / sub):
                raise _os_error(code, self)
            return original(self, *args, **kwargs)

        return patched(pathlib.Path, "mkdir", mkdir)

    return fault


class _FailingFile(io.RawIOBase):
    """A file whose writes fail with an errno (the disk fills up after open)."""

    def __init__(self, code: int, binary: bool):
        self.code, self.binary = code, binary

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise _os_error(self.code)


def writes_fail(code: int, sub: str = "out") -> Fault:
    """Writing any file under ``<tmp>/<sub>`` fails with ``code`` once it is opened."""

    def fault(ws: Workspace) -> contextlib.AbstractContextManager:
        original = builtins.open

        def fake_open(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and any(m in mode for m in "wax+") and _under(file, ws.tmp / sub):
                raw = _FailingFile(code, "b" in mode)
                return raw if "b" in mode else io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8")
            return original(file, mode, *args, **kwargs)

        stack = contextlib.ExitStack()
        stack.enter_context(patched(builtins, "open", fake_open))
        stack.enter_context(patched(io, "open", fake_open))
        return stack

    return fault


def raises(target: str, error: BaseException) -> Fault:
    """``module:attribute`` raises ``error`` when called (a bug, or an unexpected OS error)."""

    def fault(ws: Workspace) -> contextlib.AbstractContextManager:
        import importlib

        module, attr = target.split(":")

        def boom(*args, **kwargs):
            raise error

        return patched(importlib.import_module(module), attr, boom)

    return fault


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    mode = folder.stat().st_mode
    folder.chmod(0o555)
    try:
        yield
    finally:
        folder.chmod(mode)


# -- the cases ----------------------------------------------------------------------------------

HEADER_ONLY = {"reps": REPS_CSV, "opportunities": OPPS_HEADER}
NO_DATES = {"reps": REPS_CSV, "opportunities": OPPS_HEADER + "O1,007,,open,Demo,100,,A1,new_business,Core\n"}
WORKBENCH_BAD_KEY = "fiscal_year_start_month: 1\nstalled_quantil: 0.75\n"


def _cases() -> list[Case]:
    C = Case
    cases = [
        # -- 0: success, and CSV with formula text comes out safe -------------------------------------
        C("metrics csv by team, formula text", lambda w: ["metrics", w.formula(), "--metrics", "revenue,win_rate",
          "--by", "team", "--period", "2026-Q1", "--format", "csv"], 0, csv_out=True, quoted=FORMULAS["team"]),
        C("metrics csv by product, formula text", lambda w: ["metrics", w.formula(), "--metrics", "revenue",
          "--by", "product", "--grain", "quarter", "--format", "csv"], 0, csv_out=True, quoted=FORMULAS["product"]),
        C("metrics csv by rep, formula text", lambda w: ["metrics", w.formula(), "--metrics", "deals_won",
          "--by", "rep_id", "--period", "2026-Q1", "--format", "csv"], 0, csv_out=True, quoted=FORMULAS["rep_id"]),
        C("funnel csv by team, formula text", lambda w: ["funnel", w.formula(), "--period", "2026-Q1", "--by", "team",
          "--format", "csv"], 0, csv_out=True, quoted=FORMULAS["team"]),
        C("stalled csv, formula ids", lambda w: ["stalled", w.formula(), "--format", "csv"], 0, csv_out=True,
          quoted="=O"),
        C("forecast --by team csv, formula text", lambda w: ["forecast", w.formula(), "--period", "2026-Q3",
          "--by", "team", "--format", "csv"], 0, csv_out=True, quoted=FORMULAS["team"]),
        C("forecast --by rep_id csv, formula ids", lambda w: ["forecast", w.formula(), "--period", "2026-Q3",
          "--by", "rep_id", "--format", "csv"], 0, csv_out=True, quoted=FORMULAS["rep_id"]),
        C("coach csv, formula names", lambda w: ["coach", w.formula(), "--period", "2026-Q2", "--format", "csv"], 0,
          csv_out=True),
        C("plan csv, formula text", lambda w: ["plan", w.formula(), "--target", "2000000", "--period", "2026-Q3",
          "--format", "csv"], 0, csv_out=True),
        C("validate csv, formula text", lambda w: ["validate", w.formula(), "--format", "csv"], 0, csv_out=True),
        C("metrics --list csv", lambda w: ["metrics", "--list", "--format", "csv"], 0, csv_out=True),
        C("presets list", lambda w: ["presets"], 0),
        C("sample into a new folder", lambda w: ["sample", "--out", str(w.tmp / "out" / "s"), "--reps", "4",
          "--months", "1", "--quiet"], 0),
        # -- 1: unusable data -------------------------------------------------------------------------
        C("validate a missing folder", lambda w: ["validate", str(w.tmp / "nowhere")], 1, "no such file or directory"),
        C("metrics on a missing folder", lambda w: ["metrics", str(w.tmp / "nowhere"), "--metrics", "revenue"], 1,
          "no such file or directory"),
        C("validate an empty folder", lambda w: ["validate", w.input(_mkdir(w.tmp / "empty"))], 1, "missing required table"),
        C("funnel on an empty folder", lambda w: ["funnel", w.input(_mkdir(w.tmp / "empty")), "--period", "2025-Q3"], 1,
          "missing required table"),
        C("validate header-only opportunities", lambda w: ["validate", w.tiny(**HEADER_ONLY)], 1, "header but no rows"),
        C("metrics header-only opportunities", lambda w: ["metrics", w.tiny(**HEADER_ONLY), "--metrics", "revenue"], 1,
          "header but no rows"),
        C("stalled header-only opportunities", lambda w: ["stalled", w.tiny(**HEADER_ONLY)], 1, "header but no rows"),
        C("forecast header-only opportunities", lambda w: ["forecast", w.tiny(**HEADER_ONLY), "--period", "2025-Q4"], 1,
          "header but no rows"),
        C("plan header-only opportunities", lambda w: ["plan", w.tiny(**HEADER_ONLY), "--target", "1e6", "--period",
          "2026"], 1, "header but no rows"),
        C("coach header-only opportunities", lambda w: ["coach", w.tiny(**HEADER_ONLY), "--period", "2025-Q3"], 1,
          "header but no rows"),
        C("stalled with no dated deals", lambda w: ["stalled", w.tiny(**NO_DATES)], 1, "no dated deals"),
        C("forecast with no dated deals", lambda w: ["forecast", w.tiny(**NO_DATES), "--period", "2025-Q4"], 1,
          "no dated deals"),
        C("coach with no dated deals", lambda w: ["coach", w.tiny(**NO_DATES), "--period", "2025-Q3"], 1,
          "no dated deals"),
        C("plan with no dated deals", lambda w: ["plan", w.tiny(**NO_DATES), "--target", "1e6", "--period", "2026"], 1,
          "no dated deals"),
        C("missing reps table", lambda w: ["metrics", w.tiny(opportunities=OPPS_CSV), "--metrics", "revenue"], 1,
          "missing required table reps"),
        C("missing required column", lambda w: ["validate", w.tiny(reps=REPS_CSV, opportunities=OPPS_CSV.replace(
          ",amount", ",amont"))], 1, "amount"),
        C("unreadable encoding", lambda w: ["metrics", _bad_encoding(w), "--metrics", "revenue"], 1, "utf-16"),
        C("a corrupt Parquet file", lambda w: ["stalled", _corrupt_parquet(w)], 1, "opportunities.parquet"),
        C("a column named twice", lambda w: ["validate", w.tiny(reps=REPS_CSV, opportunities=OPPS_CSV.replace(
          "product\n", "amount\n", 1))], 1, "twice"),
        # -- 2: bad arguments or config ---------------------------------------------------------------
        C("an unknown command", lambda w: ["nope"], 2, "invalid choice"),
        C("sample --reps below a team", lambda w: ["sample", "--out", str(w.tmp / "out"), "--reps", "2"], 2,
          "at least 4"),
        C("sample --seed negative", lambda w: ["sample", "--out", str(w.tmp / "out"), "--seed", "-1"], 2, "at least 0"),
        C("sample --end in year 1", lambda w: ["sample", "--out", str(w.tmp / "out"), "--end", "0001-01-01"], 2,
          "choose another --end"),
        C("validate --as-of not a date", lambda w: ["validate", w.tiny(), "--as-of", "2025-13-01"], 2, "is not a date"),
        C("stalled --as-of not a date", lambda w: ["stalled", w.tiny(), "--as-of", "yesterday"], 2, "is not a date"),
        C("metrics --format xml", lambda w: ["metrics", w.tiny(), "--metrics", "revenue", "--format", "xml"], 2,
          "invalid choice"),
        C("forecast --by an unknown dimension", lambda w: ["forecast", w.tiny(), "--period", "2025-Q4", "--by",
          "region"], 2, "invalid choice"),
        C("funnel without --period", lambda w: ["funnel", w.tiny()], 2, "--period"),
        C("plan --target not a number", lambda w: ["plan", w.tiny(), "--target", "lots", "--period", "2026"], 2,
          "invalid float"),
        C("metrics an unknown metric", lambda w: ["metrics", w.tiny(), "--metrics", "revenu"], 2, "revenue"),
        C("metrics --by an unknown dimension", lambda w: ["metrics", w.tiny(), "--metrics", "revenue", "--by", "teams"], 2,
          "did you mean 'team'"),
        C("metrics --grain misspelt", lambda w: ["metrics", w.tiny(), "--metrics", "revenue", "--grain", "quater"], 2,
          "did you mean 'quarter'"),
        C("metrics --filter without =", lambda w: ["metrics", w.tiny(), "--metrics", "revenue", "--filter", "team"], 2,
          "DIMENSION=VALUE"),
        C("metrics without --metrics", lambda w: ["metrics", w.tiny()], 2, "give --metrics"),
        C("metrics without data", lambda w: ["metrics", "--metrics", "revenue"], 2, "give the data directory"),
        C("funnel a wrong --period", lambda w: ["funnel", w.tiny(), "--period", "2025-Q5"], 2, "2025-Q5"),
        C("coach a wrong --period", lambda w: ["coach", w.tiny(), "--period", "last quarter"], 2, "last quarter"),
        C("forecast a wrong --period", lambda w: ["forecast", w.tiny(), "--period", "2025-13"], 2, "2025-13"),
        C("plan a wrong --period", lambda w: ["plan", w.tiny(), "--target", "1e6", "--period", "Q3"], 2, "Q3"),
        C("config with a bad key", lambda w: ["metrics", _with_config(w, WORKBENCH_BAD_KEY), "--metrics", "revenue"], 2,
          "stalled_quantil"),
        C("config that is not YAML", lambda w: ["validate", _with_config(w, "stages: [unclosed\n")], 2, "not valid YAML"),
        C("--config that does not exist", lambda w: ["stalled", w.tiny(), "--config", str(w.tmp / "nope.yml")], 2,
          "not found"),
        C("--source an unknown preset", lambda w: ["validate", w.tiny(), "--source", "salesfarce"], 2, "salesforce"),
        C("presets show an unknown preset", lambda w: ["presets", "show", "hubspott"], 2, "hubspot"),
        C("presets show without a name", lambda w: ["presets", "show"], 2, "give a preset name"),
        # -- 3: an internal error (a bug) -------------------------------------------------------------
        C("a bug in the loader", lambda w: ["metrics", w.tiny(), "--metrics", "revenue"], 3, "internal error",
          fault=raises("analysis.data.loading:load", ZeroDivisionError("division by zero"))),
        C("a bug in the funnel", lambda w: ["funnel", w.small(), "--period", "2026-Q1"], 3, "KeyError",
          fault=raises("analysis.analytics.funnel:stage_funnel", KeyError("step"))),
        C("an OS error that is no environment problem", lambda w: ["stalled", w.tiny()], 3, "internal error",
          fault=raises("analysis.analytics.funnel:stalled_deals", _os_error(errno.EBADF))),
        C("a bug in the sample generator", lambda w: ["sample", "--out", str(w.tmp / "out"), "--quiet"], 3,
          "TypeError", fault=raises("analysis.data.sample:write_sample", TypeError("unsupported operand"))),
        # -- 4: the environment -----------------------------------------------------------------------
        C("sample --out under a file", lambda w: ["sample", "--out", str(w.file() / "x"), "--quiet"], 4,
          "not a folder"),
        C("sample --out is a file", lambda w: ["sample", "--out", str(w.file()), "--quiet"], 4, "a file is in the way"),
        C("sample into a read-only folder", lambda w: _read_only_sample(w), 4, "permission denied", needs="non-root",
          fault=lambda w: read_only(w.tmp / "ro")),
        C("sample, folder not writable (EACCES)", lambda w: ["sample", "--out", str(w.tmp / "out" / "s"), "--quiet"], 4,
          "permission denied", fault=mkdir_fails(errno.EACCES)),
        C("sample on a read-only file system", lambda w: ["sample", "--out", str(w.tmp / "out" / "s"), "--quiet"], 4,
          "read-only", fault=mkdir_fails(errno.EROFS)),
        C("sample on a full disk", lambda w: ["sample", "--out", str(w.tmp / "out" / "s"), "--reps", "4", "--months",
          "1", "--quiet"], 4, "no space left", fault=writes_fail(errno.ENOSPC)),
        C("sample over the disk quota", lambda w: ["sample", "--out", str(w.tmp / "out" / "s"), "--reps", "4",
          "--months", "1", "--quiet"], 4, "quota", fault=writes_fail(errno.EDQUOT)),
        C("validate to a full disk", lambda w: ["validate", w.tiny()], 4, "standard output: no space left",
          fault=full_stdout),
        C("metrics csv to a full disk", lambda w: ["metrics", w.tiny(), "--metrics", "revenue", "--format", "csv"], 4,
          "standard output: no space left", fault=full_stdout),
        C("funnel json to a full disk", lambda w: ["funnel", w.small(), "--period", "2026-Q1", "--format", "json"], 4,
          "standard output: no space left", fault=full_stdout),
        C("stalled to a full disk", lambda w: ["stalled", w.small()], 4, "standard output: no space left",
          fault=full_stdout),
        C("plan csv to a full disk", lambda w: ["plan", w.small(), "--target", "2000000", "--period", "2026-Q3",
          "--format", "csv"], 4, "standard output: no space left", fault=full_stdout),
        C("schema to a full disk", lambda w: ["schema"], 4, "standard output: no space left", fault=full_stdout),
        C("presets to a full disk", lambda w: ["presets"], 4, "standard output: no space left", fault=full_stdout),
        C("metrics > /dev/full (a real process)", lambda w: ["metrics", w.tiny(), "--metrics", "revenue", "--format",
          "csv"], 4, "standard output: no space left", subprocess=True, needs="/dev/full", stdout_to="/dev/full"),
        C("sample --out under a file (a real process)", lambda w: ["sample", "--out", str(w.file() / "x" / "y"),
          "--quiet"], 4, "not a folder", subprocess=True),
        # review: both fail before the notebook runs (a full render takes ~15 s)
        C("review --out under a file", lambda w: ["review", "--data", w.tiny(), "--out", str(w.file() / "reports"),
          "--quiet"], 4, "not a folder"),
        C("review on a full disk", lambda w: ["review", "--data", w.tiny(), "--out", str(w.tmp / "out"), "--quiet"], 4,
          "no space left", fault=mkdir_fails(errno.ENOSPC)),
    ]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bad_encoding(w: Workspace) -> str:
    folder = Path(w.tiny())
    (folder / "workbench.yml").write_text("encoding: utf-16\n", encoding="utf-8")
    return str(folder)


def _corrupt_parquet(w: Workspace) -> str:
    folder = Path(w.tiny(reps=REPS_CSV))
    (folder / "opportunities.parquet").write_bytes(b"PAR1 this is not really parquet PAR1")
    return str(folder)


def _with_config(w: Workspace, text: str) -> str:
    folder = Path(w.tiny())
    (folder / "workbench.yml").write_text(text, encoding="utf-8")
    return str(folder)


def _read_only_sample(w: Workspace) -> list[str]:
    return ["sample", "--out", str(w.tmp / "ro" / "s"), "--quiet"]


CASES: list[Case] = _cases()


def run_all(cases: list[Case] | None = None, *, verbose: bool = False) -> list[Outcome]:
    """Run every case in a scratch folder of its own; return the outcomes."""
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="wb-corpus-") as root:
        shared = Path(root) / "shared"
        for i, case in enumerate(cases or CASES):
            outcome = run_case(case, Path(root) / f"case{i:03d}", shared)
            outcomes.append(outcome)
            if verbose:
                status = "skip" if outcome.skipped else ("ok" if outcome.ok else "FAIL")
                print(f"{status:4} {outcome.code!s:>4} {outcome.seconds:5.1f}s  {case.name}"
                      + (f"  ({outcome.skipped})" if outcome.skipped else "")
                      + ("".join(f"\n       - {p}" for p in outcome.problems)))
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    counts = Counter(o.code for o in outcomes if not o.skipped)
    lines = [f"exit {code}: {counts[code]} case(s)" for code in sorted(counts, key=lambda c: (c is None, c))]
    failed = [o for o in outcomes if not o.ok]
    skipped = [o for o in outcomes if o.skipped]
    lines.append(f"{len(outcomes)} cases: {len(outcomes) - len(failed) - len(skipped)} as expected, "
                 f"{len(failed)} not, {len(skipped)} skipped")
    return "\n".join(lines)


def _main(argv: list[str]) -> int:
    verbose = "-v" in argv
    outcomes = run_all(verbose=verbose)
    print(summary(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
