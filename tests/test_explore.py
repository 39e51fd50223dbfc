"""The explorer: periods within the data, partial periods marked, top N with an exact "Others",
drill-downs that add up to the figure, only supported splits offered, a formula-safe export,
and a widget that updates once per action and never shows a traceback.

Exact figures come from a hand-built dataset (``small``): two teams, three reps, five deals.

    reps: R1 Ann Archer (East), R2 Bob Baker (East), R3 Cy Chen (=West, a formula-like name)
    deals closed (close_date, owner, status, amount):
        2025-02-10 R1 won 100.25   2025-03-05 R2 won 300   2025-03-20 R3 lost 50
        2025-05-02 R3 won 40       2025-05-20 R1 lost 60   (and one open deal, created 2025-01-15)
    the data covers 2025-01-15 (first deal created) to 2025-05-20 (last close)

    revenue 2025-Q1: R1 100.25, R2 300, R3 0 -> 400.25; win rate 2025-Q1: 2 of 3
    revenue 2025-Q2: R3 40 -> 40; win rate 2025-Q2: 1 of 2
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

import analysis
from analysis.paths import NOTEBOOKS, SAMPLE_DATA
from analysis.reports.explore import CLASSES, Explorer, drill_down
from tests.conftest import write_tables

SMALL_REPS = """\
rep_id,name,team,region,manager_id,role,hire_date,end_date
R1,Ann Archer,East,North,,AE,2024-01-01,
R2,Bob Baker,East,North,,AE,2024-01-01,
R3,Cy Chen,=West,South,,AE,2024-01-01,
"""

SMALL_OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date,account_id,deal_type,product
D1,R1,2025-01-15T09:00:00,won,Closed Won,100.25,2025-02-10,A1,new_business,Core
D2,R2,2025-01-20T09:00:00,won,Closed Won,300,2025-03-05,A2,new_business,Core
D3,R3,2025-02-01T09:00:00,lost,Closed Lost,50,2025-03-20,A3,new_business,Add-on
D4,R3,2025-03-01T09:00:00,won,Closed Won,40,2025-05-02,A3,expansion,Add-on
D5,R1,2025-04-01T09:00:00,lost,Closed Lost,60,2025-05-20,A1,new_business,Core
D6,R2,2025-04-02T09:00:00,open,Demo,70,2025-08-01,A2,new_business,Core
"""

CONFIG = "currency: EUR\nas_of: 2025-05-20\n"


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Explorer:
    folder = write_tables(tmp_path_factory.mktemp("explore") / "small", reps=SMALL_REPS, opportunities=SMALL_OPPS)
    (folder / "workbench.yml").write_text(CONFIG)
    return Explorer(analysis.load(folder))


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer(analysis.load(SAMPLE_DATA))


# -- periods -------------------------------------------------------------------------------------


def test_periods_never_leave_the_data(small):
    assert small.bounds == (date(2025, 1, 15), date(2025, 5, 20))
    assert small.periods("quarter", 8) == ["2025-Q1", "2025-Q2"]  # not six quarters of zeros before the data
    assert small.periods("year", 4) == ["2025"]
    assert small.periods("month", start=date(2020, 1, 1), end=date(2030, 1, 1)) == [
        "2025-01", "2025-02", "2025-03", "2025-04", "2025-05"]
    view = small.compute(["revenue"], grain="quarter", periods=["2024-Q4", "2025-Q1"])
    assert list(view.periods) == ["2025-Q1"]
    assert any("Left out 2024-Q4" in n and "15 Jan 2025 to 20 May 2025" in n for n in view.notes)
    with pytest.raises(ValueError, match="1 Jan 2026 to 1 Mar 2026 holds no data"):
        small.periods("month", start=date(2026, 1, 1), end=date(2026, 3, 1))


def test_partial_periods_are_marked_in_table_and_chart(small, explorer):
    assert small.period_label("2025-Q1") == "2025-Q1 (from 15 Jan)"
    assert small.period_label("2025-Q2") == "2025-Q2 (to 20 May)"
    assert small.period_label("2025") == "2025 (15 Jan to 20 May)"
    assert explorer.period_label("2026") == "2026 (to 30 Sep)"
    assert explorer.period_label("2025") == "2025" and explorer.period_label("2026-Q3") == "2026-Q3"
    view = explorer.compute(["revenue"], grain="year")
    assert list(view.frame.period_label) == ["2024 (from 1 Apr)", "2025", "2026 (to 30 Sep)"]
    assert "2026 (to 30 Sep)" in explorer.table(view)._repr_html_()
    spec = explorer.live_chart(view)["data"]["application/vnd.vegalite.v5+json"]
    text = json.dumps(spec)
    assert '"filled": false' in text and "datum.partial" in text and '"strokeDash"' in text


