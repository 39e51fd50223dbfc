"""From raw text to canonical values, and the value rules that decide what a figure may use.

One place holds the rule of the product that a flagged value never reaches a figure: the
same rules are counted by :mod:`analysis.validation` (with file and row) and applied by
:mod:`analysis.loading` when it builds the canonical tables. :func:`checked_table` gives both
of them one table with, for each canonical column ``c`` of the input,

* ``__c``: the value as parsed (NULL when empty, unparseable or ambiguous; see
  :mod:`analysis.locale` for numbers and dates under a ``locale``);
* ``__c__amb``: the text was ambiguous (``1.200`` with no locale set);
* ``__c__v``: the value after the rules on the column alone (non-finite, negative, above
  ``limits.max_amount``, out of range, dates outside the plausible window, unknown category
  values, records dated after the snapshot);
* ``__c__f``: the final value, after the rules across columns (a close date before the
  creation date);

and ``__keep``: the row is used by figures. A row is left out of every figure when a required
value is empty after the rules, when a closed deal has no valid close date, or when a deal's
stage contradicts its status. Everything left out is counted by ``validate`` under the rule
that caught it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import ibis
import ibis.expr.datatypes as dt

from analysis.data import schema
from analysis.data.config import STATUS_STAGES, Config
from analysis.data.locale import Locale, date_value, number, timestamp_value
from analysis.data.schema import STEPS, Column, normalize_token

ROW = "_row"  # 1-based row number within its file (data rows, header excluded)
FILE = "_file"  # file the row came from

CANONICAL_DTYPES = {
    "id": dt.string,
    "string": dt.string,
    "category": dt.string,
    "timestamp": dt.Timestamp(),
    "date": dt.date,
    "money": dt.float64,
    "number": dt.float64,
    "integer": dt.int64,
}

PARSED_TYPES = ("timestamp", "date", "money", "number", "integer")


# -- categories and stages -----------------------------------------------------------------


def _category_map(column: Column) -> dict[str, str]:
    mapping = {normalize_token(v): v for v in column.allowed or ()}
    if column.name == "status":
        mapping.update(STATUS_STAGES)  # "Closed Won" -> won
    return mapping


def _token(expr: ibis.StringValue) -> ibis.StringValue:
    return expr.lower().re_replace(r"[\s_\-]", "")


def canonical_category(value: str, column: Column) -> str:
    """The canonical spelling of one category value (unknown values are returned as given)."""
    return _category_map(column).get(normalize_token(value), value)


def step_expr(stage: ibis.StringValue, config: Config, steps: dict[str, str] | None = None) -> ibis.StringValue:
    """Canonical step of a stage column (config first, then canonical names, then closed stages).

    ``steps`` maps each stage value of the data to its step, found once at load time; without
    it the stage names are normalised row by row.
    """
    if steps is not None:
        return stage.substitute(steps, else_=ibis.null(dt.string)) if steps else ibis.null(dt.string)
    mapping: dict[str, str] = {}
    mapping.update(STATUS_STAGES)
    mapping.update({normalize_token(s): s for s in STEPS})
    mapping.update({normalize_token(s.name): s.step for s in config.stages})
    exact = {s.name: s.step for s in config.stages}
    normalised = _token(stage).substitute(mapping, else_=ibis.null(dt.string))
    if not exact:
        return normalised
    # configured names as written map directly (no per-row string normalisation)
    return ibis.cases((stage.isin(list(exact)), stage.substitute(exact)), else_=normalised)


# -- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A parsed column: the value, and whether the text was ambiguous (then the value is NULL)."""

    value: ibis.Value
    ambiguous: ibis.BooleanValue | None = None


