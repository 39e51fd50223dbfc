"""Command line: ``python -m analysis COMMAND``.

Every command has ``--help``. Errors are one line on stderr (``error: ...``) with a non-zero exit
code, the same for every command (see :mod:`analysis.errors`):

* 0 success;
* 1 unusable data (missing or empty tables, unreadable files, no dated deals);
* 2 bad arguments or config;
* 3 an internal error, a bug (rerun with ``--debug`` to see the traceback);
* 4 the environment: disk full, output not writable, ``--out`` under a file, a read-only folder
  (any OSError of those kinds, also one a workbench error was raised from, and one writing
  standard output); the line names the path and how to fix it.

Every CSV written (``--format csv`` of any command) goes through
:func:`analysis.reports.export.write_csv`, so that no cell runs as a spreadsheet formula.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from analysis.errors import EnvironmentProblem, WorkbenchError

#: How an error writing standard output names it.
STDOUT = "standard output"


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {self.prog}: {message} (see --help)\n")
        raise SystemExit(2)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD") from None


def _at_least(minimum: int, why: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (``why`` says the reason)."""

    def whole(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"{value!r} must be at least {minimum}{why}")
        return n

    return whole


_positive = _at_least(1)


# -- commands ------------------------------------------------------------------------------


#: Calendar years a synthetic sample may cover (dates far outside overflow the generator).
SAMPLE_YEARS = (1900, 2200)


def cmd_sample(args: argparse.Namespace) -> int:
    from analysis.data.sample import default_end, write_sample

    end = args.end or default_end()
    first_month = end.year * 12 + end.month - args.months  # the window's first month, counted from year 0
    if end.year > SAMPLE_YEARS[1] or first_month < SAMPLE_YEARS[0] * 12:
        raise WorkbenchError(
            f"sample: --end {end.isoformat()} with --months {args.months} leaves the years "
            f"{SAMPLE_YEARS[0]}-{SAMPLE_YEARS[1]}; choose another --end or fewer --months"
        )
    out = write_sample(
        args.out,
        reps=args.reps,
        months=args.months,
        seed=args.seed,
        end=end,
        format=args.format,
        progress=not args.quiet,
    )
    print(out)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from analysis.data.validation import validate

    report = validate(args.data, args.config, as_of=args.as_of, preset=args.source)
    if args.format == "json":
        print(report.to_json())
    elif args.format == "csv":
        from analysis.reports.export import write_csv

        write_csv(report.to_frame(), sys.stdout)
    else:
        print(report.to_text())
    messages = [f.message for f in report.fatal]
    if messages:  # one line, however many fatal problems (the report above lists them all)
        line = messages[0] if len(messages) == 1 else f"{len(messages)} fatal problems: " + "; ".join(messages)
        sys.stderr.write(f"error: {line}\n")
    return 0 if report.ok else 1


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _print_frame(frame, fmt: str) -> None:
    import json

    import pandas as pd

    if fmt == "csv":
        from analysis.reports.export import write_csv

        write_csv(frame, sys.stdout)
    elif fmt == "json":
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        print(json.dumps(records, indent=2, default=str))
    else:
        def number(v: float) -> str:  # money readable, rates and small values with 4 significant digits
            return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.4g}"

        with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200,
                               "display.float_format", number):
            shown = frame.copy()
            for col in shown.columns:  # nullable integers and strings ignore na_rep
                if not pd.api.types.is_float_dtype(shown[col]) and shown[col].isna().any():
                    shown[col] = shown[col].astype(object).where(shown[col].notna(), "n/a")
            print(shown.to_string(index=False, na_rep="n/a"))


