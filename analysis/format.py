"""Money, numbers and percentages as text: the one formatter of sentences, tables, cards, titles
and chart axes.

Presentation layer: imports only the standard library, pandas and babel (CLDR locale data), never
another module of the package, so any module may use it. A dataset's formatter is
``ds.config.numbers``: a :class:`Numbers` of the reporting ``currency`` and the
``display_locale`` (and ``currency_display``) of the config.

Rules shared by every function here:

* Not available (None, NaN, NaT, ``pd.NA``, and an infinite value) is ``"n/a"``: never ``"0"``,
  never ``"$nan"``.
* Rounding is half away from zero on the value as given (``1,250`` -> ``"$1.3K"``, ``0.5`` ->
  ``"1"``), not Python's round-half-to-even.
* A value that rounds to zero has no minus sign (``-0.4`` -> ``"0"``).
* Abbreviations (compact figures) are the locale's (CLDR "short" forms): en-US K, M, B, T;
  id-ID rb (ribu, 10^3), jt (juta, 10^6), M (miliar, 10^9), T (triliun, 10^12). Below the
  locale's first abbreviation a figure is written in whole units; with one, one decimal with a
  trailing zero dropped. The abbreviation is chosen on the rounded figure: 999,950 is
  ``"$1M"``, never ``"$1000K"``.
* Money carries the currency the same way in compact and full figures: with
  ``currency_display="symbol"`` (default) the locale's symbol where the locale puts it
  (``"$27.1M"`` and ``"$27,116,811"``; id-ID ``"Rp 22,5 M"`` and ``"Rp 27.116.811"``); a
  currency without a symbol of its own in that locale (IDR in en-US: CLDR's symbol is the
  code) is written with its ISO code after the figure (``"56.1M IDR"``), as every currency is
  with ``currency_display="code"`` (``"27.1M USD"``, ``"27,116,811 USD"``).
* Only plain spaces are written (CLDR's no-break spaces become ``" "``), so text searches,
  CSV files and tests see one kind of space.

>>> money(27_116_811, "USD")
'$27.1M'
>>> money(27_116_811, "USD", compact=False)
'$27,116,811'
>>> money(-1_234, "EUR"), money(56_100_000, "IDR")
('-€1.2K', '56.1M IDR')
>>> money(22_500_000_000, "IDR", locale="id-ID"), money(27_116_811, "IDR", locale="id-ID", compact=False)
('Rp 22,5 M', 'Rp 27.116.811')
>>> number(1234.5), percent(0.1234), percent(0.05, digits=0, signed=True)
('1,235', '12.3%', '+5%')
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import pandas as pd

__all__ = [
    "CURRENCY_DISPLAYS",
    "NA",
    "Numbers",
    "VegaKind",
    "check_locale",
    "money",
    "number",
    "percent",
]

NA = "n/a"

#: How money shows its currency: the locale's symbol (a code when the currency has none in that
#: locale), or always the ISO code after the figure.
CURRENCY_DISPLAYS = ("symbol", "code")

CurrencyDisplay = Literal["symbol", "code"]

_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "})


def check_locale(tag: str) -> str:
    """``tag`` (``"id-ID"``, ``"en_US"``, ``"de"``) as a babel locale name (``"id_ID"``).

    Raises ValueError naming the tag, the closest known ones and how to write one.
    """
    from babel import Locale, UnknownLocaleError
    from babel.localedata import locale_identifiers

    if not isinstance(tag, str) or not tag.strip():
        raise ValueError(f"display locale {tag!r} is not a locale name; write a language-region tag such as "
                         "en-US, id-ID or de-DE")
    name = tag.strip().replace("-", "_")
    try:
        return str(Locale.parse(name))
    except (UnknownLocaleError, ValueError, TypeError):
        known = sorted(i.replace("_", "-") for i in locale_identifiers())
        close = difflib.get_close_matches(tag.strip()[:40], known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(
            f"unknown display locale {tag[:60]!r}{hint}; write a language-region tag of the CLDR locales "
            "such as en-US, id-ID, de-DE, fr-FR or en-IN"
        ) from None


@dataclass(frozen=True)
class _Unit:
    """One abbreviation of a locale: used from ``start`` on, the figure divided by ``divisor``."""

    start: Decimal
    divisor: Decimal
    prefix: str
    suffix: str


@dataclass(frozen=True)
class _Style:
    """What a locale writes: separators, signs, grouping, abbreviations, currency and % places."""

    decimal: str
    group: str
    minus: str
    plus: str
    grouping: tuple[int, int]
    units: tuple[_Unit, ...]
    currency_before: bool  # the locale's currency pattern puts the symbol before the figure
    currency_gap: str  # what the pattern puts between symbol and figure ("", " ")
    percent_prefix: str
    percent_suffix: str


def _literal(affix: str) -> str:
    """A CLDR pattern affix as written: quotes removed (``"Mio'.'"`` -> ``"Mio."``), plain spaces."""
    return re.sub(r"'('?)", lambda m: m.group(1), affix).translate(_SPACES)


@functools.lru_cache(maxsize=32)
def _style(locale: str) -> _Style:
    from babel import Locale

    loc = Locale.parse(check_locale(locale))
    symbols = loc.number_symbols.get("latn", loc.number_symbols)
    units: list[_Unit] = []
    short = loc.compact_decimal_formats.get("short", {})
    for magnitude, pattern in sorted(((int(m), p) for m, p in short.get("other", {}).items()), key=lambda mp: mp[0]):
        zeros = pattern.pattern.count("0")
        prefix, suffix = _literal(pattern.prefix[0]), _literal(pattern.suffix[0])
        if not (prefix or suffix):  # "0": this magnitude is written in full (de-DE below a million)
            continue
        divisor = Decimal(magnitude) / Decimal(10) ** (zeros - 1)
        if units and (units[-1].divisor, units[-1].prefix, units[-1].suffix) == (divisor, prefix, suffix):
            continue
        units.append(_Unit(Decimal(magnitude), divisor, prefix, suffix))
    currency = loc.currency_formats["standard"]
    before = "¤" in currency.prefix[0]
    gap = (currency.prefix[0].replace("¤", "") if before else currency.suffix[0].replace("¤", "")).translate(_SPACES)
    pct = loc.percent_formats[None]
    grouping = loc.decimal_formats[None].grouping
    return _Style(
        decimal=symbols["decimal"],
        group=symbols["group"].translate(_SPACES),
        minus=symbols.get("minusSign", "-"),
        plus=symbols.get("plusSign", "+"),
        grouping=(int(grouping[0]), int(grouping[1])),
        units=tuple(units),
        currency_before=before,
        currency_gap=gap,
        percent_prefix=pct.prefix[0].translate(_SPACES),
        percent_suffix=pct.suffix[0].translate(_SPACES),
    )


@functools.lru_cache(maxsize=64)
def _currency_parts(code: str, locale: str, display: str) -> tuple[str, str]:
    """(before, after) the figure for ``code``: ``("$", "")``, ``("Rp ", "")``, ``("", " IDR")``."""
    if not code:
        return "", ""
    if display == "symbol":
        from babel.numbers import get_currency_symbol

        symbol = get_currency_symbol(code, locale=check_locale(locale)).translate(_SPACES)
        if symbol and symbol != code:
            style = _style(locale)
            gap = style.currency_gap
            if style.currency_before:
                # CLDR currency spacing: a symbol ending in a letter ("Rp", "CHF") is kept apart
                # from the digits ("Rp 22,5 M"); "$", "€", "US$" are not
                gap = gap or (" " if symbol[-1].isalpha() else "")
                return symbol + gap, ""
            gap = gap or (" " if symbol[0].isalpha() else "")
            return "", gap + symbol
    return "", " " + code


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


def _sign(rounded: Decimal, negative: bool, signed: bool, style: _Style) -> str:
    if negative and rounded != 0:
        return style.minus
    return style.plus if signed else ""


def _compact(magnitude: Decimal, style: _Style) -> tuple[Decimal, _Unit | None]:
    """The rounded magnitude in its unit: whole units below the first abbreviation, else one
    decimal of it. The unit is chosen on the rounded figure, so 999,950 is "1M", never "1000K"."""
    figure, unit = _round(magnitude, 0), None
    for candidate in style.units:
        shown = figure * (unit.divisor if unit is not None else 1)
        if shown < candidate.start:
            break
        unit, figure = candidate, _round(magnitude / candidate.divisor, 1)
    return figure, unit


def _group(digits: str, style: _Style) -> str:
    first, rest = style.grouping
    if len(digits) <= first or first <= 0:
        return digits
    parts = [digits[-first:]]
    digits = digits[:-first]
    size = rest or first
    while digits:
        parts.append(digits[-size:])
        digits = digits[:-size]
    return style.group.join(reversed(parts))


def _text(rounded: Decimal, digits: int, style: _Style) -> str:
    """A non-negative rounded Decimal with the locale's separators and ``digits`` decimals."""
    whole, _, frac = f"{rounded:.{digits}f}".partition(".")
    return _group(whole, style) + (style.decimal + frac if digits > 0 else "")