def parse(
    expr: ibis.Value,
    column: Column,
    mapping: dict[str, str] | None = None,
    *,
    trim: bool = True,
    locale: Locale | None = None,
) -> Parsed:
    """Parse a raw column into its canonical type; text that does not parse becomes NULL.

    ``mapping`` (category columns) lists the raw values to respell, found once at load time;
    without it the column is normalised row by row. ``trim`` strips surrounding spaces from
    text (an empty text is missing either way). Numbers and dates given as text are read under
    ``locale`` (:mod:`analysis.locale`); without one an ambiguous text (``1.200``,
    ``03/04/2025``) is NULL and flagged, never guessed.
    """
    t = expr.type()
    kind = column.type
    if kind in ("id", "string", "category"):
        if t.is_floating():
            expr = expr.try_cast("int64") if kind == "id" else expr
        out = expr.cast("string")
        out = (out.strip() if trim or not t.is_string() else out).nullif("")
        if kind == "category":
            if mapping is None:
                out = _token(out).substitute(_category_map(column), else_=out)
            elif mapping:
                out = out.substitute(mapping, else_=out)
        return Parsed(out)
    if t.is_string():
        text = expr.strip().nullif("")
        if kind == "timestamp":
            p = timestamp_value(text, locale)
        elif kind == "date":
            p = date_value(text, locale)
        else:
            p = number(text, locale)
        value = p.value
        if kind == "integer":
            value = ibis.cases((value.isinf() | value.isnan(), ibis.null(dt.float64)), else_=value)
            value = ibis.cases((value == value.round(0), value.try_cast(dt.int64)), else_=ibis.null(dt.int64))
        return Parsed(value, p.ambiguous)
    if kind == "timestamp":
        if t.is_timestamp():
            return Parsed(expr.cast(dt.Timestamp()) if t.timezone else expr)
        if t.is_date():
            return Parsed(expr.cast(dt.Timestamp()))
        return Parsed(ibis.null(dt.Timestamp()))
    if kind == "date":
        if t.is_timestamp():
            return Parsed(expr.date())
        if t.is_date():
            return Parsed(expr)
        return Parsed(ibis.null(dt.date))
    if kind in ("money", "number"):
        if t.is_numeric() or t.is_boolean():
            return Parsed(expr.cast(dt.float64))
        return Parsed(ibis.null(dt.float64))
    if kind == "integer":
        return Parsed(expr.try_cast(dt.int64))
    raise AssertionError(kind)


def coerce(
    expr: ibis.Value, column: Column, mapping: dict[str, str] | None = None, *, trim: bool = True,
    locale: Locale | None = None,
) -> ibis.Value:
    """The parsed value of :func:`parse` (NULL for text that does not parse)."""
    return parse(expr, column, mapping, trim=trim, locale=locale).value


def unread(raw: ibis.Value, value: ibis.Value, column: Column) -> ibis.BooleanValue:
    """Text was given but gave no usable value: it did not parse, was ambiguous, or (a category
    with allowed values) is not one of them. What makes a column "mostly unreadable"."""
    text = raw.strip()
    given = text.notnull() & (text != "")
    return given & (value.isnull() if not column.allowed else ~value.isin(list(column.allowed)))


# -- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What the rules compare with: the plausibility limits and the data's days."""

    earliest: date  # dates before it are errors
    latest: date  # dates after it are errors (snapshot + years_ahead)
    snapshot: date  # the data's snapshot day: closed deals and records must not be later
    today_end: datetime  # start of the day after today (or after config.as_of)
    max_amount: float


def context(config: Config, snapshot: date, today: date) -> Context:
    lim = config.limits
    try:
        latest = snapshot.replace(year=snapshot.year + lim.years_ahead)
    except ValueError:  # 29 February
        latest = snapshot + timedelta(days=365 * lim.years_ahead)
    return Context(lim.earliest_date, latest, snapshot, datetime.combine(today + timedelta(days=1), time()),
                   lim.max_amount)


@dataclass(frozen=True)
class Rule:
    """One rule on one column: ``cond`` is true on the rows it flags.

    ``excludes`` is what a flagged row loses: ``value`` (the value becomes empty) or ``row``
    (the row is left out of every figure); None for rules that only inform.
    """

    check: str
    column: str | None
    cond: Any
    message: str
    excludes: str | None = "value"


def _type_words(kind: str) -> str:
    return {
        "timestamp": "ISO 8601 date-times",
        "date": "ISO 8601 dates",
        "money": "numbers",
        "number": "numbers",
        "integer": "whole numbers",
    }[kind]


def _day(v: Any) -> date:
    return v.date() if isinstance(v, datetime) else v


def _as_date(v: Any, kind: str) -> Any:
    return v.date() if kind == "timestamp" else v