def _filters(items: list[str] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items or []:
        if "=" not in item:
            raise WorkbenchError(f"--filter {item!r}: use DIMENSION=VALUE[,VALUE...], e.g. team=East")
        key, values = item.split("=", 1)
        out.setdefault(key.strip(), []).extend(_split(values))
    return out


def cmd_metrics(args: argparse.Namespace) -> int:
    from analysis.data.config import load_config
    from analysis.semantic.catalog import build_catalog
    from analysis.semantic.engine import metrics

    if args.list:
        catalog = build_catalog(load_config(args.config, data_dir=args.data))
        _print_frame(catalog.to_frame().drop(columns=["description"]), args.format)
        return 0
    if not args.data:
        raise WorkbenchError("metrics: give the data directory (or --list to see the catalog)")
    from analysis.data.loading import load

    ds = load(args.data, args.config, preset=args.source, engine=args.engine)
    ids = _split(args.metrics)
    if not ids:
        raise WorkbenchError("metrics: give --metrics id,id,... (see --list)")
    periods = _split(args.period) or None
    grain = args.grain
    if grain is None:  # the grain of the periods asked for, else months
        from analysis.data.periods import parse_period

        grain = parse_period(periods[0], fiscal_start_month=ds.config.fiscal_year_start_month).grain if periods else "month"
    frame = metrics(ds, ids, by=_split(args.by), grain=grain, periods=periods, filters=_filters(args.filter))
    _print_frame(frame, args.format)
    for mid, reason in frame.attrs.get("unavailable", {}).items():
        sys.stderr.write(f"note: {mid} not available: {reason}\n")
    return 0


def cmd_funnel(args: argparse.Namespace) -> int:
    from analysis.analytics.funnel import biggest_leak, stage_funnel
    from analysis.data.loading import load

    ds = load(args.data, args.config, preset=args.source, engine=args.engine)
    frame = stage_funnel(ds, args.period, by=_split(args.by) or None)
    _print_frame(frame, args.format)
    if not _split(args.by) and args.format == "table":
        leak = biggest_leak(frame)
        if leak:
            print(leak["text"])
    return 0


def cmd_stalled(args: argparse.Namespace) -> int:
    from analysis.analytics.funnel import stalled_deals
    from analysis.data.loading import load

    ds = load(args.data, args.config, preset=args.source, engine=args.engine)
    frame = stalled_deals(ds, as_of=args.as_of)  # None: the data's snapshot day
    _print_frame(frame, args.format)
    return 0


def cmd_forecast(args: argparse.Namespace) -> int:
    from analysis.data.loading import load
    from analysis.steering.outlook import period_outlook

    ds = load(args.data, args.config, preset=args.source, engine=args.engine)
    outlook = period_outlook(ds, args.period, metric=args.metric)
    if args.by:
        if outlook.simulation is None:
            raise WorkbenchError(f"forecast --by: {outlook.period.label} is over in the data; nothing to simulate")
        groups = outlook.simulation.groups[args.by]
        _print_frame(groups.assign(period=outlook.period.label, as_of=outlook.as_of.isoformat())[
            ["period", "as_of", *groups.columns]], args.format)
        return 0
    _print_frame(outlook.table, args.format)
    if args.format == "table":
        print()
        for line in outlook.sentences:
            print(line)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from analysis.data.loading import load
    from analysis.steering.plan import plan, summary

    ds = load(args.data, args.config, preset=args.source, engine=args.engine)
    frame = plan(ds, args.target, args.period, deal_size=args.deal_size, win_rate=args.win_rate,
                 head_count=args.head_count, lead_share=args.lead_share,
                 history=int(args.history) if str(args.history or "").isdigit() and len(args.history) <= 3 else args.history)
    if args.format == "table":
        frame = frame.drop(columns=["description"])
    _print_frame(frame, args.format)
    if args.format == "table":
        print()
        print(summary(frame))
        for step, why in frame.attrs.get("unavailable", {}).items():
            print(f"note: {step} left out: {why}")
    return 0


def cmd_coach(args: argparse.Namespace) -> int:
    import pandas as pd

    from analysis.data.loading import load
    from analysis.steering.coaching import coaching_notes, coaching_summary

    ds = load(args.data, args.config, preset=args.source, engine=args.engine)
    notes = coaching_notes(ds, args.period, role=args.role)
    flags, worth = notes.flags, notes.worth_a_look
    if args.format == "table":
        print(coaching_summary(flags))
        for sentence in flags.sentence:
            print(f"- {sentence}")
        if len(flags):
            print()
            _print_frame(flags[["rep_id", "flag", "evidence", "mentor_rep_id"]], "table")
        if len(worth):
            print("\nWorth a look (a large gap, not yet significant; no mentor):")
            for sentence in worth.sentence:
                print(f"- {sentence}")
        return 0
    cols = ["rep_id", "name", "team", "role", "flag", "kind", "metric", "value", "peer_value", "peers", "evidence",
            "p_value", "q_value", "mentor_rep_id", "mentor_name", "sentence"]
    both = pd.concat([flags.assign(note="flag"), worth.assign(note="worth a look")], ignore_index=True)
    _print_frame(both[["note", *[c for c in cols if c in both]]], args.format)
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from analysis.reports.review import render_review

    path = render_review(
        cadence=args.cadence,
        period=args.period,
        data=args.data,
        config=args.config,
        source=args.source,
        engine=args.engine,
        out=args.out,
        team=args.team,
        rep=args.rep,
        progress=not args.quiet,
        pdf=args.pdf,
        cell_timeout=args.cell_timeout,
    )
    print(path)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from analysis.data.schema import describe

    print(describe())
    return 0


def _source_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default=None, metavar="NAME",
                   help="how to read the files: auto (default: a recognised CRM export, else the canonical "
                        "tables), canonical, salesforce, hubspot, pipedrive; overrides source: in workbench.yml")


