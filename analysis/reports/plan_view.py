"""The North Star plan on screen: its chart, its table, the static view a review shows and the
slider widget of ``notebooks/plan.ipynb``. The plan itself is computed by
:mod:`analysis.steering.plan`; figures are written with the plan's
:class:`analysis.format.Numbers` (the dataset's ``config.numbers``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

import altair as alt
import pandas as pd

from analysis.data.loading import Dataset
from analysis.data.schema import step_label
from analysis.format import Numbers
from analysis.reports import charts
from analysis.steering.plan import (
    ACTIVITY_STEPS,
    STAGE_STEPS,
    Assumptions,
    PlanError,
    assumptions,
    numbers_of,
    plan_from,
    summary,
)

__all__ = [
    "PlanControl",
    "PlanWidget",
    "assumption_label",
    "dom_class",
    "format_assumption",
    "plan_chart",
    "plan_html",
    "plan_table",
    "plan_view",
    "plan_widget",
]


#: Funnel order of the count steps for the chart (top of funnel first).
_CHART_ORDER = ["leads", "qualified_leads", "lead_opportunities", "opportunities",
                *STAGE_STEPS, "deals_won"]


def _is_rate(key: str) -> bool:
    return key in ("win_rate", "lead_share") or key.startswith("conversion:")


def assumption_label(key: Any) -> str:
    """The full label of an assumption id: ``win_rate`` -> ``Win rate (closed deals won)``,
    ``conversion:demo`` -> ``Conversion demo → objection handling``; "" for no assumption."""
    if key is None or pd.isna(key):
        return ""
    key = str(key)
    kind, _, what = key.partition(":")
    fixed = {
        "avg_deal_size": "Average deal size",
        "win_rate": "Win rate (closed deals won)",
        "lead_share": "Share of opportunities from leads",
        "conversion:lead": "Conversion lead → qualified",
        "conversion:qualified": "Conversion qualified lead → opportunity",
    }
    if key in fixed:
        return fixed[key]
    if kind == "conversion" and what in STAGE_STEPS:
        i = STAGE_STEPS.index(what)
        nxt = "won" if i == len(STAGE_STEPS) - 1 else step_label(STAGE_STEPS[i + 1]).lower()
        return f"Conversion {step_label(what).lower()} → {nxt}"
    if kind == "activities_per_opportunity":
        noun = ACTIVITY_STEPS.get(what, f"{what} activities").replace("_", " ")
        return f"{noun[:1].upper()}{noun[1:]} per opportunity"
    return key.replace("_", " ")


def format_assumption(key: str, value: Any, numbers: Numbers, *, digits: int | None = None) -> str:
    """An assumption's value as text: rates as percentages (1 decimal), the deal size as money in
    full, activities per opportunity with 2 decimals; ``digits`` asks for more; "n/a" when None."""
    if _is_rate(key):
        return numbers.percent(value, digits=1 if digits is None else digits)
    if key == "avg_deal_size":
        if digits in (None, 0):
            return numbers.money(value, compact=False)
        return f"{numbers.number(value, digits=digits)} {(numbers.currency or '').upper()}".strip()
    return numbers.number(value, digits=2 if digits is None else digits)


def _step_text(s: Any) -> str:
    return step_label(s) if s in STAGE_STEPS else str(s).replace("_", " ").capitalize()


def plan_chart(frame: pd.DataFrame) -> alt.HConcatChart | alt.Chart:
    """The required quantities as a funnel (leads to won deals) beside activities per rep per day."""
    fmt = numbers_of(frame)
    f = frame[frame.step.isin(_CHART_ORDER)].copy()
    f.attrs = {}  # pandas deep-copies attrs on every operation: the chart's data needs none
    f["label"] = f.step.map(_step_text)
    order = [_step_text(s) for s in _CHART_ORDER if s in set(f.step)]
    f["needed"] = f.needed.astype(float)
    deals = frame.set_index("step").needed.get("deals_won")
    title = alt.Title(
        f"{fmt.number(deals)} won deals needed in {frame.attrs.get('period', '')}",
        subtitle=f"Rounded up; history {frame.attrs.get('history', '')}; "
                 f"funnel steps count deals that must pass the step",
    )
    base = alt.Chart(f).encode(
        y=alt.Y("label:N", sort=order, title=None),
        x=alt.X("needed:Q", title="Needed in the period"),
        tooltip=[alt.Tooltip("label:N", title="Step"), alt.Tooltip("needed:Q", format=",.0f"),
                 alt.Tooltip("per_rep:Q", format=",.1f", title="per rep"),
                 alt.Tooltip("source:N", title="assumption from")],
    )
    funnel = (base.mark_bar() + base.mark_text(align="left", dx=3).encode(text=alt.Text("needed:Q", format=",.0f"))
              ).properties(width=360, height=alt.Step(22))
    acts = frame[frame.section == "activities"].copy()
    acts.attrs = {}
    if acts.empty or acts.per_rep_per_day.isna().all():
        return funnel.properties(title=title)
    acts["label"] = acts.step.str.replace("_", " ").str.capitalize()
    acts["per_rep_per_day"] = acts.per_rep_per_day.astype(float)
    b2 = alt.Chart(acts).encode(
        y=alt.Y("label:N", title=None, sort="-x"),
        x=alt.X("per_rep_per_day:Q", title="Per rep per working day"),
        tooltip=[alt.Tooltip("label:N", title="Activity"), alt.Tooltip("per_rep_per_day:Q", format=",.1f"),
                 alt.Tooltip("needed:Q", format=",.0f", title="needed in total")],
    )
    daily = (b2.mark_bar(color="#E69F00") + b2.mark_text(align="left", dx=3).encode(
        text=alt.Text("per_rep_per_day:Q", format=",.1f"))).properties(width=220, height=alt.Step(22))
    return alt.hconcat(funnel, daily, spacing=40).properties(title=title)


def plan_table(frame: pd.DataFrame) -> Any:
    """The plan as an HTML table (:func:`analysis.charts.table`), formats applied here.

    Rates (win rate, conversions, lead share) show as percentages, the deal size as money,
    activities per opportunity as numbers, all through the plan's ``Numbers``. A funnel step
    whose conversion was fitted to the win rate shows the applied value and its history value.
    """
    fmt = numbers_of(frame)

    def value(row: pd.Series) -> str:
        key = str(row.assumption)
        v, applied = row.assumption_value, row.applied_value
        if v is None or pd.isna(v):
            return ""
        if applied is None or pd.isna(applied) or abs(applied - v) <= 1e-12:
            return format_assumption(key, v, fmt)
        digits = _distinct_digits(key, applied, v, fmt)
        return (f"{format_assumption(key, applied, fmt, digits=digits)} "
                f"({row.source} {format_assumption(key, v, fmt, digits=digits)}, fitted to the win rate)")

    money = frame.step.astype(str).eq("revenue")  # the revenue row is money, the others counts

    def cells(column: str, digits: int) -> list[str]:
        return [fmt.money(x, compact=False) if is_money else fmt.number(x, digits=digits)
                for x, is_money in zip(frame[column], money)]

    shown = pd.DataFrame({
        "Step": frame.step.map(_step_text),
        "Needed": cells("needed", 0), "Per rep": cells("per_rep", 1), "Per rep per day": cells("per_rep_per_day", 2),
        "Assumption": frame.assumption.map(assumption_label), "Value": frame.apply(value, axis=1),
        "Source": frame.source,
    })
    return charts.table(
        shown,
        numbers=fmt,
        numeric=("Needed", "Per rep", "Per rep per day"),
        caption=(f"Plan for {frame.attrs.get('period')}: {frame.attrs.get('head_count')} reps "
                 f"({frame.attrs.get('head_count_source')}), {frame.attrs.get('working_days')} working days; "
                 f"history {frame.attrs.get('history')}; needed = rounded up"),
    )


def plan_view(frame: pd.DataFrame) -> list[Any]:
    """Static display objects of a plan: the summary sentence, the chart and the table."""
    out: list[Any] = [charts.HTMLBlock(f"<p>{charts.esc(summary(frame))}</p>", text=summary(frame)),
                      charts.show(plan_chart(frame)), plan_table(frame)]
    for step, why in frame.attrs.get("unavailable", {}).items():
        out.append(charts.HTMLBlock(f"<p><em>{charts.esc(step)}: {charts.esc(why)}</em></p>", text=why))
    return out


def plan_html(frame: pd.DataFrame) -> str:
    """The plan as one HTML fragment, what the live widget shows: the summary sentence, the
    chart as inline SVG (no picture, no JavaScript: redrawn on every slider move), the table and
    the notes on rows left out."""
    parts = [f"<style>{charts.fragment_css()}</style>", f"<p>{charts.esc(summary(frame))}</p>",
             f'<figure class="wb-figure">{charts.to_svg(plan_chart(frame))}</figure>', plan_table(frame).html]
    parts += [f"<p><em>{charts.esc(step)}: {charts.esc(why)}</em></p>"
              for step, why in frame.attrs.get("unavailable", {}).items()]
    return "".join(parts)


# -- the live widget ----------------------------------------------------------------------------

#: Step of the rate sliders (win rate, conversions, lead share): 0.1 percentage point.
RATE_STEP = 0.001

#: A slider this close to its history value (a millionth of its step: float noise of the
#: browser's slider, never a position a user can tell apart) is at history, not an override.
AT_HISTORY = 1e-6


def dom_class(key: str) -> str:
    """The stable CSS class of an assumption's slider: ``win_rate`` -> ``wb-plan-win-rate``,
    ``conversion:demo`` -> ``wb-plan-conversion-demo``; ``target``, ``head_count`` likewise."""
    return "wb-plan-" + key.replace(":", "-").replace("_", "-")


def _nice_step(x: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``x`` (x > 0)."""
    p = 10.0 ** math.floor(math.log10(x))
    return next(m * p for m in (5, 2, 1) if m * p <= x * (1 + 1e-12))


