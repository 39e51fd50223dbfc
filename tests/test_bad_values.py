"""Every kind of bad value is flagged, left out of every figure, and never crashes a command.

Each test plants one kind of bad value among good rows whose figures are known by hand:
three good won deals of 100, 200 and 300 in 2025-Q3 and one good lost deal, so revenue is 600,
deals won 3, win rate 3/4 and average deal size 200 unless a bad row sneaks in.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.data.validation import validate
from analysis.errors import ConfigError, DataError

from .conftest import REPS_CSV, write_tables

HEADER = "opportunity_id,owner_id,created_at,status,stage,amount,close_date\n"
GOOD = (
    "G1,007,2025-07-01T10:00:00,won,Closed Won,100,2025-07-20\n"
    "G2,007,2025-07-02T10:00:00,won,Closed Won,200,2025-08-10\n"
    "G3,008,2025-07-03T10:00:00,won,Closed Won,300,2025-09-01\n"
    "G4,008,2025-07-04T10:00:00,lost,Closed Lost,50,2025-08-01\n"
)
# one bad row among five is more than the 5% of unreadable values that make a column unusable
CONFIG = "as_of: 2025-09-30\nlimits: {max_unparseable_share: 0.5}\n"
FIGURES = ["revenue", "deals_won", "deals_lost", "win_rate", "avg_deal_size", "sales_cycle_days"]
GOOD_FIGURES = {"revenue": 600.0, "deals_won": 3, "deals_lost": 1, "win_rate": 0.75, "avg_deal_size": 200.0,
                "sales_cycle_days": (19 + 39 + 60) / 3}


def dataset(tmp_path: Path, bad_rows: str, *, config: str = CONFIG, **tables: str) -> Path:
    folder = write_tables(tmp_path / "data", reps=REPS_CSV, opportunities=HEADER + GOOD + bad_rows, **tables)
    (folder / "workbench.yml").write_text(config)
    return folder


def quarter(folder: Path) -> dict:
    ds = analysis.load(folder)
    row = analysis.metrics(ds, FIGURES, grain="quarter", periods=["2025-Q3"]).iloc[0]
    return {m: row[m] for m in FIGURES}


def assert_good_figures(folder: Path) -> None:
    got = quarter(folder)
    for m, v in GOOD_FIGURES.items():
        assert got[m] == pytest.approx(v), m


def checks(folder: Path) -> dict[str, int]:
    report = validate(folder)
    return {f.check: f.count for f in report.findings if f.severity != "note"}


def test_good_rows_alone_give_the_hand_figures(tmp_path):
    folder = dataset(tmp_path, "")
    assert_good_figures(folder)
    assert checks(folder) == {}


@pytest.mark.parametrize(
    "amount, check",
    [("nan", "non_finite"), ("inf", "non_finite"), ("-inf", "non_finite"), ("1e309", "non_finite"),
     ("-40", "negative_amount"), ("5e13", "implausible_value")],
)
def test_bad_amounts_are_flagged_and_left_out(tmp_path, amount, check):
    folder = dataset(tmp_path, f"B1,007,2025-07-05T10:00:00,won,Closed Won,{amount},2025-08-15\n")
    assert checks(folder) == {check: 1}
    assert_good_figures(folder)  # revenue 600 and 3 deals won: the bad deal is in no figure


def test_bad_amounts_in_parquet_are_left_out_too(tmp_path):
    folder = dataset(tmp_path, "")
    frame = pd.read_csv(folder / "opportunities.csv", dtype=str)
    frame["amount"] = frame["amount"].astype(float)
    bad = frame.iloc[[0, 0, 0]].copy()
    bad["opportunity_id"] = ["B1", "B2", "B3"]
    bad["amount"] = [math.nan, math.inf, -5.0]
    import pyarrow as pa
    import pyarrow.parquet as pq

    both = pd.concat([frame, bad])
    table = pa.table({c: pa.array(list(both[c]), from_pandas=False) for c in both.columns})  # NaN stays NaN
    pq.write_table(table, folder / "opportunities.parquet")
    (folder / "opportunities.csv").unlink()
    assert checks(folder) == {"non_finite": 2, "negative_amount": 1}
    assert_good_figures(folder)


@pytest.mark.parametrize(
    "row, check",
    [
        # a won deal closing on 9999-12-31: implausible, and after the snapshot
        ("B1,007,2025-07-05T10:00:00,won,Closed Won,1000,9999-12-31", "implausible_date"),
        ("B1,007,2025-07-05T10:00:00,won,Closed Won,1000,10000-01-01", "unparseable"),
        ("B1,007,0044-03-15 BC,won,Closed Won,1000,2025-08-15", "unparseable"),
        ("B1,007,1900-01-01T10:00:00,won,Closed Won,1000,2025-08-15", "implausible_date"),
        # won after the data was taken (its latest record, 2025-09-01, and today): it cannot have closed yet
        ("B1,007,2025-07-05T10:00:00,won,Closed Won,1000," + (date.today() + timedelta(days=60)).isoformat(),
         "closed_after_snapshot"),
        ("B1,007,2025-07-05T10:00:00,won,Closed Won,1000,", "closed_without_date"),
    ],
)
def test_bad_dates_are_flagged_and_left_out(tmp_path, row, check):
    folder = dataset(tmp_path, row + "\n")
    found = checks(folder)
    assert check in found
    assert_good_figures(folder)
    result = _cli("metrics", str(folder), "--metrics", ",".join(FIGURES), "--period", "2025-Q3")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_a_far_future_close_date_of_a_won_deal_does_not_stop_any_command(tmp_path):
    folder = dataset(tmp_path, "B1,007,2025-07-05T10:00:00,won,Closed Won,1000,9999-12-31\n", config="")
    for command in (["validate"], ["metrics", "--metrics", "revenue", "--period", "2025-Q3"]):
        result = _cli(command[0], str(folder), *command[1:])
        assert result.returncode in (0,), (command, result.stderr)
        assert "Traceback" not in result.stderr
    # without as_of the snapshot is the last plausible day of the data, not 9999-12-31
    assert analysis.load(folder).last_date().isoformat() == "2025-09-01"


def test_unknown_status_and_stage_contradiction_are_left_out(tmp_path):
    folder = dataset(tmp_path, "B1,007,2025-07-05T10:00:00,pending,Demo,1000,2025-08-15\n"
                               "B2,007,2025-07-05T10:00:00,open,Closed Won,1000,2025-08-15\n")
    assert checks(folder) == {"unknown_status": 1, "stage_status_mismatch": 1}
    assert_good_figures(folder)


# -- currencies ---------------------------------------------------------------------------------

CUR_HEADER = "opportunity_id,owner_id,created_at,status,stage,amount,close_date,currency\n"


def test_a_second_currency_without_rates_is_never_summed(tmp_path):
    rows = GOOD.replace("\n", ",USD\n") + "E1,007,2025-07-05T10:00:00,won,Closed Won,1000,2025-08-15,EUR\n"
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=CUR_HEADER + rows)
    (folder / "workbench.yml").write_text(CONFIG)
    report = validate(folder)
    fx = [f for f in report.findings if f.check == "fx_missing"]
    assert len(fx) == 1 and fx[0].count == 1 and "EUR" in fx[0].message and "2025-08-15" in fx[0].message
    assert_good_figures(folder)


def test_a_missing_rate_for_the_close_date_leaves_the_deal_out(tmp_path):
    rows = GOOD.replace("\n", ",USD\n") + (
        "E1,007,2025-07-05T10:00:00,won,Closed Won,1000,2025-08-15,EUR\n"  # rate from 2025-08-01: 1.1
        "E2,007,2025-07-05T10:00:00,won,Closed Won,1000,2025-07-15,EUR\n"  # before the first rate: left out
    )
    fx = "currency,date,rate_to_reporting\nEUR,2025-08-01,1.1\n"
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=CUR_HEADER + rows, fx_rates=fx)
    (folder / "workbench.yml").write_text(CONFIG)
    found = checks(folder)
    assert found == {"fx_missing": 1}
    got = quarter(folder)
    assert got["revenue"] == pytest.approx(600 + 1100)
    assert got["deals_won"] == 4


def test_deals_mostly_in_another_currency_make_the_data_unusable(tmp_path):
    rows = GOOD.replace("\n", ",IDR\n")
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=CUR_HEADER + rows)
    with pytest.raises(DataError, match="set currency: in workbench.yml"):
        analysis.load(folder)
    assert _cli("validate", str(folder)).returncode == 1
    (folder / "workbench.yml").write_text("currency: IDR\nas_of: 2025-09-30\n")
    assert_good_figures(folder)


# -- unreadable columns -------------------------------------------------------------------------


def test_an_amount_column_that_does_not_parse_makes_the_data_unusable(tmp_path):
    rows = "".join(f"X{i},007,2025-07-0{i}T10:00:00,won,Closed Won,Rp 56.100.000,2025-08-15\n" for i in range(1, 6))
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=HEADER + rows)
    with pytest.raises(DataError, match=r"amount .*cannot be read.*locale"):
        analysis.load(folder)
    result = _cli("metrics", str(folder), "--metrics", "revenue")
    assert result.returncode == 1 and "Rp 56.100.000" in result.stderr
    (folder / "workbench.yml").write_text("locale: id-ID\ncurrency: IDR\n")
    ds = analysis.load(folder)
    assert analysis.metrics(ds, ["revenue"], grain="quarter", periods=["2025-Q3"]).revenue.iloc[0] == 5 * 56_100_000


def test_dates_that_do_not_parse_make_revenue_not_available_never_zero(tmp_path):
    rows = "".join(f"X{i},007,2025-07-0{i}T10:00:00,won,Closed Won,100,Aug {i} 2025\n" for i in range(1, 6))
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=HEADER + rows)
    (folder / "workbench.yml").write_text("as_of: 2025-09-30\n")
    ds = analysis.load(folder)
    out = analysis.metrics(ds, ["revenue", "deals_won", "opportunities_created"], grain="quarter", periods=["2025-Q3"])
    assert "revenue" in out.attrs["unavailable"] and "close_date" in out.attrs["unavailable"]["revenue"]
    assert out.revenue.isna().all()
    assert out.opportunities_created.iloc[0] == 5  # created_at reads: that figure stands
    assert "unusable_column" in checks(folder)


def test_indonesian_amounts_without_a_locale_are_never_read_1000_times_too_small(tmp_path):
    rows = GOOD.replace(",100,", ",100.000,").replace(",200,", ",200.000,").replace(",300,", ",300.000,")
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=HEADER + rows)
    (folder / "workbench.yml").write_text("as_of: 2025-09-30\n")
    with pytest.raises(DataError, match="locale"):
        analysis.load(folder)
    (folder / "workbench.yml").write_text(CONFIG + "locale: id-ID\n")
    assert quarter(folder)["revenue"] == 600_000


def test_a_few_ambiguous_amounts_are_flagged_and_left_out(tmp_path):
    good = "".join(f"P{i},007,2025-07-01T10:00:00,won,Closed Won,10,2025-07-20\n" for i in range(40))
    folder = write_tables(tmp_path / "d", reps=REPS_CSV,
                          opportunities=HEADER + good + "A1,007,2025-07-01T10:00:00,won,Closed Won,1.200,2025-07-20\n")
    (folder / "workbench.yml").write_text("as_of: 2025-09-30\n")  # 1 of 41 is under 5%
    assert checks(folder) == {"ambiguous": 1}
    got = analysis.metrics(analysis.load(folder), ["revenue", "deals_won"], grain="quarter", periods=["2025-Q3"])
    assert got.revenue.iloc[0] == 400 and got.deals_won.iloc[0] == 40


# -- other tables ---------------------------------------------------------------------------------


def test_pulse_scores_out_of_range_are_not_counted(tmp_path):
    pulse = ("answered_at,score,team\n2025-07-01T10:00:00,9,East\n2025-07-02T10:00:00,nan,East\n"
             "2025-07-03T10:00:00,inf,East\n2025-07-04T10:00:00,11,East\n2025-07-05T10:00:00,3,East\n")
    folder = dataset(tmp_path, "", pulse=pulse)
    assert checks(folder) == {"non_finite": 2, "out_of_range": 1}
    out = analysis.metrics(analysis.load(folder), ["promoters", "detractors", "pulse_responses"], grain="quarter",
                           periods=["2025-Q3"]).iloc[0]
    assert (out.promoters, out.detractors, out.pulse_responses) == (1, 1, 2)


def test_a_nan_quota_is_no_target(tmp_path):
    quotas = ("owner,period_start,period_end,metric,target\n007,2025-07-01,2025-09-30,revenue,nan\n"
              "008,2025-07-01,2025-09-30,revenue,1200\n")
    folder = dataset(tmp_path, "", quotas=quotas)
    assert checks(folder) == {"non_finite": 1}
    out = analysis.metrics(analysis.load(folder), ["revenue_target"], grain="quarter", periods=["2025-Q3"])
    assert out.revenue_target.iloc[0] == 1200


def test_duplicate_column_names_are_refused(tmp_path):
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=HEADER.replace("amount", "amount,Amount")
                          + GOOD.replace(",Closed Won,", ",Closed Won,1,").replace(",Closed Lost,", ",Closed Lost,1,"))
    with pytest.raises(DataError, match="^opportunities.csv: column 'Amount' is named twice"):
        analysis.load(folder)


def test_a_header_only_opportunities_file_is_unusable(tmp_path):
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=HEADER)
    report = validate(folder)
    assert not report.ok and report.fatal[0].check == "empty_table"
    assert _cli("validate", str(folder)).returncode == 1


def test_duplicate_keys_in_the_config_are_an_error(tmp_path):
    folder = dataset(tmp_path, "", config="currency: USD\ntimezone: UTC\ncurrency: EUR\n")
    with pytest.raises(ConfigError, match="'currency' is given twice"):
        analysis.load(folder)


def test_every_flagged_row_is_left_out_of_the_canonical_tables(tmp_path):
    """Per table: a row flagged by a rule that excludes it is absent from the canonical table."""
    acts = ("activity_id,rep_id,type,occurred_at,duration_s\nA1,007,call,2025-07-01T10:00:00,60\n"
            "A2,007,call,2025-07-01T10:00:00,-5\nA3,007,call,1899-07-01T10:00:00,60\n"
            "A4,007,call,2025-07-01T10:00:00,inf\nA5,007,teleport,2025-07-01T10:00:00,60\n")
    leads = ("lead_id,created_at,status\nL1,2025-07-01T10:00:00,open\nL2,1.200,open\nL3,2025-07-01T10:00:00,won\n")
    spend = ("period_start,period_end,category,amount\n2025-07-01,2025-07-31,sales,100\n"
             "2025-08-01,2025-08-31,sales,nan\n2025-09-01,2025-08-31,sales,5\n")
    folder = dataset(tmp_path, "", activities=acts, leads=leads, spend=spend)
    ds = analysis.load(folder)
    a = ds.df("activities").set_index("activity_id")
    assert set(a.index) == {"A1", "A2", "A4"}  # A3: implausible date, A5: unknown type (required)
    assert pd.isna(a.loc["A2", "duration_s"]) and pd.isna(a.loc["A4", "duration_s"])  # optional value emptied
    leads = ds.df("leads").set_index("lead_id")
    assert set(leads.index) == {"L1", "L3"}  # L2: created_at (required) unreadable
    assert pd.isna(leads.loc["L3", "status"])  # an unknown status is emptied, the lead stays
    s = ds.df("spend")
    assert list(s.amount) == [100.0]  # NaN amount and a period ending before it starts are left out


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True, timeout=120)


def test_a_review_refuses_data_whose_close_dates_cannot_be_read(tmp_path):
    """Revenue, win rate and cycle all hang on close_date: no headline is built on unreadable dates."""
    from analysis.reports import review

    rows = "".join(f"X{i},007,2025-07-0{i}T10:00:00,won,Closed Won,100,Aug {i} 2025\n" for i in range(1, 6))
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=HEADER + rows)
    with pytest.raises(DataError, match=r"a review needs opportunities.close_date: .*'Aug 1 2025'"):
        review.setup(data=str(folder))


def test_every_flagged_value_of_the_other_tables_is_left_out(tmp_path):
    history = ("opportunity_id,stage,entered_at\nG1,Prospecting,2025-07-01T10:00:00\nG1,Demo,1850-07-05T10:00:00\n"
               "G2,Demo,2025-07-02T11:00:00\n")
    subs = ("contract_id,account_id,start_date,end_date,annual_value\nC1,A1,2025-01-01,2025-12-31,1200\n"
            "C2,A1,2025-01-01,2025-12-31,-5\nC3,A1,2025-01-01,2025-12-31,inf\n")
    fx = "currency,date,rate_to_reporting\nEUR,2025-01-01,1.1\nGBP,2025-01-01,nan\n"
    accounts = "account_id,name,created_at\nA1,Acme,2025-01-01T00:00:00\nA2,Beta,1700-01-01T00:00:00\n"
    reps = REPS_CSV.replace("2021-03-01", "1066-10-14")
    folder = write_tables(tmp_path / "data", reps=reps, opportunities=HEADER + GOOD, stage_history=history,
                          subscriptions=subs, fx_rates=fx, accounts=accounts)
    (folder / "workbench.yml").write_text(CONFIG)
    ds = analysis.load(folder)
    assert len(ds.df("stage_history")) == 2  # the 1850 entry is left out (entered_at is required)
    assert list(ds.df("subscriptions").contract_id) == ["C1"]  # negative and infinite values: required, left out
    assert list(ds.df("fx_rates").currency) == ["EUR"]
    a = ds.df("accounts").set_index("account_id")
    assert pd.isna(a.loc["A2", "created_at"])  # optional: emptied, the account stays
    r = ds.df("reps").set_index("rep_id")
    assert pd.isna(r.loc["007", "hire_date"])
    found = {(f.table, f.check) for f in validate(folder).findings if f.severity == "problem"}
    assert found == {("stage_history", "implausible_date"), ("subscriptions", "negative_amount"),
                     ("subscriptions", "non_finite"), ("fx_rates", "non_finite"), ("accounts", "implausible_date"),
                     ("reps", "implausible_date")}


# -- found in review: each a figure that was silently wrong, or a crash ------------------------------


def test_open_pipeline_without_usable_close_dates_is_not_available(tmp_path):
    """Whether a won deal was still open at a period end depends on its close date."""
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=(HEADER + GOOD).replace(",close_date", "")
                          .replace(",2025-07-20", "").replace(",2025-08-10", "").replace(",2025-09-01", "")
                          .replace(",2025-08-01", ""))
    out = analysis.metrics(analysis.load(folder), ["open_pipeline", "open_deals", "pipeline_velocity",
                                                   "opportunities_created"], grain="month", periods=["2025-07"])
    for m in ("open_pipeline", "open_deals", "pipeline_velocity"):
        assert m in out.attrs["unavailable"] and "close_date" in out.attrs["unavailable"][m], m
        assert out[m].isna().all(), m
    assert out.opportunities_created.iloc[0] == 4


def test_exchange_rates_of_zero_conflicting_or_giving_absurd_amounts_are_not_used(tmp_path):
    rows = GOOD.replace("\n", ",USD\n") + (
        "J1,007,2025-07-05T10:00:00,won,Closed Won,1000,2025-08-15,JPY\n"  # rate 0: no rate
        "P1,007,2025-07-05T10:00:00,won,Closed Won,1000,2025-08-15,GBP\n"  # two rates that day: no rate
        "C1,007,2025-07-05T10:00:00,won,Closed Won,900000000000,2025-08-15,CHF\n"  # 4.5e13 once converted
    )
    fx = ("currency,date,rate_to_reporting\nJPY,2025-01-01,0\nGBP,2025-08-01,1.3\nGBP,2025-08-01,1.2\n"
          "CHF,2025-01-01,50\n")
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=CUR_HEADER + rows, fx_rates=fx)
    (folder / "workbench.yml").write_text(CONFIG)
    found = {(f.table, f.check): f.count for f in validate(folder).findings if f.severity == "problem"}
    assert found == {("fx_rates", "out_of_range"): 1, ("fx_rates", "fx_conflict"): 1,
                     ("opportunities", "fx_missing"): 2, ("opportunities", "implausible_value"): 1}
    assert_good_figures(folder)


def test_records_after_a_configured_as_of_are_real_and_not_flagged(tmp_path):
    folder = dataset(tmp_path, "L1,007,2025-07-25T10:00:00,won,Closed Won,1000,2025-08-15\n",
                     config="as_of: 2025-07-10\n")
    assert checks(folder) == {}
    out = analysis.metrics(analysis.load(folder), ["deals_won"], grain="quarter", periods=["2025-Q3"])
    assert out.deals_won.iloc[0] == 4


def test_a_mapping_that_does_not_fit_the_files_is_one_line_exit_1(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "pipeline.csv").write_text(
        "Deal ID,Salesperson,Opened,Result,Phase,Net Value,Date entered Demo (Main),stage\n"
        "D1,Ann,2025-07-01,won,Demo,100,2025-07-02,x\n")
    (folder / "workbench.yml").write_text(
        "columns:\n  tables:\n"
        "    opportunities:\n      from: pipeline.csv\n      columns: {opportunity_id: Deal ID, owner_id: Salesperson,"
        " created_at: Opened, status: Result, stage: Phase, amount: Net Value}\n"
        "    reps:\n      from: pipeline.csv\n      distinct: true\n"
        "      columns: {rep_id: Salesperson, name: Salesperson}\n"
        "    stage_history:\n      from: pipeline.csv\n"
        "      unpivot: {headers: 'Date entered (?P<stage>.+) \\((?P<p>[^()]+)\\)', value: entered_at}\n"
        "      columns: {opportunity_id: Deal ID, stage: stage, entered_at: entered_at}\n")
    result = _cli("validate", str(folder))
    assert result.returncode == 1 and "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_a_wrong_utf16_encoding_setting_is_named(tmp_path):
    folder = dataset(tmp_path, "", config="encoding: utf-16\n")
    with pytest.raises(DataError, match="does not look like utf-16"):
        analysis.load(folder)


def test_a_locale_that_is_neither_a_name_nor_a_mapping_is_one_clear_line(tmp_path):
    folder = dataset(tmp_path, "", config="locale: 5\n")
    with pytest.raises(ConfigError, match="give a locale name such as id-ID"):
        analysis.load(folder)
