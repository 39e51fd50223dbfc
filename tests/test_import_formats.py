"""Files as spreadsheets and CRMs write them: encodings, CSV dialects, Excel cells, local formats.

Every variant is either read exactly or refused with a problem that names the fix; none gives
a figure off by 1000x.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

import analysis
from analysis.data.validation import validate
from analysis.errors import DataError

from .conftest import OPPS_CSV, REPS_CSV, write_tables

NAMES = {"M1": "Maya Manager", "007": "José Müller", "008": "Zoë Ørsted – “Bob”"}


def reps_text() -> str:
    return REPS_CSV.replace("Ann Archer", NAMES["007"]).replace("Bob Baker", NAMES["008"])


def folder_with_reps(tmp_path: Path, data: bytes, config: str | None = None) -> Path:
    folder = write_tables(tmp_path / "d", opportunities=OPPS_CSV)
    (folder / "reps.csv").write_bytes(data)
    if config:
        (folder / "workbench.yml").write_text(config)
    return folder


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_text_encodings_read_exactly(tmp_path, encoding):
    folder = folder_with_reps(tmp_path, reps_text().encode(encoding))
    before = (folder / "reps.csv").read_bytes()
    names = analysis.load(folder).df("reps").set_index("rep_id").name.to_dict()
    assert names == NAMES
    assert (folder / "reps.csv").read_bytes() == before  # input files are only read


def test_a_set_encoding_is_used(tmp_path):
    folder = folder_with_reps(tmp_path, reps_text().replace("–", "-").replace("“", '"').replace("”", '"')
                              .encode("latin-1"), config="encoding: latin-1\n")
    assert analysis.load(folder).df("reps").set_index("rep_id").name["007"] == "José Müller"


def test_a_wrong_encoding_is_named(tmp_path):
    folder = folder_with_reps(tmp_path, reps_text().encode("cp1252"), config="encoding: utf-8\n")
    with pytest.raises(DataError, match=r"reps.csv: cannot be read as utf-8 text .*encoding:"):
        analysis.load(folder)


def test_undecodable_bytes_name_the_encodings_tried(tmp_path):
    folder = folder_with_reps(tmp_path, reps_text().encode("utf-8") + b"\x81\x8d\x9d\n")
    with pytest.raises(DataError, match=r"neither UTF-8 nor Windows-1252 .*encoding:"):
        analysis.load(folder)


def test_a_quoted_field_after_row_20000_loads(tmp_path):
    """DuckDB guesses the dialect from a sample unless told to read the whole file."""
    header = "opportunity_id,owner_id,created_at,status,stage,amount,close_date,product\n"
    rows = [f"O{i},007,2025-07-01T10:00:00,won,Closed Won,1,2025-07-20,Core\n" for i in range(30_006)]
    rows.append('O-last,007,2025-07-01T10:00:00,won,Closed Won,1000000,2025-07-20,"Core, with a comma"\n')
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=header + "".join(rows))
    ds = analysis.load(folder)
    out = analysis.metrics(ds, ["revenue", "deals_won"], grain="quarter", periods=["2025-Q3"])
    assert (out.revenue.iloc[0], out.deals_won.iloc[0]) == (30_006 + 1_000_000, 30_007)
    assert ds.df("opportunities").set_index("opportunity_id")["product"]["O-last"] == "Core, with a comma"


def test_semicolon_separated_files_read(tmp_path):
    folder = write_tables(tmp_path / "d", reps=REPS_CSV.replace(",", ";"), opportunities=OPPS_CSV.replace(",", ";"))
    assert analysis.metrics(analysis.load(folder), ["revenue"], grain="quarter", periods=["2025-Q3"]).revenue.iloc[0] == 1000.5


# -- locales ------------------------------------------------------------------------------------

ID_HEADER = "opportunity_id,owner_id,created_at,status,stage,amount,close_date\n"


@pytest.mark.parametrize(
    "amount, created, close, expected",
    [
        ("Rp 56.100.000", "01/07/2025 10:00", "14/07/2025", 56_100_000),
        ("Rp56.100.000", "2025-07-01T10:00:00", "14/07/2025", 56_100_000),
        ("IDR 1.500", "01/07/2025", "2025-07-14", 1_500),
        ("56.100.000,00", "01/07/2025", "14/07/2025", 56_100_000),
        ("1.500", "01/07/2025", "14/07/2025", 1_500),
        ("299.000", "01/07/2025", "14/07/2025", 299_000),
        ("1.200,5", "01/07/2025", "14/07/2025", 1_200.5),
    ],
)
def test_indonesian_spreadsheets_read_exactly_under_id_ID(tmp_path, amount, created, close, expected):
    rows = f'X1,007,{created},won,Closed Won,"{amount}",{close}\n'
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=ID_HEADER + rows)
    (folder / "workbench.yml").write_text("locale: id-ID\ncurrency: IDR\ntimezone: Asia/Jakarta\n")
    ds = analysis.load(folder)
    deal = ds.df("opportunities").iloc[0]
    assert deal.amount == expected
    assert str(deal.close_date)[:10] == "2025-07-14"
    assert pd.Timestamp(deal.created_at).date().isoformat() == "2025-07-01"
    out = analysis.metrics(ds, ["revenue", "sales_cycle_days"], grain="quarter", periods=["2025-Q3"])
    assert out.revenue.iloc[0] == expected and out.sales_cycle_days.iloc[0] == 13


@pytest.mark.parametrize("amount", ["1.200", "1,200", "299.000"])
def test_without_a_locale_an_ambiguous_amount_is_a_problem_naming_the_setting(tmp_path, amount):
    good = "".join(f"P{i},007,2025-07-01T10:00:00,won,Closed Won,10,2025-07-20\n" for i in range(40))
    folder = write_tables(tmp_path / "d", reps=REPS_CSV,
                          opportunities=ID_HEADER + good + f'A1,007,2025-07-01T10:00:00,won,Closed Won,"{amount}",2025-07-20\n')
    report = validate(folder)
    amb = [f for f in report.findings if f.check == "ambiguous"]
    assert len(amb) == 1 and amb[0].column == "amount" and "locale" in amb[0].message
    assert amb[0].examples[0]["row"] == "opportunities.csv row 41" and amb[0].examples[0]["amount"] == amount
    out = analysis.metrics(analysis.load(folder), ["revenue"], grain="quarter", periods=["2025-Q3"])
    assert out.revenue.iloc[0] == 400  # never 401.2, never 1,600


def test_without_a_locale_an_ambiguous_date_is_a_problem(tmp_path):
    good = "".join(f"P{i},007,2025-07-01T10:00:00,won,Closed Won,10,2025-07-20\n" for i in range(40))
    folder = write_tables(tmp_path / "d", reps=REPS_CSV,
                          opportunities=ID_HEADER + good + "A1,007,2025-07-01T10:00:00,won,Closed Won,10,03/04/2025\n")
    report = validate(folder)
    assert [(f.check, f.column) for f in report.findings if f.severity == "problem"] == [("ambiguous", "close_date")]


def test_us_amounts_under_en_US(tmp_path):
    rows = 'X1,007,07/01/2025 10:00,won,Closed Won,"$1,200.50",07/14/2025\n'
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=ID_HEADER + rows)
    (folder / "workbench.yml").write_text("locale: en-US\n")
    deal = analysis.load(folder).df("opportunities").iloc[0]
    assert deal.amount == 1200.5 and str(deal.close_date)[:10] == "2025-07-14"


def test_a_locale_that_does_not_fit_refuses_instead_of_misreading(tmp_path):
    rows = "".join(f'X{i},007,2025-07-01,won,Closed Won,"1,200.50",2025-07-14\n' for i in range(5))
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=ID_HEADER + rows)
    (folder / "workbench.yml").write_text("locale: id-ID\n")
    with pytest.raises(DataError, match="amount"):
        analysis.load(folder)


def test_an_unknown_locale_is_a_config_error(tmp_path):
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=OPPS_CSV)
    (folder / "workbench.yml").write_text("locale: id_XX\n")
    result = subprocess.run([sys.executable, "-m", "analysis", "validate", str(folder)], capture_output=True, text=True)
    assert result.returncode == 2 and "locale" in result.stderr and "Traceback" not in result.stderr


# -- Excel ----------------------------------------------------------------------------------------


def _excel(folder: Path, rows: list[list]) -> None:
    frame = pd.DataFrame(rows, columns=["opportunity_id", "owner_id", "created_at", "status", "stage", "amount",
                                        "close_date"], dtype=object)
    frame.to_excel(folder / "opportunities.xlsx", index=False)


@pytest.mark.parametrize("locale", [None, "id-ID", "en-US"])
def test_excel_typed_cells_read_exactly_under_any_locale(tmp_path, locale):
    folder = write_tables(tmp_path / "d", reps=REPS_CSV)
    _excel(folder, [
        ["X1", "007", datetime(2025, 7, 1, 10), "won", "Closed Won", 1_500_000, datetime(2025, 7, 14)],
        ["X2", "007", datetime(2025, 7, 2, 10), "won", "Closed Won", 1200.5, datetime(2025, 7, 20)],
    ])
    if locale:
        (folder / "workbench.yml").write_text(f"locale: {locale}\n")
    ds = analysis.load(folder)
    assert ds.df("opportunities").set_index("opportunity_id").amount.to_dict() == {"X1": 1_500_000, "X2": 1200.5}


def test_excel_text_cells_follow_the_locale(tmp_path):
    folder = write_tables(tmp_path / "d", reps=REPS_CSV)
    _excel(folder, [
        ["X1", "007", "01/07/2025", "won", "Closed Won", "Rp 1.500.000", "14/07/2025"],
        ["X2", "007", datetime(2025, 7, 2, 10), "won", "Closed Won", 299000, datetime(2025, 7, 20)],
    ])
    (folder / "workbench.yml").write_text("locale: id-ID\n")
    deals = analysis.load(folder).df("opportunities").set_index("opportunity_id")
    assert deals.amount.to_dict() == {"X1": 1_500_000, "X2": 299_000}
    assert str(deals.close_date["X1"])[:10] == "2025-07-14"


def test_excel_text_amounts_without_a_locale_are_refused_not_misread(tmp_path):
    folder = write_tables(tmp_path / "d", reps=REPS_CSV)
    _excel(folder, [["X1", "007", datetime(2025, 7, 1, 10), "won", "Closed Won", "1.500", datetime(2025, 7, 14)]])
    with pytest.raises(DataError, match="locale"):
        analysis.load(folder)


def test_a_missing_column_is_answered_with_the_closest_header(tmp_path):
    folder = write_tables(tmp_path / "d", reps=REPS_CSV, opportunities=OPPS_CSV.replace(",amount,", ",Amount ($),")
                          .replace("created_at", "Created At"))
    with pytest.raises(DataError) as err:
        analysis.load(folder)
    assert "missing required columns created_at, amount" in str(err.value)
    assert "created_at -> 'Created At'?, amount -> 'Amount ($)'?" in str(err.value)