@dataclass
class PlanControl:
    """One slider of :func:`plan_widget`: an assumption (or the target, or the head count).

    ``history`` is the exact history value (None when the history gives none; for the target,
    the starting target); ``override`` the value the slider sets, None while it sits at the
    history value. The slider's grid passes through the history value exactly, so moving the
    slider away and back lands on it again.
    """

    key: str
    label: str
    slider: Any
    readout: Any
    reset: Any
    history: float | None
    start: float
    tolerance: float
    override: float | None = None
    name: Any = None  # the label widget (full text, never cut)


class PlanWidget:
    """The state of a live plan: its controls, the last plan frame and its HTML output.

    :func:`plan_widget` builds it and returns its ``box`` (the box carries it as ``box.plan``).
    Every slider move calls :meth:`refresh`, which runs :func:`plan_from` once with
    :meth:`overrides` and redraws the output and every readout from that frame, so what the
    readouts say is what the plan used.
    """

    def __init__(self, a: Assumptions, target: float):
        import ipywidgets as w

        if isinstance(target, bool) or not isinstance(target, Real) or not math.isfinite(target) or target <= 0:
            raise PlanError(f"target must be a revenue > 0 in {a.currency}, got {target!r}")
        self.assumptions = a
        self.numbers: Numbers = a.formats
        self.frame: pd.DataFrame | None = None
        self.error: str | None = None
        self.refreshes = 0
        self._quiet = False
        self.controls: dict[str, PlanControl] = {}
        v = a.values
        cur = f" ({a.currency})" if a.currency else ""

        rows: list[Any] = []

        def heading(text: str) -> None:
            rows.append(w.HTML(f"<b>{charts.esc(text)}</b>", layout=w.Layout(width="auto", margin="8px 0 0 0")))

        def control(key: str, label: str, history: float | None, *, lo: float, hi: float, step: float,
                    readout_format: str, default: float, integer: bool = False) -> None:
            start = float(history) if history is not None else default
            lo, hi = min(lo, start), max(hi, start)
            low = start - math.floor((start - lo) / step + 1e-9) * step  # the grid passes through start
            common = {"description": "", "tooltip": label, "continuous_update": False, "readout": True,
                      "layout": w.Layout(width="360px", flex="0 0 360px")}
            if integer:
                slider = w.IntSlider(value=int(start), min=int(lo), max=int(hi), step=1, **common)
            else:
                slider = w.FloatSlider(value=start, min=max(low, lo), max=hi, step=step,
                                       readout_format=readout_format, **common)
            slider.add_class(dom_class(key))
            name = w.HTML(charts.esc(label), layout=w.Layout(width="290px", flex="0 0 290px"))
            name.add_class("wb-plan-label")
            readout = w.HTML("", layout=w.Layout(width="auto", flex="1 1 0", min_width="0"))
            readout.add_class(dom_class(key).replace("wb-plan-", "wb-plan-readout-", 1))
            what = "the starting target" if key == "target" else "history"
            reset = w.Button(icon="undo", tooltip=f"{label}: back to {what}", disabled=True,
                             layout=w.Layout(width="36px", flex="0 0 36px"))
            reset.add_class(dom_class(key).replace("wb-plan-", "wb-plan-reset-", 1))
            ctl = PlanControl(key, label, slider, readout, reset, None if history is None else float(history),
                              start, step * AT_HISTORY, name=name)
            slider.observe(lambda change, c=ctl: self._moved(c, change["new"]), names="value")
            reset.on_click(lambda _b, c=ctl: self.reset(c.key))
            self.controls[key] = ctl
            rows.append(w.HBox([name, slider, reset, readout], layout=w.Layout(align_items="center", width="auto")))

        def rate(key: str, *, zero: bool = False) -> None:
            control(key, assumption_label(key), v.get(key), lo=0.0 if zero else RATE_STEP, hi=1.0, step=RATE_STEP,
                    readout_format=".1%", default=0.5)

        t = float(target)
        heading("Target")
        control("target", f"Target revenue{cur}", t, lo=t / 4, hi=t * 4, step=_nice_step(t / 100),
                readout_format=",.0f", default=t)
        heading("Deals: the deal size sets how many deals, the win rate how many opportunities")
        ads = v.get("avg_deal_size")
        base = ads or 10_000.0
        control("avg_deal_size", f"{assumption_label('avg_deal_size')}{cur}", ads, lo=base / 10, hi=base * 4,
                step=_nice_step(base / 100), readout_format=",.0f", default=base)
        rate("win_rate")
        heading("Funnel: where deals drop out (fitted so that the steps multiply to the win rate)")
        for s in STAGE_STEPS:
            rate(f"conversion:{s}")
        heading("Leads")
        rate("lead_share", zero=True)
        rate("conversion:lead")
        rate("conversion:qualified")
        apo = [k for k in v if k.startswith("activities_per_opportunity:")]
        if apo:
            heading("Activities per opportunity")
        for key in apo:
            h = v.get(key)
            hi = max(4 * (h or 0.0), 1.0)
            step = _nice_step(hi / 200)
            digits = max(2, -math.floor(math.log10(step)))
            control(key, assumption_label(key), h, lo=0.0, hi=hi, step=step, readout_format=f",.{digits}f",
                    default=1.0)
        heading("Reps")
        heads = a.head_count if a.head_count > 0 else None
        control("head_count", "Head count (selling reps)", heads, lo=1, hi=max(4 * a.head_count, 10), step=1,
                readout_format="d", default=1, integer=True)

        self.grid = w.VBox(rows, layout=w.Layout(width="auto"))
        self.reset_button = w.Button(description="Reset all to history", icon="undo",
                                     tooltip="Every assumption and the head count back to history (the target stays)",
                                     layout=w.Layout(width="auto", align_self="flex-start", margin="8px 0"))
        self.reset_button.add_class("wb-plan-reset")
        self.reset_button.on_click(lambda _b: self.reset())
        self.output = w.HTML("", layout=w.Layout(width="auto"))
        self.output.add_class("wb-plan-output")
        intro = w.HTML(charts.esc(
            f"History {a.window_label} for {a.period.label}. A slider at its history value is not an override; "
            f"the readout beside it says which value the plan used."))
        self.box = w.VBox([intro, self.grid, self.reset_button, self.output])
        self.box.add_class("wb-plan")
        self.box.plan = self
        self.refresh()

    # -- state ---------------------------------------------------------------------------------

    @property
    def target(self) -> float:
        return float(self.controls["target"].slider.value)

    def overrides(self) -> dict[str, Any]:
        """The keyword arguments of :func:`plan_from` the sliders set (only the overrides)."""
        ov = {k: c.override for k, c in self.controls.items() if c.override is not None and k != "target"}
        out: dict[str, Any] = {}
        for key, arg in (("avg_deal_size", "deal_size"), ("win_rate", "win_rate"), ("lead_share", "lead_share")):
            if key in ov:
                out[arg] = ov[key]
        conv = {k.split(":", 1)[1]: x for k, x in ov.items() if k.startswith("conversion:")}
        acts = {k.split(":", 1)[1]: x for k, x in ov.items() if k.startswith("activities_per_opportunity:")}
        if conv:
            out["conversions"] = conv
        if acts:
            out["activities_per_opportunity"] = acts
        if "head_count" in ov:
            out["head_count"] = int(ov["head_count"])
        return out

    def _moved(self, ctl: PlanControl, value: Any) -> None:
        at_history = ctl.history is not None and abs(float(value) - ctl.history) <= ctl.tolerance
        ctl.override = None if at_history else float(value)
        if not self._quiet:
            self.refresh()

    def reset(self, key: str | None = None) -> None:
        """Put one control (``key``) or every assumption and the head count (None) back to history."""
        keys = [key] if key is not None else [k for k in self.controls if k != "target"]
        self._quiet = True
        try:
            for k in keys:
                c = self.controls[k]
                c.slider.value = c.history if c.history is not None else c.start
                c.override = None
        finally:
            self._quiet = False
        self.refresh()

    # -- drawing -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Plan again from the sliders and redraw the readouts, then the output.

        The output changes last, so whoever waits for it (a user, a browser test) finds the
        readouts and reset buttons already matching the new plan.
        """
        self.refreshes += 1
        try:
            self.frame = plan_from(self.assumptions, self.target, **self.overrides())
            self.error = None
            html = plan_html(self.frame)
        except Exception as err:  # noqa: BLE001 - any failure replaces the plan by its one-line reason
            self.frame = None
            self.error = f"{type(err).__name__}: {err}"
            hint = " Move its slider to set it, or reset." if isinstance(err, PlanError) else ""
            html = f'<p class="wb-plan-error"><b>No plan:</b> {charts.esc(self.error)}{hint}</p>'
        for c in self.controls.values():
            c.readout.value = self.readout_text(c.key)
            c.reset.disabled = c.override is None
        self.reset_button.disabled = all(c.override is None for k, c in self.controls.items() if k != "target")
        self.output.value = html

    def readout_text(self, key: str) -> str:
        """The readout beside a slider: the value the plan used, where it came from (HTML)."""
        c = self.controls[key]
        fmt = self.numbers
        muted = '<span style="color:#5f6b73">'
        if key == "target":
            shown = fmt.money(self.target, compact=False)
            note = "the starting target" if c.override is None else f"changed from {fmt.money(c.history, compact=False)}"
            return f"<b>{charts.esc(shown)}</b> {muted}{charts.esc(note)}</span>"
        if key == "head_count":
            if self.frame is not None:
                n, source = self.frame.attrs["head_count"], self.frame.attrs["head_count_source"]
            else:
                n, source = (c.override, "override") if c.override is not None else (c.history, "history")
            note = ("history: selling reps active in the period" if source == "history"
                    else f"override (history {fmt.number(c.history) if c.history is not None else 'n/a'})")
            return f"<b>{charts.esc(fmt.number(n) if n is not None else 'n/a')}</b> {muted}{charts.esc(note)}</span>"
        info = (self.frame.attrs.get("assumptions", {}).get(key) if self.frame is not None else None) or {
            "value": c.override if c.override is not None else c.history,
            "applied": c.override if c.override is not None else c.history,
            "source": "override" if c.override is not None else "history",
            "history": c.history,
        }
        value, applied, source, hist = info["value"], info["applied"], info["source"], info["history"]
        a = self.assumptions
        if value is None:
            why = a.unavailable.get(key, "no history")
            return f"<b>n/a</b> {muted}{charts.esc(f'{why}; move the slider to set it')}</span>"
        if source == "override":
            digits = _distinct_digits(key, value, hist, fmt)
            note = f"override (history {format_assumption(key, hist, fmt, digits=digits)})"
            shown = format_assumption(key, value, fmt, digits=digits)
        else:
            shown = format_assumption(key, value, fmt)
            num, den = a.numerators.get(key), a.denominators.get(key)
            top = fmt.money(num) if key == "avg_deal_size" else fmt.number(num)
            note = f"history: {top} / {fmt.number(den)}" if num is not None and den is not None else "history"
        if applied is not None and value is not None and abs(applied - value) > 1e-12:
            digits = _distinct_digits(key, applied, value, fmt)
            note += f"; applied {format_assumption(key, applied, fmt, digits=digits)} (fitted to the win rate)"
        return f"<b>{charts.esc(shown)}</b> {muted}{charts.esc(note)}</span>"


def _distinct_digits(key: str, a: float | None, b: float | None, numbers: Numbers) -> int | None:
    """Decimals that write two different values of an assumption differently (None: the usual
    ones already do, or the values are equal): an override of 34.50% beside a history value of
    34.46% must not read "34.5% (history 34.5%)"."""
    if a is None or b is None or a == b:
        return None
    if format_assumption(key, a, numbers) != format_assumption(key, b, numbers):
        return None
    base = 1 if _is_rate(key) else 0 if key == "avg_deal_size" else 2
    for digits in range(base + 1, base + 6):
        if format_assumption(key, a, numbers, digits=digits) != format_assumption(key, b, numbers, digits=digits):
            return digits
    return None


def plan_widget(ds_or_assumptions: Dataset | Assumptions, target: float, period: Any = None, *,
                history: Any = None) -> Any:
    """ipywidgets sliders for the target and each assumption around a live plan view.

    The history is read once; each slider move recomputes the plan with :func:`plan_from`
    (pure arithmetic) and redraws the plan and every readout from it. A slider at its exact
    history value is not an override; "Reset all to history" and each row's reset button put
    sliders back. Returns a ``VBox`` whose ``plan`` attribute is the :class:`PlanWidget`.

    Stable CSS classes for browser tests: ``wb-plan`` (the box), ``wb-plan-<key>`` on each
    slider (:func:`dom_class`: ``wb-plan-target``, ``wb-plan-avg-deal-size``,
    ``wb-plan-win-rate``, ``wb-plan-conversion-<step>``, ``wb-plan-lead-share``,
    ``wb-plan-activities-per-opportunity-<type>``, ``wb-plan-head-count``),
    ``wb-plan-readout-<key>`` and ``wb-plan-reset-<key>`` beside it, ``wb-plan-reset`` (reset
    all) and ``wb-plan-output`` (the plan).
    """
    a = ds_or_assumptions if isinstance(ds_or_assumptions, Assumptions) else \
        assumptions(ds_or_assumptions, period, history=history)
    return PlanWidget(a, target).box
