"""Scale benchmark (SPEC section 10): a quarterly review of a year of a 5,000-rep organisation.

Generates the dataset with the sample generator once (it is kept in --data and reused), then
measures, for the company, one team (default: the first team in reps alphabetically) and one
rep (default: that team's first rep_id):

1. sections: the review's sections run in-process, in notebook order, in a fresh process per
   scope (no cache or memory carries over between scopes). The section list is read from
   notebooks/review.ipynb itself: every code cell whose first line is ``review.show(<expr>)``,
   labelled by the Markdown headings above it; ``<expr>`` is evaluated after
   ``review.setup(...)`` (timed apart) and its output objects are formatted the way a kernel
   displays them. Per section: wall time and the process's peak resident memory during that
   section (the high-water mark is reset before each one through /proc/self/clear_refs). A
   section that raises prints its error on one line and the run goes on.
2. render: ``python -m analysis review --quiet`` end to end, as a user runs it: wall time and
   the peak resident memory of the largest process of its tree (the CLI or its Jupyter kernel)
   and of the tree's sum, against the budget of SPEC section 10 (60 s, 2 GiB).
3. query: one cold ``python -m analysis metrics`` query (ten catalog metrics by rep for the
   quarter) against the same figures from hand-written DuckDB SQL over the Parquet files
   (benchmarks/rep_quarter.sql), each in a fresh process, three runs each, median wall time,
   peak memory and their ratio (target: the package within 1.5x of the hand query). The two
   outputs are compared rep by rep first: counts exactly, money to the cent, rates and means
   to 1e-9; a timing of different figures would mean nothing.

Memory of a subprocess is sampled from /proc every 0.2 s (its whole tree) and also read from
``getrusage(RUSAGE_CHILDREN)`` in a small helper process that runs it (the exact peak of the
largest process the helper waited for); the larger of the two is reported as its peak.

Exits 1 when a section, a render or a query failed, or when the figures differ; a budget
verdict of FAIL is a measurement, not an error. Run: ``make bench`` or
``python benchmarks/bench_scale.py [--only sections|render|query] [--scope company|team|rep]
[--team NAME] [--rep ID] [--data /tmp/workbench-scale]``.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "review.ipynb"
HAND_SQL = Path(__file__).resolve().parent / "rep_quarter.sql"

BUDGET_SECONDS = 60  # SPEC section 10: a full review in under a minute...
BUDGET_MB = 2048  # ...with under 2 GB (GiB) of memory
QUERY_TARGET = 1.5  # the package's cold query within 1.5x of hand-written DuckDB
RUNS = 3  # cold runs per query, the median is reported
POLL_SECONDS = 0.2

#: the cold query's metrics, and how their figures must agree with the hand query's
COUNTS = ("deals_won", "deals_lost", "calls", "meetings")
MONEY = ("revenue", "avg_deal_size")
RATES = ("win_rate", "sales_cycle_days", "avg_call_minutes", "positive_call_rate")
METRICS = ("revenue", "deals_won", "deals_lost", "win_rate", "avg_deal_size", "sales_cycle_days",
           "calls", "meetings", "avg_call_minutes", "positive_call_rate")
TOLERANCE = {**{m: 0.0 for m in COUNTS}, **{m: 0.005 for m in MONEY}, **{m: 1e-9 for m in RATES}}

#: run in a fresh helper process: runs the command (its stdout into a file) and reports its wall
#: time and the peak resident memory of the largest process it (or its children) waited for
HELPER = """\
import json, resource, subprocess, sys, time
cmd, out = json.loads(sys.argv[1]), sys.argv[2]
t = time.perf_counter()
with open(out, "wb") as f:
    run = subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
