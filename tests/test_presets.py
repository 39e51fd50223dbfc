"""Import presets and the mapping language (analysis.mapping).

(a) the language, feature by feature, on tiny hand-written files, and check_mapping's errors;
(b) detect() on vendor folders, encodings and the canonical sample;
(c) each preset's map_tables() output against the ground truth of tests/crm_exports.py;
(d) end to end through analysis.load and analysis.metrics, against figures computed by hand
    from the ground truth.
"""

from __future__ import annotations

import csv
import statistics
import textwrap
from datetime import date
from pathlib import Path

import ibis
import pytest

import analysis
from analysis.data import mapping
from analysis.data.loading import SourceFile, read_raw
from analysis.errors import ConfigError, UnknownNameError
from analysis.paths import SAMPLE_DATA

from . import crm_exports as ce

# -- helpers -----------------------------------------------------------------------------------


def reader(con=None):
    """The loader's reader, as analysis.load passes it to map_tables."""
    con = con or ibis.duckdb.connect()
    calls: list[tuple[str, list[str]]] = []

    def read(label: str, paths: list[Path]) -> ibis.Table:
        calls.append((label, [p.name for p in paths]))
        files = [SourceFile(label, p, p.suffix.lower().lstrip(".")) for p in paths]
        return read_raw(con, f"{label}_{len(calls)}", files)

    read.calls = calls
    return read


def write(folder: Path, **files: str) -> Path:
    """Write CSV texts; keyword names use __ for '.' (Opportunity__csv -> Opportunity.csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


def run(folder: Path, tables: dict, **top) -> mapping.Mapped:
    return mapping.map_tables(folder, {"tables": tables, **top}, reader())


def rows(t: ibis.Table, *cols: str) -> list[tuple]:
    df = t.to_pandas()
    cols = cols or tuple(df.columns)
    out = []
    for rec in df[list(cols)].itertuples(index=False):
        out.append(tuple(None if (v is None or (isinstance(v, float) and v != v)) else v for v in rec))
    return out


DEALS = """
    Key,Owner,Stage Name,Amount,Won,Closed,Kind,Rate,What
    D1,Ana García,Closed Won,100,TRUE,TRUE,New Customer,0.8,006AAA
    D2, ana  garcía ,Closed Lost,200,0,1,Existing Customer - Upgrade,abc,001BBB
    D3,Ben,Demo,300,false,false,Something Else,,
    D4,,Demo,400,no,no,,0,006CCC