def _engine_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default=None, metavar="NAME",
                   help="compute engine: duckdb (default) or spark; overrides engine: in workbench.yml "
                        "(a postgresql:// data URL computes in PostgreSQL)")


def cmd_load_db(args: argparse.Namespace) -> int:
    from analysis.data.engines import copy_to_database
    from analysis.data.loading import load

    if "://" not in args.url or not args.url.split("://", 1)[0].startswith("postgres"):
        raise WorkbenchError(f"load-db: {args.url} is not a PostgreSQL URL; give "
                             "postgresql://user@host:5432/db?schema=crm")
    ds = load(args.data, args.config, preset=args.source)
    counts = copy_to_database(ds, args.url, replace=args.replace)
    for table, rows in counts.items():
        print(f"{table:16} {rows:>10,} rows")
    print(f"copied {len(counts)} tables into {args.url}; read them with: python -m analysis metrics '{args.url}' "
          "--config workbench.yml ...", file=sys.stderr)
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from analysis.data.mapping import preset_descriptions, preset_text

    if args.action == "show":
        if not args.name:
            raise WorkbenchError("presets show: give a preset name, e.g. presets show salesforce")
        print(preset_text(args.name), end="")
        return 0
    for name, text in preset_descriptions().items():
        print(f"{name:12} {text}")
    print("\nUse one with source: NAME in workbench.yml (or --source NAME); `presets show NAME` prints it as a "
          "mapping to copy under columns: and adapt.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from analysis.paths import REPORTS, SAMPLE_DATA

    parser = _Parser(
        prog="python -m analysis",
        description="Sales performance workbench: validate CRM data, compute metrics, render reviews.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("sample", help="generate a synthetic dataset", description="Write a realistic, "
                       "internally consistent synthetic dataset in the canonical format.")
    p.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    p.add_argument("--reps", type=_at_least(4, " (a team needs a manager, an SDR, an AE and an AM)"), default=40,
                   help="number of reps (default 40, at least 4)")
    p.add_argument("--months", type=_positive, default=24, help="months covered (default 24)")
    p.add_argument("--seed", type=_at_least(0), default=7, help="random seed (default 7)")
    p.add_argument("--end", type=_date, default=None,
                   help="last day covered (default: end of the last full quarter before today)")
    p.add_argument("--format", choices=["csv", "parquet", "mixed"], default="csv",
                   help="file format (default csv; parquet for large runs)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("validate", help="print a data-quality report (exit 1 on fatal problems)",
                       description="Check a dataset against the canonical data model and print every "
                       "problem by table and kind. Exit 0 when usable, 1 on fatal problems.")
    p.add_argument("data", help="data directory, DuckDB file or database URL")
    p.add_argument("--config", default=None, help="workbench.yml (default: the one beside the data)")
    _source_option(p)
    p.add_argument("--as-of", type=_date, default=None, help="snapshot date for the future-dated check")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("metrics", help="print metrics by dimension and period",
                       description="Compute catalog metrics by dimension and period grain. Columns: the "
                       "dimensions, period, then one per metric id (rates also _numerator, _denominator, "
                       "_low, _high: the 95%% Wilson interval).")
    p.add_argument("data", nargs="?", help="data directory, DuckDB file or database URL")
    p.add_argument("--metrics", default="", help="comma-separated metric ids, e.g. win_rate,revenue")
    p.add_argument("--by", default="", help="comma-separated dimensions, e.g. team or rep_id")
    p.add_argument("--grain", default=None,
                   help="day, week, month, quarter, half or year (default: the grain of --period, else month)")
    p.add_argument("--period", default="", help="period label(s), e.g. 2025-Q3 (default: every period)")
    p.add_argument("--filter", action="append", metavar="DIM=VALUE", help="keep only these values (repeatable)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--config", default=None, help="workbench.yml (default: the one beside the data)")
    _source_option(p)
    _engine_option(p)
    p.add_argument("--list", action="store_true", help="print the metric catalog instead")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("funnel", help="print the stage funnel of a period",
                       description="Cohort stage funnel: of the deals that entered each step in the period "
                       "(a skipped step counts as passed), how many advanced, were won, lost or are still open.")
    p.add_argument("data", help="data directory, DuckDB file or database URL")
    p.add_argument("--period", required=True, help="period label, e.g. 2025-Q3")
    p.add_argument("--by", default="", help="dimension(s), e.g. team")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--config", default=None, help="workbench.yml (default: the one beside the data)")
    _source_option(p)
    _engine_option(p)
    p.set_defaults(func=cmd_funnel)

    p = sub.add_parser("stalled", help="list stalled open deals, most stuck first",
                       description="Open deals whose days in their current step exceed the historical "
                       "quantile (config stalled_quantile, default p75) of time in that step.")
    p.add_argument("data", help="data directory, DuckDB file or database URL")
    p.add_argument("--as-of", type=_date, default=None,
                   help="date to measure from (default: the data's last day)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--config", default=None, help="workbench.yml (default: the one beside the data)")
    _source_option(p)
    _engine_option(p)
    p.set_defaults(func=cmd_stalled)

    p = sub.add_parser("forecast", help="print a period's forecasts with their backtest accuracy",
                       description="Forecasts of a period made from the data before it: the seasonal time "
                       "series model and the naive seasonal baseline (with rolling-backtest MAPE and bias), the "
                       "weighted open pipeline by category, and the simulated P10 / P50 / P90 outcome.")
    p.add_argument("data", help="data directory, DuckDB file or database URL")
    p.add_argument("--period", required=True, help="period to forecast, e.g. 2026-Q4 (its grain is used)")
    p.add_argument("--metric", default="revenue", help="additive metric for the time series (default revenue)")
    p.add_argument("--by", choices=["team", "rep_id"], default=None,
                   help="instead: the simulated outcome per team or rep, with the chance of reaching each quota")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--config", default=None, help="workbench.yml (default: the one beside the data)")
    _source_option(p)
    _engine_option(p)
    p.set_defaults(func=cmd_forecast)

    p = sub.add_parser("plan", help="work back from a revenue target to deals, leads and daily activities",
                       description="North Star plan: target -> won deals (average deal size) -> opportunities "
                       "(win rate) -> funnel steps and leads (historical conversions) -> activities (per "
                       "opportunity) -> per rep and per working day. Every assumption comes from the 12 months "
                       "before the period unless overridden.")
    p.add_argument("data", help="data directory, DuckDB file or database URL")
    p.add_argument("--target", type=float, required=True, help="revenue target, e.g. 5000000")
    p.add_argument("--period", required=True, help="planned period, e.g. 2026 or 2026-Q4")
    p.add_argument("--deal-size", type=float, default=None, help="override the average deal size")
    p.add_argument("--win-rate", type=float, default=None, help="override the win rate (0-1)")
    p.add_argument("--head-count", type=int, default=None, help="override the number of selling reps")
    p.add_argument("--lead-share", type=float, default=None, help="override the share of opportunities from leads")
    p.add_argument("--history", default=None, help="history for the assumptions: months (12) or a period (2025)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--config", default=None, help="workbench.yml (default: the one beside the data)")
    _source_option(p)
    _engine_option(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("coach", help="print coaching flags: reps significantly below peers, with a mentor",
                       description="Reps significantly below the other reps of their role on a coached measure "
                       "(multiple comparisons controlled; small samples never flagged), patterns such as many calls "
                       "but few meetings, each with the peer strongest on that measure as mentor.")
    p.add_argument("data", help="data directory, DuckDB file or database URL")
    p.add_argument("--period", required=True, help="period label, e.g. 2025-Q3")
    p.add_argument("--role", default=None, help="only this role (SDR, AE, AM)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--config", default=None, help="workbench.yml (default: the one beside the data)")
    _source_option(p)
    _engine_option(p)
    p.set_defaults(func=cmd_coach)

    p = sub.add_parser("review", help="render a periodic review report",
                       description="Run the review notebook with papermill and write a self-contained "
                       "HTML report to reports/<cadence>/<period>/<scope>.html.")
    p.add_argument("--cadence", default="quarterly", choices=["monthly", "quarterly", "semiannual", "annual"])
    p.add_argument("--period", default=None, help="e.g. 2025-Q3 (default: last complete period in the data)")
    p.add_argument("--data", default=str(SAMPLE_DATA), help="data source (default: the sample)")
    p.add_argument("--config", default=None, help="workbench.yml (default: the one beside the data)")
    _source_option(p)
    _engine_option(p)
    p.add_argument("--out", type=Path, default=REPORTS, help="reports directory (default reports/)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--team", default=None, help="review one team")
    scope.add_argument("--rep", default=None, help="review one rep (rep_id)")
    p.add_argument("--pdf", action="store_true", help="also print the report to PDF (needs Debian's chromium)")
    p.add_argument("--cell-timeout", type=float, default=None, metavar="SECONDS",
                   help="seconds one notebook cell may run before the render fails (default 900)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("load-db", help="copy a dataset's canonical tables into a PostgreSQL schema",
                       description="Read DATA (a folder, a CRM export, a DuckDB file) and copy its canonical "
                       "tables into the schema of URL (created when missing), so that the workbench can compute "
                       "in PostgreSQL: then give the URL as the data of any command.")
    p.add_argument("data", help="data directory or DuckDB file")
    p.add_argument("url", help="postgresql://user@host:5432/db?schema=crm")
    p.add_argument("--config", default=None, help="workbench.yml (default: the one beside the data)")
    _source_option(p)
    p.add_argument("--replace", action="store_true", help="replace tables that already exist in the schema")
    p.set_defaults(func=cmd_load_db)

    p = sub.add_parser("presets", help="list the CRM import presets, or print one",
                       description="Import presets read a CRM's native export files unchanged (source: NAME in "
                       "workbench.yml). `presets show NAME` prints one in the mapping language of columns:.")
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    p.add_argument("name", nargs="?", default=None, help="preset name (with show)")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("schema", help="print the canonical data model",
                       description="Print every table and column of the canonical data model as Markdown.")
    p.set_defaults(func=cmd_schema)
    return parser


class _TaggedStdout:
    """Standard output that names itself in an OSError it raises (a full disk behind ``>``)."""

    def __init__(self, stream):
        self._stream = stream

    def _call(self, name: str, *args):
        try:
            return getattr(self._stream, name)(*args)
        except OSError as err:
            if err.filename is None:
                err.filename = STDOUT
            raise

    def write(self, text: str) -> int:
        return self._call("write", text)

    def writelines(self, lines) -> None:
        return self._call("writelines", lines)

    def flush(self) -> None:
        return self._call("flush")

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _discard_stdout(stream) -> None:
    """After standard output failed (disk full): point the process's stdout at the null device so
    that Python's own flush at exit cannot fail again (a second message, exit code 120). Only for
    the real standard output; a replaced ``sys.stdout`` (tests) is left alone."""
    if stream is None or stream is not sys.__stdout__:
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass


def _one_line(text: object) -> str:
    return " ".join(str(text).splitlines()) or "(no message)"


def _environment(err: BaseException, args: argparse.Namespace) -> EnvironmentProblem | None:
    """The exit-4 problem when ``err`` is, or was raised from, an OSError of the environment."""
    if isinstance(err, EnvironmentProblem):
        return err
    cause = EnvironmentProblem.caused_by(err)
    if cause is None:
        return None
    out = getattr(args, "out", None)
    option = "--out" if out is not None and cause.filename != STDOUT else None
    problem = EnvironmentProblem.from_os_error(cause, where=out, option=option)
    if cause is not err and not isinstance(err, OSError):  # keep what the workbench said too
        problem = EnvironmentProblem(f"{problem} ({err})")
    return problem


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    stdout = sys.stdout
    sys.stdout = _TaggedStdout(stdout)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a full disk behind > shows here, not after the exit code is decided
        return code
    except BrokenPipeError:  # the reader stopped early (| head): not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except Exception as err:
        problem = _environment(err, args)
        if problem is not None:
            if getattr(EnvironmentProblem.caused_by(err), "filename", None) == STDOUT:
                _discard_stdout(stdout)
            sys.stderr.write(f"error: {_one_line(problem)}\n")
            return problem.exit_code
        if isinstance(err, WorkbenchError):
            sys.stderr.write(f"error: {_one_line(err)}\n")
            return err.exit_code
        if args.debug:
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        sys.stderr.write(f"error: internal error ({type(err).__name__}: {first}); rerun with --debug\n")
        return 3
    finally:
        sys.stdout = stdout
        if stdout is not None:
            try:  # what is still buffered, so that a failure cannot surface after the exit code
                stdout.flush()
            except (OSError, ValueError):
                pass


if __name__ == "__main__":
    sys.exit(main())
