"""Review composer: the sections of a periodic review, each one call from the notebook.

``notebooks/review.ipynb`` stays thin: it sets parameters, calls :func:`setup`, then displays
each section function's output under a Markdown heading. Every section returns display
objects (HTML blocks, charts) built from the metric engine; numbers are formatted by the
catalog and every value from the data is HTML-escaped. A section whose data is missing says
so in one line instead of failing.

``render_review`` is what ``python -m analysis review`` runs: it executes the notebook with
papermill and publishes ``reports/<cadence>/<period>/<name>.html`` (``company.html``,
``team-east-smb-<hash>.html``, see :func:`report_name` and :mod:`analysis.render`).
"""

from __future__ import annotations

import hashlib
import html
import json
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from analysis.data import timeline
from analysis.data.loading import Dataset, load
from analysis.data.periods import Period, last_complete, parse_period
from analysis.data.timeline import employed
from analysis.errors import DataError, WorkbenchError
from analysis.format import Numbers
from analysis.paths import NOTEBOOKS, REPORTS
from analysis.reports import charts
from analysis.semantic.catalog import Catalog, build_catalog, catalog_version
from analysis.semantic.engine import compare, data_bounds, metrics

CADENCES = {"monthly": "month", "quarterly": "quarter", "semiannual": "half", "annual": "year"}
SCOPES = ("company", "team", "rep")
TREND_LENGTH = {"month": 12, "quarter": 8, "half": 6, "year": 4}

#: The review notebook's parameters, in the order of its ``parameters`` cell.
PARAMETERS = ("cadence", "period", "scope", "scope_value", "data", "config", "source", "engine")
#: Names IPython itself puts in a notebook's namespace.
_KERNEL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})

HEADLINE = [
    "revenue",
    "deals_won",
    "win_rate",
    "avg_deal_size",
    "sales_cycle_days",
    "pipeline_created",
    "quota_attainment",
]
BREAKDOWN = ["revenue", "deals_won", "win_rate", "avg_deal_size", "sales_cycle_days"]
#: Metrics of a rep-scope review's comparison with peers.
PEER_METRICS = ["revenue", "quota_attainment", "deals_won", "win_rate", "avg_deal_size", "sales_cycle_days",
                "opportunities_created", "calls_per_day", "meetings_per_week", "positive_call_rate",
                "leads_converted"]
ACTIVITY = ["calls_per_day", "emails_per_day", "meetings_per_week", "demos_per_week",
            "positive_call_rate", "email_reply_rate", "demo_completion_rate"]


class ReviewError(WorkbenchError):
    """A review parameter that cannot be used (one line: what, and how to fix it)."""


@dataclass
class Review:
    """Everything a review's sections need: data, catalog, period and scope."""

    ds: Dataset
    catalog: Catalog
    cadence: str
    period: Period
    scope: str
    scope_value: str | None
    parameters: dict
    started: float = field(default_factory=time.time)
    #: full tables the review shows in part, by attachment name (see :meth:`attach`)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def filters(self) -> dict[str, list[str]]:
        if self.scope == "team":
            return {"team": [self.scope_value]}
        if self.scope == "rep":
            return {"rep_id": [self.scope_value]}
        return {}

    @property
    def scope_label(self) -> str:
        if self.scope == "company":
            return self.ds.config.name or "Company"
        if self.scope == "team":
            return f"Team {self.scope_value}"
        return f"Rep {self.rep_name(self.scope_value)}"

    @property
    def subject(self) -> str:
        """Who the review is about, inside a sentence: "the company", "team East SMB", "Nadia Turner"."""
        if self.scope == "company":
            return "the company"
        if self.scope == "team":
            return f"team {self.scope_value}"
        return self.rep_name(self.scope_value)

    @property
    def title(self) -> str:
        return f"{self.cadence.capitalize()} review {self.period.label}: {self.scope_label}"

    @cached_property
    def reps(self) -> pd.DataFrame:
        """The reps table (read once per review)."""
        return self.ds.df("reps")

    @cached_property
    def rep_names(self) -> dict[str, str]:
        return dict(zip(self.reps.rep_id, self.reps.name))

    def rep_name(self, rep_id: str | None) -> str:
        return str(self.rep_names.get(rep_id, rep_id))

    @property
    def numbers(self) -> Numbers:
        """The one formatter of this review (reporting currency, display locale)."""
        return self.ds.config.numbers

    def fmt(self, metric_id: str, value: Any) -> str:
        return self.catalog.get(metric_id).fmt(value, self.numbers)

    def money(self, value: Any) -> str:
        """An amount in a sentence: compact, with the currency ("$27.1M")."""
        return self.numbers.money(value)

    def money_full(self, value: Any) -> str:
        """An amount in full with the currency ("$735,009"): tables, tooltips."""
        return self.numbers.money(value, compact=False)

    def cell(self, kind: str, digits: int = 0) -> Callable[[Any], str]:
        """A table column's format through the review's formatter (:meth:`Numbers.formatter`):
        ``money`` (the full figure with the currency), ``percent``, ``count`` or ``number``, with
        ``digits`` decimals (none by default in a review's tables)."""
        return self.numbers.formatter(kind, digits=digits)

    def attach(self, name: str, frame: pd.DataFrame, *, what: str) -> charts.HTMLBlock:
        """Keep the full table ``frame`` (``what``: "reps", "deals"...) and link it from the report.

        Rendered (``python -m analysis review``), it is written beside the report as
        ``<report>.<name>.csv`` (formula-safe, see :mod:`analysis.reports.export`) and published
        with it; in a live notebook it stays in ``r.tables[name]``.
        """
        import os

        from analysis.reports.export import write_csv
        from analysis.reports.render import ATTACH_DIR_ENV, ATTACH_STEM_ENV

        self.tables[name] = frame
        folder, stem = os.environ.get(ATTACH_DIR_ENV), os.environ.get(ATTACH_STEM_ENV)
        n = f"{self.numbers.number(len(frame))} {what}"
        if not (folder and stem):
            return note_block(f"All {n}: r.tables[{name!r}] in this notebook (a rendered report attaches them as a CSV file).")
        file = f"{stem}.{name}.csv"
        write_csv(frame, Path(folder) / file)
        text = f"All {n}: {file} (CSV, beside this report)."
        link = f'<a href="{html.escape(file, quote=True)}" download>{html.escape(file)}</a>'
        return charts.HTMLBlock(f'<p class="note"><em>All {html.escape(n)}: {link} (CSV, beside this report).</em></p>',
                                text=text)


# -- setup and parameters ----------------------------------------------------------------------


def default_period(ds: Dataset, cadence: str) -> Period:
    """The last complete period of the cadence, by the data's last day (not just today)."""
    grain = CADENCES[cadence]
    cutoff = timeline.snapshot_day(ds) + timedelta(days=1)
    return last_complete(grain, today=cutoff, fiscal_start_month=ds.config.fiscal_year_start_month)


