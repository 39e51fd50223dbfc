"""Engine benchmark: the same figures timed on DuckDB, Spark (and optionally PostgreSQL).

For a dataset folder (default /tmp/workbench-scale: the 5,000-rep, 12-month company that
benchmarks/bench_scale.py generates; it is generated here the same way when missing), each
engine runs in a fresh process of its own, with an empty load cache, these steps:

1. load: ``analysis.load(data, engine=...)``. For Spark this is the whole way there: the files
   read and checked in DuckDB, the JVM started, the canonical tables handed to Spark as Parquet.
   For PostgreSQL (``--engines ...,postgres``): a throwaway server (tests/pgserver.py, not
   timed), ``load-db`` into a schema and ``analysis.load`` of its URL, both timed.
2. metrics by team: the whole metric catalog by team for the last complete quarter;
3. metrics by rep: the whole catalog by rep_id for the last complete month;
4. stage funnel: ``analysis.analytics.funnel.stage_funnel`` for the quarter;
5. pipeline waterfall: ``analysis.analytics.pipeline.pipeline_waterfall`` for the quarter.

Steps 2-5 run ``--runs`` times (default 2): the first run is cold, "again" is the fastest of
the others (the engine's caches warm: DuckDB's derived-table cache, Spark's compiled code).
The periods are the last quarter and month complete by the data's snapshot day
(``ds.last_date()``), the same on every engine.

Memory: the peak resident memory of the engine's Python process during each step (its
high-water mark is reset before the step) plus that of the largest other process working for
it, sampled every 0.1 s: Spark's JVM (a child of the Python process) or a PostgreSQL backend.
DuckDB runs inside the Python process, so its figure is the process alone.

Nothing is asserted about time: the script prints figures (and exits 1 only when a step
failed). It also prints the row count of each step's result per engine: a different count
means the engines disagree (the identical-figures tests, ``pytest -m engines``, check values).

Run: ``make bench-engines`` or ``python benchmarks/bench_engines.py [--data PATH]
[--engines duckdb,spark[,postgres]] [--runs N] [--spark-driver-memory 4g]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_scale import error_line, reset_peak, status_mb, tree_rss_mb

ENGINES = ("duckdb", "spark", "postgres")
STEPS = ("load", "metrics by team, quarter", "metrics by rep, month", "stage funnel", "pipeline waterfall")
POLL_SECONDS = 0.1


# -- memory of the processes working for the engine ---------------------------------------------


def rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


class Sampler:
    """Largest resident size of the other processes working for this one (its children, such as
    Spark's JVM, and the PostgreSQL server's processes), sampled in a thread."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> float:
        sizes = tree_rss_mb(os.getpid())
        for root in self.roots:
            sizes += [rss_mb(root), *tree_rss_mb(root)]
        return max(sizes, default=0.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(POLL_SECONDS)

    def __enter__(self) -> Self:
        self.peak = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


# -- one engine, in a worker process ------------------------------------------------------------


def worker(args: argparse.Namespace) -> int:
    """Run every step on engine ``args.worker``; write the results as JSON to ``args.results``."""
    engine = args.worker
    roots: list[int] = []
    results: dict = {"engine": engine, "steps": {}, "periods": None}
    pg = None
    ns: dict = {}

    def run(step: str, fn, runs: int = 1) -> bool:
        walls, rows, error = [], None, None
        reset_peak()
        with Sampler(roots) as other:
            for i in range(runs):
                t = time.perf_counter()
                try:
                    out = fn()
                except Exception as e:  # noqa: BLE001 - reported on one line, the next step goes on
                    error = error_line(e)
                    break
                walls.append(time.perf_counter() - t)
                rows = len(out) if hasattr(out, "__len__") and not isinstance(out, dict) else rows
        peak = status_mb("VmHWM")
        results["steps"][step] = {"walls": walls, "rows": rows, "py_mb": peak, "other_mb": other.peak,
                                  "error": error}
        again = f"  again {min(walls[1:]):7.2f} s" if len(walls) > 1 else ""
        status = f"  FAILED {error}" if error else ""
        first = f"{walls[0]:7.2f} s" if walls else "      -  "
        extra = f" + {other.peak:5.0f} MB {'JVM' if engine == 'spark' else 'server'}" if other.peak else ""
        print(f"  {engine:<8} {step:<26} {first}{again}  peak {peak:6.0f} MB{extra}"
              f"{f'  rows {rows:,}' if rows is not None else ''}{status}", flush=True)
        return error is None

    import analysis  # noqa: F401 - imported before timing: the package's import is not the engine's
    from analysis.analytics.funnel import stage_funnel
    from analysis.analytics.pipeline import pipeline_waterfall
    from analysis.data.loading import load
    from analysis.data.periods import last_complete
    from analysis.semantic.catalog import build_catalog
    from analysis.semantic.engine import metrics

    try:
        if engine == "postgres":
            sys.path.insert(0, str(ROOT / "tests"))
            from pgserver import PgServer

            pg = PgServer().start()  # not timed: the database is there before the workbench
            pid_file = pg.data / "postmaster.pid"
            if pid_file.exists():
                roots.append(int(pid_file.read_text().split()[0]))

            def load_step():
                from analysis.data.engines import copy_to_database

                copy_to_database(load(args.data), pg.url("crm"))
                config = args.data / "workbench.yml"
                ns["ds"] = load(pg.url("crm"), config if config.is_file() else None)
        else:
            def load_step():
                ns["ds"] = load(args.data, engine=engine)

        if run("load", load_step):
            ds = ns["ds"]
            fsm = ds.config.fiscal_year_start_month
            day_after = ds.last_date() + timedelta(days=1)
            quarter = last_complete("quarter", today=day_after, fiscal_start_month=fsm)
            month = last_complete("month", today=day_after, fiscal_start_month=fsm)
            results["periods"] = [quarter.label, month.label]
            ids = list(build_catalog(ds.config).metrics)
            results["metrics"] = len(ids)
            steps = {
                "metrics by team, quarter": lambda: metrics(ds, ids, by=["team"], grain="quarter",
                                                            periods=[quarter.label]),
                "metrics by rep, month": lambda: metrics(ds, ids, by=["rep_id"], grain="month",
                                                         periods=[month.label]),
                "stage funnel": lambda: stage_funnel(ds, quarter.label),
                "pipeline waterfall": lambda: pipeline_waterfall(ds, quarter.label),
            }
            for step, fn in steps.items():
                run(step, fn, runs=args.runs)
    finally:
        Path(args.results).write_text(json.dumps(results))
        if pg is not None:
            ds = ns.pop("ds", None)
            if ds is not None:
                with contextlib.suppress(Exception):
                    ds.con.disconnect()
            pg.stop()
    failed = any(s["error"] for s in results["steps"].values()) or "load" not in results["steps"]
    return 1 if failed else 0


# -- main: one worker per engine, then the table ------------------------------------------------


def run_engine(args: argparse.Namespace, engine: str) -> dict:
    print(f"\n-- {engine}", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"bench-engines-{engine}-") as tmp:
        os.chmod(tmp, 0o755)  # under root, PostgreSQL's cluster (a folder in here) belongs to the postgres user
        env = dict(os.environ, TMPDIR=tmp, WORKBENCH_CACHE=str(Path(tmp) / "cache"))  # cold: an empty cache
        if engine == "spark" and args.spark_driver_memory and "PYSPARK_SUBMIT_ARGS" not in env:
            env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {args.spark_driver_memory} pyspark-shell"
        results = Path(tmp) / "results.json"
        cmd = [sys.executable, __file__, "--worker", engine, "--data", str(args.data), "--runs", str(args.runs),
               "--results", str(results)]
        run = subprocess.run(cmd, check=False, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        if not results.exists():
            lines = [line for line in run.stderr.strip().splitlines() if line.strip()] or [f"exit code {run.returncode}"]
            print(f"  {engine}: worker crashed: {lines[-1]}", flush=True)
            return {"engine": engine, "crashed": lines[-1], "steps": {}}
        out = json.loads(results.read_text())
        if run.returncode and not any(s["error"] for s in out["steps"].values()):
            lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
            out["crashed"] = lines[-1] if lines else f"exit code {run.returncode}"
            print(f"  {engine}: worker ended with exit code {run.returncode}: {out['crashed']}", flush=True)
        return out


def table(all_results: list[dict], runs: int) -> None:
    engines = [r["engine"] for r in all_results]
    cols = ["s"] + (["again"] if runs > 1 else []) + ["peak MB"]
    width = 9
    head = f"  {'step':<26}" + "".join(f"{f'{e} ' + c:>{max(width, len(e) + len(c) + 2)}}" for e in engines for c in cols)
    print("\n== summary: seconds (first run; again = fastest later run) and peak resident memory ==", flush=True)
    print(head, flush=True)
    for step in STEPS:
        line = f"  {step:<26}"
        for r in all_results:
            s = r["steps"].get(step)
            for c in cols:
                w = max(width, len(r["engine"]) + len(c) + 2)
                if s is None or s["error"] or not s["walls"]:
                    cell = "FAILED" if s is not None else "-"
                elif c == "s":
                    cell = f"{s['walls'][0]:.2f}"
                elif c == "again":
                    cell = f"{min(s['walls'][1:]):.2f}" if len(s["walls"]) > 1 else "-"
                else:
                    cell = f"{s['py_mb'] + s['other_mb']:.0f}"
                line += f"{cell:>{w}}"
        print(line, flush=True)
    print("  peak MB: the engine's Python process plus its largest helper process (Spark: the JVM; PostgreSQL: "
          "a server process); DuckDB runs in the Python process", flush=True)
    counts = {step: {r["engine"]: r["steps"].get(step, {}).get("rows") for r in all_results} for step in STEPS[1:]}
    differ = [step for step, c in counts.items() if len({v for v in c.values() if v is not None}) > 1]
    if len(all_results) < 2:
        return
    if differ:
        print("  result rows differ between engines in: " + "; ".join(
            f"{step} ({', '.join(f'{e} {n}' for e, n in counts[step].items())})" for step in differ), flush=True)
    else:
        print("  result rows: the same on every engine", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/workbench-scale"))
    ap.add_argument("--engines", default="duckdb,spark", help="comma-separated: duckdb, spark, postgres")
    ap.add_argument("--runs", type=int, default=2, help="runs of each query step (first cold, then warm)")
    ap.add_argument("--reps", type=int, default=5000, help="reps of a generated dataset")
    ap.add_argument("--months", type=int, default=12, help="months of a generated dataset")
    ap.add_argument("--spark-driver-memory", default=None,
                    help="Spark driver memory in local mode, e.g. 4g (default: the config's memory_limit, 1GB)")
    ap.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--results", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.data = args.data.resolve()
    args.runs = max(1, args.runs)

    sys.path.insert(0, str(ROOT))
    if args.worker:
        return worker(args)

    engines = [e.strip().lower() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        ap.error(f"--engines: unknown {', '.join(unknown) or '(none given)'}; use {', '.join(ENGINES)}")

    if not args.data.is_dir() or not any(args.data.iterdir()):
        from analysis.data.sample import write_sample

        print(f"generating {args.reps} reps x {args.months} months into {args.data} ...", flush=True)
        t = time.perf_counter()
        write_sample(args.data, reps=args.reps, months=args.months, format="parquet")
        print(f"generated in {time.perf_counter() - t:.0f} s", flush=True)

    size = sum(f.stat().st_size for f in args.data.rglob("*") if f.is_file()) / 2**20
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = shutil.which("java") or "no java"
    print(f"engine benchmark: {args.data} ({size:,.0f} MB of files); engines {', '.join(engines)}; "
          f"{args.runs} run(s) per query step", flush=True)
    print(f"machine: {os.cpu_count()} cores, {mem:.0f} GB RAM, load average {os.getloadavg()[0]:.1f}; "
          f"Python {platform.python_version()}, {java}", flush=True)

    all_results = [run_engine(args, engine) for engine in engines]
    periods = {tuple(r["periods"]) for r in all_results if r.get("periods")}
    if periods:
        print("\nperiods: " + "; ".join(f"quarter {q}, month {m}" for q, m in sorted(periods)), flush=True)
    metric_counts = {r.get("metrics") for r in all_results if r.get("metrics")}
    if metric_counts:
        print(f"catalog: {', '.join(map(str, sorted(metric_counts)))} metrics", flush=True)
    table(all_results, args.runs)
    failed = any(r.get("crashed") or not r["steps"] or any(s["error"] for s in r["steps"].values())
                 for r in all_results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
