"""Data-quality checks (SPEC section 2), driven by the data model in :mod:`analysis.schema`.

``check(dataset)`` runs every rule and returns a :class:`QualityReport`; ``validate(source)``
loads first and turns fatal load problems into the same report, so the command line, the Python
API and the reports' data-quality appendix all show the same findings.

Each rule is counted in one pass over each table (plus one anti-join per reference); example
rows are fetched only for rules that fired. Rows are named by file and 1-based data row
(the header is not counted), so ``opportunities.csv row 12`` is the 12th deal in the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import ibis
import pandas as pd

from . import schema
from .errors import DataError
from .loading import FILE, ROW, Dataset, coerce, load, step_expr

#: Every check: id -> (title, severity, how to fix). Severity "fatal" stops a run; "problem"
#: rows are excluded or may distort a figure; "note" is informational.
CHECKS: dict[str, tuple[str, str, str]] = {
    "missing_table": ("Missing required table", "fatal", "add the table's file to the data folder"),
    "missing_column": ("Missing required column", "fatal", "add the column (names are case-insensitive)"),
    "unreadable_file": ("Unreadable file", "fatal", "fix or re-export the file"),
    "ambiguous_table": ("Table given twice", "fatal", "keep one file per table"),
    "unparseable": ("Unparseable values", "problem", "use ISO 8601 dates and plain numbers; the values are read as empty"),
    "missing_value": ("Empty required values", "problem", "fill the column; rows without it are left out of figures that need it"),
    "duplicate_id": ("Duplicate IDs", "problem", "make IDs unique; the first row per ID is kept"),
    "dangling_reference": ("Dangling references", "problem", "add the referenced rows or correct the IDs"),
    "negative_amount": ("Negative amounts", "problem", "amounts must be zero or more; record refunds separately"),
    "out_of_range": ("Values out of range", "problem", "correct the values"),
    "date_order": ("Dates out of order", "problem", "correct the dates (e.g. close_date must not be before created_at)"),
    "won_without_amount": ("Won deals without amount", "problem", "fill amount on won deals; they count as deals but add no revenue"),
    "unknown_stage": ("Unknown stages", "problem", "map the stage to a funnel step in workbench.yml (stages:)"),
    "unknown_status": ("Unknown statuses", "problem", "use open, won or lost"),
    "unknown_value": ("Unknown category values", "problem", "use one of the allowed values"),
    "stage_status_mismatch": ("Stage contradicts status", "problem", "a Closed Won/Lost stage must match the deal's status"),
    "future_dated": ("Future-dated records", "problem", "check the dates or the data's time zone"),
    "unchecked_reference": ("References not checked", "note", "add the referenced table to check these IDs"),
    "not_checked": ("Checks skipped for size", "note", "run python -m analysis validate for every check"),
}

EXAMPLES = 3


@dataclass
class Finding:
    """One data-quality rule that fired on one table (and column)."""

    table: str
    check: str
    count: int
    message: str
    column: str | None = None
    examples: list[dict] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return CHECKS[self.check][1]

    @property
    def title(self) -> str:
        return CHECKS[self.check][0]

    @property
    def fix(self) -> str:
        return CHECKS[self.check][2]


@dataclass
class QualityReport:
    """Findings of every data-quality rule for a dataset."""

    source: str
    as_of: date
    rows: dict[str, int]
    findings: list[Finding]

    @property
    def fatal(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "fatal"]

    @property
    def ok(self) -> bool:
        """True when the data is usable (no fatal problem)."""
        return not self.fatal

    def count(self, check: str, table: str | None = None) -> int:
        """Total count of a check (optionally for one table)."""
        return sum(f.count for f in self.findings if f.check == check and (table is None or f.table == table))

    def to_frame(self) -> pd.DataFrame:
        """One row per finding: table, check, column, severity, count, message, examples."""
        cols = ["table", "check", "title", "column", "severity", "count", "message", "fix", "examples"]
        rows = [
            {
                "table": f.table,
                "check": f.check,
                "title": f.title,
                "column": f.column,
                "severity": f.severity,
                "count": f.count,
                "message": f.message,
                "fix": f.fix,
                "examples": "; ".join(_example_text(e) for e in f.examples),
            }
            for f in self.findings
        ]
        return pd.DataFrame(rows, columns=cols)

    def summary(self) -> pd.DataFrame:
        """Per table: rows read, problem rows flagged, number of rules that fired."""
        tables = list(dict.fromkeys([*self.rows, *(f.table for f in self.findings)]))
        out = []
        for t in tables:
            fs = [f for f in self.findings if f.table == t and f.severity != "note"]
            out.append(
                {
                    "table": t,
                    "rows": self.rows.get(t),
                    "problems": sum(f.count for f in fs),
                    "rules_fired": len(fs),
                }
            )
        return pd.DataFrame(out, columns=["table", "rows", "problems", "rules_fired"])

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "as_of": self.as_of.isoformat(),
            "ok": self.ok,
            "rows": self.rows,
            "findings": [{**asdict(f), "severity": f.severity, "title": f.title} for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_text(self) -> str:
        """The plain-text report printed by ``python -m analysis validate``."""
        lines = [f"Data quality of {self.source} (as of {self.as_of.isoformat()})", ""]
        for f in self.fatal:
            lines.append(f"FATAL {f.message}")
        if self.fatal:
            lines.append("")
        for t in dict.fromkeys([*self.rows, *(f.table for f in self.findings if f.severity != "fatal")]):
            n = self.rows.get(t)
            fs = [f for f in self.findings if f.table == t and f.severity != "fatal"]
            status = "ok" if not [f for f in fs if f.severity == "problem"] else "problems"
            lines.append(f"{t}: {n if n is not None else '-'} rows read, {status}")
            for f in fs:
                col = f" [{f.column}]" if f.column else ""
                lines.append(f"  {f.severity:7} {f.title}{col}: {f.count} - {f.message}")
                for e in f.examples:
                    lines.append(f"            e.g. {_example_text(e)}")
        verdict = "usable" if self.ok else "NOT usable: fix the fatal problems above"
        n_prob = sum(f.count for f in self.findings if f.severity == "problem")
        lines += ["", f"Result: {verdict}; {n_prob} problem rows flagged."]
        return "\n".join(lines)


def _example_text(e: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in e.items())


# -- the rules ---------------------------------------------------------------------------------


def _as_of_bounds(ds: Dataset, as_of: date | datetime | None) -> tuple[date, datetime]:
    if as_of is None:
        as_of = ds.config.as_of or datetime.now(ds.config.tz).date()
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    return as_of, datetime.combine(as_of + timedelta(days=1), time())


def _rules(
    ds: Dataset, name: str, t: ibis.Table, as_of_end: datetime, *, fast: bool = False
) -> list[tuple[str, str | None, Any, str]]:
    """(check, column, boolean condition on the checked view, message) for one table.

    ``fast`` (large tables in the light check) compares raw text without trimming spaces:
    a whitespace-only ID then passes as present and a padded category value is flagged.
    """
    spec = schema.TABLES[name]
    rt = ds.raw[name]
    rules: list[tuple[str, str | None, Any, str]] = []
    for c in spec.columns:
        if c.name not in rt.columns:
            continue
        raw, val = t[c.name], t[f"__{c.name}"]
        can_fail = c.type in ("timestamp", "date", "money", "number", "integer") and raw.type().is_string()
        if can_fail:
            text = raw.strip()
            rules.append(
                ("unparseable", c.name, text.notnull() & (text != "") & val.isnull(),
                 f"{c.name} values that are not {_type_words(c.type)}")
            )
        if c.required:
            if not raw.type().is_string():
                empty = raw.isnull()  # a typed value is never blank
            elif fast or not rt.trim:
                empty = raw.isnull() | (raw == "")
            else:
                empty = raw.isnull() | (raw.strip() == "")
            rules.append(("missing_value", c.name, empty, f"{c.name} is empty"))
        if c.nonnegative:
            rules.append(("negative_amount", c.name, val < 0, f"{c.name} below zero"))
        if c.min_value is not None or c.max_value is not None:
            cond = ibis.literal(False)
            if c.min_value is not None:
                cond = cond | (val < c.min_value)
            if c.max_value is not None:
                cond = cond | (val > c.max_value)
            rules.append(("out_of_range", c.name, cond, f"{c.name} outside {c.min_value}..{c.max_value}"))
        if c.allowed:
            check = "unknown_status" if c.name == "status" and name == "opportunities" else "unknown_value"
            if fast and raw.type().is_string():  # raw text against the values that map to allowed ones
                unknown = raw.notnull() & (raw != "") & ~raw.isin([*c.allowed, *rt.maps.get(c.name, {})])
            else:
                unknown = val.notnull() & ~val.isin(list(c.allowed))
            rules.append((check, c.name, unknown, f"{c.name} not one of {', '.join(c.allowed)}"))
        if c.name in spec.not_future:
            rules.append(
                ("future_dated", c.name, val >= ibis.literal(as_of_end),
                 f"{c.name} after the data's as-of date")
            )
    for earlier, later in spec.ordered:
        if earlier in rt.columns and later in rt.columns:
            e, l = t[f"__{earlier}"], t[f"__{later}"]
            if spec.column(earlier).type != spec.column(later).type:
                e = e.date() if spec.column(earlier).type == "timestamp" else e
                l = l.date() if spec.column(later).type == "timestamp" else l
            rules.append(("date_order", later, l < e, f"{later} before {earlier}"))
    if name in ("opportunities", "stage_history") and "stage" in rt.columns:
        stage = t["__stage"]
        rules.append(
            ("unknown_stage", "stage", stage.notnull() & t["__step"].isnull(),
             "stage names that map to no funnel step")
        )
    if name == "opportunities":
        status, step, amount = t["__status"], t["__step"], t["__amount"]
        rules.append(
            ("won_without_amount", "amount", (status == "won") & (amount.isnull() | (amount == 0)),
             "won deals whose amount is empty or 0")
        )
        rules.append(
            ("stage_status_mismatch", "stage",
             ((status == "open") & step.isin(["won", "lost"]))
             | ((status == "won") & (step == "lost"))
             | ((status == "lost") & (step == "won")),
             "a Closed Won/Lost stage on a deal of another status")
        )
    return rules


def _type_words(kind: str) -> str:
    return {
        "timestamp": "ISO 8601 date-times",
        "date": "ISO 8601 dates",
        "money": "numbers",
        "number": "numbers",
        "integer": "whole numbers",
    }[kind]


def _checked_view(ds: Dataset, name: str) -> ibis.Table:
    """Raw rows with every canonical value beside them as ``__<column>``."""
    spec = schema.TABLES[name]
    raw = ds.raw[name].expr
    extra = {}
    for c in spec.columns:
        if c.name in raw.columns:
            extra[f"__{c.name}"] = coerce(raw[c.name], c, ds.raw[name].maps.get(c.name), trim=ds.raw[name].trim)
    if name in ("opportunities", "stage_history") and "__stage" in extra:
        extra["__step"] = step_expr(extra["__stage"], ds.config, ds.raw[name].steps)
    return raw.mutate(**extra)


def _examples(t: ibis.Table, cond: Any, name: str, column: str | None) -> list[dict]:
    key = schema.TABLES[name].key
    cols = [FILE, ROW]
    if key and key in t.columns and key != column:
        cols.append(key)
    if column and column in t.columns:
        cols.append(column)
    rows = t.filter(cond).select(*cols).order_by([FILE, ROW]).limit(EXAMPLES).to_pandas()
    out = []
    for r in rows.to_dict("records"):
        e = {"row": f"{r.pop(FILE)} row {r.pop(ROW)}"}
        e.update({k: (None if pd.isna(v) else str(v)) for k, v in r.items()})
        out.append(e)
    return out


def check(ds: Dataset, *, as_of: date | datetime | None = None, thorough: bool = True) -> QualityReport:
    """Run every data-quality rule on a loaded dataset.

    Parameters
    ----------
    ds
        A dataset from :func:`analysis.load`.
    as_of
        The snapshot date for the future-dated rule; default ``config.as_of`` or today in the
        company time zone.
    thorough
        When False, the duplicate and reference checks of tables larger than
        ``config.duplicate_check_max_rows`` are skipped, with a note saying so.
    """
    as_of_date, as_of_end = _as_of_bounds(ds, as_of)
    findings: list[Finding] = []
    rows: dict[str, int] = {}
    for name in ds.raw:
        t = _checked_view(ds, name)
        big = not thorough and ds.rows_read(name) > ds.config.duplicate_check_max_rows
        rules = _rules(ds, name, t, as_of_end, fast=big)
        aggs = {"__rows": t.count()}
        for i, (_, _, cond, _) in enumerate(rules):
            aggs[f"r{i}"] = cond.fill_null(False).cast("int64").sum()
        counts = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
        rows[name] = int(counts["__rows"])
        for i, (check_id, column, cond, message) in enumerate(rules):
            n = int(counts[f"r{i}"] or 0)
            if n:
                findings.append(
                    Finding(name, check_id, n, message, column, _examples(t, cond.fill_null(False), name, column))
                )
        if big:
            findings.append(Finding(name, "not_checked", rows[name],
                                    "duplicate IDs and references of this large table were not checked here, and "
                                    "values were not trimmed; python -m analysis validate checks everything"))
            continue
        findings.extend(_duplicates(t, name))
        findings.extend(_references(ds, name, t))
    return QualityReport(ds.source.location, as_of_date, rows, findings)


def _duplicates(t: ibis.Table, name: str) -> list[Finding]:
    key = schema.TABLES[name].key
    if not key or f"__{key}" not in t.columns:
        return []
    k = t[f"__{key}"]
    counted = t.filter(k.notnull()).aggregate(n=lambda s: s.count(), d=lambda s: s[f"__{key}"].nunique())
    n, d = counted.to_pyarrow().to_pylist()[0].values()
    dropped = int(n or 0) - int(d or 0)
    if not dropped:
        return []
    dup_keys = t.filter(k.notnull()).group_by(k.name(key + "__k")).aggregate(c=lambda s: s.count())
    dup_keys = dup_keys.filter(dup_keys.c > 1)
    cond = k.isin(dup_keys[key + "__k"])
    return [
        Finding(name, "duplicate_id", dropped, f"{key} repeated; {dropped} later rows dropped", key,
                _examples(t, cond, name, None))
    ]


def _references(ds: Dataset, name: str, t: ibis.Table) -> list[Finding]:
    spec = schema.TABLES[name]
    out: list[Finding] = []
    for c in spec.foreign_keys:
        if c.name not in ds.raw[name].columns:
            continue
        ref_table, ref_col = c.references.split(".")
        val = t[f"__{c.name}"]
        if not ds.has(ref_table):
            n = int(t.filter(val.notnull()).count().to_pyarrow().as_py())
            if n:
                out.append(Finding(name, "unchecked_reference", n,
                                   f"{c.name} points to {ref_table}, which is not in the data", c.name))
            continue
        ref_t = ds.table(ref_table)
        ref = ref_t.filter(ref_t[ref_col].notnull())[ref_col]  # NOT IN with a NULL matches nothing
        cond = val.notnull() & ~val.isin(ref)
        n = int(t.filter(cond).count().to_pyarrow().as_py())
        if n:
            out.append(Finding(name, "dangling_reference", n, f"{c.name} not found in {ref_table}.{ref_col}",
                               c.name, _examples(t, cond, name, c.name)))
    if name == "quotas" and "owner" in ds.raw[name].columns and ds.has("reps"):
        reps = ds.table("reps")
        owner = t["__owner"]
        rep_ids = reps.filter(reps.rep_id.notnull()).rep_id
        teams = reps.filter(reps.team.notnull()).team
        cond = owner.notnull() & ~owner.isin(rep_ids) & ~owner.isin(teams)
        n = int(t.filter(cond).count().to_pyarrow().as_py())
        if n:
            out.append(Finding(name, "dangling_reference", n, "owner is neither a rep_id nor a team in reps",
                               "owner", _examples(t, cond, name, "owner")))
    return out


def validate(source: Any, config: Any = None, *, as_of: date | datetime | None = None) -> QualityReport:
    """Load ``source`` and check it; fatal load problems become fatal findings (no exception)."""
    try:
        ds = load(source, config)
    except DataError as err:
        findings = [Finding(table, check_id, 1, message) for check_id, table, message in err.problems]
        as_of_date = as_of.date() if isinstance(as_of, datetime) else (as_of or date.today())
        return QualityReport(str(source), as_of_date, {}, findings)
    return ds.quality(as_of=as_of)
