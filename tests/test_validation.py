"""Every data-quality rule of SPEC section 2, on hand-built files with known problems."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

import analysis
from analysis.data.validation import CHECKS, validate

from .conftest import OPPS_CSV, REPS_CSV, write_tables

AS_OF = date(2025, 9, 1)

BAD_OPPS = """\
opportunity_id,owner_id,created_at,status,stage,amount,close_date,account_id,loss_reason,deal_type
O1,007,2025-07-01T10:00:00,won,Closed Won,100,2025-07-20,A1,,new_business
O1,007,2025-07-01T10:00:00,won,Closed Won,100,2025-07-20,A1,,new_business
O2,007,2025-07-02T09:00:00,won,Closed Won,,2025-07-21,A1,,new_business
O3,007,2025-07-03T09:00:00,lost,Closed Lost,-40,2025-08-01,A1,too_expensive,upsell
O4,008,2025-07-04T09:00:00,open,Negotiation,10,2025-06-01,A9,,
O5,999,2025-07-05T09:00:00,pending,Demo,10,2025-08-01,A1,,
O6,007,not a date,open,Closed Won,ten,someday,A1,,
O7,007,2026-01-01T00:00:00,open,Demo,5,2026-02-01,A1,,
,007,2025-07-07T09:00:00,open,Demo,5,2025-09-01,A1,,
"""

ACCOUNTS = "account_id,name,segment\nA1,Acme,SMB\n"
STAGE_HISTORY = """\
opportunity_id,stage,entered_at
O1,Prospecting,2025-07-01T10:00:00
O1,Closed Won,2025-07-20T10:00:00
O404,Demo,2025-07-02T10:00:00
"""
PULSE = "answered_at,score,team\n2025-07-01T10:00:00,9,East\n2025-07-01T10:00:00,11,East\n"
QUOTAS = """\
owner,period_start,period_end,metric,target
007,2025-07-01,2025-09-30,revenue,1000
East,2025-07-01,2025-09-30,revenue,5000
Ghost,2025-07-01,2025-06-30,revenue,5000
"""


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    folder = write_tables(
        tmp_path_factory.mktemp("bad"),
        reps=REPS_CSV,
        opportunities=BAD_OPPS,
        accounts=ACCOUNTS,
        stage_history=STAGE_HISTORY,
        pulse=PULSE,
        quotas=QUOTAS,
    )
    # one bad value among nine rows is more than the default 5% that makes a column unusable
    (folder / "workbench.yml").write_text("limits: {max_unparseable_share: 0.5}\n")
    return folder


def test_clean_data_has_no_problems(tiny):
    report = validate(tiny, as_of=AS_OF)
    assert report.ok
    assert report.rows == {"reps": 3, "opportunities": 3}
    # account_id is given but the accounts table is not: a note, not a problem
    assert [(f.check, f.column) for f in report.findings] == [("unchecked_reference", "account_id")]
    assert "Result: usable; 0 problem rows flagged." in report.to_text()


@pytest.mark.parametrize(
    "check, table, column, count",
    [
        ("duplicate_id", "opportunities", "opportunity_id", 1),
        ("missing_value", "opportunities", "amount", 1),  # O2, won without amount: left out
        ("negative_amount", "opportunities", "amount", 1),  # O3
        ("unknown_value", "opportunities", "loss_reason", 1),  # too_expensive
        ("unknown_value", "opportunities", "deal_type", 1),  # upsell
        ("date_order", "opportunities", "close_date", 1),  # O4
        ("unknown_stage", "opportunities", "stage", 1),  # Negotiation (no config)
        ("dangling_reference", "opportunities", "owner_id", 1),  # 999
        ("dangling_reference", "opportunities", "account_id", 1),  # A9
        ("unknown_status", "opportunities", "status", 1),  # pending
        ("unparseable", "opportunities", "created_at", 1),  # O6
        ("unparseable", "opportunities", "amount", 1),  # ten
        ("unparseable", "opportunities", "close_date", 1),  # someday
        ("stage_status_mismatch", "opportunities", "stage", 1),  # O6 open but Closed Won
        ("future_dated", "opportunities", "created_at", 1),  # O7
        ("missing_value", "opportunities", "opportunity_id", 1),
        ("dangling_reference", "stage_history", "opportunity_id", 1),
        ("out_of_range", "pulse", "score", 1),
        ("dangling_reference", "quotas", "owner", 1),  # Ghost
        ("date_order", "quotas", "period_end", 1),
    ],
)
def test_each_rule_counts_its_rows(bad_report, check, table, column, count):
    report = bad_report
    found = [f for f in report.findings if (f.check, f.table, f.column) == (check, table, column)]
    assert len(found) == 1, report.to_text()
    assert found[0].count == count
    assert found[0].examples, "a finding shows example rows"
    assert found[0].examples[0]["row"].startswith(f"{table}.csv row ")


@pytest.fixture(scope="module")
def bad_report(bad):
    return validate(bad, as_of=AS_OF)


def test_examples_name_file_and_row(bad_report):
    report = bad_report
    f = next(f for f in report.findings if f.check == "negative_amount")
    assert f.examples == [{"row": "opportunities.csv row 4", "opportunity_id": "O3", "amount": "-40"}]


def test_report_is_available_from_python_and_as_frame(bad):
    ds = analysis.load(bad)
    report = ds.quality(as_of=AS_OF)
    assert report.ok and not report.fatal
    frame = report.to_frame()
    assert {"table", "check", "column", "severity", "count", "examples"} <= set(frame.columns)
    assert report.count("dangling_reference") == 4
    assert report.summary().set_index("table").loc["opportunities", "rows"] == 9
    assert set(frame.check) <= set(CHECKS)


def test_configured_stages_are_known(bad):
    config = {"stages": [{"name": "Negotiation", "step": "objection_handling"}]}
    report = validate(bad, config, as_of=AS_OF)
    assert report.count("unknown_stage") == 0


def test_fatal_problems_become_findings(tmp_path):
    folder = write_tables(tmp_path / "f", reps=REPS_CSV.replace("name,", "full_name,"))
    report = validate(folder)
    assert not report.ok
    checks = sorted((f.check, f.table) for f in report.fatal)
    assert checks == [("missing_column", "reps"), ("missing_table", "opportunities")]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_validate_exit_codes(bad, tmp_path):
    ok = run_cli("validate", str(bad), "--as-of", "2025-09-01")
    assert ok.returncode == 0, ok.stderr
    assert "opportunities: 9 rows read, problems" in ok.stdout
    assert "Negative amounts [amount]: 1" in ok.stdout
    assert ok.stderr == ""

    broken = write_tables(tmp_path / "broken", reps=REPS_CSV, opportunities=OPPS_CSV.replace("amount", "value"))
    res = run_cli("validate", str(broken))
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "error: table opportunities: missing required column amount (columns found: opportunity_id, "
        "owner_id, created_at, status, stage, value, close_date, account_id, deal_type, product)"
    ]
    assert "Traceback" not in res.stdout + res.stderr


def test_cli_validate_json_and_csv(bad):
    import json

    res = run_cli("validate", str(bad), "--as-of", "2025-09-01", "--format", "json")
    data = json.loads(res.stdout)
    assert data["ok"] is True and data["rows"]["opportunities"] == 9
    res = run_cli("validate", str(bad), "--as-of", "2025-09-01", "--format", "csv")
    assert res.stdout.splitlines()[0].startswith("table,check,title,column,severity,count")


def test_light_check_skips_only_the_costly_rules_on_large_tables(bad):
    ds = analysis.load(bad, {"duplicate_check_max_rows": 5, "limits": {"max_unparseable_share": 0.5}})  # 9 rows: large
    light = ds.quality(as_of=AS_OF, thorough=False)
    notes = [f for f in light.findings if f.check == "not_checked"]
    assert [f.table for f in notes] == ["opportunities"]
    assert light.count("duplicate_id", "opportunities") == 0  # skipped, and said so
    full = ds.quality(as_of=AS_OF)
    assert full.count("duplicate_id", "opportunities") == 1
    for rule in ("negative_amount", "won_without_amount", "unknown_status", "unparseable", "date_order"):
        assert light.count(rule, "opportunities") == full.count(rule, "opportunities"), rule
