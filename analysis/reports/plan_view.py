"""The North Star plan on screen: its chart, its table, the static view a review shows and the
slider widget of ``notebooks/plan.ipynb``. The plan itself is computed by
:mod:`analysis.steering.plan`.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from analysis.data.loading import Dataset
from analysis.data.schema import step_label
from analysis.format import money, number, percent
from analysis.reports import charts
from analysis.steering.plan import STAGE_STEPS, Assumptions, assumptions, plan_from, summary

__all__ = ["plan_chart", "plan_table", "plan_view", "plan_widget"]


#: Funnel order of the count steps for the chart (top of funnel first).
_CHART_ORDER = ["leads", "qualified_leads", "lead_opportunities", "opportunities",
                *STAGE_STEPS, "deals_won"]


def plan_chart(frame: pd.DataFrame) -> alt.HConcatChart | alt.Chart:
    """The required quantities as a funnel (leads to won deals) beside activities per rep per day."""
    f = frame[frame.step.isin(_CHART_ORDER)].copy()
    f["label"] = f.step.map(lambda s: step_label(s) if s in STAGE_STEPS else str(s).replace("_", " ").capitalize())
    order = [step_label(s) if s in STAGE_STEPS else s.replace("_", " ").capitalize()
             for s in _CHART_ORDER if s in set(f.step)]
    f["needed"] = f.needed.astype(float)
    deals = frame.set_index("step").needed.get("deals_won")
    title = alt.Title(
        f"{number(deals)} won deals needed in {frame.attrs.get('period', '')}",
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

    Rates (win rate, conversions, lead share) show as percentages; deal size and activities per
    opportunity as numbers.
    """
    def value(row: pd.Series) -> str:
        v, a = row.assumption_value, str(row.assumption)
        if v is None or pd.isna(v):
            return ""
        if a == "win_rate" or a == "lead_share" or a.startswith("conversion:"):
            return percent(v, digits=1)
        if a == "avg_deal_size":
            return money(v, frame.attrs.get("currency"), compact=False)
        return number(v, digits=2)

    def label(a: Any) -> str:
        if a is None or pd.isna(a):
            return ""
        kind, _, what = str(a).partition(":")
        text = {"avg_deal_size": "average deal size", "win_rate": "win rate", "lead_share": "share of opportunities from leads",
                "conversion": "conversion", "activities_per_opportunity": "per opportunity"}.get(kind, kind)
        if kind == "activities_per_opportunity":
            return f"{'other activitie' if what == 'other' else what.replace('_', ' ')}s per opportunity"
        return f"{what.replace('_', ' ')} {text}".strip() if what else text

    shown = pd.DataFrame({
        "Step": frame.step.map(lambda s: step_label(s) if s in STAGE_STEPS else str(s).replace("_", " ").capitalize()),
        "Needed": frame.needed, "Per rep": frame.per_rep, "Per rep per day": frame.per_rep_per_day,
        "Assumption": frame.assumption.map(label), "Value": frame.apply(value, axis=1), "Source": frame.source,
    })
    return charts.table(
        shown,
        formats={"Needed": "{:,.0f}", "Per rep": "{:,.1f}", "Per rep per day": "{:,.2f}"},
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


def plan_widget(ds_or_assumptions: Dataset | Assumptions, target: float, period: Any = None, *,
                history: Any = None) -> Any:
    """ipywidgets sliders for the target and each assumption around a live plan view.

    The history is read once; each slider move recomputes the plan with :func:`plan_from`
    (pure arithmetic). A slider left at its history value is not an override.
    """
    import ipywidgets as w
    from IPython.display import display

    a = ds_or_assumptions if isinstance(ds_or_assumptions, Assumptions) else \
        assumptions(ds_or_assumptions, period, history=history)
    v = a.values
    style = {"description_width": "180px"}
    layout = w.Layout(width="520px")

    def slider(desc: str, val: float | None, lo: float, hi: float, step: float, fmt: str) -> Any:
        val = val if val is not None else (lo + hi) / 2
        return w.FloatSlider(value=val, min=lo, max=max(hi, val), step=step, description=desc,
                             readout_format=fmt, style=style, layout=layout, continuous_update=False)

    ads = v.get("avg_deal_size") or 10_000.0
    controls = {
        "target": slider("Target revenue", float(target), float(target) / 4, float(target) * 4,
                         float(target) / 100, ",.0f"),
        "deal_size": slider("Average deal size", v.get("avg_deal_size"), ads / 10, ads * 4, ads / 100, ",.0f"),
        "win_rate": slider("Win rate", v.get("win_rate"), 0.01, 1.0, 0.01, ".0%"),
        "lead_share": slider("Share of opportunities from leads", v.get("lead_share"), 0.0, 1.0, 0.01, ".0%"),
        "conv_qualified": slider("Qualified → opportunity", v.get("conversion:qualified"), 0.01, 1.0, 0.01, ".0%"),
        "conv_lead": slider("Lead → qualified", v.get("conversion:lead"), 0.01, 1.0, 0.01, ".0%"),
        "head_count": w.IntSlider(value=max(a.head_count, 1), min=1, max=max(4 * a.head_count, 10),
                                  description="Head count", style=style, layout=layout, continuous_update=False),
    }
    start = {k: c.value for k, c in controls.items()}
    out = w.Output()

    def changed(name: str) -> float | None:
        c = controls[name]
        return c.value if c.value != start[name] else None

    def refresh(*_: Any) -> None:
        with out:
            out.clear_output(wait=True)
            try:
                conv = {k: x for k, x in (("qualified", changed("conv_qualified")), ("lead", changed("conv_lead")))
                        if x is not None}
                frame = plan_from(a, controls["target"].value, deal_size=changed("deal_size"),
                                  win_rate=changed("win_rate"), lead_share=changed("lead_share"),
                                  conversions=conv or None, head_count=changed("head_count"))
                for item in plan_view(frame):
                    display(item)
            except Exception as err:  # noqa: BLE001 - show the one-line reason in the widget
                print(f"{type(err).__name__}: {err}")

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    return w.VBox([*controls.values(), out])
