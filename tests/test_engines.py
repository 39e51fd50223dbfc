"""Identical figures on DuckDB, Spark and PostgreSQL (marker ``engines``; ``.ci/run`` runs them
after ``make test``, with Java and PostgreSQL installed).

The sample is loaded on each engine (:mod:`engine_data`): DuckDB reads the folder, Spark gets
the canonical tables of the same folder, PostgreSQL gets them through ``load-db`` and computes in
the database. Every metric of the catalog, by team and by rep, for a quarter and a month, must be
equal: counts and rates exactly, money to the cent. The analytics and the forecast's inputs are
compared in test_engines_analytics.py and test_engines_steering.py.
"""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from analysis.paths import SAMPLE_DATA
from analysis.semantic.catalog import build_catalog
from analysis.semantic.engine import metrics
from tests.conftest import strip_render_ids
from tests.engine_data import normalised

pytestmark = pytest.mark.engines

OTHERS = ("spark", "postgres")


@pytest.fixture
def ds(sample_on_engines):
    return sample_on_engines


def money_columns(ds, frame: pd.DataFrame) -> set[str]:
    catalog = build_catalog(ds.config)
    return {c for c in frame.columns if c in catalog.metrics and catalog.metrics[c].unit == "money"}


@pytest.mark.parametrize("by, grain, period", [
    ("team", "quarter", "2026-Q3"),
    ("rep_id", "quarter", "2026-Q3"),
    ("team", "month", "2026-08"),
    ("rep_id", "month", "2026-08"),
])
def test_the_whole_catalog_is_identical(ds, by, grain, period):
    ids = list(build_catalog(ds["duckdb"].config).metrics)
    expected = metrics(ds["duckdb"], ids, by=[by], grain=grain, periods=[period])
    assert len(expected) > 3 and expected["revenue"].sum() > 0
    money = money_columns(ds["duckdb"], expected)
    assert {"revenue", "avg_deal_size", "open_pipeline"} <= money
    for engine in OTHERS:
        got = metrics(ds[engine], ids, by=[by], grain=grain, periods=[period])
        assert got.attrs.get("unavailable", {}) == expected.attrs.get("unavailable", {}), engine
        pd.testing.assert_frame_equal(normalised(got, money=money), normalised(expected, money=money), check_dtype=False,
                                      obj=f"{engine} catalog by {by} for {period}")


def test_money_sums_are_exact_decimal_sums_on_every_engine(ds):
    """Revenue is summed as an exact decimal on every engine (timeline.money_sum): the engines give
    the same total to the last digit, the exact sum of the amounts."""
    from decimal import Decimal

    from analysis.data.timeline import money_sum, to_decimal

    won = ds["duckdb"].df("opportunities").query("status == 'won' and close_date.notna()")
    exact = sum((Decimal(repr(float(a))) for a in won["amount"].dropna()), Decimal(0))
    totals = {}
    for engine in ("duckdb", *OTHERS):
        o = ds[engine].tables["opportunities"]
        o = o.filter((o.status == "won") & o.close_date.notnull())
        totals[engine] = to_decimal(o.aggregate(total=money_sum(o.amount)).to_pyarrow()["total"][0].as_py())
    assert totals["spark"] == totals["duckdb"] and totals["postgres"] == totals["duckdb"], totals
    assert totals["duckdb"] == exact.quantize(Decimal("0.000001")), (totals["duckdb"], exact)


def test_metrics_command_prints_the_same_on_spark_and_postgres(ds):
    from analysis.__main__ import main

    def run(*argv: str) -> str:
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            assert main(["metrics", *argv, "--metrics", "revenue,win_rate,avg_deal_size,sales_cycle_days,open_pipeline",
                         "--by", "team", "--period", "2026-Q3"]) == 0
        return buffer.getvalue()

    duck = run(str(SAMPLE_DATA))
    assert "revenue" in duck.splitlines()[0].lower() or "Revenue" in duck
    assert run(str(SAMPLE_DATA), "--engine", "spark") == duck
    assert run(ds["postgres_url"], "--config", str(Path(SAMPLE_DATA) / "workbench.yml")) == duck


def test_a_database_url_with_engine_spark_is_refused(ds):
    from analysis.data.loading import load
    from analysis.errors import ConfigError

    with pytest.raises(ConfigError, match="is a database and computes there"):
        load(ds["postgres_url"], Path(SAMPLE_DATA) / "workbench.yml", engine="spark")
    with pytest.raises(ConfigError, match="unknown engine"):
        load(SAMPLE_DATA, engine="sparkk")


def test_timestamps_are_wall_time_on_every_engine(ds):
    """Canonical timestamps are company wall time with no zone: the same instants come back from
    each engine (no engine shifts them by its session time zone)."""
    expected = ds["duckdb"].tables["activities"].order_by("activity_id").limit(50).select(
        "activity_id", "occurred_at").to_pandas()
    assert expected["occurred_at"].dt.tz is None
    for engine in OTHERS:
        got = ds[engine].tables["activities"].order_by("activity_id").limit(50).select(
            "activity_id", "occurred_at").to_pandas()
        got["occurred_at"] = pd.to_datetime(got["occurred_at"]).dt.tz_localize(None)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, obj=engine)