def column_rules(name: str, t: ibis.Table, present: list[str], ctx: Context, locale: Locale | None,
                 facts: dict[str, dict] | None = None) -> list[Rule]:
    """Rules on each column alone, as conditions on :func:`checked_table`'s first stage.

    ``facts`` (per column: ``min``, ``max``, ``nonfinite`` of typed values, ``values`` of a
    category) leave out the rules they prove cannot fire.
    """
    spec = schema.TABLES[name]
    rules: list[Rule] = []
    for c in spec.columns:
        if c.name not in present:
            continue
        f = (facts or {}).get(c.name, {})
        raw, val = t[c.name], t[f"__{c.name}"]
        if c.type in PARSED_TYPES and raw.type().is_string():
            text = raw.strip()
            amb = t[f"__{c.name}__amb"]
            rules.append(Rule("ambiguous", c.name, amb,
                              f"{c.name} values that read differently by locale (set locale: in workbench.yml)"))
            words = _type_words(c.type) if locale is None else f"{_type_words(c.type)} or {locale.name or 'locale'} values"
            rules.append(Rule("unparseable", c.name, text.notnull() & (text != "") & val.isnull() & ~amb,
                              f"{c.name} values that are not {words}"))
        lo, hi = f.get("min"), f.get("max")
        known = "min" in f
        if c.type in ("money", "number"):
            if f.get("nonfinite", 1):
                rules.append(Rule("non_finite", c.name, val.isnan() | val.isinf(), f"{c.name} is NaN or infinite"))
            finite = ~(val.isnan() | val.isinf())
            if c.nonnegative and not (known and (lo is None or lo >= 0)):
                rules.append(Rule("negative_amount", c.name, finite & (val < 0), f"{c.name} below zero"))
            above_min = (lambda v: v > c.min_value) if c.exclusive_min else (lambda v: v >= c.min_value)
            if known and (lo is None or (
                    (c.min_value is None or above_min(lo)) and (c.max_value is None or hi <= c.max_value)
                    and max(abs(lo), abs(hi)) <= ctx.max_amount)):
                pass  # every value is within its bounds
            elif c.min_value is not None or c.max_value is not None:
                cond = ibis.literal(False)
                if c.min_value is not None:
                    cond = cond | ~above_min(val)
                if c.max_value is not None:
                    cond = cond | (val > c.max_value)
                bounds = (f"not above {c.min_value}" if c.exclusive_min and c.max_value is None
                          else f"outside {c.min_value}..{c.max_value}")
                rules.append(Rule("out_of_range", c.name, finite & cond, f"{c.name} {bounds}"))
            else:
                rules.append(Rule("implausible_value", c.name, finite & (val.abs() > ctx.max_amount),
                                  f"{c.name} above {ctx.max_amount:,.0f} (limits.max_amount)"))
        if c.type in ("date", "timestamp") and not (known and (lo is None or (
                _day(lo) >= ctx.earliest and _day(hi) <= ctx.latest))):
            d = _as_date(val, c.type)
            rules.append(Rule("implausible_date", c.name,
                              (d < ibis.literal(ctx.earliest)) | (d > ibis.literal(ctx.latest)),
                              f"{c.name} before {ctx.earliest} or after {ctx.latest} (limits.earliest_date, "
                              "limits.years_ahead)"))
        if c.allowed and not ("values" in f and f["values"] <= set(c.allowed)):
            check = "unknown_status" if c.name == "status" and name == "opportunities" else "unknown_value"
            rules.append(Rule(check, c.name, val.notnull() & ~val.isin(list(c.allowed)),
                              f"{c.name} not one of {', '.join(c.allowed)}"))
        if c.name in spec.not_future and not (known and (hi is None or _day(hi) < ctx.today_end.date())):
            rules.append(Rule("future_dated", c.name, val >= ibis.literal(ctx.today_end),
                              f"{c.name} after the data's as-of date"))
    return rules


def row_rules(name: str, t: ibis.Table, present: list[str], ctx: Context) -> list[Rule]:
    """Rules across columns, as conditions on the values left by :func:`column_rules`."""
    spec = schema.TABLES[name]
    rules: list[Rule] = []
    for earlier, later in spec.ordered:
        if earlier in present and later in present:
            e = _as_date(t[f"__{earlier}__v"], spec.column(earlier).type)
            l = _as_date(t[f"__{later}__v"], spec.column(later).type)
            rules.append(Rule("date_order", later, l < e, f"{later} before {earlier}"))
    if name == "opportunities":
        status = t["__status__v"]
        closed = status.isin(["won", "lost"])
        if "close_date" in present:
            close = t["__close_date__v"]
            rules.append(Rule("closed_after_snapshot", "close_date", closed & (close > ibis.literal(ctx.snapshot)),
                              f"won or lost deals closing after the data's snapshot day {ctx.snapshot}"))
        if "stage" in present:
            step = t["__step"]
            rules.append(Rule("stage_status_mismatch", "stage",
                              ((status == "open") & step.isin(["won", "lost"]))
                              | ((status == "won") & (step == "lost"))
                              | ((status == "lost") & (step == "won")),
                              "a Closed Won/Lost stage on a deal of another status", "row"))
    return rules