def _compact_text(d: Decimal, style: _Style) -> tuple[Decimal, str]:
    figure, unit = _compact(abs(d), style)
    if unit is None:
        return figure, _text(figure, 0, style)
    body = _text(figure, 1, style)
    if figure == figure.to_integral_value():  # a trailing ".0" is dropped: "$12K", "Rp 12 rb"
        body = _text(figure, 0, style)
    return figure * unit.divisor, unit.prefix + body + unit.suffix


def money(value: Any, currency: str | None, *, compact: bool = True, signed: bool = False,
          locale: str = "en-US", currency_display: CurrencyDisplay = "symbol") -> str:
    """An amount of money as text.

    Parameters
    ----------
    value
        The amount (int, float, numpy or Decimal); None, NaN, ``pd.NA`` or infinite is ``"n/a"``.
    currency
        ISO code (``"USD"``, ``"IDR"``; case does not matter). None or ``""`` gives the bare
        figure (``"27.1M"``).
    compact
        True (sentences, cards, titles, axes): whole units below the locale's first abbreviation
        (``"$950"``), from it one decimal with a trailing ".0" dropped (``"$1.2K"``,
        ``"$27.1M"``, ``"$3B"``; id-ID ``"Rp 22,5 M"``). False (tables, exact figures): whole
        units with the locale's grouping (``"$27,116,811"``, ``"Rp 27.116.811"``).
    signed
        Put "+" before an amount that is not negative (a change: ``"+$500"``).
    locale
        The display locale (``"en-US"``, ``"id-ID"``): separators, abbreviations, the symbol
        and where it goes.
    currency_display
        ``"symbol"``: the locale's symbol (``"$"``, ``"Rp"``, ``"€"``), or the ISO code after
        the figure when the currency has no symbol in that locale (``"56.1M IDR"`` in en-US);
        ``"code"``: always the ISO code after the figure (``"27.1M USD"``).
    """
    if currency_display not in CURRENCY_DISPLAYS:
        raise ValueError(f"currency_display {currency_display!r}: use one of {', '.join(CURRENCY_DISPLAYS)}")
    d = _decimal(value)
    if d is None:
        return NA
    style = _style(locale)
    code = (currency or "").strip().upper()
    if compact:
        shown, body = _compact_text(d, style)
    else:
        shown = _round(abs(d), 0)
        body = _text(shown, 0, style)
    before, after = _currency_parts(code, locale, currency_display)
    return f"{_sign(shown, d < 0, signed, style)}{before}{body}{after}"


