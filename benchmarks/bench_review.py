"""Review rendering benchmark: wall time of ``python -m analysis review`` on the sample.

Runs the command as a user would (a fresh process: interpreter start, imports, papermill's
kernel, HTML conversion) ``--runs`` times into a temporary folder, and prints each run's wall
time, the notebook's own execution time from papermill's metadata, and the median. The target
is under 10 s for the sample quarterly review on a 2-core machine.

Run: ``make bench-review`` or ``python benchmarks/bench_review.py [--cadence quarterly] [--scope-args --rep R0028]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cadence", default="quarterly")
    ap.add_argument("--data", default=str(ROOT / "data" / "sample"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("extra", nargs="*", help="more review arguments, e.g. --rep R0028 (after --)")
    args = ap.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.runs):
            cmd = [sys.executable, "-m", "analysis", "review", "--cadence", args.cadence, "--data", args.data,
                   "--out", out, "--quiet", *args.extra]
            t = time.perf_counter()
            run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
            wall = time.perf_counter() - t
            if run.returncode != 0:
                print(run.stderr.strip(), file=sys.stderr)
                return run.returncode
            html = Path(run.stdout.strip().splitlines()[-1])
            nb = json.loads(html.with_suffix(".ipynb").read_text())
            notebook_s = nb["metadata"].get("papermill", {}).get("duration")
            times.append(wall)
            print(f"run {i + 1}: {wall:6.1f} s wall   notebook {notebook_s or float('nan'):6.1f} s   "
                  f"{html.stat().st_size / 1e6:.1f} MB  {html.relative_to(out)}", flush=True)
    print(f"median {statistics.median(times):.1f} s over {len(times)} runs (target: under 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
