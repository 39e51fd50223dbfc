"""Loader: formats, type coercion, time zones, fatal problems, and inputs left untouched."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import analysis
from analysis.data import schema
from analysis.errors import DataError

from .conftest import OPPS_CSV, REPS_CSV, write_tables


def canonical(ds, name):
    key = schema.TABLES[name].key
    return ds.df(name).sort_values(key).reset_index(drop=True)


def raw_frames():
    from io import StringIO

    return {
        "reps": pd.read_csv(StringIO(REPS_CSV), dtype=str, keep_default_na=False, na_values=[""]),
        "opportunities": pd.read_csv(StringIO(OPPS_CSV), dtype=str, keep_default_na=False, na_values=[""]),
    }


def test_csv_types_are_canonical(tiny):
    ds = analysis.load(tiny)
    s = ds.opportunities.schema()
    assert str(s["opportunity_id"]) == "string"
    assert s["created_at"].is_timestamp() and s["created_at"].timezone is None
    assert s["close_date"].is_date()
    assert s["amount"].is_float64()
    reps = canonical(ds, "reps")
    assert list(reps.rep_id) == ["007", "008", "M1"]  # leading zeros kept
    opps = canonical(ds, "opportunities")
    assert opps.amount.tolist() == [1000.5, 500.0, 250.0]
    assert opps.step.tolist() == ["won", "lost", "demo"]
    # every canonical column is present, optional ones as NULL
    assert set(schema.TABLES["opportunities"].column_names) <= set(opps.columns)
    assert opps.loss_reason.isna().all()
    assert ds.has_column("opportunities", "product") and not ds.has_column("opportunities", "cost")
    assert ds.has("reps") and not ds.has("activities")


@pytest.mark.parametrize("fmt", ["parquet", "xlsx", "duckdb", "frames", "parts"])
def test_round_trip_formats_equal_csv(tiny, tmp_path, fmt):
    expected = {name: canonical(analysis.load(tiny), name) for name in ("reps", "opportunities")}
    frames = raw_frames()
    target = tmp_path / fmt
    target.mkdir()
    if fmt == "parquet":
        for name, f in frames.items():
            f.to_parquet(target / f"{name}.parquet", index=False)
        source = target
    elif fmt == "xlsx":
        for name, f in frames.items():
            f.to_excel(target / f"{name}.xlsx", index=False)
        source = target
    elif fmt == "duckdb":
        source = target / "crm.duckdb"
        con = duckdb.connect(str(source))
        for name, f in frames.items():
            con.register("f", f)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
            con.unregister("f")
        con.close()
    elif fmt == "frames":
        source = frames
    else:  # a table split into part files
        (target / "opportunities").mkdir()
        opp = frames["opportunities"]
        opp.iloc[:2].to_csv(target / "opportunities" / "part-0.csv", index=False)
        opp.iloc[2:].to_csv(target / "opportunities" / "part-1.csv", index=False)
        frames["reps"].to_csv(target / "reps.csv", index=False)
        source = target
    ds = analysis.load(source)
    for name in ("reps", "opportunities"):
        pd.testing.assert_frame_equal(canonical(ds, name), expected[name], check_dtype=False)


def test_typed_parquet_inputs_are_coerced(tmp_path):
    reps = pd.DataFrame({"rep_id": [7, 8], "name": ["A", "B"]})  # integer ids
    opps = pd.DataFrame(
        {
            "opportunity_id": ["O1"],
            "owner_id": [7],
            "created_at": pd.to_datetime(["2025-07-01T22:00:00Z"]),  # tz-aware UTC
            "status": ["Won"],
            "stage": ["closed won"],
            "amount": [10],
            "close_date": [date(2025, 7, 2)],
        }
    )
    reps.to_parquet(tmp_path / "reps.parquet")
    opps.to_parquet(tmp_path / "opportunities.parquet")
    (tmp_path / "workbench.yml").write_text("timezone: America/New_York\n")
    ds = analysis.load(tmp_path)
    got = ds.df("opportunities").iloc[0]
    assert got.owner_id == "7" and got.status == "won" and got.step == "won"
    assert got.created_at == pd.Timestamp("2025-07-01 18:00:00")  # New York wall time
    assert pd.Timestamp(got.close_date) == pd.Timestamp(2025, 7, 2)
    assert ds.df("reps").rep_id.tolist() == ["7", "8"]


def test_timestamps_convert_to_company_time_zone_dates_never_shift(tmp_path):
    opps = OPPS_CSV.splitlines()[0] + "\n" + "\n".join(
        [
            # naive: already local wall time
            "O1,007,2025-09-30T23:30:00,won,Closed Won,1,2025-09-30,A1,new_business,Core",
            # UTC instant that is still Sept 30 in New York
            "O2,007,2025-10-01T03:30:00Z,won,Closed Won,1,2025-09-30,A1,new_business,Core",
            # explicit offset
            "O3,007,2025-10-01T01:00:00+02:00,won,Closed Won,1,2025-10-01T01:00:00+02:00,A1,new_business,Core",
        ]
    ) + "\n"
    folder = write_tables(tmp_path / "tz", reps=REPS_CSV, opportunities=opps)
    (folder / "workbench.yml").write_text("timezone: America/New_York\n")
    df = analysis.load(folder).df("opportunities").set_index("opportunity_id")
    assert df.loc["O1", "created_at"] == pd.Timestamp("2025-09-30 23:30")
    assert df.loc["O2", "created_at"] == pd.Timestamp("2025-09-30 23:30")
    assert df.loc["O3", "created_at"] == pd.Timestamp("2025-09-30 19:00")
    assert pd.Timestamp(df.loc["O3", "close_date"]) == pd.Timestamp(2025, 10, 1)  # date as written, never shifted


def test_categories_are_normalised(tmp_path):
    reps = "rep_id,name,role\nR1,A,ae\nR2,B, sdr \nR3,C,Manager\nR4,D,intern\n"
    folder = write_tables(tmp_path / "cat", reps=reps, opportunities=OPPS_CSV.replace("007", "R1").replace("008", "R2"))
    df = analysis.load(folder).df("reps").set_index("rep_id")
    assert df.role.to_dict() == {"R1": "AE", "R2": "SDR", "R3": "manager", "R4": None} | {"R4": df.role["R4"]}
    assert pd.isna(df.role["R4"])  # an unknown role is flagged by validate and left out (empty)


def test_duplicate_keys_keep_the_first_row(tmp_path):
    opps = OPPS_CSV + "O1,008,2025-07-01T10:00:00,lost,Closed Lost,99,2025-07-20,A1,new_business,Core\n"
    ds = analysis.load(write_tables(tmp_path / "dup", reps=REPS_CSV, opportunities=opps))
    df = ds.df("opportunities")
    assert len(df) == 3
    assert df.set_index("opportunity_id").loc["O1", "amount"] == 1000.5
    assert ds.duplicates == {"opportunities": 1}


def test_missing_required_column_is_fatal_and_named(tmp_path):
    opps = OPPS_CSV.replace("owner_id,", "owner,")
    with pytest.raises(DataError) as err:
        analysis.load(write_tables(tmp_path / "m", reps=REPS_CSV, opportunities=opps))
    assert "table opportunities: missing required column owner_id" in str(err.value)
    assert err.value.problems[0][0] == "missing_column"


def test_missing_required_table_is_fatal(tmp_path):
    with pytest.raises(DataError, match="missing required table opportunities"):
        analysis.load(write_tables(tmp_path / "m", reps=REPS_CSV))


def test_unreadable_file_is_fatal(tmp_path):
    folder = write_tables(tmp_path / "bad", reps=REPS_CSV)
    (folder / "opportunities.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=r"opportunities.parquet: cannot be read as PARQUET"):
        analysis.load(folder)


def test_table_given_twice_is_fatal(tiny):
    (tiny / "reps.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="table reps is given twice"):
        analysis.load(tiny)


def test_not_a_source(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        analysis.load(tmp_path / "missing")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError, match="not a data source"):
        analysis.load(tmp_path / "x.txt")


def test_input_files_are_never_modified(tiny):
    def digest():
        return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in tiny.iterdir()}

    before = digest()
    ds = analysis.load(tiny)
    ds.quality()
    ds.df("opportunities")
    assert digest() == before
    assert sorted(p.name for p in tiny.iterdir()) == ["opportunities.csv", "reps.csv"]


def test_fingerprint_changes_with_content(tiny):
    a = analysis.load(tiny).source.fingerprint
    assert a == analysis.load(tiny).source.fingerprint
    (tiny / "reps.csv").write_text(REPS_CSV.replace("Ann", "Anne"))
    assert analysis.load(tiny).source.fingerprint != a


def test_unknown_table_access_is_clear(tiny):
    ds = analysis.load(tiny)
    with pytest.raises(analysis.UnknownNameError, match="table 'activities' is not in"):
        ds.table("activities")
    with pytest.raises(KeyError, match="did you mean 'opportunities'"):
        ds.table("oportunities")


def test_a_command_needing_an_absent_table_is_a_data_problem(tiny, capsys):
    """Exit 1 (unusable data), not 2 (bad arguments): the funnel needs stage_history."""
    from analysis.__main__ import main

    assert main(["funnel", str(tiny), "--period", "2025-Q3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: table 'stage_history' is not in")


def test_parquet_is_scanned_not_copied(tiny, tmp_path):
    frames = raw_frames()
    folder = tmp_path / "pq"
    folder.mkdir()
    for name, f in frames.items():
        f.to_parquet(folder / f"{name}.parquet", index=False)
    ds = analysis.load(folder)
    kinds = dict(
        ds.con.con.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_name LIKE '%__opportunities'"
        ).fetchall()
    )
    # views over read_parquet, not table copies
    assert kinds == {"raw__opportunities": "VIEW", "parsed__opportunities": "VIEW", "canon__opportunities": "VIEW"}
    sql = ds.con.con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'raw__opportunities'").fetchone()[0]
    assert "read_parquet" in sql


def test_database_url(tiny, tmp_path):
    db = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(db))
    for name, f in raw_frames().items():
        con.register("f", f)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
        con.unregister("f")
    con.close()
    ds = analysis.load(f"duckdb://{db}")
    expected = analysis.load(tiny)
    for name in ("reps", "opportunities"):
        pd.testing.assert_frame_equal(canonical(ds, name), canonical(expected, name), check_dtype=False)
    with pytest.raises(DataError, match="cannot connect|no such DuckDB file"):
        analysis.load(f"duckdb://{tmp_path / 'missing.duckdb'}")