def number(value: Any, *, digits: int = 0, signed: bool = False, compact: bool = False,
           locale: str = "en-US") -> str:
    """A number with the locale's separators and ``digits`` decimals: ``number(1234.5) ==
    "1,235"``, ``number(2.25, digits=1) == "2.3"``, id-ID ``"1.235"`` and ``"2,3"``; "n/a" when
    not available; "+" before a non-negative number when ``signed``. ``compact`` abbreviates as
    :func:`money` does (``"35M"``; ``digits`` is then not used)."""
    d = _decimal(value)
    if d is None:
        return NA
    style = _style(locale)
    if compact:
        shown, body = _compact_text(d, style)
        return _sign(shown, d < 0, signed, style) + body
    r = _round(abs(d), digits)
    return _sign(r, d < 0, signed, style) + _text(r, digits, style)


def percent(value: Any, *, digits: int = 1, signed: bool = False, locale: str = "en-US") -> str:
    """A fraction as a percentage: ``percent(0.1234) == "12.3%"``, ``percent(0.5, digits=0) ==
    "50%"``, ``percent(0.05, signed=True) == "+5.0%"`` (id-ID ``"12,3%"``, de-DE ``"12,3 %"``);
    "n/a" when not available."""
    d = _decimal(value)
    if d is None:
        return NA
    style = _style(locale)
    r = _round(abs(d) * 100, digits)
    return _sign(r, d < 0, signed, style) + style.percent_prefix + _text(r, digits, style) + style.percent_suffix


