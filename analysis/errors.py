"""The workbench's small error family: every message says what, where, and how to fix it.

Each error carries the command line's exit code (the one taxonomy of every command):

== ==================================================================================
0  success
1  unusable data (:class:`DataError`): missing or empty tables, unreadable files, no dated deals
2  bad arguments or config (:class:`WorkbenchError` and the rest of the family)
3  an internal error: a bug of the workbench (any other exception)
4  the environment (:class:`EnvironmentProblem`): disk full, output not writable, an output
   path under a file, a read-only folder
== ==================================================================================
"""

from __future__ import annotations

import errno
import os


class WorkbenchError(Exception):
    """Base class: the CLI prints ``str(error)`` as one line and exits non-zero."""

    exit_code = 2

    def _render_traceback_(self) -> list[str]:
        """IPython (and so papermill) shows a workbench error as its one line, no traceback."""
        return [f"{type(self).__name__}: {self}"]


class ConfigError(WorkbenchError):
    """The workbench config is invalid (names the key)."""


class DataError(WorkbenchError):
    """The data cannot be used: a missing required table or column, an unreadable file."""

    exit_code = 1

    def __init__(self, message: str, problems: list[tuple[str, str, str]] | None = None):
        super().__init__(message)
        #: (check id, table, message) per fatal problem
        self.problems = problems or [("unreadable_file", "-", message)]


class PeriodError(WorkbenchError, ValueError):
    """A period label or grain that cannot be parsed."""


class UnknownNameError(WorkbenchError, KeyError):
    """An unknown metric, dimension, table or grain (with a did-you-mean suggestion)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


#: OSError numbers that say the machine, not the data or the arguments, is the problem, with why
#: in a few words and how to fix it (``{where}`` is the path, ``{out}`` names the output option).
ENVIRONMENT_ERRNOS: dict[int, tuple[str, str]] = {
    code: text
    for name, text in {
        "ENOSPC": ("no space left on the device", "free disk space or write {out}to another disk"),
        "EDQUOT": ("the disk quota is used up", "free space or raise the quota, or write {out}elsewhere"),
        "EFBIG": ("the file is too large for the file system", "write {out}to another file system"),
        "EIO": ("an input/output error of the device", "check the disk, then run again"),
        "EACCES": ("permission denied", "give this user access to {where} or write {out}elsewhere"),
        "EPERM": ("operation not permitted", "give this user access to {where} or write {out}elsewhere"),
        "EROFS": ("the file system is read-only", "write {out}to a writable folder"),
        "ENOTDIR": ("a part of the path is a file, not a folder", "write {out}to a folder that is not under a file"),
        "EISDIR": ("it is a folder where a file is needed", "remove or rename that folder, or write {out}elsewhere"),
        "EEXIST": ("a file is in the way where a folder is needed", "remove or rename that file, or write {out}elsewhere"),
        "ENAMETOOLONG": ("the path is too long", "write {out}to a shorter path"),
        "ELOOP": ("the path has a symbolic-link loop", "fix the links or write {out}elsewhere"),
        "EMFILE": ("too many open files", "raise the open-file limit (ulimit -n), then run again"),
        "ENFILE": ("too many open files in the system", "close other programs' files, then run again"),
        "ENOMEM": ("out of memory", "free memory, then run again"),
        "ETXTBSY": ("the file is busy", "close the program using it, then run again"),
    }.items()
    if (code := getattr(errno, name, None)) is not None
}


class EnvironmentProblem(WorkbenchError):
    """The machine stops the run, not the data or the arguments: a full disk, an output that is
    not writable, an output path under a file, a read-only folder (exit code 4)."""

    exit_code = 4

    @classmethod
    def from_os_error(cls, error: OSError, *, where: str | os.PathLike | None = None,
                      option: str | None = None) -> EnvironmentProblem:
        """The one-line problem for an OSError: the path (the error's own, else ``where``), why
        (with the errno name) and how to fix it, e.g. ``reports/q: no space left on the device
        (ENOSPC); free disk space or write with --out to another disk``. ``option`` names the
        command-line option that chooses the output (``--out``), if there is one."""
        path = error.filename if error.filename not in (None, "") else where
        path = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else path
        reason, fix = ENVIRONMENT_ERRNOS.get(
            error.errno or 0, ((error.strerror or str(error)).lower(), "check the path and its disk, then run again"))
        name = errno.errorcode.get(error.errno or 0, "")
        fix = fix.format(where=f"{path}" if path else "the folder", out=f"with {option} " if option else "")
        if error.filename2 not in (None, ""):
            path = f"{path} -> {os.fsdecode(error.filename2)}"
        return cls(f"{path or 'the output'}: {reason}{f' ({name})' if name else ''}; {fix}")

    @staticmethod
    def caused_by(error: BaseException) -> OSError | None:
        """The OSError of :data:`ENVIRONMENT_ERRNOS` that ``error`` is, or was raised from
        (``raise ... from``), if any."""
        seen = 0
        cause: BaseException | None = error
        while cause is not None and seen < 20:
            if isinstance(cause, OSError) and cause.errno in ENVIRONMENT_ERRNOS:
                return cause
            cause, seen = cause.__cause__, seen + 1
        return None


class MissingTableError(DataError, UnknownNameError):
    """A canonical table the request needs is not in the data (exit 1, like any unusable data;
    still an :class:`UnknownNameError` for callers that look a table up by name)."""
