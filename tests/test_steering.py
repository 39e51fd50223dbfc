"""Forecast, plan and coach commands, and the review sections that steer (SPEC sections 6, 7, 9)."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout

import pandas as pd
import pytest

import analysis
from analysis.__main__ import main
from analysis.paths import SAMPLE_DATA
from analysis.reports import review
from analysis.reports import steering_review as steering
from analysis.steering.outlook import COLUMNS, period_outlook


def cli(*args: str) -> str:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(list(args))
    assert code == 0
    return buf.getvalue()


@pytest.fixture(scope="module")
def ds():
    return analysis.load(SAMPLE_DATA)


def test_plan_command_reproduces_the_spec_example():
    out = cli("plan", str(SAMPLE_DATA), "--target", "5000000", "--period", "2026", "--deal-size", "100000",
              "--win-rate", "0.25", "--format", "csv")
    frame = pd.read_csv(io.StringIO(out)).set_index("step")
    assert frame.loc["deals_won", "needed"] == 50 and frame.loc["deals_won", "quantity"] == 50
    assert frame.loc["opportunities", "needed"] == 200 and frame.loc["opportunities", "quantity"] == 200
    assert frame.loc["deals_won", "source"] == "override" and frame.loc["closing", "source"] == "history"
    table = cli("plan", str(SAMPLE_DATA), "--target", "5000000", "--period", "2026", "--deal-size", "100000",
                "--win-rate", "0.25")
    assert "50 won deals from 200 opportunities" in table


def test_forecast_command_prints_forecasts_with_their_backtest(ds):
    out = json.loads(cli("forecast", str(SAMPLE_DATA), "--period", "2026-Q3", "--format", "json"))
    frame = pd.DataFrame(out)
    assert list(frame.columns) == COLUMNS
    ts = frame[frame.method == "time_series"].set_index("model")
    assert set(ts.index) == {"ets", "seasonal_naive"} and ts.is_winner.sum() == 1
    assert (ts.backtest_periods == ds.config.forecast.backtest_periods).all() and (ts.mape > 0).all()
    winner = ts[ts.is_winner].iloc[0]
    assert winner.mape == ts.mape.min()
    assert (ts.low <= ts.forecast).all() and (ts.forecast <= ts.high).all()
    # a past period: made as of the day before it, with its actual beside it
    assert (frame.as_of == "2026-06-30").all()
    actual = analysis.metrics(ds, ["revenue"], grain="quarter", periods=["2026-Q3"]).revenue.iloc[0]
    assert frame.actual.iloc[0] == pytest.approx(actual)
    pipe = frame[frame.method == "weighted_pipeline"].set_index("model")
    parts = pipe.drop(index="total")
    assert pipe.loc["total", "forecast"] == pytest.approx(parts.forecast.sum(), abs=0.01)
    assert pipe.loc["total", "deals"] == parts.deals.sum()
    sim = frame[frame.method == "simulation"].iloc[0]
    assert sim.low <= sim.forecast <= sim.high and sim.backtest_periods == 4


def test_outlook_of_a_future_period_starts_from_the_data_end(ds):
    o = period_outlook(ds, "2027-Q1", simulations=500, replay=False)
    assert o.as_of == ds.last_date() and o.actual is None
    assert o.series is not None and set(o.series.forecast.period) >= {"2027-Q1"}
    assert "2027-Q1" in o.sentences[0]


def test_coach_command_names_the_planted_reps_with_mentors():
    out = json.loads(cli("coach", str(SAMPLE_DATA), "--period", "2026-Q3", "--format", "json"))
    flags = pd.DataFrame(out)
    assert {"rep_id", "flag", "evidence", "mentor_rep_id"} <= set(flags.columns)
    pairs = set(zip(flags.rep_id, flags.flag))
    assert ("R0028", "win_rate") in pairs
    assert ("R0011", "many_calls_few_meetings") in pairs
    assert flags.mentor_rep_id.notna().all() and (flags.mentor_rep_id != flags.rep_id).all()
    text = cli("coach", str(SAMPLE_DATA), "--period", "2026-Q3")
    assert "need coaching in 2026-Q3" in text and "Nadia Chen" in text


@pytest.fixture(scope="module")
def company():
    return review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA)


def _text(items) -> str:
    return " ".join(getattr(x, "text", "") or "" for x in items)


def test_forecast_section_shows_accuracy_and_outcome(company):
    items = steering.forecast_section(company)
    text = _text(items)
    assert "Revenue forecast for 2026-Q4 (as of 2026-09-30), from the" in text and "MAPE" in text
    assert text.count("Revenue forecast for 2026-Q4") == 1  # one headline; the others are named by method
    assert "Time-series forecast of revenue for 2026-Q4" in text
    assert "P50" in text and "P10" in text and "P90" in text
    html = "".join(x._repr_html_() for x in items)
    assert html.count("wb-chart") >= 2


def test_scorecard_section_leaderboard_and_own_card(company):
    text = _text(steering.scorecard_section(company))
    assert "leads the AEs" in text and "leads the SDRs" in text
    rep = review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA, scope="rep", scope_value="R0028")
    board = analysis.scorecard.leaderboard(rep.ds, "2026-Q3")
    me = board.set_index("rep_id").loc["R0028"]
    own = steering.scorecard_section(rep)
    assert f"rank {int(me['rank'])} of {int(me.peers)} AEs" in _text(own)
    html = "".join(x._repr_html_() for x in own)
    others = set(board[board.rep_id != "R0028"].name)
    assert not [n for n in others if n in html], "a rep's own scorecard names nobody else"


def test_rep_coaching_note_describes_the_mentor_without_naming(ds):
    named = analysis.coaching.coaching_flags(ds, "2026-Q3")
    anonymous = analysis.coaching.coaching_flags(ds, "2026-Q3", name_mentors=False)
    assert len(named) == len(anonymous) >= 2 and named.mentor_name.notna().all()
    for with_name, without, mentor in zip(named.sentence, anonymous.sentence, named.mentor_name):
        head = with_name.partition("; pair ")[0]
        assert mentor in with_name and mentor not in without
        assert without.startswith(head) and "peer strongest on" in without
    rep = review.setup(cadence="quarterly", period="2026-Q3", data=SAMPLE_DATA, scope="rep", scope_value="R0028")
    text = _text(steering.coaching_section(rep))
    assert "Nadia Chen's win rate is 1.7%" in text and "(not named here)" in text
    assert not [m for m in named.mentor_name if m in text]


def test_experiments_and_enps_sections(company, tmp_path):
    text = _text(steering.experiments_section(company))
    assert "New discovery script:" in text and "no detectable change" in text
    enps = analysis.enps.enps(company.ds, period="2026-Q3", grain="quarter")
    overall = enps[enps.level == "company"].iloc[0]
    assert f"eNPS in 2026-Q3 was {overall.enps:.0f}" in _text(steering.enps_section(company))
    bare = company.ds.config.model_copy(update={"experiments": ()})
    assert steering.experiments_section(_with_config(company, bare)) == []


def _with_config(r: review.Review, config) -> review.Review:
    class _DS:
        def __init__(self, ds, config):
            self._ds, self.config = ds, config

        def __getattr__(self, name):
            return getattr(self._ds, name)

    return review.Review(_DS(r.ds, config), r.catalog, r.cadence, r.period, r.scope, r.scope_value, r.parameters)


def test_forecast_by_team_gives_each_quota_probability(ds):
    frame = pd.read_csv(io.StringIO(cli("forecast", str(SAMPLE_DATA), "--period", "2026-Q3", "--by", "team",
                                        "--format", "csv")))
    assert {"team", "target", "p10", "p50", "p90", "p_reach_target"} <= set(frame.columns)
    assert frame.p_reach_target.between(0, 1).all()
    assert (frame.p10 <= frame.p50).all() and (frame.p50 <= frame.p90).all()
    quotas = analysis.metrics(ds, ["revenue_target"], by="team", grain="quarter", periods=["2026-Q3"])
    expected = dict(zip(quotas.team, quotas.revenue_target.astype(float)))
    assert dict(zip(frame.team, frame.target)) == pytest.approx(expected)


def test_one_headline_forecast_and_the_plan_starts_from_it(company):
    """The review leads with one forecast, says why another disagrees, and plans from it."""
    texts = [getattr(x, "text", "") or "" for x in steering.forecast_section(company)]
    lead = texts[0]
    assert lead.startswith("Revenue forecast for 2026-Q4 (as of 2026-09-30), from the ")
    assert sum(t.count("Revenue forecast for") for t in texts) == 1
    method = re.match(r"Revenue forecast for \S+ \(as of \S+\), from the ([a-z ]+?)[:,( ]", lead).group(1)
    value = re.search(r": (?:P50 )?(\$[\d.]+[KMB]?)", lead).group(1)
    charts_ = [t for t in texts if t.startswith("[chart]")]
    assert sum("(the headline)" in t for t in charts_) == 1
    assert all("(the headline)" in t or "(supporting evidence)" in t for t in charts_ if "forecast" in t.lower()
               or "simulated" in t.lower())
    # a second forecast outside the headline's interval is explained, never left beside it silently
    ts = re.search(r"Time-series forecast of revenue for 2026-Q4: (\$[\d.]+M)", " ".join(texts)).group(1)
    low, high = re.search(r"P10-P90 (\$[\d.]+M)-(\$[\d.]+M)", lead).groups()
    outside = not (float(low[1:-1]) <= float(ts[1:-1]) <= float(high[1:-1]))
    assert outside == ("lies above" in lead or "lies below" in lead)
    plan = steering.plan_section(company)[0].text
    assert plan.startswith(f"The plan below works back from the headline forecast (the {method}; no quota is set) "
                           f"of {value} for 2026-Q4")
