"""CSV output that is safe to open in a spreadsheet (CSV / formula injection).

CRM text reaches every CSV the workbench writes: team and rep names, products, opportunity and
rep ids, loss reasons, data-quality messages. A spreadsheet that opens the file runs a cell whose
text starts with ``=``, ``+``, ``-`` or ``@`` as a formula (a tab or carriage return in front
works too), so a team named ``=HYPERLINK("http://evil","team")`` or a product named
``+cmd|' /C calc'!A0`` would run when a manager opens the export in Excel, LibreOffice or Google
Sheets. Following OWASP's advice ("CSV Injection"), such a cell is written with a single quote in
front (``'=HYPERLINK(...)``): spreadsheets show it as the text it is and run nothing.

The rule, exactly (:func:`safe_csv`; :func:`write_csv` applies it and writes):

* **Neutralised**: a text cell whose first character is ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return gets a ``'`` in front; nothing else in it changes. The column headers (and the
  index, when one is written) follow the same rule.
* **Left as they are**:

  - whole columns of numbers, booleans or date-times (their values are numbers, not text:
    ``-12.5`` in a numeric column is written as ``-12.5``);
  - a text cell that is a plain decimal number: an optional sign, digits with an optional
    decimal point and fraction, an optional exponent, nothing else (``-12.5``, ``+3``, ``-.5``,
    ``-1e-3``). A spreadsheet reads it as that number, not as a formula. Anything more is text
    and neutralised: ``-12,5``, ``-1,234.5``, ``-5%``, ``- 3``, ``-inf``, ``-1+2``;
  - numbers, booleans and dates inside a text (object) column, and missing values;
  - every other cell, including one that already starts with ``'`` (so the rule is idempotent).

* Any other value in a text column (a period, a timedelta...) is judged by the text pandas writes
  for it.
* A cell holding a carriage return or line feed is always written in quotes, so that it stays one
  cell (an unquoted carriage return would start a new row, and a formula could start there).

Only CSV is touched: ``--format json`` and the terminal tables print the values exactly as they
are, and the data frames the Python API returns are never changed (:func:`safe_csv` returns a
copy). The synthetic sample (:func:`analysis.data.sample.write_sample`) writes input data, not
reports, and its generated text never starts with one of these characters.
"""

from __future__ import annotations

import math
import numbers
import re
from datetime import date, datetime, time
from typing import Any

import numpy as np
import pandas as pd

#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")

#: The prefix that makes a spreadsheet show the cell as text.
QUOTE = "'"

_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")

__all__ = ["FORMULA_TRIGGERS", "QUOTE", "is_formula_like", "safe_cell", "safe_csv", "write_csv"]


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet would run ``text`` as a formula: it starts with one of
    :data:`FORMULA_TRIGGERS` and is not a plain decimal number (``-12.5`` is a number)."""
    return text[:1] in FORMULA_TRIGGERS and _PLAIN_NUMBER.match(text) is None


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def safe_cell(value: Any) -> Any:
    """One cell (or header) as it is safe to write: formula-like text with a ``'`` in front,
    every other value unchanged (see the module docstring for the rule)."""
    if isinstance(value, str):
        return QUOTE + value if is_formula_like(value) else value
    if _missing(value) or isinstance(value, (numbers.Number, bool, np.bool_, date, datetime, time, np.datetime64)):
        return value
    text = str(value)
    return QUOTE + text if is_formula_like(text) else value


def _safe_labels(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        tuples = [tuple(safe_cell(v) for v in t) for t in index]
        return pd.MultiIndex.from_tuples(tuples, names=[safe_cell(n) for n in index.names])
    if isinstance(index, pd.RangeIndex):
        return index.rename(safe_cell(index.name))
    return pd.Index([safe_cell(v) for v in index], name=safe_cell(index.name), tupleize_cols=False)


def _is_value_dtype(dtype: Any) -> bool:
    """Columns whose values are numbers, booleans or date-times, never text."""
    return (
        pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
    )


def safe_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells, headers and index labels cannot run as spreadsheet
    formulas: each one starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return, unless it
    is a plain number, gets a ``'`` in front. Numeric, boolean and date-time columns are kept as
    they are (dtype included); text columns come back as ``object``. ``frame`` is not changed."""
    out = frame.copy()
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if _is_value_dtype(column.dtype):
            continue
        values = column.astype(object)
        out.isetitem(i, pd.Series([safe_cell(v) for v in values], index=column.index, dtype=object))
    out.columns = _safe_labels(frame.columns)
    out.index = _safe_labels(frame.index)
    out.attrs = dict(frame.attrs)
    return out


def _rows_end_in(text: str, terminator: str, quote: str) -> str:
    """``text`` written with CRLF row ends, with those outside quoted fields turned into
    ``terminator`` (a CR or LF inside a quoted field stays)."""
    parts = text.split(quote)  # even parts are outside quotes (a doubled quote toggles twice)
    parts[0::2] = [p.replace("\r\n", terminator) for p in parts[0::2]]
    return quote.join(parts)


def write_csv(frame: pd.DataFrame, path_or_buf: Any = None, *, index: bool = False, lineterminator: str = "\n",
              encoding: str = "utf-8", **to_csv: Any) -> str | None:
    """Write ``frame`` as CSV through :func:`safe_csv`: the one way the workbench writes CSV.

    ``path_or_buf`` is a path, an open text stream or None (then the text is returned, like
    pandas); the other keywords are :meth:`pandas.DataFrame.to_csv`'s that shape the text
    (``sep``, ``columns``, ``header``, ``na_rep``, ``float_format``, ``date_format``...); no index
    unless ``index=True``. Rows end in ``lineterminator`` (``"\\n"``). A field that holds a carriage
    return or line feed is always quoted: Python's csv module leaves a lone CR unquoted when rows
    end in LF, and a spreadsheet would start a new row (perhaps a formula) there.
    """
    quote = to_csv.get("quotechar", '"')
    text = safe_csv(frame).to_csv(None, index=index, lineterminator="\r\n", **to_csv)
    if lineterminator != "\r\n":
        text = _rows_end_in(text, lineterminator, quote)
    if path_or_buf is None:
        return text
    if hasattr(path_or_buf, "write"):
        path_or_buf.write(text)
    else:
        with open(path_or_buf, "w", encoding=encoding, newline="") as fh:
            fh.write(text)
    return None
