"""Interactive explorer: pick grain, periods, a dimension, filters and metrics; see a chart and a table.

``Explorer(ds).view(...)`` returns static display objects (an offline SVG chart and an HTML
table), so a headless run or a rendered notebook keeps them; ``Explorer(ds).widget()`` wraps the
same view in ipywidgets controls for a live JupyterLab session (widget output is not kept by
nbconvert, which is why the notebook also displays a static default view).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import altair as alt
import pandas as pd

from analysis.data.loading import Dataset
from analysis.data.periods import GRAINS, period_of
from analysis.reports import charts
from analysis.semantic.catalog import build_catalog
from analysis.semantic.engine import dimensions, metrics

DEFAULT_METRICS = ("revenue", "win_rate", "deals_won")
TREND = {"day": 31, "week": 13, "month": 12, "quarter": 8, "half": 6, "year": 4}


class Explorer:
    """Metric explorer over one dataset (the catalog comes from its config)."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.catalog = build_catalog(ds.config)
        self.last = ds.last_date()
        self.seconds: float | None = None

    def periods(self, grain: str, n: int | None = None) -> list[str]:
        """The last ``n`` complete-or-current periods of a grain, oldest first, ending at the data's last day."""
        p = period_of(self.last, grain, fiscal_start_month=self.ds.config.fiscal_year_start_month)
        n = n or TREND[grain]
        return [p.shift(-i).label for i in range(n - 1, -1, -1)]

    def frame(
        self,
        metric_ids: Sequence[str] = DEFAULT_METRICS,
        *,
        by: str | None = None,
        grain: str = "quarter",
        periods: Sequence[str] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """The numbers behind the view (tidy: by, period, one column per metric)."""
        t = time.perf_counter()
        out = metrics(self.ds, list(metric_ids), by=[by] if by else None, grain=grain,
                      periods=list(periods or self.periods(grain)), filters=filters or None, catalog=self.catalog)
        self.seconds = time.perf_counter() - t
        return out

    def view(self, metric_ids: Sequence[str] = DEFAULT_METRICS, *, by: str | None = None, grain: str = "quarter",
             periods: Sequence[str] | None = None, filters: dict[str, Any] | None = None) -> list[Any]:
        """A chart of the first metric over the periods (one line per group) and the full table."""
        df = self.frame(metric_ids, by=by, grain=grain, periods=periods, filters=filters)
        first = self.catalog.get(metric_ids[0])
        plot = df.assign(value=pd.to_numeric(df[first.id], errors="coerce").astype(float))
        if by:
            plot[by] = plot[by].fillna("(none)").astype(str)
            top = plot.groupby(by)["value"].sum().nlargest(8).index
            plot = plot[plot[by].isin(top)]
        fmt = {"percent": "%", "money": "~s"}.get(first.unit, "~s")
        enc = {"color": alt.Color(f"{by}:N", title=by)} if by else {}
        chart = alt.Chart(plot).mark_line(point=True).encode(
            x=alt.X("period:N", title=grain.capitalize(), sort=None),
            y=alt.Y("value:Q", title=first.label, axis=alt.Axis(format=fmt)),
            tooltip=["period", *([by] if by else []), alt.Tooltip("value:Q", format=",.3~f")],
            **enc,
        ).properties(title=f"{first.label} by {grain}" + (f" and {by}" if by else ""), width=560, height=260)
        formats = {m: self.catalog.get(m).display_format for m in metric_ids}
        cols = [*([by] if by else []), "period", *metric_ids]
        notes = df.attrs.get("unavailable", {})
        out: list[Any] = [charts.show(chart), charts.table(df[cols], formats=formats, index=False,
                                                            caption=f"Computed in {self.seconds:.2f} s")]
        for mid, why in notes.items():
            out.append(charts.HTMLBlock(f"<p><em>{charts.esc(mid)}: {charts.esc(why)}</em></p>", text=why))
        return out

    def widget(self) -> Any:
        """ipywidgets controls (grain, periods, dimension, team filter, metrics) around the view."""
        import ipywidgets as w
        from IPython.display import display

        ids = [m.id for m in self.catalog]
        grain = w.Dropdown(options=list(GRAINS), value="quarter", description="Grain")
        count = w.IntSlider(value=8, min=1, max=36, description="Periods")
        dim = w.Dropdown(options=["(none)", *dimensions(self.ds)], value="(none)", description="By")
        teams = sorted(self.ds.df("reps").team.dropna().unique())
        team = w.Dropdown(options=["(all)", *teams], value="(all)", description="Team")
        chosen = w.SelectMultiple(options=ids, value=list(DEFAULT_METRICS), rows=8, description="Metrics")
        out = w.Output()

        def refresh(*_: Any) -> None:
            with out:
                out.clear_output(wait=True)
                try:
                    for item in self.view(list(chosen.value) or list(DEFAULT_METRICS),
                                          by=None if dim.value == "(none)" else dim.value, grain=grain.value,
                                          periods=self.periods(grain.value, count.value),
                                          filters=None if team.value == "(all)" else {"team": team.value}):
                        display(item)
                except Exception as err:  # noqa: BLE001 - show the one-line reason in the widget
                    print(f"{type(err).__name__}: {err}")

        for control in (grain, count, dim, team, chosen):
            control.observe(refresh, names="value")
        refresh()
        return w.VBox([w.HBox([grain, count]), w.HBox([dim, team]), chosen, out])