# -- exact figures, "Others", drill-down ------------------------------------------------------------


def test_figures_names_and_money_on_hand_built_data(small):
    view = small.compute(["revenue", "win_rate"], by="rep_id", grain="quarter", top=0)
    q1 = view.frame[view.frame.period == "2025-Q1"].set_index("group_label")
    assert q1.revenue.to_dict() == {"Bob Baker": 300, "Ann Archer": 100.25, "Cy Chen": 0}
    assert q1.win_rate["Cy Chen"] == 0 and q1.win_rate["Bob Baker"] == 1
    html = small.table(view)._repr_html_()
    assert "Ann Archer" in html and ">R1<" not in html  # names, not ids
    assert "Revenue (EUR)" in html and "€" in html  # money carries the currency
    assert "Rep" in html and "win_rate" not in html  # header labels, not ids
    assert "rows 1-6 of 6" in html
    caption = small.caption(view)
    assert "money in EUR" in caption and "2 quarters" in caption and "Computed in" not in caption


def test_others_sum_and_recomputed_ratio(small):
    view = small.compute(["revenue", "win_rate", "deals_won"], by="rep_id", grain="quarter", top=1)
    f = view.frame
    assert view.others == 2 and view.ranked_by == "total revenue over the periods shown"
    q1 = f[f.period == "2025-Q1"].set_index("group_label")
    # top 1 by total revenue: Bob Baker (300); Others: Ann Archer and Cy Chen
    assert list(q1.index) == ["Bob Baker", "Others (2 reps)"]
    total = small.frame(["revenue", "win_rate"], grain="quarter")
    company = total.set_index("period")
    assert q1.revenue["Others (2 reps)"] == company.revenue["2025-Q1"] - 300 == 100.25
    # win rate of Others: 1 won of 2 closed (Ann won D1, Cy lost D3), recomputed, not the mean of 1.0 and 0.0
    assert q1.win_rate["Others (2 reps)"] == pytest.approx(1 / 2)
    q2 = f[f.period == "2025-Q2"].set_index("group_label")
    assert q2.win_rate["Others (2 reps)"] == pytest.approx(1 / 2)  # Cy won D4, Ann lost D5
    assert q2.revenue["Others (2 reps)"] == 40


def test_others_on_the_sample_equal_total_less_top(explorer):
    view = explorer.compute(["revenue", "win_rate"], by="rep_id", grain="quarter", periods=["2026-Q2", "2026-Q3"],
                            top=5)
    f = view.frame
    company = explorer.frame(["revenue", "win_rate"], grain="quarter", periods=["2026-Q2", "2026-Q3"])
    for period, row in company.set_index("period").iterrows():
        rows = f[f.period == period]
        others = rows[rows.rep_id == "__others__"].iloc[0]
        top = rows[rows.rep_id != "__others__"]
        assert len(top) == 5
        assert others.revenue == pytest.approx(row.revenue - top.revenue.sum(), abs=1e-6)
        won = row.win_rate_numerator - top.win_rate_numerator.sum()
        closed = row.win_rate_denominator - top.win_rate_denominator.sum()
        assert others.win_rate == pytest.approx(won / closed, rel=1e-12)


def test_others_from_parts_agree_with_the_engine(explorer):
    ids = ["revenue", "win_rate", "avg_deal_size", "margin_pct", "sales_cycle_days"]
    labels = ["2026-Q2", "2026-Q3"]
    parts = explorer.frame([*ids, "deals_won", "deals_closed", "won_cost"], by="team", grain="quarter", periods=labels)
    rest = ["East SMB", "Central SMB"]
    assert explorer.additive_parts("margin_pct") == ["revenue", "won_cost"]
    assert explorer.additive_parts("sales_cycle_days") is None  # a mean: the engine computes it
    summed = explorer.others(parts, ids, "team", "quarter", labels, {}, rest)
    engine = explorer.others(parts, ids, "team", "quarter", labels, {}, rest, through="engine")
    for mid in [*ids, "win_rate_numerator", "win_rate_low"]:
        assert summed[mid].astype(float).tolist() == pytest.approx(engine[mid].astype(float).tolist(), rel=1e-12)
    cycle = explorer.drill(explorer.compute(ids, by="team", grain="quarter", periods=labels), "2026-Q3", rest,
                           "sales_cycle_days")
    assert cycle.cycle_days.mean() == pytest.approx(summed.sales_cycle_days.iloc[1], rel=1e-12)


