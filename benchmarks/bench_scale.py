"""Scale benchmark (SPEC section 10): a year of a 5,000-rep organisation.

Generates the dataset with the sample generator (once; it is kept in --data), then measures:

1. loading (schema checks, distinct category values, canonical views over Parquet),
2. the full metric catalog for one quarter, company-wide, with comparisons
   (previous quarter, same quarter last year, targets),
3. the full catalog by rep and by team for that quarter,
4. the steering figures of a review: the next quarter's outlook, the leaderboard, coaching
   flags, the plan and eNPS,
5. the data-quality checks.

It prints wall time per step and the process's peak resident memory (DuckDB runs in-process,
so its memory is included). Run: ``make bench`` or
``python benchmarks/bench_scale.py --data /tmp/workbench-scale``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(name: str, fn):
    t = time.perf_counter()
    out = fn()
    print(f"{name:<48} {time.perf_counter() - t:8.1f} s   peak {peak_mb():8.0f} MB", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/workbench-scale"))
    ap.add_argument("--reps", type=int, default=5000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--period", default=None, help="quarter to compute (default: the last one in the data)")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import analysis
    from analysis.data.periods import period_of
    from analysis.data.sample import default_end, write_sample
    from analysis.semantic.catalog import build_catalog

    if not (args.data / "opportunities.parquet").exists():
        step(f"generate {args.reps} reps x {args.months} months", lambda: write_sample(
            args.data, reps=args.reps, months=args.months, format="parquet", progress=True))

    ds = step("load", lambda: analysis.load(args.data))
    counts = ds.row_counts()
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    period = args.period or period_of(default_end(), "quarter").label
    ids = [m.id for m in build_catalog(ds.config)]
    print(f"{len(ids)} metrics, period {period}")

    t0 = time.perf_counter()
    company = step("catalog, company, with comparisons", lambda: analysis.compare(ds, ids, period))
    by_rep = step("catalog by rep_id, with comparisons", lambda: analysis.compare(ds, ids, period, by="rep_id"))
    by_team = step("catalog by team, with comparisons", lambda: analysis.compare(ds, ids, period, by="team"))
    print(f"catalog with comparisons, all three: {time.perf_counter() - t0:.1f} s")
    print(f"rows: company {len(company):,}, by rep {len(by_rep):,}, by team {len(by_team):,}; "
          f"unavailable by team: {sorted(by_team.attrs['unavailable'])}")
    rev = lambda f: f[f.metric == "revenue"].value.astype(float).sum()  # noqa: E731
    print(f"additivity: revenue company {rev(company):,.2f}, by team {rev(by_team):,.2f}, by rep {rev(by_rep):,.2f}")
    from analysis.data.periods import parse_period
    from analysis.reports import steering_review as steering
    from analysis.steering import coaching, enps, outlook, plan, scorecard

    q = parse_period(period)
    t1 = time.perf_counter()
    o = step("forecast outlook of the next quarter (no replay)",
             lambda: outlook.period_outlook(ds, q.next(), simulations=steering.REVIEW_SIMULATIONS,
                                           max_cells=steering.REVIEW_MAX_CELLS, replay=False))
    print("  " + "\n  ".join(o.sentences))
    board = step("leaderboard (scorecards, this and previous quarter)", lambda: scorecard.leaderboard(ds, q))
    flags = step("coaching flags", lambda: coaching.coaching_flags(ds, q))
    print(f"  {len(board):,} reps ranked; {len(flags)} coaching flags for {flags.rep_id.nunique()} reps")
    step("plan for the next quarter", lambda: plan.plan(ds, 1e9, q.next()))
    step("eNPS by team", lambda: enps.enps(ds, period=q, grain="quarter"))
    print(f"steering sections, all: {time.perf_counter() - t1:.1f} s")
    if not args.skip_quality:
        light = step("data-quality checks, review appendix", lambda: ds.quality(thorough=False))
        print(f"quality (light): {'usable' if light.ok else 'NOT usable'}, {len(light.findings)} findings")
        report = step("data-quality checks, all (validate)", lambda: ds.quality())
        print(f"quality (all): {'usable' if report.ok else 'NOT usable'}, {len(report.findings)} findings")
    print(f"peak memory {peak_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
