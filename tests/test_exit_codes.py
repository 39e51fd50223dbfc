"""One exit-code taxonomy for every command: 0 success, 1 unusable data, 2 bad arguments or
config, 3 an internal error, 4 the environment; every failure is one ``error: `` line.

The corpus of bad inputs and faults lives in ``tests/corpus.py`` (``python -m tests.corpus``).
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from analysis.__main__ import main
from analysis.errors import DataError, EnvironmentProblem, WorkbenchError
from tests.corpus import CASES, OPPS_CSV, REPS_CSV, FullStream, run_case, write_tables


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpus-shared")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(case, tmp_path, shared):
    outcome = run_case(case, tmp_path / "case", shared)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.ok, f"{case.name}: {outcome.problems}; stderr: {outcome.stderr!r}"


def test_corpus_covers_every_exit_class_and_command(tmp_path, shared):
    from tests.corpus import Workspace

    assert 40 <= len(CASES) <= 90
    codes = Counter(c.code for c in CASES)
    assert set(codes) == {0, 1, 2, 3, 4} and min(codes.values()) >= 3
    commands = [c.build(Workspace(tmp_path / f"probe{i}", shared))[0] for i, c in enumerate(CASES)]
    assert set(commands) >= {"validate", "metrics", "funnel", "stalled", "forecast", "plan", "coach", "review",
                             "presets", "sample", "schema"}
    assert commands.count("review") <= 2  # a review render takes ~15 s


# -- the environment (exit 4) ---------------------------------------------------------------------


def _run(argv, capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    return code, err


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_out_under_a_file_is_an_environment_problem(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, err = _run(["sample", "--out", str(blocker / "x"), "--quiet"], capsys)
    line = _one_error_line(err)
    assert code == 4 and str(blocker / "x") in line and "not a folder" in line and "--out" in line
    assert blocker.read_text() == "x"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_is_an_environment_problem(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, err = _run(["sample", "--out", str(folder / "s"), "--quiet"], capsys)
    finally:
        folder.chmod(0o755)
    assert code == 4 and "permission denied" in _one_error_line(err)


@pytest.mark.parametrize("code_, words", [(errno.ENOSPC, "no space left"), (errno.EDQUOT, "quota"),
                                          (errno.EROFS, "read-only"), (errno.EACCES, "permission denied"),
                                          (errno.EPERM, "not permitted"), (errno.EISDIR, "is a folder")])
def test_os_errors_of_the_environment_exit_4_with_the_path(monkeypatch, tmp_path, capsys, code_, words):
    from analysis.data import sample

    target = tmp_path / "out" / "s"

    def fail(*args, **kwargs):
        raise OSError(code_, os.strerror(code_), str(target / "reps.csv"))

    monkeypatch.setattr(sample, "write_sample", fail)
    code, err = _run(["sample", "--out", str(target), "--quiet"], capsys)
    line = _one_error_line(err)
    assert code == 4 and words in line and str(target / "reps.csv") in line and errno.errorcode[code_] in line


def test_full_standard_output_exits_4_even_when_only_the_flush_fails(monkeypatch, capsys):
    class FailsOnFlush(io.StringIO):
        def flush(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sys, "stdout", FailsOnFlush())
    code = main(["presets"])
    err = capsys.readouterr().err
    assert code == 4 and "standard output: no space left" in _one_error_line(err)


def test_full_standard_output(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", FullStream())
    code = main(["schema"])
    assert code == 4 and "standard output" in _one_error_line(capsys.readouterr().err)


def test_review_render_failing_on_a_full_disk_exits_4(monkeypatch, tmp_path, capsys):
    """An OSError that render.py wraps in a RenderError (raise ... from) still means exit 4."""
    import papermill

    data = write_tables(tmp_path / "data", reps=REPS_CSV, opportunities=OPPS_CSV)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(papermill, "execute_notebook", full)
    code, err = _run(["review", "--data", str(data), "--out", str(tmp_path / "reports"), "--quiet"], capsys)
    line = _one_error_line(err)
    assert code == 4 and "no space left" in line.lower() and "--out" in line
    assert not list((tmp_path / "reports").rglob("*.html"))


def test_review_with_header_only_opportunities_is_unusable_data(tmp_path, capsys):
    data = write_tables(tmp_path / "data", reps=REPS_CSV, opportunities=OPPS_CSV.splitlines()[0] + "\n")
    code, err = _run(["review", "--data", str(data), "--out", str(tmp_path / "reports"), "--quiet"], capsys)
    assert code == 1 and "header but no rows" in _one_error_line(err)


def test_a_bug_stays_exit_3_and_debug_shows_it(monkeypatch, tmp_path, capsys):
    from analysis.data import sample

    def bug(*args, **kwargs):
        raise OSError(errno.EBADF, "Bad file descriptor")  # not the environment's doing: a bug

    monkeypatch.setattr(sample, "write_sample", bug)
    code, err = _run(["sample", "--out", str(tmp_path / "s"), "--quiet"], capsys)
    assert code == 3 and "internal error" in _one_error_line(err)
    with pytest.raises(OSError):
        main(["--debug", "sample", "--out", str(tmp_path / "s"), "--quiet"])


# -- the error classes ------------------------------------------------------------------------------


def test_error_classes_carry_their_exit_codes():
    assert WorkbenchError.exit_code == 2 and DataError.exit_code == 1 and EnvironmentProblem.exit_code == 4
    assert issubclass(EnvironmentProblem, WorkbenchError)


def test_environment_problem_names_the_path_and_the_fix():
    err = OSError(errno.ENOSPC, "No space left on device", "/srv/reports/q.html")
    line = str(EnvironmentProblem.from_os_error(err, option="--out"))
    assert line == ("/srv/reports/q.html: no space left on the device (ENOSPC); free disk space or write with --out "
                    "to another disk")
    line = str(EnvironmentProblem.from_os_error(OSError(errno.EACCES, "Permission denied"), where="reports"))
    assert line.startswith("reports: permission denied (EACCES); give this user access to reports")
    assert "\n" not in line


def test_environment_problem_finds_an_os_error_it_was_raised_from():
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system")
        except OSError as err:
            raise WorkbenchError("could not write the report") from err
    except WorkbenchError as wrapped:
        assert EnvironmentProblem.caused_by(wrapped).errno == errno.EROFS
    assert EnvironmentProblem.caused_by(ValueError("x")) is None
    assert EnvironmentProblem.caused_by(OSError(errno.EBADF, "bad")) is None