print(json.dumps({"wall": wall, "rc": run.returncode, "stderr": run.stderr.decode(errors="replace")[-4000:],
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""

#: the hand query's process: DuckDB alone, the SQL file's result as CSV on stdout
HAND_RUNNER = """\
import sys, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute("COPY (" + open(sys.argv[1]).read() + ") TO '/dev/stdout' (HEADER)")
"""


# -- memory ------------------------------------------------------------------------------------


def reset_peak() -> None:
    """Reset this process's resident-memory high-water mark (VmHWM) to its current size."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status in MiB: ``VmHWM`` (the resident high-water mark since
    the last :func:`reset_peak`) or ``VmRSS`` (resident now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return math.nan


def tree_rss_mb(root: int) -> list[float]:
    """Resident memory of each descendant of process ``root`` (not ``root`` itself), in MiB."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            out.append(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page_mb)
        except OSError:
            continue
    return out


@dataclass
class Measured:
    """One subprocess run: wall time, exit code, peak memory (largest process, tree sum)."""

    wall: float
    rc: int
    single_mb: float
    sum_mb: float
    stderr: str

    @property
    def error(self) -> str:
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self.rc}"


def measure(cmd: list[str], stdout: Path) -> Measured:
    """Run ``cmd`` (its stdout into ``stdout``) through :data:`HELPER`, sampling its tree's memory."""
    helper = subprocess.Popen([sys.executable, "-c", HELPER, json.dumps(cmd), str(stdout)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    single = total = 0.0
    while helper.poll() is None:
        rss = tree_rss_mb(helper.pid)
        single, total = max(single, max(rss, default=0.0)), max(total, sum(rss))
        time.sleep(POLL_SECONDS)
    out, err = helper.communicate()
    try:
        report = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Measured(math.nan, -1, single, total, err or out)
    single = max(single, report["maxrss_kb"] / 1024)
    return Measured(report["wall"], report["rc"], single, max(total, single), report["stderr"])


# -- what to run -------------------------------------------------------------------------------


def notebook_sections(path: Path = NOTEBOOK) -> list[tuple[str, str]]:
    """``(label, expression)`` of every code cell whose first line is ``review.show(<expr>)``.

    The label is the Markdown headings in force at the cell (below the notebook's title), e.g.
    ``Win rate and deal size / By rep``.
    """
    nb = json.loads(path.read_text())
    headings: dict[int, str] = {}
    out = []
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            for line in source.splitlines():
                m = re.match(r"(#{1,6})\s+(.+?)\s*#*\s*$", line)
                if m:
                    level = len(m[1])
                    headings = {k: v for k, v in headings.items() if k < level}
                    headings[level] = m[2]
            continue
        if cell["cell_type"] != "code" or not source.strip():
            continue
        first = source.strip().splitlines()[0]
        try:
            tree = ast.parse(first)
        except SyntaxError:  # a first line that opens a bracket closed below: not a section
            continue
        node = tree.body[0] if len(tree.body) == 1 else None
        call = node.value if isinstance(node, ast.Expr) else None
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "show"
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "review"
                and len(call.args) == 1 and not call.keywords):
            levels = [v for k, v in sorted(headings.items()) if k > 1] or list(headings.values())
            out.append((" / ".join(levels) or "(no heading)", ast.get_source_segment(first, call.args[0])))
    return out


def default_scopes(data: Path, team: str | None, rep: str | None) -> dict[str, str | None]:
    """Scope -> value: the company, ``team`` (default the first team alphabetically) and ``rep``
    (default that team's first rep_id)."""
    import pandas as pd

    parquet = data / "reps.parquet"
    reps = (pd.read_parquet(parquet, columns=["rep_id", "team"]) if parquet.exists()
            else pd.read_csv(data / "reps.csv", dtype=str, usecols=["rep_id", "team"]))
    reps = reps.dropna(subset=["team"]).astype(str)
    team = team or min(reps.team)
    rep = rep or min(reps.rep_id[reps.team == team])
    return {"company": None, "team": team, "rep": rep}


def quarter_of(data: Path, label: str | None):
    """The benchmark's quarter: ``label``, else the last one complete by the data's as_of."""
    from analysis.data.config import load_config
    from analysis.data.periods import last_complete, parse_period
    from analysis.data.sample import default_end

    config = load_config(data_dir=data)
    fsm = config.fiscal_year_start_month
    if label:
        return parse_period(label, fiscal_start_month=fsm)
    as_of = config.as_of or default_end()
    return last_complete("quarter", today=as_of + timedelta(days=1), fiscal_start_month=fsm)


# -- 1. sections, in a worker process per scope -------------------------------------------------


def error_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def sections_worker(args: argparse.Namespace) -> int:
    """Run every notebook section for one scope in this process; write results to --results."""
    from IPython.core.formatters import DisplayFormatter

    sections = notebook_sections()
    result: dict = {"setup": None, "sections": []}

    def run(label: str, expr: str, fn) -> dict:
        """Time ``fn`` with a fresh memory high-water mark; print and return one result."""
        reset_peak()
        start = status_mb("VmRSS")  # what earlier sections left resident: a floor under the peak
        t = time.perf_counter()
        try:
            fn()
            error = None
        except Exception as e:  # noqa: BLE001 - reported on one line, then the next section
            error = error_line(e)
        wall, peak = time.perf_counter() - t, status_mb("VmHWM")
        status = f"FAILED {error}" if error else ""
        print(f"  {label:<38} {expr:<34} {wall:6.1f} s  peak {peak:6.0f} MB (from {start:4.0f})  {status}".rstrip(),
              flush=True)
        return {"label": label, "expr": expr, "wall": wall, "peak_mb": peak, "start_mb": start, "error": error}

    namespace: dict = {}

    def imports() -> None:
        from analysis.reports import review
        from analysis.reports import steering_review as steering

        namespace.update(review=review, steering=steering)

    def setup() -> None:
        if "review" not in namespace:
            raise ImportError("analysis.reports did not import (see the line above)")
        namespace["r"] = namespace["review"].setup(cadence="quarterly", scope=args.worker_scope,
                                      scope_value=args.worker_value or "", data=str(args.data),
                                      period=args.period or "")

    def section(expr: str) -> None:
        for item in eval(expr, namespace):  # the notebook's own expressions
            formatter.format(item)  # what a kernel does with each displayed object

    formatter = DisplayFormatter()
    result["import"] = run("import", "analysis.reports", imports)
    result["setup"] = run("setup", "review.setup(...)", setup)
    if result["setup"]["error"] is None:
        result["sections"] = [run(label, expr, functools.partial(section, expr)) for label, expr in sections]
    Path(args.results).write_text(json.dumps(result))
    failed = result["import"]["error"] or result["setup"]["error"] or any(s["error"] for s in result["sections"])
    return 1 if failed else 0


def run_sections(args: argparse.Namespace, scopes: dict[str, str | None]) -> dict[str, dict]:
    """One worker process per scope; returns scope -> results (or {"crashed": message})."""
    print(f"\n== sections, in-process, notebook order ({len(notebook_sections())} sections from "
          f"{NOTEBOOK.relative_to(ROOT)}) ==", flush=True)
    out: dict[str, dict] = {}
    for scope, value in scopes.items():
        print(f"\n-- {scope}{f' {value}' if value else ''}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "sections.json"
            cmd = [sys.executable, __file__, "--data", str(args.data), "--worker-scope", scope,
                   "--worker-value", value or "", "--results", str(results)]
            if args.period:
                cmd += ["--period", args.period]
            run = subprocess.run(cmd, check=False, cwd=ROOT, stderr=subprocess.PIPE, text=True)
            if not results.exists():
                lines = run.stderr.strip().splitlines() or [f"exit code {run.returncode}"]
                out[scope] = {"crashed": lines[-1]}
                print(f"  worker crashed: {lines[-1]}", flush=True)
                continue
            out[scope] = json.loads(results.read_text())
        done = out[scope]["sections"]
        failed = [s for s in done if s["error"]]
        print(f"  {'all sections':<38} {'':<34} {sum(s['wall'] for s in done):6.1f} s  peak "
              f"{max((s['peak_mb'] for s in done), default=0):6.0f} MB  {len(done) - len(failed)} ok, "
              f"{len(failed)} failed", flush=True)
    return out


# -- 2. end-to-end render ----------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fresh_cache(label: str) -> str:
    """Point every process started from here at a new, empty load cache (see
    analysis.data.loading.LoadCache) and return its folder: the next run is cold."""
    folder = tempfile.mkdtemp(prefix=f"cache-{label}-", dir=os.environ.get("TMPDIR"))
    os.environ["WORKBENCH_CACHE"] = folder
    return folder


def run_render(args: argparse.Namespace, scopes: dict[str, str | None]) -> dict[str, Measured]:
    print(f"\n== render: python -m analysis review --cadence quarterly --quiet "
          f"(budget {BUDGET_SECONDS} s, {BUDGET_MB} MB) ==", flush=True)
    print("  each scope twice: with an empty load cache (cold: the first run on new data), then with the "
          "cache that run left (warm: every later review of the same files)", flush=True)
    out = {}
    for scope, value in scopes.items():
        fresh_cache(scope)
        for state in ("cold", "warm"):
            tmp = tempfile.mkdtemp(prefix=f"bench-render-{scope}-")  # kept when the render fails
            cmd = [sys.executable, "-m", "analysis", "review", "--cadence", "quarterly", "--data", str(args.data),
                   "--out", tmp, "--quiet"]
            cmd += {"company": [], "team": ["--team", value], "rep": ["--rep", value]}[scope]
            if args.period:
                cmd += ["--period", args.period]
            m = measure(cmd, Path(tmp) / "stdout.txt")
            if m.rc == 0:
                shutil.rmtree(tmp, ignore_errors=True)
            out[f"{scope} {state}"] = m
            name = f"{scope}{f' {value}' if value else ''} ({state})"
            if m.rc != 0:
                print(f"  {name:<36} FAILED (exit {m.rc}) after {m.wall:.1f} s, output kept in {tmp}: {m.error}",
                      flush=True)
                continue
            print(f"  {name:<36} {m.wall:6.1f} s  peak {m.single_mb:6.0f} MB largest process, {m.sum_mb:6.0f} MB "
                  f"tree   time {verdict(m.wall < BUDGET_SECONDS)}, memory {verdict(m.single_mb < BUDGET_MB)} "
                  f"(tree {verdict(m.sum_mb < BUDGET_MB)})", flush=True)
    return out


# -- 3. cold query against hand-written DuckDB --------------------------------------------------


def compare_figures(package_csv: Path, hand_csv: Path) -> int:
    """Print how the two outputs agree, metric by metric; return the number of mismatches."""
    import numpy as np
    import pandas as pd

    pkg = pd.read_csv(package_csv, dtype={"rep_id": str})
    hand = pd.read_csv(hand_csv, dtype={"rep_id": str})
    both = pkg.merge(hand, on="rep_id", how="outer", suffixes=("_pkg", "_hand"), indicator=True)
    only = int((both._merge != "both").sum())
    both = both[both._merge == "both"]
    print(f"  figures: {len(pkg):,} reps from the package, {len(hand):,} from the hand query, "
          f"{len(both):,} on both; {only:,} on one side only", flush=True)
    total = only
    for m in METRICS:
        a, b = both[f"{m}_pkg"].astype(float), both[f"{m}_hand"].astype(float)
        diff = (a - b).abs()
        bad = ~((a.isna() & b.isna()) | (diff <= TOLERANCE[m]))
        total += int(bad.sum())
        worst = np.nanmax(diff.to_numpy()) if diff.notna().any() else 0.0
        print(f"    {m:<20} {int(bad.sum()):6,} mismatches   max |diff| {worst:.3g}   "
              f"(tolerance {TOLERANCE[m]:g})", flush=True)
    print(f"  mismatches: {total:,}", flush=True)
    return total


def run_query(args: argparse.Namespace, quarter) -> dict:
    data = args.data.resolve()
    print(f"\n== query: {len(METRICS)} metrics by rep_id for {quarter.label}, cold, package vs hand-written "
          f"DuckDB ({RUNS} runs each, fresh processes) ==", flush=True)

    def quoted(path: Path) -> str:
        return "'" + str(path).replace("'", "''") + "'"

    sql = HAND_SQL.read_text().format(opportunities=quoted(data / "opportunities.parquet"),
                                      activities=quoted(data / "activities.parquet"),
                                      start=quarter.start.isoformat(), end=quarter.last_day.isoformat())
    with tempfile.TemporaryDirectory() as tmp:
        sql_file = Path(tmp) / "rep_quarter.sql"
        sql_file.write_text(sql)
        commands = {
            "package": [sys.executable, "-m", "analysis", "metrics", str(data), "--by", "rep_id", "--grain", "quarter",
                        "--period", quarter.label, "--metrics", ",".join(METRICS), "--format", "csv"],
            "hand": [sys.executable, "-c", HAND_RUNNER, str(sql_file)],
        }
        # the package's first run has an empty load cache (cold: new data); the later ones find what
        # it kept (warm: a second query of the same files, as the "second run is warm")
        fresh_cache("query")
        runs: dict[str, list[Measured]] = {name: [] for name in commands}
        for i in range(RUNS + 1):  # interleaved, so that both see the same machine load
            for name, cmd in commands.items():
                m = measure(cmd, Path(tmp) / f"{name}-{i}.csv")
                runs[name].append(m)
                status = f"FAILED (exit {m.rc}): {m.error}" if m.rc else ""
                state = ("cold" if i == 0 else "warm") if name == "package" else ""
                print(f"  {name:<8} run {i + 1}: {m.wall:6.1f} s  peak {m.single_mb:6.0f} MB  {state} {status}".rstrip(),
                      flush=True)
            if any(m.rc for m in (runs["package"][-1], runs["hand"][-1])):
                return {"failed": True}
        mismatches = compare_figures(Path(tmp) / "package-0.csv", Path(tmp) / "hand-0.csv")
        mismatches += compare_figures(Path(tmp) / f"package-{RUNS}.csv", Path(tmp) / "hand-0.csv")
    cold = runs["package"][0]
    runs["package"] = runs["package"][1:]
    wall = {name: statistics.median(m.wall for m in ms) for name, ms in runs.items()}
    peak = {name: max(m.single_mb for m in ms) for name, ms in runs.items()}
    ratio = wall["package"] / wall["hand"]
    print(f"  package  cold   {cold.wall:6.1f} s  peak {cold.single_mb:6.0f} MB  (empty cache: "
          f"{cold.wall / wall['hand']:.1f}x the hand query)", flush=True)
    for name in commands:
        print(f"  {name:<8} median {wall[name]:6.1f} s  peak {peak[name]:6.0f} MB{'  (warm)' if name == 'package' else ''}",
              flush=True)
    print(f"  ratio, warm: {ratio:.1f}x wall, {peak['package'] / peak['hand']:.1f}x memory (target: wall <= "
          f"{QUERY_TARGET}x) {verdict(ratio <= QUERY_TARGET)}", flush=True)
    return {"failed": False, "wall": wall, "peak": peak, "ratio": ratio, "mismatches": mismatches,
            "cold": cold.wall}


# -- summary -------------------------------------------------------------------------------------


def summary(scopes: dict[str, str | None], sections: dict[str, dict], renders: dict[str, Measured],
            query: dict | None) -> None:
    print("\n== summary ==", flush=True)
    if sections or renders:
        width = max(len(v or "-") for v in scopes.values())
        print(f"  {'scope':<8} {'value':<{width}}  {'sections':>8} {'failed':>6}  {'render':>8}  "
              f"{'peak largest':>12}  {'peak tree':>10}  {'time':<4}  memory", flush=True)
    for scope, value in scopes.items() if sections or renders else ():
        s = sections.get(scope)
        if s is None:
            sec, failed = "-", "-"
        elif "crashed" in s:
            sec, failed = "crashed", "-"
        else:
            done = s["sections"]
            sec = f"{sum(x['wall'] for x in done):.1f} s"
            failed = str(sum(1 for x in done if x["error"]) + sum(1 for k in ("import", "setup") if s[k]["error"]))
        for state in ("cold", "warm"):
            m = renders.get(f"{scope} {state}")
            if m is None:
                render = f"{'-':>8}  {'-':>12}  {'-':>10}  {'-':<4}  -"
            elif m.rc:
                render = f"{'FAILED':>8}  {'-':>12}  {'-':>10}  {'-':<4}  -"
            else:
                render = (f"{m.wall:6.1f} s  {m.single_mb:9.0f} MB  {m.sum_mb:7.0f} MB  "
                          f"{verdict(m.wall < BUDGET_SECONDS):<4}  {verdict(m.single_mb < BUDGET_MB)}")
            print(f"  {scope:<8} {value or '-':<{width}}  {sec:>8} {failed:>6}  {render}  ({state} cache)", flush=True)
            sec, failed = "", ""
    if renders:
        print(f"  render budget: {BUDGET_SECONDS} s wall, {BUDGET_MB} MB for the largest process "
              "(the CLI or its kernel)", flush=True)
    if query and not query["failed"]:
        print(f"  query: package {query['wall']['package']:.1f} s warm ({query['cold']:.1f} s cold) / hand DuckDB "
              f"{query['wall']['hand']:.1f} s = {query['ratio']:.1f}x warm (target <= {QUERY_TARGET}x) "
              f"{verdict(query['ratio'] <= QUERY_TARGET)}; "
              f"peak {query['peak']['package']:.0f} MB / {query['peak']['hand']:.0f} MB; "
              f"figures: {query['mismatches']:,} mismatches", flush=True)
    elif query:
        print("  query: FAILED", flush=True)


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/workbench-scale"))
    ap.add_argument("--reps", type=int, default=5000, help="reps of a generated dataset")
    ap.add_argument("--months", type=int, default=12, help="months of a generated dataset")
    ap.add_argument("--period", default=None, help="quarter to review (default: the last complete one in the data)")
    ap.add_argument("--only", choices=("sections", "render", "query"), help="run one part (default: all)")
    ap.add_argument("--scope", choices=("company", "team", "rep"), help="one scope (default: all three)")
    ap.add_argument("--team", help="team of the team scope (default: the first team alphabetically)")
    ap.add_argument("--rep", help="rep_id of the rep scope (default: the team's first rep_id)")
    # a sections worker: one scope in this process (see run_sections)
    ap.add_argument("--worker-scope", help=argparse.SUPPRESS)
    ap.add_argument("--worker-value", help=argparse.SUPPRESS)
    ap.add_argument("--results", help=argparse.SUPPRESS)
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    if args.worker_scope:
        return sections_worker(args)

    if not (args.data / "opportunities.parquet").exists():
        from analysis.data.sample import write_sample

        print(f"generating {args.reps} reps x {args.months} months into {args.data} ...", flush=True)
        t = time.perf_counter()
        write_sample(args.data, reps=args.reps, months=args.months, format="parquet")
        print(f"generated in {time.perf_counter() - t:.0f} s", flush=True)

    quarter = quarter_of(args.data, args.period)
    scopes = default_scopes(args.data, args.team, args.rep)
    if args.scope:
        scopes = {args.scope: scopes[args.scope]}
    size = sum(f.stat().st_size for f in args.data.glob("*.parquet")) / 2**20
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"scale benchmark: {args.data} ({size:,.0f} MB of Parquet), quarter {quarter.label}; "
          f"{os.cpu_count()} cores, {mem:.0f} GB RAM, load average {os.getloadavg()[0]:.1f}", flush=True)
    print("scopes: " + ", ".join(f"{s} {v}" if v else s for s, v in scopes.items()), flush=True)

    # a private temporary folder for every process started from here: DuckDB spills into
    # <tmp>/workbench-duckdb, which other runs on the machine (tests, renders) share and clean
    scratch = tempfile.mkdtemp(prefix="bench-scale-")
    os.environ["TMPDIR"] = scratch
    try:
        fresh_cache("sections")  # sections: company first with an empty cache; the other scopes warm
        sections = run_sections(args, scopes) if args.only in (None, "sections") else {}
        renders = run_render(args, scopes) if args.only in (None, "render") else {}
        query = run_query(args, quarter) if args.only in (None, "query") else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary(scopes, sections, renders, query)

    failed = (any("crashed" in s or any(s[k]["error"] for k in ("import", "setup"))
                  or any(x["error"] for x in s["sections"]) for s in sections.values())
              or any(m.rc for m in renders.values())
              or (query is not None and (query["failed"] or query["mismatches"] > 0)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
