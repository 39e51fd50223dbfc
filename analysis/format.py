"""Money, numbers and percentages as text: the one formatter of sentences, tables, cards and titles.

Presentation layer: imports only the standard library and pandas, never another module of the
package, so any module may use it.

Rules shared by every function here:

* Not available (None, NaN, NaT, ``pd.NA``, and an infinite value) is ``"n/a"``: never ``"0"``,
  never ``"$nan"``.
* Rounding is half away from zero on the value as given (``1,250`` -> ``"$1.3K"``, ``0.5`` ->
  ``"1"``), not Python's round-half-to-even.
* A value that rounds to zero has no minus sign (``-0.4`` -> ``"0"``).

>>> money(27_116_811, "USD")
'$27.1M'
>>> money(27_116_811, "USD", compact=False)
'27,116,811 USD'
>>> money(-1_234, "EUR"), money(56_100_000, "IDR")
('-€1.2K', '56.1M IDR')
>>> number(1234.5), percent(0.1234), percent(0.05, digits=0, signed=True)
('1,235', '12.3%', '+5%')
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd

#: Currencies written with a symbol before the figure; every other currency is written with its
#: ISO code after the figure ("56.1M IDR").
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}

#: Compact suffixes: thousand, million, billion, trillion.
_SUFFIXES = ((Decimal(10) ** 3, "K"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 9, "B"), (Decimal(10) ** 12, "T"))

NA = "n/a"


def _decimal(value: Any) -> Decimal | None:
    """The value as an exact Decimal, or None when it is not available (or infinite)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, (str, bytes)):
        raise TypeError(f"cannot format {value!r} as a number: convert the column to numbers first")
    x = float(value)  # numpy scalars, ints, floats
    if not math.isfinite(x):
        return None
    return Decimal(value) if isinstance(value, int) else Decimal(x)


def _round(d: Decimal, digits: int) -> Decimal:
    return d.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def _sign(rounded: Decimal, signed: bool) -> str:
    if rounded < 0:
        return "-"
    return "+" if signed else ""


def _compact(magnitude: Decimal) -> tuple[Decimal, str]:
    """The rounded magnitude in its unit: whole units below 1,000, else one decimal of K/M/B/T.

    The unit is chosen on the rounded figure, so 999,950 is "1M", never "1000K".
    """
    whole = _round(magnitude, 0)
    if whole < 1000:
        return whole, ""
    for i, (size, suffix) in enumerate(_SUFFIXES):
        scaled = _round(magnitude / size, 1)
        if scaled < 1000 or i == len(_SUFFIXES) - 1:
            return scaled, suffix
    raise AssertionError("unreachable")


def _text(d: Decimal, digits: int) -> str:
    return f"{d:,.{digits}f}"


def money(value: Any, currency: str | None, *, compact: bool = True, signed: bool = False) -> str:
    """An amount of money as text.

    Parameters
    ----------
    value
        The amount (int, float, numpy or Decimal); None, NaN, ``pd.NA`` or infinite is ``"n/a"``.
    currency
        ISO code (``"USD"``, ``"IDR"``; case does not matter). USD, EUR, GBP and JPY are written
        with their symbol before the figure (``"$27.1M"``, ``"-€1.2K"``); every other code after
        it (``"56.1M IDR"``, ``"-950 IDR"``). None or ``""`` gives the bare figure (``"27.1M"``).
    compact
        True (sentences, cards, titles): below 1,000 whole units (``"$950"``); from 1,000 one
        decimal of K, M, B or T with a trailing ".0" dropped (``"$1.2K"``, ``"$27.1M"``,
        ``"$3B"``); the suffix follows the rounded figure (999,950 is ``"$1M"``).
        False: the full figure in whole units with thousands separators and the ISO code after
        it, symbol or not (``"27,116,811 USD"``, ``"-1,200 EUR"``).
    signed
        Put "+" before an amount that is not negative (a change: ``"+$500"``).
    """
    d = _decimal(value)
    if d is None:
        return NA
    code = (currency or "").strip().upper()
    if compact:
        figure, suffix = _compact(abs(d))
        body = _text(figure, 1 if suffix else 0)
        if suffix and body.endswith(".0"):
            body = body[:-2]
        body += suffix
        symbol = SYMBOLS.get(code)
    else:
        figure = _round(abs(d), 0)
        body, symbol = _text(figure, 0), None
    sign = _sign(figure if d >= 0 else -figure, signed)
    if symbol:
        return f"{sign}{symbol}{body}"
    return f"{sign}{body} {code}" if code else f"{sign}{body}"


def number(value: Any, *, digits: int = 0, signed: bool = False) -> str:
    """A number with thousands separators and ``digits`` decimals: ``number(1234.5) == "1,235"``,
    ``number(2.25, digits=1) == "2.3"``; "n/a" when not available; "+" before a non-negative
    number when ``signed``."""
    d = _decimal(value)
    if d is None:
        return NA
    r = _round(d, digits)
    return _sign(r, signed) + _text(abs(r), digits)


def percent(value: Any, *, digits: int = 1, signed: bool = False) -> str:
    """A fraction as a percentage: ``percent(0.1234) == "12.3%"``, ``percent(0.5, digits=0) ==
    "50%"``, ``percent(0.05, signed=True) == "+5.0%"``; "n/a" when not available."""
    d = _decimal(value)
    if d is None:
        return NA
    return number(d * 100, digits=digits, signed=signed) + "%"