"""


def deals_folder(tmp_path: Path) -> Path:
    return write(tmp_path / "d", deals__csv=DEALS)


def opp_columns(**over) -> dict:
    cols = {
        "opportunity_id": "Key",
        "owner_id": "Owner",
        "created_at": {"const": "2025-07-01"},
        "status": {"const": "open"},
        "stage": "Stage Name",
        "amount": "Amount",
    }
    cols.update(over)
    return cols


# -- (a) the language --------------------------------------------------------------------------


def test_column_from_header_exact_or_ignoring_case_and_constant(tmp_path):
    d = deals_folder(tmp_path)
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(stage="stage name", amount="AMOUNT")}})
    assert m.problems == []
    t = m.tables["opportunities"]
    assert rows(t, "opportunity_id", "stage", "amount", "status") == [
        ("D1", "Closed Won", "100", "open"), ("D2", "Closed Lost", "200", "open"),
        ("D3", "Demo", "300", "open"), ("D4", "Demo", "400", "open"),
    ]
    # every value is text, with the source row and file
    assert all(t[c].type().is_string() for c in t.columns if c != "_row")
    assert rows(t, "_row", "_file")[0] == (1, "deals.csv")
    assert m.files == {"opportunities": [d / "deals.csv"]}


def test_file_names_match_ignoring_case(tmp_path):
    d = deals_folder(tmp_path)
    m = run(d, {"opportunities": {"from": "DEALS.CSV", "columns": opp_columns()}})
    assert m.problems == [] and len(rows(m.tables["opportunities"])) == 4


def test_glob_concatenates_files_and_says_so(tmp_path):
    d = write(tmp_path / "g",
              **{"export-1__csv": "id,name\nA,x\n", "export-2__csv": "id,name\nB,y\nC,z\n", "other__csv": "id,name\nQ,q\n"})
    m = run(d, {"reps": {"from": "export-*.csv", "columns": {"rep_id": "id", "name": "name"}}})
    assert sorted(rows(m.tables["reps"], "rep_id", "_file", "_row")) == [
        ("A", "export-1.csv", 1), ("B", "export-2.csv", 1), ("C", "export-2.csv", 2)]
    assert [p.name for p in m.files["reps"]] == ["export-1.csv", "export-2.csv"]
    assert any("2 files match export-*.csv" in n for n in m.notes)


def test_list_of_files_and_header_selector(tmp_path):
    d = write(tmp_path / "s", a__csv="id,name\nA,x\n", b__csv="id,name,team\nB,y,T\n", c__csv="other\n1\n")
    m = run(d, {"reps": {"from": {"files": "*.csv", "headers": ["ID", "Name"]}, "columns": {"rep_id": "id", "name": "name"}}})
    assert sorted(rows(m.tables["reps"], "rep_id")) == [("A",), ("B",)]
    m = run(d, {"reps": {"from": ["a.csv", "c.csv"], "columns": {"rep_id": {"first": ["id", "other"]}, "name": {"const": "n"}}}})
    assert sorted(rows(m.tables["reps"], "rep_id")) == [("1",), ("A",)]


def test_where_filters_rows(tmp_path):
    d = write(tmp_path / "w", hist__csv="""
        ParentId,Field,OldValue,NewValue,CreatedDate
        O1,StageName,,Prospecting,2025-01-01
        O1,Amount,10,20,2025-01-02
        O1,stagename,Prospecting,Closed Won,2025-01-03
    """)
    m = run(d, {"stage_history": {"from": "hist.csv", "where": {"Field": "StageName"},
                                  "columns": {"opportunity_id": "ParentId", "stage": "NewValue", "entered_at": "CreatedDate"}}})
    assert rows(m.tables["stage_history"], "stage", "_row") == [("Prospecting", 1), ("Closed Won", 3)]


def test_where_tests_lists_null_and_not(tmp_path):
    d = deals_folder(tmp_path)

    def keys(where):
        m = run(d, {"opportunities": {"from": "deals.csv", "where": where, "columns": opp_columns()}})
        return sorted(r[0] for r in rows(m.tables["opportunities"], "opportunity_id"))

    assert keys({"Stage Name": ["closed won", "DEMO"]}) == ["D1", "D3", "D4"]
    assert keys({"Owner": None}) == ["D4"]
    assert keys({"Owner": {"not": None}, "Stage Name": "Demo"}) == ["D3"]
    assert keys({"Won": True}) == ["D1"]
    assert keys({"Won": False}) == ["D2", "D3", "D4"]
    assert keys({"_file": "deals.csv", "Amount": 300}) == ["D3"]


def test_case_when_booleans_in_every_spelling(tmp_path):
    d = deals_folder(tmp_path)
    status = {"case": [{"when": {"Won": True}, "then": {"const": "won"}},
                       {"when": {"Closed": True}, "then": {"const": "lost"}}],
              "else": {"const": "open"}}
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(status=status)}})
    assert rows(m.tables["opportunities"], "status") == [("won",), ("lost",), ("open",), ("open",)]
    # then: a header; no else: empty
    close = {"case": [{"when": {"Stage Name": "Closed Won"}, "then": "Amount"}]}
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(close_date=close)}})
    assert rows(m.tables["opportunities"], "close_date") == [("100",), (None,), (None,), (None,)]


def test_first_non_empty_skips_absent_headers(tmp_path):
    d = deals_folder(tmp_path)
    owner = {"first": ["No Such Header", "Owner", {"const": "nobody"}]}
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(owner_id=owner)}})
    assert [r[0] for r in rows(m.tables["opportunities"], "owner_id")] == ["Ana García", "ana  garcía", "Ben", "nobody"]


def test_map_keeps_unmapped_text_or_takes_the_default(tmp_path):
    d = deals_folder(tmp_path)
    kinds = {"New Customer": "new_business", "existing customer - upgrade": "expansion"}
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(deal_type={"col": "Kind", "map": kinds})}})
    assert [r[0] for r in rows(m.tables["opportunities"], "deal_type")] == ["new_business", "expansion", "Something Else", None]
    status = {"col": "Stage Name", "map": {"closed won": "won", "Closed Lost": "lost"}, "default": "open"}
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(status=status)}})
    assert [r[0] for r in rows(m.tables["opportunities"], "status")] == ["won", "lost", "open", "open"]
    blank = {"col": "Kind", "map": {"Something Else": None}}
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(deal_type=blank)}})
    assert [r[0] for r in rows(m.tables["opportunities"], "deal_type")][2] is None


def test_prefix_keeps_matching_ids_only(tmp_path):
    d = deals_folder(tmp_path)
    cols = opp_columns(account_id={"col": "What", "prefix": ["001", "002"]})
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": cols},
                "activities": {"from": "deals.csv", "columns": {
                    "activity_id": "Key", "rep_id": "Owner", "type": {"const": "call"}, "occurred_at": {"const": "2025-01-01"},
                    "opportunity_id": {"col": "What", "prefix": "006"}}}})
    assert [r[0] for r in rows(m.tables["activities"], "opportunity_id")] == ["006AAA", None, None, "006CCC"]
    assert [r[0] for r in rows(m.tables["opportunities"], "account_id")] == [None, "001BBB", None, None]


def test_reciprocal_in_sql_flags_what_is_not_a_number(tmp_path):
    d = deals_folder(tmp_path)
    m = run(d, {"fx_rates": {"from": "deals.csv", "columns": {
        "currency": "Key", "date": {"const": "2025-01-01"}, "rate_to_reporting": {"col": "Rate", "reciprocal": True}}}})
    got = [r[0] for r in rows(m.tables["fx_rates"], "rate_to_reporting")]
    assert float(got[0]) == 1 / 0.8
    assert got[1] == "1/abc" and got[3] == "1/0"  # the loader reports these (file, row); never a guess
    assert got[2] is None
    assert float("1.111111111111111160") == 1 / 0.9  # 18 decimals round-trip a double


def test_id_of_is_stable_trimmed_and_case_insensitive(tmp_path):
    d = deals_folder(tmp_path)
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(owner_id={"id_of": "Owner"})}})
    ids = [r[0] for r in rows(m.tables["opportunities"], "owner_id")]
    assert ids[0] == ids[1] == ce.stable_id("Ana García") == mapping.stable_id("  ana garcía")
    assert ids[2] == ce.stable_id("Ben") and ids[3] is None
    assert ids[0].startswith("id_") and len(ids[0]) == 13


def test_distinct_builds_a_table_from_another_files_values(tmp_path):
    d = deals_folder(tmp_path)
    m = run(d, {"reps": {"from": "deals.csv", "distinct": True,
                         "columns": {"rep_id": {"id_of": "Owner"}, "name": "Owner"}}})
    got = sorted(rows(m.tables["reps"], "rep_id", "name", "_row"))
    # one row per id, the first in file order; the row without an owner is dropped
    assert got == sorted([(ce.stable_id("Ana García"), "Ana García", 1), (ce.stable_id("Ben"), "Ben", 3)])


def test_unpivot_makes_one_row_per_filled_cell(tmp_path):
    d = write(tmp_path / "u", deals__csv="""
        Record ID,Date entered Lead (Sales),Date entered Closed Won (Sales),Date entered Demo (New),Date exited Lead (Sales)
        1,2025-01-01 10:00,2025-02-01 09:00,,2025-01-05 00:00
        2,,,2025-03-01 08:30,
        3,,,,
    """)
    spec = {"from": "deals.csv",
            "unpivot": {"headers": r"Date entered (?P<st>.+) \((?P<pipe>.+)\)", "value": "at"},
            "columns": {"opportunity_id": "Record ID", "stage": "st", "entered_at": "at"}}
    m = run(d, {"stage_history": spec})
    assert m.problems == []
    assert sorted(rows(m.tables["stage_history"], "opportunity_id", "stage", "entered_at", "_row")) == [
        ("1", "Closed Won", "2025-02-01 09:00", 1), ("1", "Lead", "2025-01-01 10:00", 1),
        ("2", "Demo", "2025-03-01 08:30", 2)]
    # the groups can be used like headers, also in extra columns
    spec2 = {**spec, "extra": {"pipeline": "pipe"}}
    assert ("1", "Sales") in rows(run(d, {"stage_history": spec2}).tables["stage_history"], "opportunity_id", "pipeline")
    # no matching header: the (optional) table is left out with a note
    m = run(d, {"stage_history": {**spec, "unpivot": {"headers": "Entered (?P<st>.+)", "value": "at"}}})
    assert "stage_history" not in m.tables and m.problems == []
    assert any("no header" in n for n in m.notes)


def test_union_concatenates_parts_with_their_own_columns(tmp_path):
    d = write(tmp_path / "t",
              Task__csv="Id,OwnerId,TaskSubtype,ActivityDate,CallDurationInSeconds\nT1,U1,Call,2025-01-02,60\nT2,U1,Email,2025-01-03,\n",
              Event__csv="Id,OwnerId,ActivityDateTime\nE1,U2,2025-01-04T10:00:00.000+0000\n")
    task = {"from": "Task.csv", "columns": {"activity_id": "Id", "rep_id": "OwnerId", "occurred_at": "ActivityDate",
                                            "type": {"col": "TaskSubtype", "map": {"Call": "call", "Email": "email"}},
                                            "duration_s": "CallDurationInSeconds"}}
    event = {"from": "Event.csv", "columns": {"activity_id": "Id", "rep_id": "OwnerId", "type": {"const": "meeting"},
                                              "occurred_at": "ActivityDateTime"}}
    m = run(d, {"activities": {"union": [task, event]}})
    assert sorted(rows(m.tables["activities"], "activity_id", "type", "duration_s", "_file")) == [
        ("E1", "meeting", None, "Event.csv"), ("T1", "call", "60", "Task.csv"), ("T2", "email", None, "Task.csv")]
    assert [p.name for p in m.files["activities"]] == ["Task.csv", "Event.csv"]
    (d / "Event.csv").unlink()  # a missing part is skipped
    m = run(d, {"activities": {"union": [task, event]}})
    assert len(rows(m.tables["activities"])) == 2


def test_one_of_takes_the_first_alternative_present_and_notes_it(tmp_path):
    d = deals_folder(tmp_path)
    spec = {"one_of": [
        {"from": "User.csv", "columns": {"rep_id": "Id", "name": "Name"}},
        {"from": "deals.csv", "distinct": True, "note": "derived from owners", "columns": {"rep_id": "Owner", "name": "Owner"}},
    ]}
    m = run(d, {"reps": spec})
    assert len(rows(m.tables["reps"])) == 3 and m.notes == ["reps: derived from owners"]
    write(d, User__csv="Id,Name\nU1,Ann\n")
    m = run(d, {"reps": spec})
    assert rows(m.tables["reps"], "rep_id", "name") == [("U1", "Ann")] and m.notes == []


def test_drop_repeats_keeps_stage_changes_only(tmp_path):
    d = write(tmp_path / "h", OpportunityHistory__csv="""
        OpportunityId,StageName,Amount,CreatedDate
        O1,Qualification,200,2025-01-05T10:00:00.000+0000
        O1,Prospecting,100,2025-01-01T10:00:00.000+0000
        O1,Prospecting,150,2025-01-02T10:00:00.000+0000
        O2,Prospecting,100,2025-01-01T10:00:00.000+0000
        O1,Prospecting,300,2025-01-09T10:00:00.000+0000
    """)
    m = run(d, {"stage_history": {"from": "OpportunityHistory.csv", "drop_repeats": True, "columns": {
        "opportunity_id": "OpportunityId", "stage": "StageName", "entered_at": "CreatedDate"}}})
    assert sorted(rows(m.tables["stage_history"], "opportunity_id", "stage", "_row")) == [
        ("O1", "Prospecting", 2), ("O1", "Prospecting", 5), ("O1", "Qualification", 1), ("O2", "Prospecting", 4)]


def test_without_columns_canonical_headers_pass_through(tmp_path):
    d = write(tmp_path / "p", q__csv="OWNER,period_start,period_end,metric,target,comment\nA,2025-01-01,2025-03-31,revenue,10,x\n")
    m = run(d, {"quotas": {"from": "q.csv"}})
    assert list(m.tables["quotas"].columns) == ["owner", "period_start", "period_end", "metric", "target", "_row", "_file"]


def test_extra_columns_are_kept_after_the_canonical_ones(tmp_path):
    d = deals_folder(tmp_path)
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(), "extra": {"kind": "Kind"}}})
    assert list(m.tables["opportunities"].columns[-3:]) == ["kind", "_row", "_file"]


def test_missing_header_is_a_problem_naming_the_closest_header(tmp_path):
    d = deals_folder(tmp_path)
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns(stage="StageName", amount="Amt")}})
    assert "opportunities" not in m.tables
    assert m.problems == [
        ("missing_column", "opportunities",
         "deals.csv: no column 'StageName' (closest header: 'Stage Name'); needed for opportunities.stage"),
        ("missing_column", "opportunities",
         "deals.csv: no column 'Amt' (closest header: 'Amount'); needed for opportunities.amount"),
    ]


def test_optional_column_is_left_out_when_its_header_is_absent(tmp_path):
    d = deals_folder(tmp_path)
    cols = opp_columns(currency={"col": "CurrencyIsoCode", "optional": True}, lead_source={"first": ["A", "B"], "optional": True})
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": cols}})
    assert m.problems == [] and "currency" not in m.tables["opportunities"].columns


def test_missing_files_required_table_is_a_problem_optional_table_is_skipped(tmp_path):
    d = deals_folder(tmp_path)
    m = run(d, {"opportunities": {"from": "Opportunity.csv", "hint": "export Opportunity with Data Loader", "columns": opp_columns()},
                "fx_rates": {"from": "DatedConversionRate.csv", "columns": {"currency": "a", "date": "b", "rate_to_reporting": "c"}}})
    assert m.tables == {} and m.problems == [
        ("missing_table", "opportunities", f"Opportunity.csv not found in {d}: export Opportunity with Data Loader")]


def test_stages_are_handed_back_for_the_config(tmp_path):
    d = deals_folder(tmp_path)
    stages = [{"name": "Demo", "step": "demo", "probability": 0.3}]
    m = run(d, {"opportunities": {"from": "deals.csv", "columns": opp_columns()}}, stages=stages)
    assert m.stages == stages


def test_each_file_set_is_read_once(tmp_path):
    d = deals_folder(tmp_path)
    read = reader()
    mapping.map_tables(d, {"tables": {
        "opportunities": {"from": "deals.csv", "columns": opp_columns()},
        "reps": {"from": "deals.csv", "distinct": True, "columns": {"rep_id": "Owner", "name": "Owner"}}}}, read)
    assert read.calls == [("opportunities", ["deals.csv"])]


# check_mapping: one line naming the key path


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"tabels": {}}, "m: tabels: unknown key 'tabels'; did you mean 'tables'?"),
        ({"tables": {"opportunity": {"from": "a.csv"}}}, "m: tables.opportunity: unknown table 'opportunity'; did you mean 'opportunities'?"),
        ({"tables": {"reps": {"from": "a.csv", "columns": {"rep_id": "Id", "name": "N", "nmae": "x"}}}},
         "m: tables.reps.columns.nmae: unknown column of reps 'nmae'; did you mean 'name'?"),
        ({"tables": {"reps": {"from": "a.csv", "columns": {"rep_id": "Id"}}}},
         "m: tables.reps.columns: no value for required column name of reps"),
        ({"tables": {"reps": {"from": "a.csv", "columns": {"rep_id": "Id", "name": {"col": "N", "const": "x"}}}}},
         "m: tables.reps.columns.name: give exactly one of col, const, first, case, id_of (got col and const)"),
        ({"tables": {"reps": {"from": "a.csv", "columns": {"rep_id": "Id", "name": {"col": "N", "mapp": {}}}}}},
         "m: tables.reps.columns.name.mapp: unknown key 'mapp'; did you mean 'map'?"),
        ({"tables": {"reps": {"from": "a.csv", "columns": {"rep_id": "Id", "name": {"col": "N", "else": "x"}}}}},
         "m: tables.reps.columns.name.else: goes with case:"),
        ({"tables": {"reps": {"from": "a.csv", "columns": {"rep_id": "Id", "name": {"case": [{"when": {"A": 1}}]}}}}},
         "m: tables.reps.columns.name.case[0]: needs both when: and then:"),
        ({"tables": {"reps": {"from": "a.csv", "where": {"A": {"nott": 1}}}}},
         "m: tables.reps.where.A.nott: unknown key 'nott'; did you mean 'not'?"),
        ({"tables": {"stage_history": {"from": "a.csv", "unpivot": {"headers": "Date (.+)", "value": "v"}}}},
         "m: tables.stage_history.unpivot.headers: name every group, (?P<stage>...), or make it non-capturing, (?:...)"),
        ({"tables": {"reps": {"from": "a.csv", "drop_repeats": True}}}, "m: tables.reps.drop_repeats: only applies to stage_history"),
        ({"tables": {"reps": {"union": [{"from": "a.csv"}], "columns": {}}}}, "m: tables.reps.columns: goes with from:, inside each part of union:"),
        ({"tables": {"reps": {"columns": {}}}}, "m: tables.reps: give exactly one of from:, union: or one_of:"),
        ({"tables": {"reps": {"from": "data/a.csv"}}}, "m: tables.reps.from: 'data/a.csv': give a file name in the folder, not a path"),
        ({"stages": [{"name": "A", "step": "demoo"}], "tables": {"reps": {"from": "a.csv"}}},
         "m: stages[0].step: unknown step 'demoo' (did you mean 'demo'?)"),
        ({"tables": {"reps": {"from": "a.csv", "columns": {"rep_id": "Id", "name": {"col": "N", "map": {True: "x"}}}}}},
         "m: tables.reps.columns.name.map.True: quote keys such as 'yes', 'no', 'true', 'on'"),
        (["tables"], "m: a mapping must be a mapping with a tables: key, got list"),
    ],
)
def test_check_mapping_names_the_key_path(bad, message):
    with pytest.raises(ConfigError) as err:
        mapping.check_mapping(bad, "m")
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_map_tables_checks_the_mapping_first(tmp_path):
    with pytest.raises(ConfigError, match="tables.reps.columns.nmae"):
        mapping.map_tables(tmp_path, {"tables": {"reps": {"from": "a.csv", "columns": {"rep_id": "a", "name": "b", "nmae": "c"}}}},
                           reader())


def test_the_docstring_example_is_a_valid_columns_mapping():
    import yaml

    doc = mapping.__doc__
    block = doc[doc.index("    columns:\n      tables:"):doc.index("API\n---")]
    mapping.check_mapping(yaml.safe_load(textwrap.dedent(block))["columns"], "example")


# presets


def test_presets_are_listed_described_and_valid():
    assert mapping.preset_names() == ["hubspot", "pipedrive", "salesforce"]
    desc = mapping.preset_descriptions()
    assert set(desc) == {"hubspot", "pipedrive", "salesforce"}
    assert "Opportunity.csv" in desc["salesforce"] and "hubspot-crm-exports-all-deals" in desc["hubspot"]
    assert all("\n" not in d and d for d in desc.values())
    for name in mapping.preset_names():
        p = mapping.preset(name)
        mapping.check_mapping(p, name)
        assert p["name"] == name
        text = mapping.preset_text(name)
        assert text.startswith("#") and "tables:" in text
        # the shipped file is the mapping a user pastes under columns:
        import yaml

        assert yaml.safe_load(text) == p


def test_preset_copies_are_independent():
    p = mapping.preset("salesforce")
    p["tables"].clear()
    assert mapping.preset("salesforce")["tables"]


def test_unknown_preset_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="unknown preset 'salesfroce'; did you mean 'salesforce'"):
        mapping.preset("salesfroce")
    with pytest.raises(UnknownNameError):
        mapping.preset_text("zoho")


def test_salesforce_stages_follow_the_funnel_with_default_probabilities():
    stages = mapping.preset("salesforce")["stages"]
    order = list(analysis.schema.STEPS)
    open_ = [s for s in stages if s["step"] not in ("won", "lost")]
    assert [s["name"] for s in open_] == ce.SF_STAGES
    assert [order.index(s["step"]) for s in open_] == sorted(order.index(s["step"]) for s in open_)
    assert [s["probability"] for s in open_] == [0.10, 0.10, 0.20, 0.50, 0.60, 0.70, 0.75, 0.90]
    assert {s["name"]: s["step"] for s in stages if s["step"] in ("won", "lost")} == {"Closed Won": "won", "Closed Lost": "lost"}


# -- (b) detect --------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["salesforce", "hubspot", "pipedrive"])
def test_detect_recognises_each_vendor(tmp_path, vendor):
    ce.BUILDERS[vendor](tmp_path / vendor, n_deals=10)
    assert mapping.detect(tmp_path / vendor) == vendor


def test_detect_none_for_the_canonical_sample_and_empty_folders(tmp_path):
    assert mapping.detect(SAMPLE_DATA) is None
    assert mapping.detect(tmp_path) is None
    assert mapping.detect(tmp_path / "missing") is None
    write(tmp_path / "x", Opportunity__csv="opportunity_id,owner_id\n1,2\n")  # the name alone is not enough
    assert mapping.detect(tmp_path / "x") is None


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252"])
def test_detect_reads_headers_in_any_export_encoding(tmp_path, encoding):
    folder = tmp_path / encoding
    ce.pipedrive_export(folder, n_deals=5, encoding=encoding)
    assert mapping.detect(folder) == "pipedrive"


def test_detect_file_names_ignore_case_and_semicolons_are_split(tmp_path):
    write(tmp_path / "sf", opportunity__CSV="Id;StageName;CloseDate;Amount\n006x;Prospecting;2025-01-01;1\n")
    assert mapping.detect(tmp_path / "sf") == "salesforce"


def test_detect_reads_excel_headers(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["Deal - ID", "Deal - Title", "Deal - Status"])
    wb.save(tmp_path / "deals.xlsx")
    assert mapping.detect(tmp_path) == "pipedrive"


# -- (c) each preset against the ground truth -----------------------------------------------------


@pytest.fixture(scope="module")
def sf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sf") / "export"
    truth = ce.salesforce_export(folder)
    return folder, truth, mapping.map_tables(folder, mapping.preset("salesforce"), reader())


@pytest.fixture(scope="module")
def hs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hs") / "export"
    truth = ce.hubspot_export(folder)
    return folder, truth, mapping.map_tables(folder, mapping.preset("hubspot"), reader())


@pytest.fixture(scope="module")
def pd_(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pd") / "export"
    truth = ce.pipedrive_export(folder)
    return folder, truth, mapping.map_tables(folder, mapping.preset("pipedrive"), reader())


def by_id(t: ibis.Table, key: str) -> dict[str, dict]:
    df = t.to_pandas()
    df = df.astype(object).where(df.notna(), None)
    return {r[key]: r for r in df.to_dict("records")}


def test_salesforce_opportunities(sf):
    _, truth, m = sf
    assert m.problems == []
    assert set(m.tables) == {"opportunities", "reps", "stage_history", "activities", "fx_rates", "leads", "accounts"}
    got = by_id(m.tables["opportunities"], "opportunity_id")
    assert len(got) == len(truth.deals) >= 100
    for d in truth.deals:
        g = got[d.id]
        assert (g["status"], g["stage"], g["owner_id"], g["currency"]) == (d.status, d.stage, d.owner_id, d.currency)
        assert float(g["amount"]) == d.amount and g["close_date"] == d.close_date.isoformat()
        assert g["created_at"] == d.created_at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        assert g["deal_type"] == d.deal_type  # "Existing Customer - Downgrade" keeps its text
    assert {d.status for d in truth.deals} == {"open", "won", "lost"}
    assert {d.currency for d in truth.deals} == {"USD", "EUR"}


def test_salesforce_fx_rates_are_the_reciprocal_of_conversion_rate(sf):
    _, truth, m = sf
    got = sorted((r[0], r[1], float(r[2])) for r in rows(m.tables["fx_rates"], "currency", "date", "rate_to_reporting"))
    assert got == sorted((c, d.isoformat(), 1 / r) for c, r, d in ce.SF_RATES)
    assert sorted((c, d.isoformat(), r) for c, d, r in truth.fx) == got


def test_salesforce_stage_history_is_the_stage_entries_of_opportunity_history(sf):
    _, truth, m = sf
    got = rows(m.tables["stage_history"], "opportunity_id", "stage", "entered_at")
    assert len(got) == len(truth.stage_entries)  # amount-only snapshots are not stage entries
    assert sorted(got) == truth.stage_entries


def test_salesforce_reps_activities_leads_accounts(sf):
    _, truth, m = sf
    assert dict(rows(m.tables["reps"], "rep_id", "name")) == truth.reps
    acts = by_id(m.tables["activities"], "activity_id")
    assert len(acts) == len(truth.activities) >= 100
    for a in truth.activities:
        g = acts[a["activity_id"]]
        assert (g["rep_id"], g["type"], g["opportunity_id"], g["lead_id"]) == (
            a["rep_id"], a["type"], a["opportunity_id"], a["lead_id"])
        assert g["occurred_at"][:10] == a["day"].isoformat()
    assert {a["type"] for a in truth.activities} == {"call", "email", "other", "meeting"}
    assert len(rows(m.tables["leads"])) == 40 and len(rows(m.tables["accounts"])) == 25


def test_salesforce_without_user_csv_derives_reps_from_owner_ids(tmp_path):
    folder = tmp_path / "sf"
    truth = ce.salesforce_export(folder, n_deals=30)
    (folder / "User.csv").unlink()
    m = mapping.map_tables(folder, mapping.preset("salesforce"), reader())
    assert m.problems == []
    assert sorted(r[0] for r in rows(m.tables["reps"], "rep_id")) == sorted({d.owner_id for d in truth.deals})
    assert any("User.csv not found" in n for n in m.notes)


def test_salesforce_field_history_when_there_is_no_opportunity_history(tmp_path):
    folder = tmp_path / "sf"
    truth = ce.salesforce_export(folder, n_deals=30)
    (folder / "OpportunityHistory.csv").unlink()
    with (folder / "OpportunityFieldHistory.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Id", "OpportunityId", "Field", "OldValue", "NewValue", "CreatedDate"])
        for i, (oid, stage, at) in enumerate(truth.stage_entries):
            w.writerow([f"017{i:05d}", oid, "StageName", "", stage, at])
            w.writerow([f"018{i:05d}", oid, "Amount", "1", "2", at])
    m = mapping.map_tables(folder, mapping.preset("salesforce"), reader())
    assert sorted(rows(m.tables["stage_history"], "opportunity_id", "stage", "entered_at")) == truth.stage_entries


def test_salesforce_missing_opportunity_file_says_how_to_export_it(tmp_path):
    folder = tmp_path / "sf"
    ce.salesforce_export(folder, n_deals=10)
    (folder / "Opportunity.csv").unlink()
    m = mapping.map_tables(folder, mapping.preset("salesforce"), reader())
    assert ("missing_table", "opportunities",
            f"Opportunity.csv not found in {folder}: export the Opportunity object with Data Loader (all fields) as Opportunity.csv"
            ) in m.problems


def test_salesforce_renamed_header_names_the_closest(tmp_path):
    folder = tmp_path / "sf"
    ce.salesforce_export(folder, n_deals=10)
    p = folder / "Opportunity.csv"
    p.write_text(p.read_text().replace("StageName", "Stage Name", 1))
    m = mapping.map_tables(folder, mapping.preset("salesforce"), reader())
    assert ("missing_column", "opportunities",
            "Opportunity.csv: no column 'StageName' (closest header: 'Stage Name'); needed for opportunities.stage") in m.problems


def _rewrite_csv(path: Path, edit) -> None:
    with path.open(encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(edit(table))


def test_salesforce_data_loader_upper_case_headers(tmp_path):
    folder = tmp_path / "sf"
    truth = ce.salesforce_export(folder, n_deals=30)
    for p in folder.glob("*.csv"):
        _rewrite_csv(p, lambda t: [[h.upper() for h in t[0]], *t[1:]])
    m = mapping.map_tables(folder, mapping.preset("salesforce"), reader())
    assert m.problems == []
    got = by_id(m.tables["opportunities"], "opportunity_id")
    assert {k: v["status"] for k, v in got.items()} == {d.id: d.status for d in truth.deals}
    assert len(rows(m.tables["stage_history"])) == len(truth.stage_entries)


def test_salesforce_status_from_the_stage_without_is_closed_and_is_won(tmp_path):
    folder = tmp_path / "sf"
    truth = ce.salesforce_export(folder, n_deals=30)

    def drop(t):
        keep = [i for i, h in enumerate(t[0]) if h not in ("IsClosed", "IsWon")]
        return [[r[i] for i in keep] for r in t]

    _rewrite_csv(folder / "Opportunity.csv", drop)
    m = mapping.map_tables(folder, mapping.preset("salesforce"), reader())
    got = by_id(m.tables["opportunities"], "opportunity_id")
    assert {k: v["status"] for k, v in got.items()} == {d.id: d.status for d in truth.deals}


def test_hubspot_opportunities_and_reps(hs):
    _, truth, m = hs
    assert m.problems == []
    got = by_id(m.tables["opportunities"], "opportunity_id")
    assert len(got) == len(truth.deals) >= 100
    for d in truth.deals:
        g = got[d.id]
        assert (g["status"], g["stage"], g["owner_id"]) == (d.status, d.stage, d.owner_id)
        assert float(g["amount"]) == d.amount and g["close_date"][:10] == d.close_date.isoformat()
        assert g["deal_type"] == d.deal_type
        if d.status == "lost":
            assert g["loss_reason"] == (d.loss_reason or None)
    reps = rows(m.tables["reps"], "rep_id", "name")
    assert {r: n.strip() for r, n in reps} == truth.reps and len(reps) == len(truth.reps)
    assert any("given by name" in n for n in m.notes)


def test_hubspot_stage_history_equals_the_filled_date_entered_cells(hs):
    folder, truth, m = hs
    got = rows(m.tables["stage_history"], "opportunity_id", "stage", "entered_at")
    assert len(got) == len(truth.stage_entries) and sorted(got) == truth.stage_entries
    # counted again straight from the file
    with next(folder.glob("*.csv")).open(encoding="utf-8") as fh:
        cells = sum(1 for r in csv.DictReader(fh) for k, v in r.items() if k.startswith("Date entered") and v)
    assert cells == len(got)


def test_pipedrive_close_date_is_when_the_deal_was_won_or_lost(pd_):
    _, truth, m = pd_
    assert m.problems == []
    got = by_id(m.tables["opportunities"], "opportunity_id")
    assert len(got) == len(truth.deals) >= 100
    for d in truth.deals:
        g = got[d.id]
        assert (g["status"], g["stage"], g["owner_id"], g["account_id"]) == (d.status, d.stage, d.owner_id, d.account_id)
        assert g["close_date"][:10] == d.close_date.isoformat()
        if d.status != "open":
            assert g["close_date"][:10] != d.expected_close.isoformat()  # never the expected close date
        else:
            assert g["close_date"] == d.expected_close.isoformat()
        if d.status == "lost":
            assert g["loss_reason"] == d.loss_reason
    assert dict(rows(m.tables["reps"], "rep_id", "name")) == truth.reps
    assert len(rows(m.tables["accounts"])) == len({d.account_id for d in truth.deals})


def test_pipedrive_from_excel(tmp_path):
    from openpyxl import Workbook

    src = tmp_path / "csv"
    truth = ce.pipedrive_export(src, n_deals=12)
    wb = Workbook()
    with next(src.glob("*.csv")).open(encoding="utf-8") as fh:
        for r in csv.reader(fh):
            wb.active.append(r)
    folder = tmp_path / "xlsx"
    folder.mkdir()
    wb.save(folder / "deals-export.xlsx")
    assert mapping.detect(folder) == "pipedrive"
    m = mapping.map_tables(folder, mapping.preset("pipedrive"), reader())
    assert m.problems == []
    got = by_id(m.tables["opportunities"], "opportunity_id")
    assert {k: v["close_date"][:10] for k, v in got.items()} == {d.id: d.close_date.isoformat() for d in truth.deals}


# -- (d) end to end: analysis.load + analysis.metrics ----------------------------------------------

Q3 = (date(2025, 7, 1), date(2025, 10, 1))
METRICS = ["revenue", "deals_won", "deals_lost", "win_rate", "avg_deal_size", "sales_cycle_days",
           "opportunities_created", "open_deals", "open_pipeline"]


def expected_figures(truth: ce.Truth, start: date, end: date) -> dict[str, float]:
    """The catalog's definitions, by hand (close_date in [start, end); open at end = created
    before end and not closed before end)."""
    won = [d for d in truth.deals if d.status == "won" and start <= d.close_date < end]
    lost = [d for d in truth.deals if d.status == "lost" and start <= d.close_date < end]
    created = [d for d in truth.deals if start <= d.created_at.date() < end]
    open_ = [d for d in truth.deals if d.created_at.date() < end and (d.status == "open" or d.close_date >= end)]
    revenue = sum(d.amount_reporting for d in won)
    return {
        "revenue": revenue,
        "deals_won": len(won),
        "deals_lost": len(lost),
        "win_rate": len(won) / (len(won) + len(lost)),
        "avg_deal_size": revenue / len(won),
        "sales_cycle_days": statistics.mean((d.close_date - d.created_at.date()).days for d in won),
        "opportunities_created": len(created),
        "open_deals": len(open_),
        "open_pipeline": sum(d.amount_reporting for d in open_),
    }


@pytest.fixture(scope="module", params=["salesforce", "hubspot", "pipedrive"])
def loaded(request, tmp_path_factory):
    vendor = request.param
    folder = tmp_path_factory.mktemp(vendor) / "export"
    truth = ce.BUILDERS[vendor](folder)
    ds = analysis.load(folder, {"source": vendor, "timezone": "UTC", "currency": "USD"})
    return vendor, truth, ds


def test_end_to_end_quarter_figures_equal_the_hand_computed_ones(loaded):
    vendor, truth, ds = loaded
    want = expected_figures(truth, *Q3)
    assert want["deals_won"] >= 5 and want["deals_lost"] >= 5 and want["open_deals"] >= 5
    got = analysis.metrics(ds, METRICS, grain="quarter", periods=["2025-Q3"])
    assert len(got) == 1 and got["period"].iloc[0] == "2025-Q3"
    row = got.iloc[0]
    for mid in ("deals_won", "deals_lost", "opportunities_created", "open_deals"):
        assert int(row[mid]) == want[mid], mid
    for mid in ("revenue", "win_rate", "avg_deal_size", "sales_cycle_days", "open_pipeline"):
        assert float(row[mid]) == pytest.approx(want[mid], rel=1e-12, abs=1e-6), mid


def test_end_to_end_values_all_parse(loaded):
    vendor, truth, ds = loaded
    q = ds.quality()
    assert q.ok
    # the only finding: vendor values with no canonical meaning, flagged and left out (besides notes on the import)
    unknown = {"salesforce": "deal_type", "hubspot": "loss_reason", "pipedrive": "loss_reason"}[vendor]
    assert {(f.table, f.check, f.column) for f in q.findings if f.check != "import_note"} == {
        ("opportunities", "unknown_value", unknown)}
    assert all(vendor in f.message for f in q.findings if f.check == "import_note")
    assert ds.rows_read("opportunities") == len(truth.deals)
    assert ds.source.preset == vendor


def test_end_to_end_salesforce_converts_euro_deals_at_the_rate_of_their_close_date(tmp_path):
    folder = tmp_path / "sf"
    truth = ce.salesforce_export(folder)
    start, end = Q3
    eur = [d for d in truth.deals if d.currency == "EUR" and d.status == "won" and start <= d.close_date < end]
    # both rates are in use in the quarter (0.8 before 15 August, 0.9 from then)
    assert {d.close_date >= date(2025, 8, 15) for d in eur} == {True, False}
    ds = analysis.load(folder, {"source": "salesforce", "timezone": "UTC", "currency": "USD"})
    got = analysis.metrics(ds, ["revenue"], grain="quarter", periods=["2025-Q3"], filters={"rep_id": eur[0].owner_id})
    mine = [d for d in truth.deals if d.owner_id == eur[0].owner_id and d.status == "won" and start <= d.close_date < end]
    assert float(got["revenue"].iloc[0]) == pytest.approx(sum(d.amount_reporting for d in mine), rel=1e-12)
    naive = sum(d.amount for d in mine)
    assert float(got["revenue"].iloc[0]) != pytest.approx(naive, rel=1e-9)


def test_end_to_end_auto_detects_the_export(tmp_path):
    folder = tmp_path / "hs"
    ce.hubspot_export(folder, n_deals=20)
    ds = analysis.load(folder, {"timezone": "UTC"})
    assert ds.source.preset == "hubspot" and ds.has("stage_history")


def test_end_to_end_a_users_columns_mapping_reads_the_same_as_the_preset(tmp_path):
    folder = tmp_path / "pd"
    truth = ce.pipedrive_export(folder, n_deals=40)
    columns = mapping.preset("pipedrive")
    ds = analysis.load(folder, {"columns": columns, "timezone": "UTC"})
    assert ds.source.preset == "columns"
    assert ds.rows_read("opportunities") == len(truth.deals)
    got = analysis.metrics(ds, ["deals_won"], grain="quarter", periods=["2025-Q3"])
    assert int(got["deals_won"].iloc[0]) == expected_figures(truth, *Q3)["deals_won"]


# -- (e) the command line: --source, auto detection, presets ----------------------------------------


def _cli(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def hubspot_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hs") / "export"
    truth = ce.hubspot_export(folder)
    (folder / "workbench.yml").write_text("timezone: UTC\ncurrency: USD\n")  # no source: auto
    return folder, truth


def test_cli_auto_detects_the_export_and_says_so_in_one_line(hubspot_folder):
    folder, truth = hubspot_folder
    result = _cli("metrics", str(folder), "--metrics", "revenue,deals_won", "--period", "2025-Q3", "--format", "csv")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "hubspot" in line]
    assert len(notes) == 1 and "hubspot preset" in notes[0]
    want = expected_figures(truth, *Q3)
    row = result.stdout.splitlines()[1].split(",")
    assert float(row[1]) == pytest.approx(want["revenue"], abs=0.005) and int(row[2]) == want["deals_won"]


def test_cli_source_option_overrides_the_config(hubspot_folder, tmp_path):
    folder, _ = hubspot_folder
    assert _cli("validate", str(folder), "--source", "hubspot").returncode == 0
    # read as canonical tables, the export has none: the message names the preset to use
    result = _cli("validate", str(folder), "--source", "canonical")
    assert result.returncode == 1 and "source: hubspot" in result.stdout + result.stderr
    # the wrong preset: the missing file is named with how to export it
    result = _cli("metrics", str(folder), "--metrics", "revenue", "--source", "salesforce")
    assert result.returncode == 1 and "Opportunity.csv" in result.stderr and "Traceback" not in result.stderr
    result = _cli("metrics", str(folder), "--metrics", "revenue", "--source", "hubspto")
    assert result.returncode == 2 and "did you mean 'hubspot'" in result.stderr


def test_cli_presets_list_and_show(tmp_path):
    import yaml

    listed = _cli("presets")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()[:3]] == ["hubspot", "pipedrive", "salesforce"]
    shown = _cli("presets", "show", "salesforce")
    assert shown.returncode == 0 and shown.stdout == mapping.preset_text("salesforce")
    mapping.check_mapping(yaml.safe_load(shown.stdout), "presets show")  # a mapping a user can copy
    assert _cli("presets", "show", "salesfroce").returncode == 2


def test_a_copied_preset_under_columns_reads_the_same(hubspot_folder, tmp_path):
    import shutil

    import yaml

    folder, truth = hubspot_folder
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    columns = yaml.safe_load(mapping.preset_text("hubspot"))
    (copy / "workbench.yml").write_text(yaml.safe_dump({"timezone": "UTC", "currency": "USD", "columns": columns}))
    ds = analysis.load(copy)
    assert ds.source.preset == "columns"
    got = analysis.metrics(ds, ["revenue", "deals_won"], grain="quarter", periods=["2025-Q3"]).iloc[0]
    want = expected_figures(truth, *Q3)
    assert got.deals_won == want["deals_won"] and got.revenue == pytest.approx(want["revenue"], abs=0.005)


def test_a_preset_for_something_that_is_not_a_folder_is_refused(tmp_path):
    result = _cli("metrics", str(SAMPLE_DATA / "opportunities.csv"), "--metrics", "revenue", "--source", "hubspot")
    assert result.returncode == 2 and "is not a folder" in result.stderr


def test_hubspot_deals_in_another_currency_are_never_summed_as_company_currency(tmp_path):
    """A multi-currency portal exports "Amount in company currency"; where it is empty, the deal's
    own amount is in "Deal currency code" and needs a rate."""
    import csv as csv_mod

    folder = tmp_path / "hs"
    truth = ce.hubspot_export(folder)
    path = next(folder.glob("hubspot-*.csv"))
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv_mod.reader(fh))
    header, body = rows[0], rows[1:]
    amount = header.index("Amount")
    eur = {r[0] for i, r in enumerate(body) if i % 5 == 0}
    header += ["Deal currency code", "Amount in company currency"]
    for r in body:
        r += ["EUR", ""] if r[0] in eur else ["USD", r[amount]]
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv_mod.writer(fh).writerows([header, *body])
    ds = analysis.load(folder, {"source": "hubspot", "timezone": "UTC", "currency": "USD"})
    fx = [f for f in ds.quality().findings if f.check == "fx_missing"]
    assert len(fx) == 1 and fx[0].count == len(eur) and "EUR" in fx[0].message
    kept = ce.Truth(deals=[d for d in truth.deals if d.id not in eur], reps=truth.reps)
    want = expected_figures(kept, *Q3)
    got = analysis.metrics(ds, ["revenue", "deals_won"], grain="quarter", periods=["2025-Q3"]).iloc[0]
    assert got.deals_won == want["deals_won"] and got.revenue == pytest.approx(want["revenue"], abs=0.005)