def test_drill_down_rows_add_up_to_the_figure(small, explorer):
    rows = drill_down(small.ds, "revenue", "2025-Q1", catalog=small.catalog)
    assert list(rows.opportunity_id) == ["D1", "D2"] and rows.rep.tolist() == ["Ann Archer", "Bob Baker"]
    assert sum(rows.amount) == Decimal("400.25") == Decimal(str(rows.attrs["figure"]))
    rate = drill_down(small.ds, "win_rate", "2025-Q1", by="team", group="East", catalog=small.catalog)
    assert list(rate.opportunity_id) == ["D1", "D2"] and rate.in_deals_won.all()
    # the sample: revenue of one team in one quarter, and of the reps in "Others"
    view = explorer.compute(["revenue", "win_rate"], by="rep_id", grain="quarter", periods=["2026-Q3"], top=5)
    frame = view.frame.set_index("rep_id")
    for group in (frame.index[0], "__others__"):
        deals = explorer.drill(view, "2026-Q3", group, "revenue")
        assert float(sum(deals.amount)) == frame.revenue[group]
        won = explorer.drill(view, "2026-Q3", group, "win_rate")
        assert won.in_deals_won.sum() / len(won) == pytest.approx(frame.win_rate[group], rel=1e-12)
    # deals open at the end of April: D4 (won 2 May), D5 (lost 20 May), D6 (still open): 40 + 60 + 70
    open_ = drill_down(small.ds, "open_pipeline", "2025-04", catalog=small.catalog)
    assert list(open_.opportunity_id) == ["D4", "D5", "D6"] and open_.attrs["figure"] == 170
    assert small.frame(["open_pipeline", "open_deals"], grain="month", periods=["2025-04"]).iloc[0].tolist()[1:] == [
        170, 3]
    with pytest.raises(ValueError, match="cannot be listed"):
        drill_down(small.ds, "pipeline_velocity", "2025-Q1", catalog=small.catalog)


# -- what is offered ------------------------------------------------------------------------------


def test_unsupported_dimensions_and_filters_are_not_offered(explorer):
    support = explorer.dimension_support(["cac"])
    assert support["team"] == "Customer acquisition cost: cannot be split by team: spend does not link to it"
    assert explorer.dimension_support(["revenue"])["activity_type"].startswith("Revenue: cannot be split by activity type")
    assert explorer.dimension_support(["revenue", "win_rate"])["team"] is None
    w = explorer.widget(metrics=["cac"])
    assert [v for _, v in w.by.options] == [""]  # no split of spend
    assert "spend does not link to it" in w.by_note.value
    assert w.filters["team"].disabled and "spend does not link" in w.filters["team"].tooltip
    with w.batch():
        w.checks["cac"].value = False
        w.checks["revenue"].value = True
    assert "team" in [v for _, v in w.by.options] and not w.filters["team"].disabled
    w.by.value = "team"
    assert w.checks["cac"].disabled and "cannot be split by team" in w.checks["cac"].tooltip


def test_metrics_are_grouped_by_family_with_labels(explorer):
    groups = explorer.metric_groups()
    labels = {f: [m.label for m in ms] for f, ms in groups.items()}
    assert "Win rate" in labels["Conversion & win rates"] and "Revenue" in labels["Revenue & deals"]
    assert "Customer acquisition cost" in labels["Cost & profit"] and "Calls" in labels["Activity"]
    assert "Sales cycle (mean days)" in labels["Sales cycle"] and "Quota attainment" in labels["Quota & targets"]
    assert sum(len(ms) for ms in groups.values()) == len(explorer.catalog)


# -- export ----------------------------------------------------------------------------------------


