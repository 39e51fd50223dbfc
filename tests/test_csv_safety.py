"""Every CSV the workbench writes is safe to open in a spreadsheet (OWASP "CSV injection").

A text cell (or header) that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
``'`` in front unless it is a plain number; numeric columns are untouched; JSON output is exact.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import analysis
from analysis.__main__ import main
from analysis.reports.export import FORMULA_TRIGGERS, is_formula_like, safe_cell, safe_csv, write_csv
from tests.corpus import FORMULAS, formula_sample, small_sample, unsafe_cells

HYPERLINK = FORMULAS["team"]
CALC = FORMULAS["product"]


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# -- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [HYPERLINK, CALC, "@SUM(1+1)", "=1+1", "-2+3", "+", "-", "=", "@", "\tx", "\r=1", "-12,5", "-1,234.5", "-5%",
     "- 3", "-inf", "-nan", "+1-1", "-1e5x", "=O000001", "-R0003"],
)
def test_formula_like_text_gets_a_quote(text):
    assert is_formula_like(text)
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["-12.5", "+3", "-.5", "-1e-3", "+1E+6", "-0", "-7.", "12", "", "Team East", " =1",
                                  "'=1+1", "a=b", "O-1", "1-2"])
def test_plain_numbers_and_other_text_stay(text):
    assert not is_formula_like(text)
    assert safe_cell(text) == text


def test_every_trigger_of_owasp_is_covered():
    assert set(FORMULA_TRIGGERS) == {"=", "+", "-", "@", "\t", "\r"}


def test_safe_csv_quotes_text_cells_and_headers_but_not_numbers():
    frame = pd.DataFrame({
        "team": [HYPERLINK, "East", "-12.5", None],
        "=SUM(A1:A9)": [1, -2, 3, 4],  # a hostile header over a numeric column
        "amount": [-12.5, 3.0, np.nan, -1e6],
        "mixed": ["-x", -3, 2.5, pd.NaT],
        "when": pd.to_datetime(["2025-01-01", None, "2025-03-01", "2025-04-01"]),
        "flag": [True, False, True, False],
        "kind": pd.Categorical(["@a", "b", "@a", "b"]),
        "s": pd.array(["+1+1", None, "ok", "-7"], dtype="string"),
    })
    safe = safe_csv(frame)
    assert list(safe.columns) == ["team", "'=SUM(A1:A9)", "amount", "mixed", "when", "flag", "kind", "s"]
    assert safe.team.tolist()[:3] == ["'" + HYPERLINK, "East", "-12.5"] and pd.isna(safe.team.iloc[3])
    assert safe["'=SUM(A1:A9)"].tolist() == [1, -2, 3, 4]
    assert safe.amount.dtype == frame.amount.dtype and safe.amount.equals(frame.amount)
    assert safe.mixed.tolist()[:3] == ["'-x", -3, 2.5]
    assert safe.when.equals(frame.when) and safe.flag.equals(frame.flag)
    assert safe.kind.tolist() == ["'@a", "b", "'@a", "b"]
    assert safe.s.tolist()[0] == "'+1+1" and safe.s.tolist()[2:] == ["ok", "-7"]
    assert frame.team.iloc[0] == HYPERLINK and "=SUM(A1:A9)" in frame.columns  # the input is not changed


def test_write_csv_text_reads_back_as_neutralised_cells():
    frame = pd.DataFrame({"rep": ["@SUM(1+1)", "\tTab", "\rCR", "Ann"], "value": [-1, 2, -3.5, 0]})
    text = write_csv(frame)
    rows = cells(text)
    assert rows[0] == ["rep", "value"]
    assert [r[0] for r in rows[1:]] == ["'@SUM(1+1)", "'\tTab", "'\rCR", "Ann"]
    assert [r[1] for r in rows[1:]] == ["-1.0", "2.0", "-3.5", "0.0"]
    assert unsafe_cells(text) == []


def test_a_carriage_return_inside_a_cell_cannot_start_a_row():
    """Python's csv module leaves a lone CR unquoted when rows end in LF; a spreadsheet would start
    a new row there, whose first cell could be a formula."""
    frame = pd.DataFrame({"team": ["East\r=HYPERLINK(\"http://evil\")", "a\nb", 'q"\r\n@x'], "n": [1, 2, 3]})
    text = write_csv(frame)
    assert cells(text) == [["team", "n"], *[[t, str(n)] for t, n in zip(frame.team, frame.n)]]
    outside_quotes = text.split('"')[0::2]
    assert not any("\r" in part for part in outside_quotes) and text.endswith(",3\n")
    buffer = io.StringIO()
    write_csv(frame, buffer)
    assert buffer.getvalue() == text


def test_safe_csv_is_idempotent_and_keeps_index_labels_safe():
    frame = pd.DataFrame({"team": ["=1", "-a"]}, index=pd.Index(["+x", "ok"], name="@rep"))
    once = safe_csv(frame)
    assert safe_csv(once).equals(once)
    assert list(once.index) == ["'+x", "ok"] and once.index.name == "'@rep"
    assert unsafe_cells(write_csv(frame, index=True)) == []


def test_safe_csv_of_an_empty_frame_keeps_its_header_safe():
    assert write_csv(pd.DataFrame(columns=["=bad", "ok"])) == "'=bad,ok\n"


# -- every CSV of the command line ---------------------------------------------------------------


@pytest.fixture(scope="module")
def formula_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("formula")
    return formula_sample(root / "formula", small_sample(root / "small"))


def run(capsys, *argv: str) -> str:
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


@pytest.mark.parametrize(
    "argv, hostile",
    [
        (["metrics", "{data}", "--metrics", "revenue", "--by", "product", "--grain", "quarter"], CALC),
        (["stalled", "{data}"], "=O"),
        (["forecast", "{data}", "--period", "2026-Q3", "--by", "team"], HYPERLINK),
    ],
    ids=["metrics-product", "stalled", "forecast-team"],
)
def test_crm_formula_text_is_neutralised_in_csv_and_exact_in_json(capsys, formula_data, argv, hostile):
    """End to end on a CRM export with formula text (the corpus runs the other commands on it)."""
    argv = [a.format(data=formula_data) for a in argv]
    text = run(capsys, *argv, "--format", "csv")
    assert unsafe_cells(text) == []
    quoted = [c for row in cells(text) for c in row if c.startswith("'" + hostile)]
    assert quoted, f"the CRM text {hostile!r} should reach the output"
    records = json.loads(run(capsys, *argv, "--format", "json"))
    raw = [v for r in records for v in r.values() if isinstance(v, str) and v.startswith(hostile)]
    assert raw and not any(isinstance(v, str) and v.startswith("'") for r in records for v in r.values())


HOSTILE = pd.DataFrame({
    "rep_id": ["-2+3", "R1"],
    "name": ["@SUM(1+1)", "Ann"],
    "team": [HYPERLINK, "East"],
    "opportunity_id": ["=O1", "O2"],
    "product": [CALC, "Core"],
    "evidence": ["\tcalls", "\r=1"],
    "description": ["=cmd", "fine"],
    "flag": ["+x", "ok"],
    "value": [-12.5, 3.0],
    "as_text": ["-12.5", "-4"],
})


def _fake_report(frame: pd.DataFrame) -> SimpleNamespace:
    return SimpleNamespace(ok=True, fatal=[], to_frame=lambda: frame, to_json=lambda: frame.to_json(orient="records"),
                           to_text=lambda: "")


def _patch_producers(monkeypatch) -> None:
    """Every command's computation returns the hostile frame (the CLI's writing is under test)."""
    from analysis.analytics import funnel
    from analysis.data import loading, validation
    from analysis.semantic import engine
    from analysis.steering import coaching, outlook, plan

    frame = HOSTILE.copy()
    monkeypatch.setattr(loading, "load", lambda *a, **k: SimpleNamespace(last_date=lambda: None))
    monkeypatch.setattr(validation, "validate", lambda *a, **k: _fake_report(frame))
    monkeypatch.setattr(engine, "metrics", lambda *a, **k: frame)
    monkeypatch.setattr(funnel, "stage_funnel", lambda *a, **k: frame)
    monkeypatch.setattr(funnel, "stalled_deals", lambda *a, **k: frame)
    monkeypatch.setattr(coaching, "coaching_notes", lambda *a, **k: coaching.CoachingNotes(flags=frame,
                                                                                         worth_a_look=frame))
    monkeypatch.setattr(plan, "plan", lambda *a, **k: frame)
    sim = SimpleNamespace(groups={"team": frame, "rep_id": frame})
    monkeypatch.setattr(outlook, "period_outlook", lambda *a, **k: SimpleNamespace(
        simulation=sim, table=frame, sentences=[], period=SimpleNamespace(label="2026-Q3"),
        as_of=pd.Timestamp("2026-06-30").date()))


COMMANDS = {
    "validate": ["validate", "d"],
    "metrics": ["metrics", "d", "--metrics", "revenue", "--grain", "month"],
    "funnel": ["funnel", "d", "--period", "2026-Q1", "--by", "team"],
    "stalled": ["stalled", "d", "--as-of", "2026-06-30"],
    "forecast": ["forecast", "d", "--period", "2026-Q3"],
    "forecast --by": ["forecast", "d", "--period", "2026-Q3", "--by", "team"],
    "coach": ["coach", "d", "--period", "2026-Q1"],
    "plan": ["plan", "d", "--target", "1e6", "--period", "2026"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_writes_csv_through_the_safe_writer(monkeypatch, capsys, name):
    _patch_producers(monkeypatch)
    text = run(capsys, *COMMANDS[name], "--format", "csv")
    assert unsafe_cells(text) == []
    written = {c for row in cells(text) for c in row}
    assert {"'-2+3", "'@SUM(1+1)", "'" + HYPERLINK} <= written
    header = cells(text)[0]
    if "value" in header:
        assert "-12.5" in written  # numbers stay
    if "as_text" in header:
        assert "-4" in written  # and so does text that is a plain number
    if name != "validate":  # validate's JSON is the report's own
        records = json.loads(run(capsys, *COMMANDS[name], "--format", "json"))
        assert records[0]["rep_id"] == "-2+3" and records[0]["name"] == "@SUM(1+1)"


def test_metrics_list_csv_is_safe(capsys):
    assert unsafe_cells(run(capsys, "metrics", "--list", "--format", "csv")) == []


def test_no_csv_or_excel_written_around_the_safe_writer():
    """analysis/reports/export.py is the one place that writes CSV (and no Excel is written)."""
    package = Path(analysis.__file__).parent
    pattern = re.compile(r"\.to_csv\(|\.to_excel\(|ExcelWriter|csv\.writer\(|csv\.DictWriter\(|xlsxwriter")
    found = [f"{p.relative_to(package)}:{i}" for p in sorted(package.rglob("*.py")) if p.name != "export.py"
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert found == []


def test_the_synthetic_sample_writes_no_formula_text(tmp_path):
    """The sample is input data written by pyarrow, not through write_csv: its text must be safe."""
    from datetime import date

    from analysis.data.sample import write_sample

    folder = write_sample(tmp_path / "s", reps=8, months=3, seed=11, end=date(2026, 3, 31), format="csv")
    for path in folder.glob("*.csv"):
        assert unsafe_cells(path.read_text(encoding="utf-8")) == [], path.name