def from_notebook(namespace: dict[str, Any]) -> Review:
    """:func:`setup` from the notebook's variables, refusing parameters it does not declare.

    Plain ``papermill -p team East`` only warns about an unknown parameter and injects it as a
    variable; here any plain value (text, number, list...) that is not a review parameter is
    refused with one line and a suggestion, before anything is loaded.
    """
    import difflib

    unknown = sorted(
        k for k, v in namespace.items()
        if not k.startswith("_") and k not in PARAMETERS and k not in _KERNEL_NAMES
        and isinstance(v, (str, int, float, bool, list, tuple, dict, type(None)))
    )
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, PARAMETERS, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ReviewError(f"unknown parameter {name!r}: {hint}the review's parameters are {', '.join(PARAMETERS)}")
    return setup(**{k: namespace[k] for k in PARAMETERS if k in namespace})


def setup(
    *,
    cadence: Any = "quarterly",
    period: Any = "",
    scope: Any = "company",
    scope_value: Any = "",
    data: Any = "",
    config: Any = "",
    source: Any = "",
    engine: Any = "",
) -> Review:
    """Check the review parameters and load the data; raise ReviewError with one line.

    Papermill's ``-p`` turns ``2025`` into an int (accepted as a year) and ``007`` into 7 (an
    id that no longer matches: pass it with ``-r scope_value 007`` to keep it text).
    """
    cadence = str(cadence).strip().lower()
    if cadence not in CADENCES:
        import difflib

        close = difflib.get_close_matches(cadence, CADENCES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ReviewError(f"cadence {cadence!r} is not one of {', '.join(CADENCES)}{hint}")
    scope = str(scope or "company").strip().lower()
    if scope not in SCOPES:
        raise ReviewError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    if not str(data or "").strip():
        raise ReviewError("no data source: set the data parameter to a folder of CRM tables")
    preset = str(source or "").strip() or None
    engine = str(engine or "").strip().lower() or None
    ds = load(str(data), str(config) if str(config or "").strip() else None, preset=preset, engine=engine)
    for column in ("close_date",):  # revenue, win rate and cycle, the review's headline, hang on it
        problem = ds.column_problem("opportunities", column)
        if problem:
            raise DataError(f"a review needs opportunities.{column}: {problem}")
    catalog = build_catalog(ds.config)
    grain = CADENCES[cadence]
    fsm = ds.config.fiscal_year_start_month
    if period in (None, "") or str(period).strip() == "":
        p = default_period(ds, cadence)
    else:
        p = parse_period(period, fiscal_start_month=fsm)
        if p.grain != grain:
            raise ReviewError(
                f"period {p.label} is a {p.grain}, but a {cadence} review needs a {grain} "
                f"(e.g. {default_period(ds, cadence).label})"
            )
    value = None if scope == "company" else str(scope_value).strip()
    if scope != "company":
        if not value:
            raise ReviewError(f"scope {scope} needs scope_value: the {'team name' if scope == 'team' else 'rep_id'}")
        reps = ds.df("reps")
        known = set(reps.team.dropna()) if scope == "team" else set(reps.rep_id)
        if value not in known:
            import difflib

            close = difflib.get_close_matches(value, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            extra = (" (papermill -p turns 007 into 7: pass ids with -r)"
                     if isinstance(scope_value, int) else "")
            raise ReviewError(f"{scope} {value!r} is not in the data{hint}{extra}")
    params = {"cadence": cadence, "period": p.label, "scope": scope, "scope_value": value or "",
              "data": str(data), "config": str(config or ""), "source": preset or "",
              "engine": engine or ""}
    return Review(ds, catalog, cadence, p, scope, value, params)


# -- helpers ---------------------------------------------------------------------------------------


def paragraph(text: str) -> charts.HTMLBlock:
    """A paragraph of generated narrative (escaped)."""
    return charts.HTMLBlock(f'<p class="narrative">{html.escape(text)}</p>', text=text)


def html_table(df: pd.DataFrame, **kw: Any) -> charts.HTMLBlock:
    return charts.table(df.reset_index(drop=True), index=False, **kw)


def long_table(r: Review, frame: pd.DataFrame, *, name: str, what: str, caption: str,
               formats: dict[str, Any] | None = None, summary: pd.DataFrame | None = None,
               summary_caption: str = "") -> list[Any]:
    """A ranked table of reps, teams or deals that reads well at any length.

    Up to ``config.review.list_all_up_to`` rows it is shown whole. A longer one shows its first
    and last ``config.review.top`` rows (numbered by their place in the whole list), says how many
    rows lie between them, shows ``summary`` (a distribution of all rows, by role or team) when
    given, and attaches the full table (:meth:`Review.attach`).
    """
    layout = r.ds.config.review
    frame = frame.reset_index(drop=True)
    if len(frame) <= layout.list_all_up_to:
        return [html_table(frame, formats=formats, caption=caption)]
    k, n = layout.top, len(frame)
    numbered = frame.copy()
    numbered.insert(0, "#", range(1, n + 1))
    formats = {"#": r.cell("count"), **(formats or {})}
    out: list[Any] = [
        html_table(numbered.head(k), formats=formats, caption=f"{caption}: the first {k} of {r.numbers.number(n)} {what}"),
        note_block(f"... {r.numbers.number(n - 2 * k)} more {what} between these and the last {k}."),
        html_table(numbered.tail(k), formats=formats, caption=f"{caption}: the last {k} of {r.numbers.number(n)} {what}"),
    ]
    if summary is not None and len(summary):
        out.append(html_table(summary, caption=summary_caption))
    out.append(r.attach(name, frame, what=what))
    return out


def ends(frame: pd.DataFrame, k: int, by: str | None = None) -> pd.DataFrame:
    """The first and last ``k`` rows of ``frame`` (of each ``by`` group), in their order."""
    if by is None:
        return frame if len(frame) <= 2 * k else pd.concat([frame.head(k), frame.tail(k)])
    parts = [ends(g, k) for _, g in frame.groupby(by, sort=False, dropna=False)]
    return pd.concat(parts) if parts else frame


def cover(r: Review) -> list[Any]:
    """The report's subtitle: what, for whom, which period, data up to when."""
    text = (f"{r.title}. Period {r.period.start:%d %b %Y} to {r.period.last_day:%d %b %Y}; "
            f"compared with {r.period.previous().label} and {r.period.year_ago().label}.")
    return [charts.HTMLBlock(f'<p class="subtitle"><strong>{html.escape(text)}</strong></p>', text=text)]


def note_block(text: str) -> charts.HTMLBlock:
    return charts.HTMLBlock(f'<p class="note"><em>{html.escape(text)}</em></p>', text=text)


def _pct_change(v: Any, base: Any) -> float | None:
    try:
        if base is None or pd.isna(base) or base == 0 or pd.isna(v):
            return None
        return (float(v) - float(base)) / abs(float(base))
    except TypeError:
        return None


def before_the_data(r: Review, label: str) -> bool:
    """True when period ``label`` ends before the data's first day: it has no data, not zeros."""
    bounds = data_bounds(r.ds)
    return bounds is not None and r.ds.period(label).last_day < bounds[0]


def _change_text(r: Review, metric_id: str, v: Any, base: Any, label: str) -> tuple[str, float | None]:
    m = r.catalog.get(metric_id)
    if before_the_data(r, label):
        return f"no data for {label}", None
    if base is None or pd.isna(base):
        return f"n/a vs {label}", None
    if m.unit == "percent":
        diff = float(v) - float(base) if not pd.isna(v) else None
        if diff is None:
            return f"n/a vs {label}", None
        return f"{diff * 100:+.1f} pts vs {label}", diff
    ch = _pct_change(v, base)
    if ch is None:
        return f"was {m.fmt(base, r.numbers)} in {label}", None
    return f"{ch:+.0%} vs {label}", ch


def _trend_periods(r: Review) -> list[Period]:
    n = TREND_LENGTH[r.period.grain]
    return [r.period.shift(-i) for i in range(n - 1, -1, -1)]


# -- sections ----------------------------------------------------------------------------------------


def headline(r: Review) -> list[Any]:
    """KPI cards against the previous period, last year and target, plus a summary sentence."""
    c = compare(r.ds, HEADLINE, r.period, filters=r.filters, catalog=r.catalog).set_index("metric")
    cards = []
    for mid in HEADLINE:
        if mid not in c.index:
            continue
        row = c.loc[mid]
        m = r.catalog.get(mid)
        if mid in c.attrs.get("unavailable", {}):
            continue
        comps = [
            _change_text(r, mid, row.value, row.previous, row.previous_period),
            _change_text(r, mid, row.value, row.year_ago, row.year_ago_period),
        ]
        if not pd.isna(row.target) and not pd.isna(row.attainment):
            comps.append((f"{float(row.attainment):.0%} of target {m.fmt(row.target, r.numbers)}", float(row.attainment) - 1))
        cards.append({"label": m.label, "value": m.fmt(row.value, r.numbers), "comparisons": comps, "direction": m.direction})
    out: list[Any] = [charts.kpi_cards(cards)]
    rev = c.loc["revenue"]
    sentence = (
        f"Revenue was {r.money(rev.value)} in {r.period.label}"
        + (f", {_updown(_pct_change(rev.value, rev.previous))} on {rev.previous_period}" if _pct_change(rev.value, rev.previous) is not None else "")
        + (f" and {_updown(_pct_change(rev.value, rev.year_ago))} on {rev.year_ago_period}" if _pct_change(rev.value, rev.year_ago) is not None else "")
        + "."
    )
    if "quota_attainment" in c.index and not pd.isna(c.loc["quota_attainment", "value"]):
        sentence += f" That is {r.fmt('quota_attainment', c.loc['quota_attainment', 'value'])} of the revenue target."
    out.append(paragraph(sentence))
    out.append(paragraph(_win_rate_sentence(r, c.loc["win_rate"])))
    return out


def _updown(ch: float | None) -> str:
    if ch is None:
        return "unchanged"
    return f"up {ch:.0%}" if ch >= 0 else f"down {abs(ch):.0%}"


def _win_rate_sentence(r: Review, row: pd.Series) -> str:
    if pd.isna(row.value):
        return f"No deals closed in {r.period.label}, so there is no win rate."
    trend = metrics(r.ds, ["win_rate"], grain=r.period.grain, periods=_trend_periods(r), filters=r.filters,
                    catalog=r.catalog)
    values = trend.win_rate.dropna()
    verb = "rose" if not pd.isna(row.previous) and row.value > row.previous else (
        "fell" if not pd.isna(row.previous) and row.value < row.previous else "held")
    text = (f"Win rate {verb} from {r.fmt('win_rate', row.previous)} to {r.fmt('win_rate', row.value)}"
            if verb != "held" else f"Win rate was {r.fmt('win_rate', row.value)}")
    if len(values) >= 3:
        if row.value <= values.min():
            text += f", the lowest in {len(values)} {r.period.grain}s"
        elif row.value >= values.max():
            text += f", the highest in {len(values)} {r.period.grain}s"
    return text + "."


def heading_block(text: str) -> charts.HTMLBlock:
    """A section heading emitted by a section that appears only in some scopes."""
    anchor = html.escape("-".join(text.split()), quote=True)  # the id nbconvert gives a Markdown heading
    return charts.HTMLBlock(f'<h2 id="{anchor}">{html.escape(text)}</h2>', text=text)


def active_reps(r: Review) -> pd.DataFrame:
    """Reps employed at some point of the review period (hired before its end, not left before its start)."""
    return r.reps[employed(r.reps, r.period)]


def peer_benchmarks(r: Review) -> list[Any]:
    """Rep scope only: the rep's own figures against anonymous peer benchmarks.

    Peers are the other reps of the same role employed in the period, company-wide. For each
    metric the table gives the rep's value, the peers' median and their top quartile (the 75th
    percentile, or the 25th for metrics where lower is better), and where the rep stands. No
    other rep is named. Company and team reviews return nothing (their tables name reps).
    """
    if r.scope != "rep":
        return []
    out: list[Any] = [heading_block("You against your peers")]
    reps = active_reps(r)
    me = r.reps[r.reps.rep_id == r.scope_value].iloc[0]
    role = me.role if "role" in r.reps and not pd.isna(me.role) else None
    peers = reps[(reps.rep_id != r.scope_value) & ((reps.role == role) if role is not None else True)]
    if len(peers) < 3:
        return out + [note_block(f"Fewer than 3 peers{' with role ' + str(role) if role else ''} in {r.period.label}: "
                            "no benchmark is shown, so no one can be identified.")]
    ids = [m for m in PEER_METRICS if m in r.catalog]
    df = metrics(r.ds, ids, by="rep_id", grain=r.period.grain, periods=[r.period],
                 filters={"rep_id": [r.scope_value, *peers.rep_id]}, catalog=r.catalog)
    why = df.attrs.get("unavailable", {})
    mine = df[df.rep_id == r.scope_value]
    theirs = df[df.rep_id.isin(set(peers.rep_id))]
    rows = []
    for mid in ids:
        if mid in why:
            continue
        m = r.catalog.get(mid)
        values = pd.to_numeric(theirs[mid], errors="coerce").dropna()
        you = mine[mid].iloc[0] if len(mine) else pd.NA
        if len(values) < 3 or (values.eq(0).all() and (pd.isna(you) or float(you) == 0)):
            continue
        lower = m.direction == "lower"
        median = float(values.median())
        top = float(values.quantile(0.25 if lower else 0.75))
        if pd.isna(you):
            stand = "n/a"
        else:
            better = (lambda a, b: a <= b) if lower else (lambda a, b: a >= b)
            stand = ("top quartile" if better(float(you), top) else
                     "above median" if better(float(you), median) else "below median")
        rows.append({"Metric": m.label, "You": m.fmt(you, r.numbers), "Peer median": m.fmt(median, r.numbers),
                     "Top quartile": m.fmt(top, r.numbers), "Where you stand": stand})
    if not rows:
        return out + [note_block(f"No figures to compare in {r.period.label}.")]
    table = pd.DataFrame(rows)
    ahead = int(table["Where you stand"].isin(["top quartile", "above median"]).sum())
    who = f"the {len(peers)} other {role}s" if role else f"the {len(peers)} other reps"
    out.append(paragraph(f"{r.rep_name(r.scope_value)} is at or above the peer median on {ahead} of {len(table)} "
                  f"measures in {r.period.label}, against {who} employed in the period."))
    out.append(html_table(table, caption="Peers are anonymous: median and top quartile (the best 25%; for cycle "
                                     "length, the shortest) of reps in the same role."))
    return out


def revenue_trend(r: Review) -> list[Any]:
    """Revenue per period with the target, over the last periods."""
    periods = _trend_periods(r)
    df = metrics(r.ds, ["revenue", "revenue_target"], grain=r.period.grain, periods=periods,
                 filters=r.filters, catalog=r.catalog)
    df["revenue"] = df.revenue.astype(float)
    df["target"] = df.revenue_target.astype(float)
    df["revenue_text"] = df.revenue.map(r.money_full)
    df["target_text"] = df.target.map(r.money_full)
    best = df.loc[df.revenue.idxmax()]
    title = f"Revenue per {r.period.grain}: highest in {best.period} ({r.fmt('revenue', best.revenue)})"
    bars = alt.Chart(df).mark_bar(color=charts.STATUS_COLORS["won"]).encode(
        x=alt.X("period:N", title=r.period.grain.capitalize(), sort=None),
        y=alt.Y("revenue:Q", title="Revenue", axis=charts.axis(r.numbers, "money")),
        tooltip=[alt.Tooltip("period:N", title=r.period.grain.capitalize()),
                 alt.Tooltip("revenue_text:N", title="Revenue"), alt.Tooltip("target_text:N", title="Target")],
    )
    layers = [bars]
    if df.target.notna().any():
        layers.append(alt.Chart(df).mark_tick(color="#222", thickness=2, size=30).encode(
            x=alt.X("period:N", sort=None), y="target:Q",
            tooltip=[alt.Tooltip("period:N", title=r.period.grain.capitalize()),
                     alt.Tooltip("target_text:N", title="Target"), alt.Tooltip("revenue_text:N", title="Revenue")]))
    chart = alt.layer(*layers).properties(title=title, width=560, height=260)
    caption = "Bars: revenue (bookings) of deals won; ticks: revenue target where quotas exist."
    return [charts.show(chart, caption=caption)]


def attainment(r: Review) -> list[Any]:
    """Quota attainment by rep (company and team scope) or the rep's own."""
    if not r.ds.has("quotas"):
        return [note_block("No quotas table: attainment is not available.")]
    by = "rep_id"
    df = metrics(r.ds, ["revenue", "revenue_target", "quota_attainment", "deals_won"], by=by,
                 grain=r.period.grain, periods=[r.period], filters=r.filters, catalog=r.catalog)
    df = df[df.revenue_target.notna()].copy()
    if df.empty:
        return [note_block(f"No revenue quotas for {r.period.label}.")]
    cols = [c for c in ("rep_id", "name", "team", "role") if c in r.reps.columns]
    df = df.merge(r.reps[cols], on="rep_id", how="left").sort_values("quota_attainment", ascending=False)
    hit = int((df.quota_attainment >= 1).sum())
    out = [paragraph(f"{hit} of {len(df)} reps with a quota reached it in {r.period.label}.")]
    table = df[["name", "team", "revenue", "revenue_target", "quota_attainment", "deals_won"]].rename(
        columns={"name": "Rep", "team": "Team", "revenue": "Revenue", "revenue_target": "Target",
                 "quota_attainment": "Attainment", "deals_won": "Deals won"})
    summary = None
    if "role" in df.columns and df.role.notna().any():
        summary = (df.assign(reached=df.quota_attainment >= 1, att=df.quota_attainment.astype(float))
                   .groupby("role", dropna=False)
                   .agg(reps=("rep_id", "size"), reached=("reached", "sum"), median=("att", "median"),
                        p25=("att", lambda a: a.quantile(0.25)), p75=("att", lambda a: a.quantile(0.75)))
                   .reset_index())
        summary = pd.DataFrame({
            "Role": summary.role.fillna("(none)"), "Reps with a quota": summary.reps,
            "Reached it": summary.reached.astype(int), "Median attainment": summary["median"].map(r.cell("percent")),
            "Middle half": [f"{a:.0%} to {b:.0%}" for a, b in zip(summary.p25, summary.p75)]})
    out += long_table(r, table, name="attainment", what="reps", caption=f"Revenue quota attainment by rep, {r.period.label}",
                      formats={"Revenue": r.cell("money"), "Target": r.cell("money"), "Attainment": r.cell("percent")},
                      summary=summary, summary_caption="Attainment of every rep with a quota, by role")
    if r.scope != "rep" and len(df) > 1:
        out.append(charts.show(attainment_chart(df.assign(att=df.quota_attainment.astype(float)), hit,
                                                limit=r.ds.config.review.list_all_up_to, numbers=r.numbers),
                               caption="Green: at or above quota; red: below; the line marks 100%."))
    return out


def attainment_chart(df: pd.DataFrame, hit: int, *, limit: int, numbers: Numbers | None = None) -> alt.LayerChart:
    """Each rep's attainment as a bar, or, beyond ``limit`` reps, how many reps fall in each band
    of 10 points (attainment over 200% in the last band), so the marks stay bounded."""
    good, bad = charts.STATUS_COLORS["won"], charts.STATUS_COLORS["lost"]
    rule = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(color="#222").encode(x="x:Q")
    title = f"{hit} of {(numbers or Numbers()).number(len(df))} reps reached quota"
    if len(df) <= limit:
        chart = alt.Chart(df.assign(rep=df.name)).mark_bar().encode(
            y=alt.Y("rep:N", sort="-x", title=None),
            x=alt.X("att:Q", title="Quota attainment", axis=charts.axis(numbers, "percent", digits=0)),
            color=alt.condition("datum.att >= 1", alt.value(good), alt.value(bad)),
        ).properties(width=520, height=max(120, 14 * len(df)))
        return alt.layer(chart, rule).properties(title=title)
    band = (df.att.clip(upper=2.0) * 10).fillna(0).astype(float).apply(lambda v: min(int(v), 20)) / 10
    counts = band.value_counts().sort_index().rename_axis("band").reset_index(name="reps")
    counts["end"] = counts.band + 0.1
    counts["label"] = [f"{a:.0%} to {a + 0.1:.0%}" if a < 2 else "200% or more" for a in counts.band]
    bars = alt.Chart(counts).mark_bar(binSpacing=1).encode(
        x=alt.X("band:Q", title="Quota attainment (bands of 10 points)",
                axis=charts.axis(numbers, "percent", digits=0)),
        x2="end:Q",
        y=alt.Y("reps:Q", title="Reps"),
        color=alt.condition("datum.band >= 1", alt.value(good), alt.value(bad)),
        tooltip=[alt.Tooltip("label:N", title="Attainment"), alt.Tooltip("reps:Q", title="Reps", format=",")],
    ).properties(width=520, height=220)
    return alt.layer(bars, rule).properties(title=title)


#: Column headers of the dimensions a review splits by.
DIM_LABELS = {"rep_id": "Rep", "team": "Team", "product": "Product", "segment": "Segment", "region": "Region",
              "source": "Lead source", "customer_type": "Customer"}


def breakdown(r: Review, dim: str) -> list[Any]:
    """Win rate, deal size and cycle by one dimension."""
    if (dim == "team" and r.scope in ("team", "rep")) or (dim == "rep_id" and r.scope == "rep"):
        return [note_block(f"This review covers one {DIM_LABELS.get(dim, dim).lower()}: {r.subject}'s figures are in the "
                           "summary above.")]
    df = metrics(r.ds, BREAKDOWN, by=dim, grain=r.period.grain, periods=[r.period], filters=r.filters,
                 catalog=r.catalog)
    gone = [m for m in BREAKDOWN if m in df.attrs.get("unavailable", {})]
    if len(gone) == len(BREAKDOWN):
        return [note_block(f"Not available by {dim}: {df.attrs['unavailable'][BREAKDOWN[0]]}.")]
    df = df[df.deals_won.fillna(0) + df.win_rate_denominator.fillna(0) > 0].copy()
    if df.empty:
        return [note_block(f"No deals closed in {r.period.label}.")]
    df[dim] = df[dim].fillna("(none)")
    df = df.sort_values("revenue", ascending=False)
    df["win_rate_ci"] = [
        f"{lo:.0%}-{hi:.0%}" if not (pd.isna(lo) or pd.isna(hi)) else "n/a"
        for lo, hi in zip(df.win_rate_low, df.win_rate_high)
    ]
    if dim == "rep_id":
        df[dim] = df[dim].map(lambda x: r.rep_names.get(x, x))
    table = df[[dim, "revenue", "deals_won", "win_rate", "win_rate_ci", "win_rate_denominator", "avg_deal_size",
                "sales_cycle_days"]].rename(columns={
        dim: DIM_LABELS.get(dim, dim.replace("_", " ").capitalize()), "revenue": "Revenue", "deals_won": "Won",
        "win_rate": "Win rate", "win_rate_ci": "95% interval", "win_rate_denominator": "Closed",
        "avg_deal_size": "Avg deal", "sales_cycle_days": "Cycle (d)"})
    top = df.iloc[0]
    out = [paragraph(f"{top[dim]} brought the most revenue ({r.fmt('revenue', top.revenue)}), "
              f"with a win rate of {r.fmt('win_rate', top.win_rate)} over {r.numbers.number(top.win_rate_denominator)} closed deals.")]
    what = {"rep_id": "reps", "team": "teams"}.get(dim, f"{dim.replace('_', ' ')} values")
    out += long_table(r, table, name=f"outcomes-by-{dim.replace('_id', '').replace('_', '-')}", what=what,
                      formats={"Revenue": r.cell("money"), "Win rate": r.cell("percent"), "Avg deal": r.cell("money"),
                               "Cycle (d)": r.cell("number"), "Closed": r.cell("count")},
                      caption=f"Outcomes by {DIM_LABELS.get(dim, dim.replace('_', ' ')).lower()}, {r.period.label}, "
                              "most revenue first")
    return out


def activity(r: Review) -> list[Any]:
    """Activity metrics by team against benchmarks from the config."""
    by = "team" if r.scope == "company" else "rep_id"
    df = metrics(r.ds, ACTIVITY, by=by, grain=r.period.grain, periods=[r.period], filters=r.filters,
                 catalog=r.catalog)
    why = df.attrs.get("unavailable", {})
    if all(m in why for m in ACTIVITY):
        return [note_block(f"Activity metrics are not available: {why[ACTIVITY[0]]}.")]
    df = df[df[by].notna()]
    if by == "rep_id":
        df = df.assign(rep_id=df.rep_id.map(lambda x: r.rep_names.get(x, x)))
    cols = [m for m in ACTIVITY if m not in why]
    labels = {m: r.catalog.get(m).label for m in cols}
    table = df[[by, *cols]].rename(columns={by: by.replace("_id", "").capitalize(), **labels})
    formats = {labels[m]: r.catalog.get(m).display_format for m in cols}
    caption = f"Activity per rep, {r.period.label}"
    if len(table) > r.ds.config.review.list_all_up_to:
        table = table.sort_values(labels[cols[0]], ascending=False, na_position="last")
        caption += f", by {labels[cols[0]].lower()}"
    out = long_table(r, table, name=f"activity-by-{by.replace('_id', '')}", what="reps" if by == "rep_id" else "teams",
                     formats=formats, caption=caption)
    bench = {**r.ds.config.benchmarks}
    if bench:
        rows = [(r.catalog.get(k).label, v) for k, v in bench.items() if k in r.catalog]
        if rows:
            out.append(html_table(pd.DataFrame(rows, columns=["Metric", "Benchmark"]), caption="Benchmarks (config)"))
    return out


def customers(r: Review) -> list[Any]:
    """New vs existing customers."""
    ids = ["revenue", "deals_won", "win_rate", "avg_deal_size", "sales_cycle_days"]
    df = metrics(r.ds, ids, by="customer_type", grain=r.period.grain, periods=[r.period], filters=r.filters,
                 catalog=r.catalog)
    df = df[df.customer_type.notna()]
    if df.empty or df.revenue.sum() == 0:
        return [note_block("No won deals with an account in this period.")]
    total = df.revenue.sum()
    new = df[df.customer_type == "new"].revenue.sum()
    out = [paragraph(f"New customers brought {new / total:.0%} of revenue; existing customers {1 - new / total:.0%}.")]
    df = df.assign(customer_type=df.customer_type.map({"new": "New customers", "existing": "Existing customers"})
                   .fillna(df.customer_type))
    table = df[["customer_type", *ids]].rename(columns={
        "customer_type": "Customer", "revenue": "Revenue", "deals_won": "Won", "win_rate": "Win rate",
        "avg_deal_size": "Avg deal", "sales_cycle_days": "Cycle (d)"})
    out.append(html_table(table, formats={"Revenue": r.cell("money"), "Win rate": r.cell("percent"), "Avg deal": r.cell("money"),
                                            "Cycle (d)": r.cell("number")},
                            caption="A deal is from an existing customer when its account had won a deal before the deal was created."))
    return out


def data_quality(r: Review) -> list[Any]:
    """The data-quality appendix: rows read and every finding."""
    report = r.ds.quality(thorough=False)
    out = [paragraph(f"{r.numbers.number(sum(report.rows.values()))} rows read from {len(report.rows)} tables; "
              f"{r.numbers.number(sum(f.count for f in report.findings if f.severity == 'problem'))} problem rows flagged.")]
    summary = report.summary().rename(columns={"table": "Table", "rows": "Rows", "problems": "Problem rows",
                                                "rules_fired": "Checks that fired"})
    out.append(html_table(summary, formats={c: r.cell("count") for c in ("Rows", "Problem rows", "Checks that fired")},
                          caption="Rows read and problems per table"))
    if report.findings:
        f = report.to_frame()[["table", "title", "column", "severity", "count", "message", "examples"]].rename(columns={
            "table": "Table", "title": "Finding", "column": "Column", "severity": "Severity", "count": "Rows",
            "message": "What it means", "examples": "Examples"})
        out.append(html_table(f, formats={"Rows": r.cell("count")},
                              caption="Findings (see python -m analysis validate for details)"))
    return out


def glossary(r: Review) -> list[Any]:
    """Metric definitions from the catalog."""
    g = r.catalog.to_frame()[["label", "id", "formula", "unit", "direction", "kind"]]
    g = g.rename(columns={"label": "Metric", "id": "Id", "formula": "Definition", "unit": "Unit",
                          "direction": "Better", "kind": "Kind"})
    return [html_table(g, caption=f"Metric catalog version {r.catalog.version}")]


def provenance(r: Review) -> list[Any]:
    """How this report was made: parameters, data fingerprint, versions, run time."""
    from analysis import __version__

    src = r.ds.source
    rows = [
        ("Title", r.title),
        *[(f"Parameter {k}", v) for k, v in r.parameters.items()],
        ("Period", f"{r.period.label} ({r.period.start} to {r.period.last_day})"),
        ("Data source", src.location),
        ("Data fingerprint (SHA-256 of the files)", src.fingerprint),
        ("Files", ", ".join(sorted(f.path.name for f in src.files)) or src.kind),
        ("Company time zone", r.ds.config.timezone),
        ("Metric catalog version", catalog_version()),
        ("Package version", __version__),
        ("Computed at", datetime.now().astimezone().isoformat(timespec="seconds")),
        ("Computation time", f"{time.time() - r.started:.1f} s"),
    ]
    return [html_table(pd.DataFrame(rows, columns=["", "Value"]), caption="How this report was made")]


# -- rendering ---------------------------------------------------------------------------------------


#: Longest readable part of a team or rep file name, in characters (the hash keeps it unique).
_SLUG_LIMIT = 40


def _slug(value: str) -> str:
    """Letters, digits and combining marks of any script kept (``销售一部`` stays readable), NFKC
    and lower case; every other run of characters becomes one "-"."""
    text = unicodedata.normalize("NFKC", value).lower()
    kept = "".join(ch if unicodedata.category(ch)[0] in "LNM" else "-" for ch in text)
    slug = "-".join(part for part in kept.split("-") if part)
    return slug[:_SLUG_LIMIT].strip("-")


def report_name(scope: str, scope_value: str | None, *, digits: int = 6) -> str:
    """The file stem of a review: ``company``, or ``<scope>-<slug>-<hash>``.

    The slug is the value lower-cased, with letters and digits of any script kept and every
    other run of characters turned into "-" (at most 40 characters); the hash is the first
    ``digits`` hex digits of the SHA-256 of the exact value, so distinct values never share a
    file (``East SMB`` -> ``team-east-smb-<hash>``, ``East_SMB`` -> ``team-east-smb-<other hash>``,
    ``销售一部`` -> ``team-销售一部-<hash>``).
    """
    if scope == "company":
        return "company"
    value = str(scope_value)
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:digits]
    slug = _slug(value)
    return f"{scope}-{slug}-{digest}" if slug else f"{scope}-{digest}"


def report_path(out: Path, cadence: str, period: str, scope: str, scope_value: str | None) -> Path:
    """``<out>/<cadence>/<period>/<name>.html`` with the name of :func:`report_name`.

    In the unlikely case that the file already holds the review of another scope value (its
    ``.json`` record says so: same slug and same short hash), a longer hash is used.
    """
    folder = Path(out) / cadence / period
    if scope == "company":
        return folder / "company.html"
    for digits in (6, 16, 64):
        path = folder / f"{report_name(scope, scope_value, digits=digits)}.html"
        if _record_belongs_to(path.with_suffix(".json"), scope, str(scope_value)):
            return path
    return path


def _record_belongs_to(record_path: Path, scope: str, value: str) -> bool:
    """True when no review lives at this name yet, or the one there is for ``scope`` ``value``."""
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return True  # unreadable: the render replaces it
    if not isinstance(record, dict):
        return True
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    owner = (record.get("scope") or meta.get("scope"), record.get("scope_value") or meta.get("scope_value"))
    return owner == (scope, value) or owner[1] in (None, "")


def render_review(
    *,
    cadence: str = "quarterly",
    period: str | None = None,
    data: str | Path,
    config: str | Path | None = None,
    source: str | None = None,
    engine: str | None = None,
    out: str | Path = REPORTS,
    team: str | None = None,
    rep: str | None = None,
    progress: bool = False,
    pdf: bool = False,
    cell_timeout: float | None = None,
) -> Path:
    """Render a review to ``<out>/<cadence>/<period>/<name>.html`` and refresh the index.

    ``<name>`` is ``company`` or, for a team or rep, the value's slug and hash (see
    :func:`report_name`); the ``.json`` record beside it keeps the exact ``scope`` and
    ``scope_value``, which the index shows.

    ``cell_timeout``: seconds one notebook cell may run (default
    :data:`analysis.render.CELL_TIMEOUT`); a cell that runs longer fails the render like any
    other cell error.
    """
    from analysis.reports.render import CELL_TIMEOUT, render, write_index

    scope, value = ("team", team) if team else (("rep", rep) if rep else ("company", ""))
    data = str(Path(data).resolve()) if Path(str(data)).exists() else str(data)
    r = setup(cadence=cadence, period=period or "", scope=scope, scope_value=value, data=data,
              config=str(Path(config).resolve()) if config else "", source=source or "", engine=engine or "")
    params = dict(r.parameters)
    target = report_path(Path(out), r.cadence, r.period.label, r.scope, r.scope_value)
    path = render(NOTEBOOKS / "review.ipynb", params, target, title=r.title, progress=progress, pdf=pdf,
                  meta={"cadence": r.cadence, "period": r.period.label, "scope": r.scope,
                        "scope_value": r.scope_value or "", "fingerprint": r.ds.source.fingerprint}, cwd=NOTEBOOKS,
                  timeout=CELL_TIMEOUT if cell_timeout is None else cell_timeout)
    write_index(Path(out))
    return path


def show(items: list[Any]) -> None:
    """Display a section's output objects in a notebook (one call per section cell)."""
    from IPython.display import display

    for item in items:
        display(item)


# -- funnel, pipeline and losses (issue 4) --------------------------------------------------------


def _missing(r: Review, *tables: str) -> str | None:
    gone = [t for t in tables if not r.ds.has(t)]
    return f"Not available: the data has no {' or '.join(gone)} table." if gone else None


def losses_section(r: Review) -> list[Any]:
    """Lost deals by reason (and the step they were lost at)."""
    from analysis.analytics import losses
    from analysis.reports import figures

    la = _in_scope(losses.loss_analysis(r.ds, r.period, by=_scope_by(r)), r)
    if la.empty or la.lost_deals.sum() == 0:
        return [note_block(f"No deals were lost in {r.period.label}.")]
    out: list[Any] = [paragraph(losses.top_loss_pattern(la))]
    out.append(charts.show(figures.loss_reasons_chart(la, numbers=r.numbers), caption="A missing loss reason is its own category."))
    by_step = (_in_scope(losses.loss_analysis(r.ds, r.period, by=["step", *(_scope_by(r) or [])]), r)
               if r.ds.has("stage_history") else None)
    if by_step is not None and not by_step.empty:
        pivot = by_step.pivot_table(index="step", columns="loss_reason", values="lost_deals", aggfunc="sum",
                                    fill_value=0)
        pivot = pivot.loc[pivot.sum(axis=1) > 0]
        pivot.index = [figures.step_label(s) for s in pivot.index]
        pivot.columns = ["Not given" if c == losses.NOT_GIVEN else str(c).replace("_", " ").capitalize()
                         for c in pivot.columns]
        out.append(html_table(pivot.reset_index().rename(columns={"index": "Lost at step"}),
                          caption="Lost deals by the furthest step they reached and the reason given"))
    return out


def engagement_section(r: Review) -> list[Any]:
    """Won vs lost engagement: activities per deal and touches per week, with intervals."""
    from analysis.analytics import losses
    from analysis.reports import figures

    why = _missing(r, "activities")
    if why:
        return [note_block(why)]
    eng = _in_scope(losses.engagement(r.ds, r.period, by=_scope_by(r)), r)
    if eng.empty:
        return [note_block(f"No deals closed in {r.period.label}.")]
    cmp = losses.won_vs_lost(eng)
    out: list[Any] = []
    head = cmp[(cmp.activity_type == "all")]
    for _, row in head.iterrows():
        out.append(paragraph(str(row.verdict)))
    out.append(charts.show(figures.engagement_chart(eng, numbers=r.numbers), caption="Activities linked to the deal, logged up to its close date."))
    table = cmp[["activity_type", "measure", "won_mean", "lost_mean", "difference", "ci_low", "ci_high"]].rename(columns={
        "activity_type": "Activity", "measure": "Measure", "won_mean": "Won", "lost_mean": "Lost",
        "difference": "Difference", "ci_low": "95% CI low", "ci_high": "95% CI high"})
    table["Activity"] = table["Activity"].map(lambda t: ACTIVITY_LABELS.get(t, str(t)))
    table["Measure"] = table["Measure"].map(lambda m: ENGAGEMENT_MEASURES.get(m, str(m).replace("_", " ")))
    out.append(html_table(table, formats={c: r.cell("number", 2) for c in ("Won", "Lost", "Difference", "95% CI low", "95% CI high")},
                      caption="Won vs lost deals: mean per deal, difference and its 95% interval (Welch)"))
    return out


#: Labels of activity types in tables.
ACTIVITY_LABELS = {"all": "All activities", "call": "Calls", "email": "Emails", "meeting": "Meetings", "demo": "Demos",
                   "message": "Messages", "other": "Other activities"}
#: Labels of the won-vs-lost engagement measures (losses.won_vs_lost).
ENGAGEMENT_MEASURES = {"activities_per_deal": "Activities per deal", "touches_per_week": "Touches per week"}


def lead_funnel_section(r: Review) -> list[Any]:
    """Lead funnel by source with response times; unanswered leads counted."""
    from analysis.analytics import losses

    why = _missing(r, "leads")
    if why:
        return [note_block(why)]
    lf = _in_scope(losses.lead_funnel(r.ds, r.period, by=_scope_by(r)), r)
    if lf.empty or lf.leads.max() == 0:
        whose = "" if r.scope == "company" else f" owned by {r.subject}"
        return [note_block(f"No leads{whose} arrived in {r.period.label}.")]
    total = lf[lf.stage == "lead"].leads.sum()
    won = lf[lf.stage == "won"].leads.sum()
    out: list[Any] = [paragraph(f"{r.numbers.number(int(total))} leads arrived in {r.period.label}; {r.numbers.number(int(won))} of them "
                         f"({r.numbers.percent(won / total)}) have become won deals so far.")]
    by_source = _in_scope(losses.lead_funnel(r.ds, r.period, by=["source", *(_scope_by(r) or [])]), r)
    wide = by_source.pivot_table(index="source", columns="stage", values="leads", aggfunc="sum")
    wide = wide[[c for c in ("lead", "qualified", "opportunity", "won") if c in wide.columns]]
    resp = _in_scope(losses.lead_response(r.ds, r.period, by=["source", *(_scope_by(r) or [])]), r).set_index("source")
    wide["to opportunity"] = wide["opportunity"] / wide["lead"]
    wide["median response (min)"] = resp.median_response_minutes
    wide["never answered"] = resp.unanswered
    wide = wide.reset_index().rename(columns={
        "source": "Lead source", "lead": "Leads", "qualified": "Qualified", "opportunity": "Opportunities", "won": "Won",
        "to opportunity": "Lead to opportunity", "median response (min)": "Median response (min)",
        "never answered": "Never answered"})
    counts = ("Leads", "Qualified", "Opportunities", "Won", "Never answered")
    out.append(html_table(wide, formats={"Lead to opportunity": r.cell("percent"), "Median response (min)": r.cell("number"),
                                         **{c: r.cell("count") for c in counts if c in wide.columns}},
                      caption="Lead funnel by source (cohort of leads created in the period)"))
    return out


def _scope_by(r: Review) -> list[str] | None:
    """The review's scope as a grouping: the analytics group by it, the review keeps its group."""
    return {"team": ["team"], "rep": ["rep_id"]}.get(r.scope)


def scope_where(r: Review) -> dict[str, str] | None:
    """The review's scope as a filter (``{"team": "East SMB"}``); None for the company."""
    by = _scope_by(r)
    return {by[0]: str(r.scope_value)} if by else None


def _in_scope(df: pd.DataFrame, r: Review) -> pd.DataFrame:
    by = _scope_by(r)
    if not by or by[0] not in df.columns:
        return df
    return df[df[by[0]].astype("string") == str(r.scope_value)].drop(columns=by).reset_index(drop=True)


def pipeline_section(r: Review) -> list[Any]:
    """Open pipeline waterfall over the period (reconciled), and where the open pipeline sits."""
    from analysis.analytics import pipeline
    from analysis.reports import figures

    wf = _in_scope(pipeline.pipeline_waterfall(r.ds, r.period, by=_scope_by(r)), r)
    if wf.empty:
        return [note_block("No pipeline in this period.")]
    row = wf.iloc[0]
    reopened = (f", {r.money(row.reopened)} re-opened ({r.numbers.number(int(row.reopened_deals))} deals)"
                if row.reopened_deals else "")
    text = (f"Open pipeline went from {r.money(row.start)} ({r.numbers.number(int(row.start_deals))} deals) to {r.money(row.end)} "
            f"({r.numbers.number(int(row.end_deals))} deals): {r.money(row.created)} was created{reopened}, {r.money(row.won)} "
            f"won and {r.money(row['lost'])} lost.")
    out: list[Any] = [paragraph(text), charts.show(figures.waterfall_chart(wf, numbers=r.numbers),
                                            caption="Start + created + re-opened - won - lost = end; checked to the cent.")]
    snap = pipeline.pipeline_by_step(r.ds, min(r.period.last_day, timeline.snapshot_day(r.ds)), by=_scope_by(r))
    snap = _in_scope(snap, r)
    snap = snap[snap.deals > 0].assign(step=lambda d: d.step.map(figures.step_label))
    out.append(html_table(snap.rename(columns={"step": "Step", "deals": "Open deals", "amount": "Amount"}),
                      formats={"Amount": r.cell("money")},
                      caption=f"Open pipeline by step at the end of {r.period.label} (reconstructed from stage history)"))
    return out


def cycle_section(r: Review) -> list[Any]:
    """Sales cycle, as two labelled figures about two different groups of deals.

    * **Won-deal cycle**: the deals won in the period, whatever their creation date, looking back
      (mean and median days from creation to close; the catalog's ``sales_cycle_days``).
    * **Time to win of the period's new deals**: the deals created in the period followed forward,
      by Kaplan-Meier (open and lost deals censored).

    They answer different questions and usually differ (the wins of a quarter lean to deals that
    closed fast; the quarter's new deals include slow ones still open), so each is named as what it
    is and the page says why they differ: never two unlabelled "cycle" numbers.
    """
    from analysis.analytics import pipeline
    from analysis.reports import figures

    summary = _in_scope(pipeline.cycle_summary(r.ds, period=r.period, by=_scope_by(r)), r)
    if summary.empty or not summary.won_deals.fillna(0).sum():
        return [note_block(f"No deals were won in {r.period.label}.")]
    s = summary.iloc[0]
    n = r.numbers
    p = r.period.label
    text = (f"Won-deal cycle: the {n.number(s.won_deals)} deals won in {p} (whatever their creation date) took "
            f"{n.number(s.mean_days)} days on average from creation to close (median {n.number(s.median_days)}).")
    out: list[Any] = [paragraph(text)]
    if pd.isna(s.km_median_days):
        if pd.notna(s.cohort_deals) and s.cohort_deals:
            out.append(paragraph(
                f"Time to win of deals created in {p}: {n.percent(s.share_won, digits=0)} of the "
                f"{n.number(s.cohort_deals)} are won so far, too few for a median time to a win."))
    else:
        out.append(paragraph(
            f"Time to win of deals created in {p}: {n.percent(s.share_won, digits=0)} of the {n.number(s.cohort_deals)} "
            f"are won so far; counting open and lost deals as unfinished (Kaplan-Meier), half reach a win within "
            f"{n.number(s.km_median_days)} days. This follows the period's new deals forward, slow ones included, "
            f"while the won-deal cycle looks back from the period's wins: the two measure different deals."))
    km = _in_scope(pipeline.cycle_survival(r.ds, period=r.period, by=_scope_by(r)), r)
    if not km.empty:
        title = (f"Time to win of deals created in {p}: Kaplan-Meier median {n.number(s.km_median_days)} days"
                 if pd.notna(s.km_median_days) else f"Time to win of deals created in {p}")
        out.append(charts.show(figures.survival_chart(km, title=title, numbers=r.numbers),
                               caption=f"Deals created in {p}, followed forward: the share not yet won after N days; "
                                       "lost and open deals are censored. Not the won-deal cycle above."))
    return out


def funnel_section(r: Review) -> list[Any]:
    """Cohort stage funnel with the biggest leak named, plus a labelled snapshot of open deals."""
    from analysis.analytics import funnel
    from analysis.reports import figures

    why = _missing(r, "stage_history")
    if why:
        return [note_block(why)]
    f = _in_scope(funnel.stage_funnel(r.ds, r.period, by=_scope_by(r)), r)
    if f.empty or f.entered.fillna(0).sum() == 0:
        return [note_block(f"No deal entered a funnel step in {r.period.label}.")]
    leak = funnel.biggest_leak(f)
    out: list[Any] = [paragraph(f"{leak['text']}.")]
    out.append(charts.show(figures.funnel_chart(f, numbers=r.numbers), caption="Cohort: deals that entered (or skipped past) each step "
                                                           "in the period; advanced = reached a later step at any time."))
    table = f.assign(step=f.step.map(figures.step_label))[
        ["step", "entered", "advanced", "won", "lost", "open", "conversion", "conversion_low", "conversion_high"]
    ].rename(columns={"step": "Step", "entered": "Entered", "advanced": "Advanced", "won": "Won", "lost": "Lost",
                      "open": "Still open", "conversion": "Advanced %", "conversion_low": "95% low",
                      "conversion_high": "95% high"})
    out.append(html_table(table, formats={"Advanced %": r.cell("percent"), "95% low": r.cell("percent"), "95% high": r.cell("percent")},
                      caption=f"Stage funnel, {r.period.label} (lost / still open: deals that stopped at that step)"))
    _, summary = funnel.transitions(r.ds, period=r.period, where=scope_where(r))
    if summary.get("out_of_order_share") is not None:
        whose = "the deals" if r.scope == "company" else f"{r.subject}'s deals"
        out.append(paragraph(f"{summary['out_of_order_share']:.0%} of {whose} that moved in {r.period.label} broke the "
                      f"stage order ({r.numbers.number(summary['skips'])} skipped steps, {r.numbers.number(summary['backward'])} moves back, "
                      f"{r.numbers.number(summary['reopened'])} re-opened deals)."))
    snap = _in_scope(funnel.funnel_snapshot(r.ds, as_of=min(r.period.last_day, timeline.snapshot_day(r.ds)), by=_scope_by(r)), r)
    if not snap.empty:
        label = snap.attrs.get("label", "Snapshot of open deals")
        snap = snap.assign(step=snap.step.map(figures.step_label))
        out.append(html_table(snap.rename(columns={"step": "Step", "deals": "Open deals", "amount": "Amount"}),
                          formats={"Amount": r.cell("money")}, caption=label))
    return out


def stage_time_section(r: Review) -> list[Any]:
    """Median and p75 days per step, and the stalled open deals (most stuck first)."""
    from analysis.analytics import funnel
    from analysis.reports import figures

    why = _missing(r, "stage_history")
    if why:
        return [note_block(why)]
    tis = _in_scope(funnel.time_in_stage(r.ds, period=r.period, by=_scope_by(r)), r)
    out: list[Any] = []
    if not tis.empty and tis.n.fillna(0).sum():
        out.append(charts.show(figures.time_in_stage_chart(tis, numbers=r.numbers),
                               caption="Box: middle half of completed stints (p25 to p75); white tick: median; line to p90."))
    as_of = min(r.period.last_day, timeline.snapshot_day(r.ds))
    stalled = funnel.stalled_deals(r.ds, as_of=as_of)
    if r.scope != "company":
        keep = set(r.reps[r.reps.team == r.scope_value].rep_id) if r.scope == "team" else {r.scope_value}
        stalled = stalled[stalled.rep_id.isin(keep)]
    if stalled.empty:
        out.append(paragraph(f"No open deal has been in its step longer than usual as of {as_of}."))
        return out
    out.append(paragraph(f"{r.numbers.number(len(stalled))} open deals ({r.money(stalled.amount.sum())}) have been in "
                  f"their step longer than {r.ds.config.stalled_quantile:.0%} of past deals as of {as_of}."))
    out.append(figures.stalled_table(stalled, r.rep_names, limit=STALLED_SHOWN, numbers=r.numbers))
    if len(stalled) > STALLED_SHOWN:
        full = stalled.assign(rep=stalled.rep_id.map(r.rep_name), step=stalled.step.map(figures.step_label))
        out.append(r.attach("stalled-deals", full, what="stalled deals"))
    return out


#: Stalled deals a review lists (most stuck first); a longer list is attached in full.
STALLED_SHOWN = 15