def report_figures(page: str) -> str:
    """What a reader of a rendered review sees: its text, tables and charts' data labels, without
    what differs from render to render (SVG element ids, the render id, cell ids), the chart
    geometry (pixel positions carry a float sum's last bits) and the appendix on how the report
    was made (where the data came from, the engine, timings). Long decimals in chart labels are
    cut to four places."""
    page = page.split('id="Appendix:-how-this-report-was-made"')[0]
    page = re.sub(r'<meta name="wb-render-id"[^>]*>|id="cell-id=[^"]*"', "", page)
    page = strip_render_ids(page)
    page = re.sub(r'\s(?:d|transform|x|y|x1|x2|y1|y2|width|height|cx|cy|r)="[^"]*"', "", page)
    return re.sub(r"\d+\.\d{5,}", lambda m: f"{float(m.group()):.4f}", page)


@pytest.mark.slow
def test_a_company_review_renders_the_same_figures_on_every_engine(ds, tmp_path):
    from analysis.reports.review import render_review

    pages = {}
    for engine, where in [("duckdb", dict(data=SAMPLE_DATA)),
                          ("spark", dict(data=SAMPLE_DATA, engine="spark")),
                          ("postgres", dict(data=ds["postgres_url"], config=Path(SAMPLE_DATA) / "workbench.yml"))]:
        path = render_review(cadence="quarterly", period="2026-Q3", out=tmp_path / engine, **where)
        pages[engine] = path.read_text(encoding="utf-8")
    assert "postgresql://" in pages["postgres"] and ">spark<" in pages["spark"]  # the appendix names the source
    expected = report_figures(pages["duckdb"])
    assert "Revenue" in expected and "Win rate" in expected and expected.count("<svg") >= 10
    for engine in OTHERS:
        got = report_figures(pages[engine])
        if got != expected:
            import difflib

            diff = [d for d in difflib.unified_diff(expected.split(">"), got.split(">"), lineterm="", n=0)
                    if d[:1] in "+-" and not d.startswith(("+++", "---"))]
            pytest.fail(f"{engine} review differs from DuckDB's in {len(diff)} places, first: {diff[:6]}")


@pytest.mark.parametrize("vendor", ["salesforce", "hubspot", "pipedrive"])
def test_crm_exports_give_the_hand_computed_figures_on_every_engine(ds, vendor, tmp_path):
    """A CRM's native export (the import presets) read on Spark, and copied into PostgreSQL with
    load-db, gives the figures computed by hand from the export's ground truth."""
    from analysis.data.engines import copy_to_database
    from analysis.data.loading import load
    from tests import crm_exports as ce
    from tests.test_presets import METRICS, Q3, expected_figures

    folder = tmp_path / "export"
    truth = ce.BUILDERS[vendor](folder)
    want = expected_figures(truth, *Q3)
    config = {"source": vendor, "timezone": "UTC", "currency": "USD"}
    duck = load(folder, config)
    url = ds["postgres_url"].replace("schema=crm", f"schema={vendor}")
    copy_to_database(duck, url)
    on = {"spark": load(folder, config, engine="spark"),
          "postgres": load(url, duck.config)}  # the preset's stages come with the config
    for engine, dataset in on.items():
        row = metrics(dataset, METRICS, grain="quarter", periods=["2025-Q3"]).iloc[0]
        for mid in ("deals_won", "deals_lost", "opportunities_created", "open_deals"):
            assert int(row[mid]) == want[mid], (engine, mid)
        for mid in ("revenue", "win_rate", "avg_deal_size", "sales_cycle_days", "open_pipeline"):
            assert float(row[mid]) == pytest.approx(want[mid], rel=1e-12, abs=1e-6), (engine, mid)


def test_the_explorer_shows_the_same_view_and_drill_down_on_every_engine(ds):
    from analysis.reports.explore import Explorer, drill_down

    def seen(dataset):
        explorer = Explorer(dataset)
        view = explorer.compute(["revenue", "win_rate", "open_pipeline"], grain="quarter", by="team",
                                periods=["2026-Q2", "2026-Q3"])
        rows = drill_down(dataset, "open_pipeline", period="2026-Q3", by="team", group="East SMB")
        rows = rows.sort_values("opportunity_id").reset_index(drop=True)
        return explorer.table(view)._repr_html_(), normalised(view.frame, money={"revenue", "open_pipeline"}), rows

    html, frame, rows = seen(ds["duckdb"])
    assert "East SMB" in html and len(rows) > 10
    for engine in OTHERS:
        got_html, got_frame, got_rows = seen(ds[engine])
        assert got_html == html, engine
        pd.testing.assert_frame_equal(got_frame, frame, check_dtype=False, obj=engine)
        pd.testing.assert_frame_equal(got_rows, rows, check_dtype=False, obj=engine)
