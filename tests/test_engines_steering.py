"""The steering figures (forecast, coaching, plan) are the same on Spark and PostgreSQL as on
DuckDB for the sample data.

"The same": after sorting rows by their key columns and resetting the index, counts and rates
equal, money equal to the cent, other floats equal to 9 decimals (float noise only).

Run with ``pytest -m engines tests/test_engines_steering.py -p no:xdist``; the module is skipped
when pyspark, psycopg, Java or a PostgreSQL server binary is missing (``engine_data.missing``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.engine_data import normalised

pytestmark = pytest.mark.engines

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
AS_OF = "2026-09-30"
OTHERS = ("spark", "postgres")


@pytest.fixture
def ds(sample_on_engines):
    return sample_on_engines


def assert_same(expected: pd.DataFrame, got: pd.DataFrame, keys: list[str], money: tuple[str, ...] = ()) -> None:
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(normalised(got, keys, money), normalised(expected, keys, money), check_dtype=False)


@pytest.mark.parametrize("engine", OTHERS)
def test_win_probabilities(ds, engine):
    from analysis.steering import forecast as fc

    money = ("closed_amount", "won_amount")
    want = fc.win_probabilities(ds["duckdb"], as_of=AS_OF)
    got = fc.win_probabilities(ds[engine], as_of=AS_OF)
    assert_same(want, got, ["step"], money)
    assert got.attrs["snapshots"] == want.attrs["snapshots"]
    assert round(got.attrs["overall"], 9) == round(want.attrs["overall"], 9)


@pytest.mark.parametrize("engine", OTHERS)
def test_period_win_probabilities(ds, engine):
    from analysis.steering import forecast as fc

    money = ("closed_amount", "won_amount")
    want = fc.period_win_probabilities(ds["duckdb"], "2026-Q4", as_of=AS_OF)
    got = fc.period_win_probabilities(ds[engine], "2026-Q4", as_of=AS_OF)
    assert_same(want, got, ["step"], money)
    assert got.attrs["windows"] == want.attrs["windows"]
    by_window = lambda f: f.attrs["by_window"].reset_index()
    assert_same(by_window(want), by_window(got), ["step"])


@pytest.mark.parametrize("engine", OTHERS)
def test_weighted_pipeline(ds, engine):
    from analysis.steering import forecast as fc

    money = ("amount", "weighted")
    want = fc.weighted_pipeline(ds["duckdb"], as_of=AS_OF, by=["team"])
    got = fc.weighted_pipeline(ds[engine], as_of=AS_OF, by=["team"])
    assert len(want)
    assert_same(want, got, ["close_period", "team", "category"], money)
    deals_want = fc.open_deals_forecast(ds["duckdb"], as_of=AS_OF)
    deals_got = fc.open_deals_forecast(ds[engine], as_of=AS_OF)
    assert_same(deals_want, deals_got, ["opportunity_id"], money)


@pytest.mark.parametrize("engine", OTHERS)
def test_simulation(ds, engine):
    from analysis.steering import forecast as fc

    money = ("won_to_date", "open_amount", "open_expected", "new_expected", "mean", "p10", "p50", "p90", "target")
    want = fc.simulate_outcome(ds["duckdb"], "2026-Q4", seed=11, n=2_000)
    got = fc.simulate_outcome(ds[engine], "2026-Q4", seed=11, n=2_000)
    cols = ["p10", "p50", "p90"]
    assert_same(want.summary[cols], got.summary[cols], cols, money)
    assert_same(want.summary, got.summary, ["period"], money)
    for dim, frame in want.groups.items():
        assert_same(frame, got.groups[dim], [dim], money)
    assert (got.totals.round(2) == want.totals.round(2)).all()  # the same draws in the same order


@pytest.mark.parametrize("engine", OTHERS)
def test_coaching_flags(ds, engine):
    from analysis.steering import coaching

    want = coaching.coaching_flags(ds["duckdb"], "2026-Q3")
    got = coaching.coaching_flags(ds[engine], "2026-Q3")
    assert len(want)
    assert_same(want.astype({"hire_date": "string"}), got.astype({"hire_date": "string"}), ["rep_id", "flag"])


def _assumptions_frame(a) -> pd.DataFrame:
    ids = sorted(set(a.values) | set(a.numerators) | set(a.denominators))
    return pd.DataFrame({
        "id": ids,
        "value": [a.values.get(i) for i in ids],
        "numerator": [a.numerators.get(i) for i in ids],
        "denominator": [a.denominators.get(i) for i in ids],
        "unavailable": [a.unavailable.get(i, "") for i in ids],
    }).astype({"value": "float64", "numerator": "float64", "denominator": "float64"})


@pytest.mark.parametrize("engine", OTHERS)
def test_plan_assumptions(ds, engine):
    from analysis.steering import plan

    want = plan.assumptions(ds["duckdb"], "2026-Q4")
    got = plan.assumptions(ds[engine], "2026-Q4")
    assert (got.window_start, got.window_end, got.head_count, got.working_days) == \
        (want.window_start, want.window_end, want.head_count, want.working_days)
    assert_same(_assumptions_frame(want), _assumptions_frame(got), ["id"])