# -- the same figures in Vega expressions (chart axes) ---------------------------------------

VegaKind = Literal["money", "count", "percent", "number"]


def _js(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _vega_digits(expr: str, digits: int, style: _Style, *, trim: bool) -> str:
    """Vega: the non-negative ``expr`` with ``digits`` decimals and the locale's separators."""
    spec = f",.{digits}{'~' if trim else ''}f"
    out = f"format({expr}, {_js(spec)})"
    if (style.decimal, style.group) == (".", ","):
        return out
    # d3 writes "1,234.5": swap in the locale's marks through a character numbers never contain
    out = f"replace({out}, regexp('\\\\.', 'g'), '~')"
    out = f"replace({out}, regexp(',', 'g'), {_js(style.group)})"
    return f"replace({out}, regexp('~', 'g'), {_js(style.decimal)})"


def _vega_compact(a: str, style: _Style) -> str:
    """Vega: the non-negative ``a`` abbreviated as :func:`_compact` does."""
    out = _vega_digits(f"round({a})", 0, style, trim=False)
    below: _Unit | None = None
    branches = []
    for unit in style.units:
        # the figure reaches this unit when it would round, in the unit below, to its start
        half = Decimal("0.5") if below is None else below.divisor * Decimal("0.05")
        threshold = unit.start - half
        text = _vega_digits(f"{a} / {unit.divisor:f}", 1, style, trim=True)
        branches.append((threshold, f"{_js(unit.prefix)} + {text} + {_js(unit.suffix)}"))
        below = unit
    for threshold, text in branches:  # ascending: each wraps the smaller ones
        out = f"({a} >= {threshold:f} ? {text} : {out})"
    return out


#: Kinds of :meth:`Numbers.formatter` (table columns).
FORMATTER_KINDS = ("money", "money_compact", "count", "number", "percent")


@dataclass(frozen=True)
class Numbers:
    """The one formatter of a dataset: its reporting currency and display locale.

    ``ds.config.numbers`` gives the dataset's; every sentence, card, table, axis and notebook
    formats through it, so a report never mixes two ways of writing one amount.

    >>> Numbers("USD").money(27_116_811), Numbers("USD").money(27_116_811, compact=False)
    ('$27.1M', '$27,116,811')
    >>> Numbers("IDR", "id-ID").money(22_500_000_000), Numbers("IDR", "id-ID").percent(0.123)
    ('Rp 22,5 M', '12,3%')

    Raises ValueError (with the fix) for an unknown locale or currency display.
    """

    currency: str | None = None
    locale: str = "en-US"
    currency_display: CurrencyDisplay = "symbol"

    def __post_init__(self) -> None:
        check_locale(self.locale)
        if self.currency_display not in CURRENCY_DISPLAYS:
            raise ValueError(f"currency_display {self.currency_display!r}: use symbol (the locale's currency "
                             "symbol, '$27.1M') or code (the ISO code, '27.1M USD')")

    def money(self, value: Any, *, compact: bool = True, signed: bool = False) -> str:
        return money(value, self.currency, compact=compact, signed=signed, locale=self.locale,
                     currency_display=self.currency_display)

    def number(self, value: Any, *, digits: int = 0, signed: bool = False, compact: bool = False) -> str:
        return number(value, digits=digits, signed=signed, compact=compact, locale=self.locale)

    def percent(self, value: Any, *, digits: int = 1, signed: bool = False) -> str:
        return percent(value, digits=digits, signed=signed, locale=self.locale)

    def formatter(self, kind: str, *, digits: int | None = None) -> Callable[[Any], str]:
        """A table column's format by kind (:data:`FORMATTER_KINDS`): ``money`` (the full figure
        with the currency), ``money_compact`` (``"$27.1M"``), ``count`` (whole, ``digits`` 0),
        ``number`` and ``percent`` (``digits`` decimals, default 1)."""
        if kind == "money":
            return lambda v: self.money(v, compact=False)
        if kind == "money_compact":
            return lambda v: self.money(v)
        if kind in ("count", "number"):
            places = (0 if kind == "count" else 1) if digits is None else digits
            return lambda v: self.number(v, digits=places)
        if kind == "percent":
            places = 1 if digits is None else digits
            return lambda v: self.percent(v, digits=places)
        raise ValueError(f"unknown format kind {kind!r}: use one of {', '.join(FORMATTER_KINDS)}")

    @property
    def currency_label(self) -> str:
        """How amounts show the currency, for an axis or column title: ``"$"``, ``"Rp"``,
        ``"IDR"`` (``""`` without a currency)."""
        code = (self.currency or "").strip().upper()
        before, after = _currency_parts(code, self.locale, self.currency_display)
        return (before or after).strip()

    def vega_expr(self, kind: VegaKind = "money", value: str = "datum.value", *, digits: int = 1) -> str:
        """A Vega expression writing ``value`` as this formatter does, for chart axes
        (``labelExpr``), legends and calculated tooltip fields.

        ``kind``: ``"money"`` (compact, with the currency: ``"$25M"``, ``"Rp 22,5 M"``),
        ``"count"`` (compact, no currency: ``"35M"``, ``"12K"``), ``"percent"`` (a fraction,
        up to ``digits`` decimals, trailing zeros dropped: ``"12.5%"``, ``"20%"``), ``"number"``
        (up to ``digits`` decimals, grouped: ``"1,234.5"``). Missing or non-finite values are
        ``"n/a"``. Works in vl-convert and in JupyterLab's Vega alike: only Vega's built-in
        ``format``, ``replace`` and ``regexp``, no locale configuration.

        Axis ticks are round numbers, so Vega's rounding (d3-format) and this module's (half
        away from zero) write them alike; the abbreviation thresholds are the same.
        """
        style = _style(self.locale)
        v = f"({value})"
        a = f"abs({v})"
        if kind in ("money", "count"):
            body = _vega_compact(a, style)
            if kind == "money":
                before, after = _currency_parts((self.currency or "").strip().upper(), self.locale,
                                                self.currency_display)
                body = f"{_js(before)} + {body} + {_js(after)}"
            zero = f"round({a}) == 0"
        elif kind == "percent":
            body = (f"{_js(style.percent_prefix)} + {_vega_digits(f'{a} * 100', digits, style, trim=True)}"
                    f" + {_js(style.percent_suffix)}")
            zero = f"{a} * 100 < {Decimal(5).scaleb(-digits - 1):f}"
        elif kind == "number":
            body = _vega_digits(a, digits, style, trim=True)
            zero = f"{a} < {Decimal(5).scaleb(-digits - 1):f}"
        else:
            raise ValueError(f"unknown axis kind {kind!r}: use money, count, percent or number")
        sign = f"({v} < 0 && !({zero}) ? {_js(style.minus)} : '')"
        return f"(isValid({v}) && isFinite({v}) ? {sign} + {body} : {_js(NA)})"
