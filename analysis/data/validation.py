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
from datetime import date, datetime
from typing import Any

import ibis
import pandas as pd

from analysis.data import schema
from analysis.data.loading import FILE, ROW, Dataset, load
from analysis.data.values import Rule, checked_table, required_missing
from analysis.errors import DataError

#: Every check: id -> (title, severity, how to fix). Severity "fatal" stops a run; "problem"
#: rows are excluded or may distort a figure; "note" is informational.
CHECKS: dict[str, tuple[str, str, str]] = {
    "missing_table": ("Missing required table", "fatal", "add the table's file to the data folder"),
    "missing_column": ("Missing required column", "fatal", "add the column (names are case-insensitive)"),
    "unreadable_file": ("Unreadable file", "fatal", "fix or re-export the file"),
    "ambiguous_table": ("Table given twice", "fatal", "keep one file per table"),
    "bad_mapping": ("Mapping does not fit the files", "fatal", "correct columns: in workbench.yml (see presets show)"),
    "fx_conflict": ("Conflicting exchange rates", "problem",
                    "keep one rate per currency and day; deals needing that rate are left out until then"),
    "duplicate_column": ("Column named twice", "fatal", "rename or delete one of the two columns"),
    "empty_table": ("Required table without rows", "fatal", "export the table again with its rows"),
    "mostly_unparseable": ("Column mostly unreadable", "fatal",
                           "set locale: (number and date format) or encoding: in workbench.yml, or fix the column"),
    "fx_missing": ("Deals without an exchange rate", "problem",
                   "add fx_rates rows (currency, date, rate_to_reporting) dated on or before the deals' close dates; "
                   "the deals are left out of every figure until then"),
    "fx_unusable": ("Most deals without an exchange rate", "fatal",
                    "set currency: to the deals' currency, or add fx_rates (currency, date, rate_to_reporting)"),
    "unusable_column": ("Column unreadable, treated as missing", "problem",
                        "set locale: in workbench.yml or fix the values; metrics that need the column are n/a"),
    "unparseable": ("Unparseable values", "problem",
                    "use ISO 8601 dates and plain numbers, or set locale: in workbench.yml; the values are left out"),
    "ambiguous": ("Ambiguous values", "problem",
                  "set locale: in workbench.yml (id-ID: 1.200 = 1200, 14/07/2025 day first; en-US: 1.200 = 1.2, "
                  "07/14/2025 month first); the values are left out until then"),
    "non_finite": ("NaN or infinite values", "problem", "write a real number; the values are left out"),
    "implausible_value": ("Implausibly large values", "problem",
                          "correct the values (or raise limits.max_amount); they are left out"),
    "implausible_date": ("Implausible dates", "problem",
                         "correct the dates (or change limits.earliest_date / limits.years_ahead); they are left out"),
    "closed_after_snapshot": ("Closed after the snapshot day", "problem",
                              "a won or lost deal cannot close after the data was exported; correct the close date"),
    "closed_without_date": ("Closed deals without close date", "problem",
                            "fill close_date on won and lost deals; they are left out until then"),
    "missing_value": ("Empty required values", "problem", "fill the column; rows without it are left out of figures that need it"),
    "duplicate_id": ("Duplicate IDs", "problem", "make IDs unique; the first row per ID is kept"),
    "dangling_reference": ("Dangling references", "problem", "add the referenced rows or correct the IDs"),
    "negative_amount": ("Negative amounts", "problem", "amounts must be zero or more; record refunds separately"),
    "out_of_range": ("Values out of range", "problem", "correct the values"),
    "date_order": ("Dates out of order", "problem", "correct the dates (e.g. close_date must not be before created_at)"),
    "won_without_amount": ("Won deals with amount 0", "note", "check the amounts; they count as deals and add no revenue"),
    "unknown_stage": ("Unknown stages", "problem", "map the stage to a funnel step in workbench.yml (stages:)"),
    "unknown_status": ("Unknown statuses", "problem", "use open, won or lost"),
    "unknown_value": ("Unknown category values", "problem", "use one of the allowed values"),
    "stage_status_mismatch": ("Stage contradicts status", "problem", "a Closed Won/Lost stage must match the deal's status"),
    "future_dated": ("Future-dated records", "problem", "check the dates or the data's time zone"),
    "import_note": ("How the export was read", "note", "see the preset with python -m analysis presets show NAME"),
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
        imported = [f for f in self.findings if f.check == "import_note"]
        for f in imported:
            lines.append(f"note: {f.message}")
        if imported:
            lines.append("")
        for t in dict.fromkeys([*self.rows, *(f.table for f in self.findings
                                              if f.severity != "fatal" and f.check != "import_note")]):
            n = self.rows.get(t)
            fs = [f for f in self.findings if f.table == t and f.severity != "fatal" and f.check != "import_note"]
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


def _as_of_date(ds: Dataset, as_of: date | datetime | None) -> date:
    if as_of is None:
        return ds.config.as_of or ds.today
    return as_of.date() if isinstance(as_of, datetime) else as_of


def _rules(ds: Dataset, name: str, as_of: date | None) -> tuple[ibis.Table, list]:
    """The checked view of one table and every rule on it (see :mod:`analysis.values`), plus
    the informative ones: empty required values, unknown stages, won deals with amount 0."""
    rt = ds.raw[name]
    ctx = ds.context
    if as_of is not None and as_of != ds.today:  # an explicit --as-of: the future-dated check from that day
        from analysis.data.values import context

        ctx = context(ds.config, ds.snapshot or as_of, as_of)
    t, rules = checked_table(rt, ds.config, ctx)
    rules = [*rules, *required_missing(name, t, rt.columns, trim=rt.trim)]
    if name in ("opportunities", "stage_history") and "stage" in rt.columns:
        rules.append(Rule("unknown_stage", "stage", t["__stage"].notnull() & t["__step"].isnull(),
                          "stage names that map to no funnel step", None))
    if name == "opportunities" and "amount" in rt.columns:
        rules.append(Rule("won_without_amount", "amount", (t["__status__f"] == "won") & (t["__amount__f"] == 0),
                          "won deals whose amount is 0", None))
    return t, rules


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
        A day to move the future-dated rule to (``validate --as-of``); by default the rules are
        the loader's own (records after today are flagged and left out), and the report is
        dated ``config.as_of`` or today.
    thorough
        When False, the duplicate and reference checks of tables larger than
        ``config.duplicate_check_max_rows`` are skipped, with a note saying so.
    """
    as_of_date = _as_of_date(ds, as_of)
    findings: list[Finding] = []
    rows: dict[str, int] = {}
    for name in ds.raw:
        t, rules = _rules(ds, name, None if as_of is None else as_of_date)
        big = not thorough and ds.rows_read(name) > ds.config.duplicate_check_max_rows
        aggs = {"__rows": t.count()}
        for i, r in enumerate(rules):
            aggs[f"r{i}"] = r.cond.fill_null(False).sum()
        counts = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
        rows[name] = int(counts["__rows"])
        for i, r in enumerate(rules):
            n = int(counts[f"r{i}"] or 0)
            if n:
                findings.append(
                    Finding(name, r.check, n, r.message, r.column, _examples(t, r.cond.fill_null(False), name, r.column))
                )
        for (table, column), reason in ds.unusable_columns.items():
            if table == name:
                findings.append(Finding(name, "unusable_column", 1, reason, column))
        if name == "opportunities" and ds.fx_implausible:
            findings.append(Finding(name, "implausible_value", ds.fx_implausible,
                                    f"amount or cost above {ds.config.limits.max_amount:,.0f} (limits.max_amount) "
                                    f"once converted to {ds.config.currency}", "amount"))
        if name == "fx_rates" and ds.fx_conflicts:
            listed = "; ".join(f"{r['currency']} on {r['date']}: {r['rates']} rates" for r in ds.fx_conflicts[:5])
            findings.append(Finding(name, "fx_conflict", len(ds.fx_conflicts),
                                    f"a currency has different rates on the same day, so neither is used ({listed})",
                                    "rate_to_reporting"))
        if name == "opportunities" and ds.fx_missing:
            n = sum(r["deals"] for r in ds.fx_missing)
            listed = "; ".join(f"{r['currency']}: {r['deals']:,} deals closing {r['first']} to {r['last']}"
                               for r in ds.fx_missing)
            findings.append(Finding(name, "fx_missing", n,
                                    f"deals in a currency other than {ds.config.currency} with no rate on their "
                                    f"close date are left out of every figure ({listed})", "currency"))
        if big:
            findings.append(Finding(name, "not_checked", rows[name],
                                    "duplicate IDs and references of this large table were not checked here; "
                                    "python -m analysis validate checks everything"))
            continue
        findings.extend(_duplicates(t, name))
        findings.extend(_references(ds, name, t))
    for note in ds.source.notes:
        findings.append(Finding("-", "import_note", 0, f"{ds.source.preset}: {note}"))
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


def validate(source: Any, config: Any = None, *, as_of: date | datetime | None = None,
             preset: str | None = None) -> QualityReport:
    """Load ``source`` (``preset`` as in :func:`analysis.load`) and check it; fatal load problems
    become fatal findings (no exception)."""
    try:
        ds = load(source, config, preset=preset)
    except DataError as err:
        findings = [Finding(table, check_id, 1, message) for check_id, table, message in err.problems]
        as_of_date = as_of.date() if isinstance(as_of, datetime) else (as_of or date.today())
        return QualityReport(str(source), as_of_date, {}, findings)
    return ds.quality(as_of=as_of)
