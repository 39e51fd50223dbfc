"""Explorer widget benchmark: time of one view update on the sample, as a user drives it.

Builds ``Explorer(ds).widget()`` on the sample and changes its controls the way a user does, by
setting ``.value`` on them (tick a metric, switch the charted metric, group by a dimension, pick
top N, a grain, a date range, a filter, turn a page, drill into a figure), about 50 updates in
all. Each update is timed from the control's change to the outputs being set (the widget's own
``timings``: the engine queries, the chart spec, the table page). Prints every step, then
p50 / p95 / max of the wall time (the target: p95 under 300 ms) and of the CPU time of the process
(all threads; it does not grow when other processes load the machine, the wall time does).
``--passes 2`` runs the steps twice: the second pass shows the cached case.

Run: ``python benchmarks/bench_explorer.py [--data data/sample] [--passes 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def steps(w):
    """(what, action) pairs: each action is one user action on one control."""
    def tick(mid, on=True):
        return f"{'tick' if on else 'untick'} {mid}", lambda: setattr(w.checks[mid], "value", on)

    def set_(name, control, value):
        return f"{name} = {value}", lambda: setattr(control, "value", value)

    f = w.filters
    out = [
        tick("avg_deal_size"),
        set_("chart", w.chart_metric, "revenue"),
        set_("chart", w.chart_metric, "win_rate"),
        set_("by", w.by, "team"),
        set_("chart", w.chart_metric, "revenue"),
        set_("top", w.top, 5),
        set_("by", w.by, "rep_id"),
        ("next page", lambda: w.next.click()),
        ("next page", lambda: w.next.click()),
        ("previous page", lambda: w.prev.click()),
        set_("top", w.top, 10),
        set_("chart", w.chart_metric, "win_rate"),
        set_("top", w.top, 0),
        set_("grain", w.grain, "month"),
        set_("chart", w.chart_metric, "deals_won"),
        set_("by", w.by, "region"),
        tick("calls"),
        set_("chart", w.chart_metric, "revenue"),
        tick("calls", False),
        set_("by", w.by, "segment"),
        set_("grain", w.grain, "year"),
        set_("by", w.by, "product"),
        set_("team filter", f["team"], f["team"].options[1][1]),
        set_("team filter", f["team"], ""),
        set_("grain", w.grain, "quarter"),
        set_("by", w.by, ""),
        tick("sales_cycle_days"),
        tick("lead_conversion_rate"),
        set_("chart", w.chart_metric, "sales_cycle_days"),
        tick("lead_conversion_rate", False),
        set_("from", w.start, date(2025, 1, 1)),
        set_("to", w.end, date(2025, 12, 31)),
        set_("grain", w.grain, "month"),
        set_("by", w.by, "team"),
        set_("chart", w.chart_metric, "win_rate"),
        set_("region filter", f["region"], f["region"].options[1][1]),
        set_("region filter", f["region"], ""),
        tick("sales_cycle_days", False),
        ("all data", lambda: w.whole.click()),
        set_("grain", w.grain, "quarter"),
        set_("by", w.by, "lead_source"),
        set_("chart", w.chart_metric, "revenue"),
        ("drill into the last row", lambda: setattr(w.drill, "value", w.drill.options[-1][1])),
        set_("by", w.by, "team"),
        tick("deals_won", False),
        tick("deals_won"),
        set_("top", w.top, 8),
        set_("by", w.by, "rep_id"),
        ("next page", lambda: w.next.click()),
        set_("by", w.by, ""),
    ]
    return out


def summary(values: list[float]) -> str:
    v = sorted(values)
    p95 = v[max(0, round(0.95 * len(v)) - 1)]
    return f"p50 {statistics.median(v) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {v[-1] * 1000:.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "sample"))
    ap.add_argument("--passes", type=int, default=1, help="run the steps this many times (later passes: cached)")
    args = ap.parse_args()

    import analysis
    from analysis.reports.explore import Explorer

    t = time.perf_counter()
    ds = analysis.load(args.data)
    ex = Explorer(ds)
    print(f"load and explorer: {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        w = ex.widget(export_dir=Path(tmp))
        print(f"widget built with its first view: {time.perf_counter() - t:.2f} s")
        times: list[float] = []
        cpu: list[float] = []
        for n in range(args.passes):
            for what, act in steps(w):
                before = len(w.timings)
                t, c = time.perf_counter(), time.process_time()
                act()
                if len(w.timings) > before:
                    took = sum(w.timings[before:])
                else:
                    took = time.perf_counter() - t  # a page turn or a drill-down: the table only
                times.append(took)
                cpu.append(time.process_time() - c)
                msg = w.message.value[:70].replace("\n", " ")
                print(f"pass {n + 1}  {took * 1000:7.1f} ms  cpu {cpu[-1] * 1000:7.1f} ms  {what:28}  {msg}")
    print(f"\n{len(times)} updates, wall: {summary(times)}; CPU (all threads): {summary(cpu)}; "
          f"engine queries: {ex.queries}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
