"""The workbench's small error family: every message says what, where, and how to fix it."""

from __future__ import annotations


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
