"""The analytics (funnel, pipeline, losses) give identical figures on DuckDB, Spark and PostgreSQL
(marker ``engines``, excluded by default; needs Java and a PostgreSQL server, see
:mod:`engine_data`).

The sample is loaded on each engine once for the module. Each function is asked the same
question on every engine and the frames must be equal after sorting by their key columns: counts
and rates exactly, money to the cent, other floats (days, rates) to 9 decimals, which absorbs
only the float noise of the order an engine adds in.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analysis.analytics import funnel, losses, pipeline
from tests import engine_data

pytestmark = pytest.mark.engines

OTHERS = ("spark", "postgres")
#: Money columns of the frames compared (rounded to the cent).
MONEY = {
    "amount", "amount_lost", "pipeline_created", "revenue", "lost_amount", "net_created", "open_pipeline",
    "pipeline_velocity", *pipeline.WATERFALL_LINES,
}  # fmt: skip


@pytest.fixture
def ds(sample_on_engines):
    return sample_on_engines


def normalised(frame: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    return engine_data.normalised(frame, keys, MONEY)


def assert_same(ds, fn, *, keys: list[str] | None = None, what: str = "") -> tuple[object, dict[str, object]]:
    """``fn(dataset)`` on DuckDB, then on each other engine: equal frames (and columns); a tuple
    result compares its frame and the rest exactly. Returns DuckDB's result and the others'."""
    expected = fn(ds["duckdb"])
    frame_of = (lambda r: r[0]) if isinstance(expected, tuple) else (lambda r: r)
    want = normalised(frame_of(expected), keys)
    others = {}
    for engine in OTHERS:
        got = others[engine] = fn(ds[engine])
        assert list(frame_of(got).columns) == list(frame_of(expected).columns), (engine, what)
        pd.testing.assert_frame_equal(normalised(frame_of(got), keys), want, check_dtype=False,
                                      obj=f"{what} on {engine}")
        if isinstance(expected, tuple):
            assert got[1:] == expected[1:], (engine, what)
    return expected, others


# -- funnel --------------------------------------------------------------------------------------


@pytest.mark.parametrize("period, by", [("2026-Q3", None), ("2026-08", "rep_id")])
def test_stage_funnel(ds, period, by):
    out, others = assert_same(ds, lambda d: funnel.stage_funnel(d, period, by=by), what=f"stage_funnel {period} {by}")
    assert out["entered"].sum() > 0
    for got in others.values():
        assert got.attrs["nurturing"] == out.attrs["nurturing"]


@pytest.mark.parametrize("period, by", [("2026-Q3", "team"), ("2026-08", None)])
def test_time_in_stage(ds, period, by):
    out, others = assert_same(ds, lambda d: funnel.time_in_stage(d, period=period, by=by),
                              what=f"time_in_stage {period} {by}")
    assert out["n"].sum() > 0
    for got in others.values():
        assert got.attrs["running"] == out.attrs["running"]


def test_stalled_deals(ds):
    out, _ = assert_same(ds, lambda d: funnel.stalled_deals(d, as_of=date(2026, 9, 30)), keys=["opportunity_id"],
                         what="stalled_deals")
    assert len(out) > 0


@pytest.mark.parametrize("period, where", [("2026-Q3", None), ("2026-08", {"team": "East SMB"})])
def test_transitions(ds, period, where):
    (frame, summary), _ = assert_same(ds, lambda d: funnel.transitions(d, period=period, where=where),
                                      what=f"transitions {period} {where}")
    assert summary["transitions"] > 0


def test_funnel_snapshot(ds):
    out, _ = assert_same(ds, lambda d: funnel.funnel_snapshot(d, as_of=date(2026, 6, 30), by="team"),
                         what="funnel_snapshot")
    assert out["deals"].sum() > 0


# -- pipeline ------------------------------------------------------------------------------------


@pytest.mark.parametrize("period, by", [("2026-Q3", None), ("2026-08", "rep_id")])
def test_pipeline_waterfall(ds, period, by):
    out, _ = assert_same(ds, lambda d: pipeline.pipeline_waterfall(d, period, by=by), what=f"waterfall {period} {by}")
    assert out["end_deals"].sum() > 0


def test_pipeline_as_of(ds):
    out, _ = assert_same(ds, lambda d: pipeline.pipeline_as_of(d, date(2026, 6, 30), by="team"),
                         keys=["opportunity_id"], what="pipeline_as_of")
    assert len(out) > 0


def test_pipeline_by_step(ds):
    out, _ = assert_same(ds, lambda d: pipeline.pipeline_by_step(d, date(2026, 9, 30), by="rep_id"),
                         what="pipeline_by_step")
    assert out["deals"].sum() > 0


def test_open_pipeline_by_close_period(ds):
    out, _ = assert_same(ds, lambda d: pipeline.open_pipeline_by_close_period(d, as_of=date(2026, 6, 30), by="team"),
                         what="open_pipeline_by_close_period")
    assert out["deals"].sum() > 0


def test_created_vs_closed(ds):
    out, _ = assert_same(ds, lambda d: pipeline.created_vs_closed(d, grain="month", periods=["2026-08"], by="team"),
                         what="created_vs_closed")
    assert out["pipeline_created"].sum() > 0


@pytest.mark.parametrize("period, by", [("2026-Q3", "team"), (None, "rep_id")])
def test_cycle_survival(ds, period, by):
    out, _ = assert_same(ds, lambda d: pipeline.cycle_survival(d, period=period, by=by, as_of=date(2026, 9, 30)),
                         keys=[by, "days"], what=f"cycle_survival {period} {by}")
    assert len(out) > 1


@pytest.mark.parametrize("period, by", [("2026-Q3", "rep_id"), ("2026-08", None)])
def test_cycle_summary(ds, period, by):
    assert_same(ds, lambda d: pipeline.cycle_summary(d, period=period, by=by, as_of=date(2026, 9, 30)),
                what=f"cycle_summary {period} {by}")


# -- losses --------------------------------------------------------------------------------------


@pytest.mark.parametrize("period, by", [("2026-Q3", "team"), ("2026-08", "rep_id")])
def test_lead_funnel(ds, period, by):
    out, _ = assert_same(ds, lambda d: losses.lead_funnel(d, period, by=by), what=f"lead_funnel {period} {by}")
    assert out["leads"].sum() > 0


@pytest.mark.parametrize("period, by", [("2026-Q3", "rep_id"), ("2026-08", None)])
def test_lead_response(ds, period, by):
    assert_same(ds, lambda d: losses.lead_response(d, period, by=by), what=f"lead_response {period} {by}")


@pytest.mark.parametrize("period, by", [("2026-Q3", ["step", "team"]), ("2026-08", "rep_id")])
def test_loss_analysis(ds, period, by):
    out, others = assert_same(ds, lambda d: losses.loss_analysis(d, period, by=by), what=f"loss_analysis {period} {by}")
    assert out["lost_deals"].sum() > 0
    for got in others.values():
        assert losses.top_loss_pattern(got) == losses.top_loss_pattern(out)


def test_engagement_and_won_vs_lost(ds):
    out, others = assert_same(ds, lambda d: losses.engagement(d, "2026-Q3", by="team"), what="engagement")
    assert out["deals"].sum() > 0
    want = normalised(losses.won_vs_lost(out))
    for engine, got in others.items():
        pd.testing.assert_frame_equal(normalised(losses.won_vs_lost(got)), want, check_dtype=False,
                                      obj=f"won_vs_lost on {engine}")
