"""The command line: every command has --help; errors are one line with a non-zero exit (1 data,
2 arguments or config, 3 internal, 4 environment; the full corpus is in tests/test_exit_codes.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.__main__ import build_parser, main

COMMANDS = ["sample", "validate", "metrics", "funnel", "stalled", "forecast", "plan", "coach", "review", "schema"]


def run(*args: str) -> subprocess.CompletedProcess:
    """``python -m analysis ARGS``, run in this process (``main`` is the whole command: the same
    exit code and output as a new process, without its ~1 s of start-up and imports); the tests
    below that need a real process (a full disk behind stdout) start one."""
    import contextlib
    import io

    from analysis.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse: --help, bad options
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    return subprocess.CompletedProcess(["analysis", *args], code, out.getvalue(), err.getvalue())


def test_help_lists_every_command():
    res = run("--help")
    assert res.returncode == 0
    for cmd in COMMANDS:
        assert cmd in res.stdout


@pytest.mark.parametrize("cmd", COMMANDS)
def test_each_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([cmd, "--help"])
    assert exit_.value.code == 0
    assert cmd in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["nope"], 2, "invalid choice: 'nope'"),
        (["sample", "--out", "/tmp/x", "--reps", "0"], 2, "must be at least 4"),
        (["sample", "--out", "/tmp/x", "--seed", "-1"], 2, "must be at least 0"),
        (["sample", "--out", "/tmp/x", "--end", "0001-01-01"], 2, "choose another --end"),
        (["sample", "--out", "/tmp/x", "--end", "2025-13-01"], 2, "is not a date"),
        (["validate", "/definitely/not/here"], 1, "no such file or directory"),
        (["metrics", "data/sample", "--metrics", "revenue", "--grain", "quater"], 2, "did you mean 'quarter'"),
        (["metrics", "data/sample", "--metrics", "revenue", "--by", "teams"], 2, "did you mean 'team'"),
        (["metrics", "data/sample", "--metrics", "revenue", "--filter", "team"], 2, "use DIMENSION=VALUE"),
        (["metrics", "data/sample", "--metrics", "revenue", "--period", "2025-Q5", "--grain", "quarter"], 2, "2025-Q5"),
    ],
)
def test_errors_are_one_line(args, code, message):
    res = run(*args)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert message in lines[0]
    assert "Traceback" not in res.stderr


def test_environment_problems_exit_4_with_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    res = run("sample", "--out", str(blocker / "sub"), "--quiet")
    assert res.returncode == 4, res.stderr
    assert res.stderr.startswith(f"error: {blocker / 'sub'}: a part of the path is a file") and res.stderr.count("\n") == 1


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_behind_standard_output_exits_4():
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "analysis", "schema"], stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=300, check=False)
    assert res.returncode == 4
    assert res.stderr == ("error: standard output: no space left on the device (ENOSPC); free disk space or write to "
                          "another disk\n")


def test_validate_prints_one_error_line_for_several_fatal_problems(tmp_path):
    res = run("validate", str(tmp_path))
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 2 fatal problems: missing required table reps")


def test_csv_output_is_safe_for_spreadsheets(tmp_path):
    from tests.conftest import OPPS_CSV, REPS_CSV, write_tables

    data = write_tables(tmp_path / "d", reps=REPS_CSV.replace("East,NA,M1,AE", "=1+1,NA,M1,AE"), opportunities=OPPS_CSV)
    res = run("metrics", str(data), "--metrics", "deals_won", "--by", "team", "--grain", "quarter", "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert "'=1+1," in res.stdout and "\n=1+1," not in res.stdout
    res = run("metrics", str(data), "--metrics", "deals_won", "--by", "team", "--grain", "quarter", "--format", "json")
    assert '"team": "=1+1"' in res.stdout


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_metrics_json_and_table(tmp_path):
    res = run("metrics", "data/sample", "--metrics", "revenue,win_rate", "--grain", "quarter",
              "--period", "2026-Q3", "--format", "json")
    import json

    rows = json.loads(res.stdout)
    assert rows[0]["period"] == "2026-Q3" and rows[0]["revenue"] > 0
    assert set(rows[0]) >= {"win_rate", "win_rate_numerator", "win_rate_denominator", "win_rate_low", "win_rate_high"}
    res = run("metrics", "data/sample", "--metrics", "calls", "--by", "team", "--grain", "quarter",
              "--period", "2026-Q3", "--filter", "team=East SMB")
    assert res.returncode == 0 and "East SMB" in res.stdout and "West" not in res.stdout


def test_schema_command_documents_every_table():
    res = run("schema")
    for table in ["reps", "accounts", "leads", "opportunities", "stage_history", "activities", "quotas",
                  "subscriptions", "spend", "pulse", "fx_rates"]:
        assert f"### {table}" in res.stdout


def test_parser_builds():
    assert build_parser().prog == "python -m analysis"


def test_funnel_command_names_the_leak_and_prints_the_columns():
    import io

    import pandas as pd

    res = run("funnel", "data/sample", "--period", "2026-Q3")
    assert res.returncode == 0, res.stderr
    assert "The biggest leak is Demo → Objection handling" in res.stdout
    res = run("funnel", "data/sample", "--period", "2026-Q3", "--by", "team", "--format", "csv")
    frame = pd.read_csv(io.StringIO(res.stdout))
    assert list(frame.columns[:9]) == ["team", "step", "entered", "advanced", "won", "lost", "open", "conversion",
                                       "conversion_low"]
    assert "leakage" in frame.columns


def test_stalled_command_lists_most_stuck_first():
    import io

    import pandas as pd

    res = run("stalled", "data/sample", "--as-of", "2026-09-30", "--format", "csv")
    assert res.returncode == 0, res.stderr
    frame = pd.read_csv(io.StringIO(res.stdout))
    assert list(frame.columns[:5]) == ["opportunity_id", "rep_id", "step", "days_in_step", "threshold_days"]
    assert "amount" in frame.columns and len(frame) > 0
    assert (frame.days_in_step > frame.threshold_days).all()


def test_grain_follows_the_period_when_not_given():
    res = run("metrics", "data/sample", "--metrics", "deals_won", "--period", "2026-Q3", "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[1].startswith("2026-Q3,")