def test_export_is_formula_safe(small, tmp_path):
    view = small.compute(["revenue"], by="team", grain="quarter", top=0)
    path = small.export_csv(view, tmp_path / "view.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "team,team_name,period,partial,revenue"
    assert "'=West,'=West,2025-Q1,True,0.0" in lines
    assert "East,East,2025-Q1,True,400.25" in lines


# -- the widget ---------------------------------------------------------------------------------------


def _html(out) -> str:
    return " ".join(str(v) for o in out.outputs for v in o["data"].values())


def test_widget_updates_once_per_action_and_follows_the_picked_metric(small, tmp_path):
    w = small.widget(export_dir=tmp_path)
    assert "Revenue" in _html(w.chart_out)
    w.search.value = "win"
    assert w.checks["revenue"].layout.display == "none" and w.checks["win_rate"].layout.display == ""
    assert w.updates == 1  # finding metrics computes nothing
    n = w.updates
    w.checks["deals_lost"].value = True
    assert w.updates == n + 1 and w.chart_metric.value == "deals_lost"
    assert "Deals lost" in _html(w.chart_out) and "Deals lost" in _html(w.table_out)
    with w.batch():
        w.by.value = "rep_id"
        w.top.value = 5
        w.grain.value = "month"
    assert w.updates == n + 2
    assert "Ann Archer" in _html(w.table_out) and "2025-05 (to 20 May)" in _html(w.table_out)
    assert w.page_label.value == "rows 1-15 of 15" and w.next.disabled
    w.drill.value = next(v for label, v in w.drill.options if v and v[0] == "2025-05" and "Ann" in label)
    assert "D5" in _html(w.drill_out)
    w.export.click()
    assert "Wrote" in w.export_note.value and list(tmp_path.glob("*.csv"))
    with w.batch():
        for mid in w.picked:
            w.checks[mid].value = False
    assert "No metric picked" in w.message.value and w.chart_out.outputs == () and w.table_out.outputs == ()
    w.checks["revenue"].value = True
    w.grain.value = "day"
    w.whole.click()  # every day of the data: 126 days, more than a view shows
    assert "more than the 120" in w.message.value and "Traceback" not in w.message.value
    assert w.chart_out.outputs == () and w.table_out.outputs == ()  # nothing of the last view stays


def test_widget_pages_and_caches(explorer):
    w = explorer.widget(metrics=["revenue"], by="rep_id", top=0)
    assert w.page_label.value == "rows 1-25 of 200" and w.prev.disabled
    queries = explorer.queries
    w.next.click()
    assert w.page_label.value == "rows 26-50 of 200" and "rows 26-50 of 200" in _html(w.table_out)
    w.chart_metric.value = "revenue"
    w.top.value = 8
    w.top.value = 0
    assert explorer.queries == queries  # from the cache; "Others" of revenue is the sum of the other reps
    found: set[str] = set()
    todo = [w.box]
    while todo:
        x = todo.pop()
        found |= set(x._dom_classes)
        todo += list(getattr(x, "children", ()))
    assert {f"wb-explorer-{c}" for c in CLASSES if c not in ("metric-<id>", "chart-title")} <= found
    assert "wb-explorer-chart-title" in _html(w.chart_out)  # a class in the output's HTML
    assert "wb-explorer-metric-win_rate" in found


def test_view_matches_the_engine(explorer):
    frame = explorer.frame(["revenue"], grain="quarter", periods=["2026-Q3"])
    direct = analysis.metrics(explorer.ds, ["revenue"], grain="quarter", periods=["2026-Q3"])
    assert frame.revenue.tolist() == direct.revenue.tolist()


@pytest.mark.slow
def test_notebook_runs_headless(tmp_path: Path):
    from analysis.reports import charts
    from analysis.reports.render import execute_notebook

    out = execute_notebook(NOTEBOOKS / "explore.ipynb", tmp_path / "explore.ipynb", {"data": str(SAMPLE_DATA)},
                           cwd=NOTEBOOKS, timeout=240)
    nb = json.loads(Path(out).read_text())
    html = "".join(charts.output_html(o.get("data", {})) for c in nb["cells"] for o in c.get("outputs", []))
    assert html.count("<svg") >= 3  # the static views were kept outside any widget
    assert "rows 1-25 of" in html and "Others (" in html and "rows behind Revenue" in html