def parsed_columns(rt: Any, config: Config) -> dict[str, Any]:
    """The first stage of :func:`checked_table`: ``__c`` (parsed) and ``__c__amb`` (ambiguous)
    for each canonical column of the raw table. The loader computes them once per load."""
    spec = schema.TABLES[rt.name]
    raw = rt.expr
    loc = config.parsed_locale
    first: dict[str, Any] = {}
    for c in spec.columns:
        if c.name not in rt.columns:
            continue
        p = parse(raw[c.name], c, rt.maps.get(c.name), trim=rt.trim, locale=loc)
        first[f"__{c.name}"] = p.value
        if c.type in PARSED_TYPES and raw[c.name].type().is_string():
            first[f"__{c.name}__amb"] = (p.ambiguous if p.ambiguous is not None else ibis.literal(False)).fill_null(False)
    return first


def checked_table(rt: Any, config: Config, ctx: Context) -> tuple[ibis.Table, list[Rule]]:
    """Raw rows with parsed, checked and final values beside them, and every rule (see module)."""
    name = rt.name
    spec = schema.TABLES[name]
    raw = rt.expr
    present = [c.name for c in spec.columns if c.name in rt.columns]
    loc = config.parsed_locale
    if all(f"__{c}" in raw.columns for c in present):
        t = raw  # parsed once at load
    else:
        t = raw.mutate(**parsed_columns(rt, config))
    rules = column_rules(name, t, present, ctx, loc, rt.facts)
    second: dict[str, Any] = {}
    for col in present:
        bad = [r.cond for r in rules if r.column == col and r.excludes == "value"]
        v = t[f"__{col}"]
        second[f"__{col}__v"] = _blank(v, bad)
    t = t.mutate(**second)
    if name in ("opportunities", "stage_history") and "stage" in present:
        t = t.mutate(__step=step_expr(t["__stage__v"], config, rt.steps))
    cross = row_rules(name, t, present, ctx)
    third: dict[str, Any] = {}
    for col in present:
        bad = [r.cond for r in cross if r.column == col and r.excludes == "value"]
        third[f"__{col}__f"] = _blank(t[f"__{col}__v"], bad)
    t = t.mutate(**third)
    keep = ibis.literal(True)
    for c in spec.columns:
        if c.required and c.name in present:
            keep = keep & t[f"__{c.name}__f"].notnull()
    for r in cross:
        if r.excludes == "row":
            keep = keep & ~r.cond.fill_null(False)
    if name == "opportunities" and "close_date" in present:
        keep = keep & ~(t["__status__f"].isin(["won", "lost"]) & t["__close_date__f"].isnull())
    t = t.mutate(__keep=keep.fill_null(False))
    return t, [*rules, *cross]


def _blank(v: Any, conds: list[Any]) -> Any:
    if not conds:
        return v
    bad = conds[0]
    for c in conds[1:]:
        bad = bad | c
    return ibis.cases((bad.fill_null(False), ibis.null(v.type())), else_=v)


def required_missing(name: str, t: ibis.Table, present: list[str], *, trim: bool) -> list[Rule]:
    """Empty required values (informative: the row is left out through ``__keep``)."""
    spec = schema.TABLES[name]
    out = []
    for c in spec.columns:
        if not (c.required and c.name in present):
            continue
        raw = t[c.name]
        if not raw.type().is_string():
            empty = raw.isnull()
        elif not trim:
            empty = raw.isnull() | (raw == "")
        else:
            empty = raw.isnull() | (raw.strip() == "")
        out.append(Rule("missing_value", c.name, empty, f"{c.name} is empty", "row"))
    if name == "opportunities" and "close_date" in present:
        raw = t["close_date"]
        empty = raw.isnull() if not raw.type().is_string() else (raw.isnull() | (raw.strip() == ""))
        out.append(Rule("closed_without_date", "close_date", t["__status__v"].isin(["won", "lost"]) & empty,
                        "won or lost deals without a close date", "row"))
    return out
