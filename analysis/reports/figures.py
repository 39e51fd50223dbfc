"""Charts of the funnel, pipeline and loss analytics (Altair, one theme from :mod:`analysis.charts`).

Each function takes the tidy frame an analytics function returns and gives an Altair chart
whose title states the finding; display it with ``charts.show(chart)`` (live in JupyterLab, an
inline SVG in reports). Colours: won / lost / open from ``charts.STATUS_COLORS``; the biggest
leak in the "bad" colour.

Figures in titles, labels, tooltips and on axes are written by ``numbers`` (pass the dataset's,
``ds.config.numbers``; default en-US without a currency): money axes and titles use the same
symbol and abbreviations as the report's sentences (:func:`analysis.reports.charts.axis`).
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from analysis.data.schema import step_label
from analysis.format import Numbers
from analysis.reports import charts


def _numbers(numbers: Numbers | None, currency: str | None = None) -> Numbers:
    return numbers if numbers is not None else Numbers(currency or None)


def _num(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    out = df.copy()
    for c in cols:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out


def funnel_chart(funnel: pd.DataFrame, *, title: str | None = None, numbers: Numbers | None = None) -> alt.Chart:
    """Deals entering each step (bars) with the share that advanced (labels); the weakest step red."""
    n = _numbers(numbers)
    df = _num(funnel, "entered", "advanced", "conversion")
    df["label"] = df.step.map(step_label)
    order = list(df.label)
    volume = df[df.entered >= max(1, df.entered.max() * 0.05)]
    worst = volume.loc[volume.conversion.idxmin(), "step"] if volume.conversion.notna().any() else None
    df["status"] = ["leak" if s == worst else "ok" for s in df.step]
    df["text"] = [f"{n.percent(c, digits=0)} advanced" if pd.notna(c) else "" for c in df.conversion]
    if title is None and worst is not None:
        row = df[df.step == worst].iloc[0]
        title = (f"Biggest leak after {row.label}: {n.percent(row.conversion, digits=0)} of "
                 f"{n.number(row.entered)} deals advanced")
    base = alt.Chart(df).encode(y=alt.Y("label:N", sort=order, title=None))
    bars = base.mark_bar().encode(
        x=alt.X("entered:Q", title="Deals that entered the step", axis=charts.axis(n, "count")),
        color=alt.Color("status:N", scale=alt.Scale(domain=["ok", "leak"],
                        range=[charts.STATUS_COLORS["open"], charts.STATUS_COLORS["lost"]]), legend=None),
        tooltip=["label", "entered", "advanced", alt.Tooltip("conversion:Q", format=".0%")],
    )
    text = base.mark_text(align="left", dx=4).encode(x="entered:Q", text="text:N")
    return alt.layer(bars, text).properties(title=title or "Stage funnel", width=480, height=28 * len(df))


def leakage_chart(funnel: pd.DataFrame, *, title: str | None = None, numbers: Numbers | None = None) -> alt.Chart:
    """Share of deals lost or stuck after each step, with the 95% interval."""
    n = _numbers(numbers)
    df = _num(funnel, "leakage", "conversion_low", "conversion_high", "entered")
    df = df[df.entered > 0]
    df["label"] = df.step.map(step_label)
    df["low"], df["high"] = 1 - df.conversion_high, 1 - df.conversion_low
    order = list(df.label)
    worst = df.loc[df.leakage.idxmax()] if len(df) else None
    title = title or (f"Most deals leak after {worst.label} ({n.percent(worst.leakage, digits=0)})" if worst is not None
                      else "Leakage")
    bars = alt.Chart(df).mark_bar(color=charts.STATUS_COLORS["lost"]).encode(
        x=alt.X("label:N", sort=order, title="Step"),
        y=alt.Y("leakage:Q", title="Did not advance", axis=charts.axis(n, "percent", digits=0)),
        tooltip=["label", alt.Tooltip("leakage:Q", format=".0%"), "entered"],
    )
    ci = alt.Chart(df).mark_rule(color="#222").encode(x=alt.X("label:N", sort=order), y="low:Q", y2="high:Q")
    return alt.layer(bars, ci).properties(title=title, width=480, height=240)


def time_in_stage_chart(tis: pd.DataFrame, *, title: str | None = None, numbers: Numbers | None = None) -> alt.Chart:
    """Box plot of days per step: box from p25 to p75, white tick at the median, whisker to p90."""
    n = _numbers(numbers)
    df = _num(tis, "p25_days", "median_days", "p75_days", "p90_days")
    df = df[df.median_days.notna()].copy()
    df["label"] = df.step.map(step_label)
    order = list(df.label)
    slow = df.loc[df.median_days.idxmax()] if len(df) else None
    title = title or (f"Deals wait longest in {slow.label} (median {n.number(slow.median_days)} days)" if slow is not None
                      else "Time in stage")
    base = alt.Chart(df).encode(y=alt.Y("label:N", sort=order, title=None))
    whisker = base.mark_rule(color="#7f8c9a").encode(x=alt.X("p25_days:Q", title="Days in step", axis=charts.axis(n, "number", digits=1)),
                                                      x2="p90_days:Q")
    box = base.mark_bar(color=charts.STATUS_COLORS["open"], height=14).encode(x="p25_days:Q", x2="p75_days:Q")
    median = base.mark_tick(color="white", thickness=2, size=14).encode(x="median_days:Q")
    return alt.layer(whisker, box, median).properties(title=title, width=480, height=28 * max(3, len(df)))


def stalled_table(stalled: pd.DataFrame, names: dict | None = None, *, limit: int = 15,
                  numbers: Numbers | None = None) -> Any:
    """The most stuck open deals as an HTML table (from :func:`analysis.funnel.stalled_deals`)."""
    names = names or {}
    top = stalled.head(limit).assign(
        rep=lambda d: d.rep_id.map(lambda x: names.get(x, x)), step=lambda d: d.step.map(step_label))
    table = top[["opportunity_id", "rep", "step", "days_in_step", "threshold_days", "amount", "last_activity_at"]].rename(
        columns={"opportunity_id": "Deal", "rep": "Owner", "step": "Step", "days_in_step": "Days in step",
                 "threshold_days": "Usual (p75)", "amount": "Amount", "last_activity_at": "Last activity"})
    return charts.table(table.reset_index(drop=True), index=False,
                        formats={"Days in step": "count", "Usual (p75)": "count", "Amount": "money"},
                        numbers=_numbers(numbers),
                        caption=f"Most stuck open deals first (up to {limit})")


def loss_reasons_chart(losses: pd.DataFrame, *, title: str | None = None, numbers: Numbers | None = None) -> alt.Chart:
    """Lost deals by reason, largest first (from :func:`analysis.losses.loss_analysis`)."""
    n = _numbers(numbers)
    df = _num(losses, "lost_deals", "share")
    df = df[df.lost_deals > 0].copy()
    df["reason"] = df.loss_reason.astype(str).str.replace("_", " ").str.capitalize()
    top = df.sort_values("lost_deals", ascending=False).iloc[0] if len(df) else None
    total = df.lost_deals.sum()
    title = title or (f"{top.reason} is the top loss reason ({n.percent(top.lost_deals / total, digits=0)} of "
                      f"{n.number(total)} lost deals)"
                      if top is not None else "Loss reasons")
    return alt.Chart(df).mark_bar(color=charts.STATUS_COLORS["lost"]).encode(
        y=alt.Y("reason:N", sort="-x", title=None),
        x=alt.X("lost_deals:Q", title="Lost deals", axis=charts.axis(n, "count")),
        tooltip=["reason", "lost_deals", alt.Tooltip("share:Q", format=".0%")],
    ).properties(title=title, width=480, height=24 * max(3, len(df)))


def waterfall_chart(wf: pd.DataFrame, *, title: str | None = None, currency: str = "",
                    numbers: Numbers | None = None) -> alt.Chart:
    """Open pipeline from the start to the end of the period: what was added and what left.

    ``numbers`` writes the amounts (default: en-US in ``currency``)."""
    n = _numbers(numbers, currency)
    row = wf.iloc[0]
    steps = [("Start", row["start"], "total"), ("Created", row["created"], "up"), ("Reopened", row.get("reopened", 0), "up"),
             ("Won", -row["won"], "won"), ("Lost", -row["lost"], "down"), ("Moved in", row.get("moved_in", 0), "up"),
             ("Moved out", -row.get("moved_out", 0), "down"), ("Amount changes", row.get("amount_change", 0), "up")]
    steps = [s for s in steps if s[0] in ("Start",) or float(s[1] or 0) != 0]
    records, level = [], 0.0
    for name, value, kind in steps:
        value = float(value or 0)
        if kind == "total":
            records.append({"step": name, "lo": 0.0, "hi": value, "kind": "total", "value": value})
            level = value
        else:
            records.append({"step": name, "lo": min(level, level + value), "hi": max(level, level + value),
                            "kind": kind if value >= 0 or kind != "up" else "down", "value": value})
            level += value
    records.append({"step": "End", "lo": 0.0, "hi": float(row["end"]), "kind": "total", "value": float(row["end"])})
    df = pd.DataFrame(records)
    df["amount"] = [n.money(r["value"], signed=r["kind"] != "total") for r in records]
    change = float(row["end"]) - float(row["start"])
    title = title or f"Open pipeline {'grew' if change >= 0 else 'shrank'} by {n.money(abs(change))}"
    colors = alt.Scale(domain=["total", "up", "won", "down"],
                       range=["#7f8c9a", charts.STATUS_COLORS["open"], charts.STATUS_COLORS["won"], charts.STATUS_COLORS["lost"]])
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("step:N", sort=list(df.step), title=None),
        y=alt.Y("lo:Q", title="Open pipeline", axis=charts.axis(n, "money")),
        y2="hi:Q",
        color=alt.Color("kind:N", scale=colors, legend=None),
        tooltip=[alt.Tooltip("step:N", title="Step"), alt.Tooltip("amount:N", title="Amount")],
    ).properties(title=title, width=520, height=260)


def survival_chart(km: pd.DataFrame, *, title: str | None = None, numbers: Numbers | None = None) -> alt.Chart:
    """Share of deals still not won after N days (Kaplan-Meier; open and lost deals censored)."""
    n = _numbers(numbers)
    df = _num(km, "days", "survival")
    below = df[df.survival <= 0.5]
    median = below.days.iloc[0] if len(below) else None
    title = title or (f"Half of the deals that get won take {n.number(median)} days or less" if median is not None
                      else "Sales cycle survival")
    return alt.Chart(df).mark_line(interpolate="step-after", color=charts.STATUS_COLORS["open"]).encode(
        x=alt.X("days:Q", title="Days since the deal was created", axis=charts.axis(n, "number", digits=0)),
        y=alt.Y("survival:Q", title="Not yet won", axis=charts.axis(n, "percent", digits=0), scale=alt.Scale(domain=[0, 1])),
    ).properties(title=title, width=480, height=240)


def engagement_chart(eng: pd.DataFrame, *, title: str | None = None, numbers: Numbers | None = None) -> alt.Chart:
    """Mean activities per deal, won vs lost, by activity type (from :func:`analysis.losses.engagement`)."""
    n = _numbers(numbers)
    df = _num(eng, "mean_activities")
    df = df[df.activity_type != "all"].copy()
    df["type"] = df.activity_type.astype(str).str.capitalize()
    df["mean_text"] = df.mean_activities.map(lambda v: n.number(v, digits=1))
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("type:N", title=None),
        yOffset=alt.YOffset("outcome:N", sort=["won", "lost"]),
        x=alt.X("mean_activities:Q", title="Activities per deal, up to its close", axis=charts.axis(n, "number")),
        color=alt.Color("outcome:N", scale=charts.status_scale(("won", "lost")), title="Deal"),
        tooltip=["type", "outcome", alt.Tooltip("mean_text:N", title="Activities per deal")],
    ).properties(title=title or "Activities per deal, won vs lost", width=460, height=36 * max(3, df.type.nunique()))


# -- forecast ------------------------------------------------------------------------------------


def forecast_chart(history: pd.DataFrame, forecast: pd.DataFrame, *, title: str, y_title: str = "Revenue",
                   backtest: pd.DataFrame | None = None, numbers: Numbers | None = None) -> alt.LayerChart:
    """History (bars), the winning model's forecast (points) with its interval (rule), and the
    backtest's one-step-ahead forecasts of past periods (hollow points) when given.

    ``history``: ``period``, ``actual``; ``forecast``: ``period``, ``forecast``, ``low``,
    ``high`` (one model's rows); ``backtest``: ``period``, ``forecast`` (one model's rows).
    """
    n = _numbers(numbers)
    hist = _num(history, "actual").assign(kind="actual")
    hist["actual_text"] = hist.actual.map(n.money)
    fc = _num(forecast, "forecast", "low", "high")
    for c in ("forecast", "low", "high"):
        fc[f"{c}_text"] = fc[c].map(n.money)
    order = [*hist.period.astype(str), *[p for p in fc.period.astype(str) if p not in set(hist.period.astype(str))]]
    x = alt.X("period:N", sort=order, title=None)
    bars = alt.Chart(hist).mark_bar(color=charts.STATUS_COLORS["won"], opacity=0.85).encode(
        x=x, y=alt.Y("actual:Q", title=y_title, axis=charts.axis(n, "money")),
        tooltip=["period", alt.Tooltip("actual_text:N", title="Actual")])
    band = alt.Chart(fc).mark_rule(color=charts.STATUS_COLORS["open"], strokeWidth=3).encode(
        x=x, y="low:Q", y2="high:Q")
    point = alt.Chart(fc).mark_point(filled=True, size=90, color=charts.STATUS_COLORS["open"]).encode(
        x=x, y="forecast:Q", tooltip=["period", alt.Tooltip("forecast_text:N", title="Forecast"),
                                      alt.Tooltip("low_text:N", title="Low"), alt.Tooltip("high_text:N", title="High")])
    layers: list[Any] = [bars, band, point]
    if backtest is not None and len(backtest):
        bt = _num(backtest, "forecast")
        layers.append(alt.Chart(bt).mark_point(filled=False, size=60, color="#222").encode(x=x, y="forecast:Q"))
    return alt.layer(*layers).properties(title=title, width=560, height=260)


def outcome_chart(totals: Any, *, title: str, target: float | None = None,
                  p10: float | None = None, p50: float | None = None, p90: float | None = None,
                  numbers: Numbers | None = None) -> alt.LayerChart:
    """Histogram of simulated period revenue with P10 / P50 / P90 (dashed) and the target (solid)."""
    import numpy as np

    n = _numbers(numbers)
    values = np.asarray(totals, dtype=float)
    counts, edges = np.histogram(values, bins=40)
    df = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "share": counts / max(1, len(values))})
    bars = alt.Chart(df).mark_rect(color=charts.STATUS_COLORS["open"], opacity=0.8, stroke="white",
                                   strokeWidth=0.5).encode(
        x=alt.X("low:Q", title="Simulated revenue of the period", scale=alt.Scale(zero=False),
                axis=charts.axis(n, "money")),
        x2="high:Q", y=alt.Y("share:Q", title="Share of simulations", axis=charts.axis(n, "percent")), y2=alt.datum(0))
    marks = [(v, k) for v, k in ((p10, "P10"), (p50, "P50"), (p90, "P90")) if v is not None and not pd.isna(v)]
    layers: list[Any] = [bars]
    if marks:
        q = pd.DataFrame({"x": [float(v) for v, _ in marks], "label": [k for _, k in marks]})
        layers.append(alt.Chart(q).mark_rule(color="#222", strokeDash=[4, 3]).encode(x="x:Q"))
        layers.append(alt.Chart(q).mark_text(align="left", dx=3, dy=-4, baseline="top", color="#222").encode(
            x="x:Q", y=alt.value(0), text="label:N"))
    if target is not None and not pd.isna(target):
        t = pd.DataFrame({"x": [float(target)], "label": ["target"]})
        layers.append(alt.Chart(t).mark_rule(color=charts.STATUS_COLORS["lost"], strokeWidth=2).encode(x="x:Q"))
        layers.append(alt.Chart(t).mark_text(align="left", dx=3, dy=14, baseline="top",
                                             color=charts.STATUS_COLORS["lost"]).encode(x="x:Q", y=alt.value(0), text="label:N"))
    return alt.layer(*layers).properties(title=title, width=560, height=220)


def leaderboard_chart(board: pd.DataFrame, *, top: int | None = None, note: str = "",
                      numbers: Numbers | None = None) -> alt.LayerChart:
    """Horizontal bars of each rep's score, by role and rank, labelled with the rank change.

    Parameters
    ----------
    board
        A :func:`leaderboard` frame.
    top
        Show only the first ``top`` reps of each role.
    note
        Appended to the subtitle (say which reps are shown when not all are).
    """
    n = _numbers(numbers)
    b = board.copy()
    if top is not None:
        b = b[b["rank"] <= top]
    b["score"] = b.score.astype(float)
    b["who"] = b["rank"].astype(str) + ". " + b.name.astype(str) + " (" + b.role.astype(str) + ")"

    def change(v: Any) -> str:
        if v is None or pd.isna(v):
            return "new"
        v = int(v)
        return f"▲{v}" if v > 0 else (f"▼{-v}" if v < 0 else "=")

    b["change"] = b.rank_change.map(change)
    b["label"] = b.score.map(n.number) + "  " + b.change
    b["score_text"] = b.score.map(lambda v: n.number(v, digits=1))
    order = b.who.tolist()
    period = board.attrs.get("period", "")
    leader = ""
    leaders = b[b["rank"] == 1]  # a neighbourhood without a role's first names no leader
    if len(leaders):
        first = leaders.sort_values(["score"], ascending=False).iloc[0]
        leader = f"{first['name']} leads with {n.number(first.score)} points"
    base = alt.Chart(b).encode(
        y=alt.Y("who:N", sort=order, title=None),
        x=alt.X("score:Q", title="Score (points)", axis=charts.axis(n, "count")),
        tooltip=["name:N", "team:N", "role:N", alt.Tooltip("score_text:N", title="score"), "rank:Q",
                 "previous_rank:Q", "rank_change:Q", alt.Tooltip("percentile:Q", format=".0f")],
    )
    bars = base.mark_bar().encode(color=alt.Color("role:N", title="Role"))
    text = base.mark_text(align="left", dx=4).encode(text="label:N")
    return (bars + text).properties(
        title=alt.Title(f"Leaderboard {period}: {leader}" if leader else f"Leaderboard {period}",
                        subtitle="Ranked within each role; ▲/▼ rank change since the previous period"
                        + (f"; {note}" if note else "")),
        width=480, height=alt.Step(20),
    )
