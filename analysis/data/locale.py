"""Reading local number and date formats exactly, and flagging what cannot be decided.

CRM exports and spreadsheets write numbers and dates the way their country does: an Indonesian
file writes two hundred ninety-nine thousand as ``299.000`` and the fourteenth of July as
``14/07/2025``. Read as plain numbers, ``299.000`` is 299 -- a figure 1000 times too small and
nothing to show it. The rule of the product is that a silently wrong number is the worst bug, so
this module never guesses: a text is read only when its meaning is certain under the stated
:class:`Locale` (or, without one, under every locale), and a text that would be read
differently under different locales comes out as NULL with an ``ambiguous`` flag.

Everything here builds vectorised ibis expressions (regular expressions, ``TRY_CAST`` and
``CASE`` in DuckDB SQL; no Python UDFs), so a column of millions of texts is parsed in the engine.
:func:`number`, :func:`date_value` and :func:`timestamp_value` return a :class:`Parsed` pair:
the value (NULL when the text is empty, does not parse or is ambiguous) and the ambiguity flag
(never NULL; False for empty texts). A text that is not empty, not ambiguous and still gives
NULL is unparseable; the caller reports it.

Rules for numbers (text is stripped of surrounding spaces; U+00A0, U+2007, U+2009 and U+202F
count as spaces, U+2212 as a minus sign):

* A leading ``-`` or ``+`` is a sign; accounting negatives ``(1.200)`` and trailing minus signs
  are unparseable.
* ``nan``, ``inf``, ``-inf``, ``infinity`` (any case) and overflowing values (``1e309``) come
  out as the float values NaN and +-inf, **not** NULL, so that the loader can flag them as
  non-finite instead of calling them unparseable.
* Without a locale (``None``, or a :class:`Locale` whose ``decimal`` and ``thousands`` are
  both None):

  - digits alone, with one decimal separator (``.`` or ``,``) and an optional exponent
    (``1200``, ``1200.5``, ``-3``, ``1e5``, ``1,5e3``) read as decimals;
  - one separator followed by exactly three digits after a valid first group (``1.200``,
    ``1,200``, ``299.000``, ``-1,500``) is **ambiguous**: 1200 in Indonesia or Germany, 1.2 in
    the US. ``0.500`` and ``1234.567`` are not (a thousands grouping never starts with ``0``
    and never has four digits before a separator), they read as decimals;
  - a separator repeated in valid groups of three (``56.100.000``, ``1,200,000``,
    ``1 200 000``, ``1'200'000``) is a thousands separator; spaces and apostrophes are never
    decimal separators, so ``1 200`` reads 1200;
  - with two different separators the last one is the decimal separator and the other must
    form valid groups of three (``1.200,50`` and ``1,200.50`` are 1200.5; ``1,00,000.5`` is
    unparseable);
  - currency symbols and codes are not stripped (``Rp 5.000`` and ``$1,200`` are unparseable,
    not ambiguous): the user is told to set a locale.

* With a locale the reading is strict: the locale's currency symbols and codes
  (``currency_prefixes``, matched ignoring case, before or after the number, with or without a
  space, a letter-final one also with a dot: ``Rp``, ``Rp.``, ``IDR``) are stripped, at most
  one of them; then the thousands separator must form valid groups of three (``56.100.000``
  under id-ID; ``5.61.000`` is unparseable; the Indian lakh grouping ``1,00,000`` only where
  ``lakh`` is set, as in en-IN) and the decimal separator may appear once after them.
  ``1.200`` is 1200 under id-ID and 1.2 under en-US; ``1,200.50`` under id-ID is unparseable,
  never 1.2. A field left None widens the reading only where that stays certain: with
  ``decimal`` given and ``thousands`` None any other separator may group thousands; with
  ``thousands`` given and ``decimal`` None, ``.`` and ``,`` (whichever is not the thousands
  separator) may be the decimal separator. Texts without any separator always read.

Rules for dates (:func:`date_value`) and timestamps (:func:`timestamp_value`):

* ISO 8601 always reads, whatever the locale. Dates keep today's reading of the first ten
  characters (``2025-07-14T09:30:00.000+0000`` is 14 July 2025, the date as written, no time
  zone shift). Timestamps keep today's reading through DuckDB's ``TIMESTAMPTZ``: a text without
  an offset is local wall time of the session time zone (the company time zone); a text with an
  offset (``Z``, ``+00:00``, Salesforce's ``+0000``) is converted to local wall time. The result
  is a naive timestamp. ISO texts marked ``BC`` are unparseable as dates.
* Year-first texts with ``/`` or ``.`` (``2025/07/14``, ``2025.07.14``; Japanese style) read as
  year-month-day.
* Day/month texts with ``/``, ``.`` or ``-`` (the same one twice) and a four-digit year: under
  ``day_first`` True the first number is the day, under False the month. When ``day_first`` is
  None (or there is no locale) a first number above 12 can only be a day and a second number
  above 12 only a day, so those read; two different numbers of at most 12 (``03/04/2025``) are
  **ambiguous**; equal numbers (``03/03/2025``) read. Invalid dates (``31/02/2025``) and
  two-digit years are unparseable, not ambiguous.
* A time may follow the date after a space, a comma or ``T``: ``09:30``, ``09.30``,
  ``09:30:15``, ``09:30:15.250``, with ``AM``/``PM`` (``a.m.``, any case; the hour then must be
  1-12). Dates ignore it (it must still look like a time); timestamps read it as naive local
  wall time, through the same cast as ISO texts. Time zone suffixes are only read in ISO texts.
* Nothing raises: years outside 1..9999, BC dates and overflowing offsets give NULL or a value,
  and the loader applies its plausibility window afterwards.

:func:`plain_number_text` writes a typed spreadsheet number as text that :func:`number` reads
back exactly under a locale, and :func:`ambiguity_hint` tells the user which ``locale:`` setting
reads an ambiguous example.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any, Literal, Mapping, NamedTuple

import ibis
import ibis.expr.datatypes as dt
import pydantic
from pydantic import ConfigDict

__all__ = [
    "LOCALES",
    "Locale",
    "Parsed",
    "ambiguity_hint",
    "date_value",
    "locale_names",
    "number",
    "plain_number_text",
    "resolve_locale",
    "timestamp_value",
]

#: characters read as a plain space before parsing (no-break, figure, thin, narrow no-break)
SPACES = "\u00a0\u2007\u2009\u202f"
#: characters read as a minus sign
MINUS = "\u2212"
#: separators that may group thousands / mark decimals when a locale does not say
_ANY_THOUSANDS = (".", ",", " ", "'")
_ANY_DECIMAL = (".", ",")


class Locale(pydantic.BaseModel):
    """How a data source writes numbers and dates.

    Parameters
    ----------
    name
        The locale's name (``"id-ID"``) when built from :data:`LOCALES`; informational only.
    decimal
        The decimal separator, ``"."`` or ``","``; None: not stated (see the module rules).
    thousands
        The thousands separator: ``"."``, ``","``, ``" "`` (a space; U+00A0, U+2007, U+2009 and
        U+202F are accepted as spaces), ``"'"``, or ``""`` for numbers written without grouping;
        None: not stated.
    day_first
        True: ``14/07/2025`` is 14 July (day first); False: month first (US style); None: not
        stated, so only day/month texts that can be read one way only are read.
    currency_prefixes
        Currency symbols and codes written with amounts (``("Rp", "IDR")``), stripped before
        parsing whether they come before or after the number, with or without a space, and a
        letter-final one also followed by a dot (``Rp.``). Matched ignoring case. Only these are
        stripped.
    lakh
        Also accept the Indian grouping in lakhs and crores (``12,34,567``) with the thousands
        separator, in addition to groups of three.

    Raises
    ------
    pydantic.ValidationError
        When ``decimal`` equals ``thousands``, a currency prefix contains a digit or only
        separators, or an unknown field is given.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    decimal: Literal[".", ","] | None = None
    thousands: Literal[".", ",", " ", "'", ""] | None = None
    day_first: bool | None = None
    currency_prefixes: tuple[str, ...] = ()
    lakh: bool = False

    @pydantic.field_validator("thousands", mode="before")
    @classmethod
    def _space(cls, v: Any) -> Any:
        return " " if isinstance(v, str) and v and v in SPACES else v

    @pydantic.field_validator("currency_prefixes")
    @classmethod
    def _prefixes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for p in v:
            p = p.strip()
            if not p or any(ch.isdigit() for ch in p) or not p.strip(".,'+-" + MINUS + SPACES + " "):
                raise ValueError(f"currency prefix {p!r} must be a symbol or code such as 'Rp' or 'IDR'")
            if p not in out:
                out.append(p)
        return tuple(out)

    @pydantic.model_validator(mode="after")
    def _distinct(self) -> "Locale":
        if self.decimal is not None and self.decimal == self.thousands:
            raise ValueError(f"decimal and thousands separators must differ (both {self.decimal!r})")
        return self

    def __str__(self) -> str:
        if self.name:
            return self.name
        parts = [f"{k}={v!r}" for k, v in self.model_dump(exclude_defaults=True).items()]
        return "Locale(" + ", ".join(parts) + ")"


def _loc(name: str, decimal: str, thousands: str, day_first: bool | None, *currency: str, **kw: Any) -> Locale:
    return Locale(name=name, decimal=decimal, thousands=thousands, day_first=day_first,
                  currency_prefixes=currency, **kw)


#: Known locales by name. Each lists its own currency symbols and codes. ``en-IN`` reads the
#: lakh grouping (``1,00,000``) as well as groups of three; ``ja-JP`` writes dates year first,
#: so its ``day_first`` is None (a day/month text is read only when it can be read one way).
LOCALES: dict[str, Locale] = {
    loc.name: loc  # type: ignore[misc]
    for loc in (
        _loc("id-ID", ",", ".", True, "Rp", "IDR"),
        _loc("en-US", ".", ",", False, "$", "US$", "USD"),
        _loc("en-GB", ".", ",", True, "£", "GBP"),
        _loc("de-DE", ",", ".", True, "€", "EUR"),
        _loc("de-AT", ",", ".", True, "€", "EUR"),
        _loc("de-CH", ".", "'", True, "CHF", "Fr."),
        _loc("fr-FR", ",", " ", True, "€", "EUR"),
        _loc("es-ES", ",", ".", True, "€", "EUR"),
        _loc("it-IT", ",", ".", True, "€", "EUR"),
        _loc("nl-NL", ",", ".", True, "€", "EUR"),
        _loc("pt-BR", ",", ".", True, "R$", "BRL"),
        _loc("en-IN", ".", ",", True, "₹", "Rs", "INR", lakh=True),
        _loc("ja-JP", ".", ",", None, "¥", "￥", "円", "JPY"),
        _loc("en-AU", ".", ",", True, "$", "A$", "AU$", "AUD"),
    )
}


def locale_names() -> list[str]:
    """The names of :data:`LOCALES`, sorted."""
    return sorted(LOCALES)


def _lookup(name: str) -> Locale:
    key = name.strip().replace("_", "-").lower()
    for n, loc in LOCALES.items():
        if n.lower() == key:
            return loc
    close = difflib.get_close_matches(key, [n.lower() for n in LOCALES], n=1, cutoff=0.5)
    hint = ""
    if close:
        hint = f" (did you mean {next(n for n in LOCALES if n.lower() == close[0])!r}?)"
    raise ValueError(
        f"unknown locale {name!r}{hint}; use one of {', '.join(locale_names())} "
        "or give decimal, thousands, day_first"
    )


def resolve_locale(value: str | Mapping[str, Any] | Locale | None) -> Locale | None:
    """The :class:`Locale` a config value names.

    Parameters
    ----------
    value
        None (no locale); a name from :data:`LOCALES`, case-insensitive, ``id_ID`` accepted for
        ``id-ID``; a mapping of :class:`Locale` fields, whose ``name`` (if given) names a base
        locale whose fields the others override (``{"name": "id-ID", "day_first": False}``);
        or a :class:`Locale`, returned as is.

    Returns
    -------
    Locale or None

    Raises
    ------
    ValueError
        One line saying what is wrong and how to fix it: an unknown name (with a did-you-mean
        suggestion and the known names), an unknown field, an invalid separator.
    """
    if value is None or isinstance(value, Locale):
        return value
    if isinstance(value, str):
        return _lookup(value)
    if isinstance(value, Mapping):
        fields = dict(value)
        base: dict[str, Any] = {}
        if fields.get("name") is not None:
            base = _lookup(str(fields["name"])).model_dump()
            fields.pop("name")
        if isinstance(fields.get("currency_prefixes"), str):
            fields["currency_prefixes"] = (fields["currency_prefixes"],)
        try:
            return Locale(**{**base, **fields})
        except pydantic.ValidationError as e:
            msgs = []
            for err in e.errors():
                where = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    known = ", ".join(f for f in Locale.model_fields if f != "name")
                    msg = f"unknown field (use {known}, and name for a base locale)"
                msgs.append(f"{where}: {msg}" if where else msg)
            raise ValueError("invalid locale: " + "; ".join(msgs)) from None
    raise ValueError(
        f"locale must be a name such as 'id-ID' or a mapping of decimal, thousands, day_first; "
        f"got {type(value).__name__}"
    )


class Parsed(NamedTuple):
    """A parsed text column.

    Attributes
    ----------
    value
        The parsed value: NULL when the text is NULL or empty, does not parse, or is ambiguous.
    ambiguous
        True when the text would be read differently under different locales and the locale
        setting does not decide it (then ``value`` is NULL); never NULL.
    """

    value: ibis.Value
    ambiguous: ibis.BooleanValue


# -- numbers ---------------------------------------------------------------------------------


class _NumberRules(NamedTuple):
    thousands: tuple[str, ...]  # characters that may group thousands
    decimal: tuple[str, ...]  # characters that may mark decimals
    lakh: bool
    currency: tuple[str, ...]


def _number_rules(loc: Locale | None) -> _NumberRules:
    if loc is None:
        return _NumberRules(_ANY_THOUSANDS, _ANY_DECIMAL, False, ())
    if loc.decimal is not None:
        dec: tuple[str, ...] = (loc.decimal,)
        if loc.thousands is None:
            th = tuple(c for c in _ANY_THOUSANDS if c != loc.decimal)
        else:
            th = (loc.thousands,) if loc.thousands else ()
    elif loc.thousands is not None:
        th = (loc.thousands,) if loc.thousands else ()
        dec = tuple(c for c in _ANY_DECIMAL if c not in th)
    else:
        th, dec = _ANY_THOUSANDS, _ANY_DECIMAL
    return _NumberRules(th, dec, loc.lakh, loc.currency_prefixes)


def _cls(chars: tuple[str, ...]) -> str:
    return "[" + "".join(re.escape(c) for c in chars) + "]"


_SIGN = r"^[+\-]?"
_NONFINITE = r"(?i)^[+\-]?(?:nan|inf|infinity)$"


def _plain_pattern(r: _NumberRules) -> str:
    d = _cls(r.decimal)
    return _SIGN + rf"(?:\d+(?:{d}\d*)?|{d}\d+)(?:[eE][+\-]?\d+)?$"


def _grouped_pattern(r: _NumberRules, t: str) -> str:
    te = re.escape(t)
    groups = rf"[1-9]\d{{0,2}}(?:{te}\d{{3}})+"
    if r.lakh and t == ",":
        groups = rf"(?:{groups}|[1-9]\d?(?:,\d{{2}})+,\d{{3}})"
    dec = tuple(c for c in r.decimal if c != t)
    tail = rf"(?:{_cls(dec)}\d*)?" if dec else ""
    return _SIGN + groups + tail + "$"


def _currency_patterns(r: _NumberRules) -> tuple[str, str] | None:
    if not r.currency:
        return None
    alts = []
    for p in sorted(r.currency, key=len, reverse=True):
        alts.append(re.escape(p) + (r"\.?" if p[-1].isalpha() else ""))
    alt = "|".join(alts)
    return rf"(?i)^([+\-]?)\s*(?:{alt})\s*", rf"(?i)\s*(?:{alt})$"


def _normalise(text: ibis.StringValue) -> ibis.StringValue:
    """Unicode spaces to plain spaces, surrounding spaces stripped."""
    return text.re_replace(f"[{SPACES}]", " ").strip()


def number(text: ibis.StringValue, loc: Locale | None) -> Parsed:
    """Parse text into float64 under ``loc`` (None: no locale), exactly or not at all.

    Parameters
    ----------
    text
        A string column or scalar expression.
    loc
        The locale of the text, or None. See the module docstring for the rules.

    Returns
    -------
    Parsed
        ``value`` (float64): the number; NULL when the text is empty, unparseable or
        ambiguous; NaN or +-inf for ``nan``/``inf`` texts and overflowing values.
        ``ambiguous``: the text reads as different numbers under different locales
        (``1.200`` without a locale).
    """
    slow = _number(text, loc)
    # fast path, same reading: digits alone read under every locale; digits with a point and a
    # fraction of 1, 2 or 4+ digits read as a decimal without a locale or with decimal "."
    raw = text.cast(dt.string)
    fast = raw.re_search(_FAST_INTEGER)
    if loc is None or (loc.decimal == "." and loc.thousands != "."):
        fast = fast | raw.re_search(_FAST_DECIMAL)
    return Parsed(ibis.cases((fast, raw.try_cast(dt.float64)), else_=slow.value),
                  ibis.cases((fast, False), else_=slow.ambiguous))


#: texts that every reading gives the same value (checked against the full rules by the tests)
_FAST_INTEGER = r"^[+\-]?\d{1,15}$"
_FAST_DECIMAL = r"^[+\-]?\d{1,15}\.(?:\d{1,2}|\d{4,15})$"
_FAST_ISO = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+\-]\d{2}(?::?\d{2})?)?)?$"


def _number(text: ibis.StringValue, loc: Locale | None) -> Parsed:
    """:func:`number` by the full rules."""
    r = _number_rules(loc)
    s = _normalise(text.cast(dt.string)).replace(MINUS, "-")
    unparseable = ibis.literal(False)
    cur = _currency_patterns(r)
    if cur is not None:
        pre, suf = cur
        unparseable = s.re_search(pre) & s.re_search(suf)
        s = s.re_replace(pre, r"\1").re_replace(suf, "")
    to_point = "," in r.decimal

    def cast(x: ibis.StringValue) -> ibis.FloatingValue:
        return (x.replace(",", ".") if to_point else x).try_cast(dt.float64)

    plain = s.re_search(_plain_pattern(r))
    grouped = [(t, s.re_search(_grouped_pattern(r, t))) for t in r.thousands]
    branches: list[tuple[Any, Any]] = [
        (unparseable, ibis.null(dt.float64)),
        (s.re_search(_NONFINITE), s.try_cast(dt.float64)),
    ]
    ambiguous = ibis.literal(False)
    shared = [(t, g) for t, g in grouped if t in r.decimal]
    if shared:
        any_shared = shared[0][1]
        for _, g in shared[1:]:
            any_shared = any_shared | g
        ambiguous = plain & any_shared
        branches.append((ambiguous, ibis.null(dt.float64)))
    branches.append((plain, cast(s)))
    for t, g in grouped:
        branches.append((g, cast(s.replace(t, ""))))
    value = ibis.cases(*branches, else_=ibis.null(dt.float64))
    amb = ibis.cases((~unparseable & ambiguous, True), else_=False)
    return Parsed(value, amb)


# -- dates and timestamps --------------------------------------------------------------------

_DATE_TIME_SEP = r"(?:\s*,\s*|\s+|T)"
_CLOCK = r"[:.]\d{2}(?:[:.]\d{2}(?:[.,]\d{1,9})?)?"
#: an optional time: 24-hour, or 12-hour (hour 1-12) with AM/PM
_TIME = (
    r"(?:" + _DATE_TIME_SEP + r"(?:\d{1,2}" + _CLOCK + r"|(?:0?[1-9]|1[0-2])" + _CLOCK
    + r"\s*[AaPp]\.?[Mm]\.?))?$"
)
_DMY_DATE = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})"
_YMD_DATE = r"^(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})"
#: day/month first, with an optional time
_DMY = _DMY_DATE + _TIME
#: year first (with ``-`` it is only reached when the ISO cast fails, e.g. ``2025-07-14 09.30``)
_YMD = _YMD_DATE + _TIME
#: the same separator twice
_SAME_SEP = r"^\d+(?:/\d+/|\.\d+\.|-\d+-)\d"
_BC = r"(?i)\bB\.?C\b"
#: ISO 8601 (read by DuckDB's cast, which would also read ``14/07/25`` as the year 14)
_ISO = r"^\d{4,}-\d{1,2}-\d{1,2}"
_AMPM = r"\s*([AaPp])\.?[Mm]\.?$"


class _DateParts(NamedTuple):
    ok: ibis.BooleanValue  # the text has this shape (the same separator twice, a valid time)
    date_text: ibis.StringValue  # "YYYY-M-D" of the reading (NULL when ambiguous or invalid)
    ambiguous: ibis.BooleanValue


def _time_text(s: ibis.StringValue, date_pattern: str) -> ibis.StringValue:
    """``H:MM[:SS[.f]]`` (24-hour clock) of a text whose shape was checked; ``0:00`` without a
    time."""
    tail = s.re_replace(date_pattern + _DATE_TIME_SEP + "?", "")
    half = tail.re_extract(_AMPM, 1).upper()
    t = (
        tail.re_replace(_AMPM, "")
        .re_replace(r"^(\d{1,2})[:.](\d{2})", r"\1:\2")
        .re_replace(r"^(\d{1,2}:\d{2})[:.](\d{2})", r"\1:\2")
        .re_replace(r"^(\d{1,2}:\d{2}:\d{2})[.,]", r"\1.")
    )
    h = tail.re_extract(r"^(\d{1,2})", 1).nullif("").cast(dt.int64)
    hour = (h % 12 + ibis.cases((half == "P", 12), else_=0)).cast(dt.string)
    return ibis.cases(
        (tail == "", "0:00"),
        (half == "", t),
        else_=hour + t.re_replace(r"^\d{1,2}", ""),
    )


def _dmy(s: ibis.StringValue, day_first: bool | None) -> _DateParts:
    ok = s.re_search(_DMY) & s.re_search(_SAME_SEP)
    date_part = "(?s)" + _DMY_DATE + ".*$"
    day_text = s.re_replace(date_part, r"\3-\2-\1")
    month_text = s.re_replace(date_part, r"\3-\1-\2")
    if day_first is True:
        return _DateParts(ok, day_text, ibis.literal(False))
    if day_first is False:
        return _DateParts(ok, month_text, ibis.literal(False))
    # a reading is possible only if it is a valid date: 14/07 can only be day first, 07/14 only
    # month first; two valid readings of different dates are ambiguous
    by_day = day_text.try_cast(dt.date)
    by_month = month_text.try_cast(dt.date)
    ambiguous = ok & by_day.notnull() & by_month.notnull() & (by_day != by_month)
    text = ibis.cases(
        (by_day.isnull(), month_text),
        (by_month.isnull() | (by_day == by_month), day_text),
        else_=ibis.null(dt.string),
    )
    return _DateParts(ok, text, ambiguous)


def _ymd(s: ibis.StringValue) -> _DateParts:
    ok = s.re_search(_YMD) & s.re_search(_SAME_SEP)
    return _DateParts(ok, s.re_replace("(?s)" + _YMD_DATE + ".*$", r"\1-\2-\3"), ibis.literal(False))


def _day_first(loc: Locale | None) -> bool | None:
    return None if loc is None else loc.day_first


def date_value(text: ibis.StringValue, loc: Locale | None) -> Parsed:
    """Parse text into a date under ``loc`` (None: no locale).

    Parameters
    ----------
    text
        A string column or scalar expression.
    loc
        The locale of the text (only ``day_first`` matters), or None.

    Returns
    -------
    Parsed
        ``value`` (date): NULL when empty, unparseable, invalid (``31/02/2025``) or ambiguous.
        ``ambiguous``: a day/month text such as ``03/04/2025`` that the locale does not decide.
        ISO texts give the date as written (their time and offset are ignored).
    """
    raw = text.cast(dt.string)
    fast = raw.re_search(_FAST_ISO)  # ISO 8601: the date as written, as the full rules read it
    slow = _date_value(text, loc)
    return Parsed(ibis.cases((fast, raw.substr(0, 10).try_cast(dt.date)), else_=slow.value),
                  ibis.cases((fast, False), else_=slow.ambiguous))


def _date_value(text: ibis.StringValue, loc: Locale | None) -> Parsed:
    """:func:`date_value` by the full rules."""
    s = _normalise(text.cast(dt.string))
    dmy = _dmy(s, _day_first(loc))
    ymd = _ymd(s)
    null = ibis.null(dt.date)
    value = ibis.cases(
        (s == "", null),
        (s.re_search(_BC), null),
        (dmy.ok, dmy.date_text.try_cast(dt.date)),
        (s.re_search(_ISO), s.substr(0, 10).try_cast(dt.date)),
        (ymd.ok, ymd.date_text.try_cast(dt.date)),
        else_=null,
    )
    return Parsed(value, ibis.cases((dmy.ambiguous, True), else_=False))


def _iso_timestamp(s: ibis.StringValue) -> ibis.TimestampValue:
    """Today's reading: through TIMESTAMPTZ (session time zone), then local wall time."""
    return s.try_cast(dt.Timestamp(timezone="UTC")).try_cast(dt.Timestamp())


def timestamp_value(text: ibis.StringValue, loc: Locale | None) -> Parsed:
    """Parse text into a naive timestamp (local wall time) under ``loc`` (None: no locale).

    Parameters
    ----------
    text
        A string column or scalar expression.
    loc
        The locale of the text (only ``day_first`` matters), or None.

    Returns
    -------
    Parsed
        ``value`` (naive timestamp): ISO texts as read today (``CAST`` through ``TIMESTAMPTZ`` in
        the session time zone: naive texts are local wall time, texts with an offset are
        converted to it); day/month and year-first texts with an optional time are local wall
        time read through the same cast. NULL when empty, unparseable, invalid or ambiguous.
        ``ambiguous``: as for :func:`date_value`.
    """
    raw = text.cast(dt.string)
    iso = _iso_timestamp(raw)
    fast = raw.re_search(_FAST_ISO) & raw.try_cast(dt.Timestamp(timezone="UTC")).notnull()
    slow = _timestamp_value(text, loc)
    return Parsed(ibis.cases((fast, iso), else_=slow.value), ibis.cases((fast, False), else_=slow.ambiguous))


def _timestamp_value(text: ibis.StringValue, loc: Locale | None) -> Parsed:
    """:func:`timestamp_value` by the full rules."""
    s = _normalise(text.cast(dt.string))
    dmy = _dmy(s, _day_first(loc))
    ymd = _ymd(s)
    null = ibis.null(dt.Timestamp())
    value = ibis.cases(
        (s == "", null),
        (dmy.ok, _iso_timestamp(dmy.date_text + " " + _time_text(s, _DMY_DATE))),
        (s.re_search(_ISO) & s.try_cast(dt.Timestamp(timezone="UTC")).notnull(), _iso_timestamp(s)),
        (ymd.ok, _iso_timestamp(ymd.date_text + " " + _time_text(s, _YMD_DATE))),
        else_=null,
    )
    return Parsed(value, ibis.cases((dmy.ambiguous, True), else_=False))


# -- writing numbers, hints ------------------------------------------------------------------


def _py_number(text: str, loc: Locale | None) -> float | None | Literal["ambiguous"]:
    """Pure-Python reading of one text by the same patterns as :func:`number` (for hints)."""
    r = _number_rules(loc)
    s = re.sub(f"[{SPACES}]", " ", text).strip().replace(MINUS, "-")
    cur = _currency_patterns(r)
    if cur is not None:
        if re.search(cur[0], s) and re.search(cur[1], s):
            return None
        s = re.sub(cur[1], "", re.sub(cur[0], r"\1", s, count=1), count=1)
    if re.search(_NONFINITE, s):
        return float(s)

    def cast(x: str) -> float:
        return float(x.replace(",", ".") if "," in r.decimal else x)

    plain = re.search(_plain_pattern(r), s, re.ASCII) is not None
    for t in r.thousands:
        if re.search(_grouped_pattern(r, t), s, re.ASCII):
            if plain:
                return "ambiguous"
            return cast(s.replace(t, ""))
    return cast(s) if plain else None


def plain_number_text(value: float | int, loc: Locale | None) -> str:
    """The text of a typed number that :func:`number` reads back exactly under ``loc``.

    Used for spreadsheet cells typed as numbers, whose value is exact and must not pass through
    a locale's grouping rules: integers are written without separators (``1200``), other
    numbers with the shortest round-trip digits and the locale's decimal separator
    (``1200.5`` under id-ID is ``"1200,5"``), in exponent form where Python's ``repr`` uses it
    (``1,5e-07``). Where the decimal separator could also group thousands (no locale), a
    fraction of exactly three digits gets a trailing zero (``1.2340``) so that it is not
    ambiguous. NaN and infinities are ``nan``, ``inf``, ``-inf``.

    Parameters
    ----------
    value
        The number (bool counts as an integer).
    loc
        The locale the text will be read under, or None.

    Returns
    -------
    str
    """
    if isinstance(value, int):
        return str(int(value))
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v.is_integer():
        return ("-" if math.copysign(1.0, v) < 0 else "") + str(abs(int(v)))
    text = repr(v)
    r = _number_rules(loc)
    d = r.decimal[0]
    text = text.replace(".", d)
    if _py_number(text, loc) == "ambiguous":
        mantissa, e, exp = text.partition("e")
        text = mantissa + "0" + e + exp
    return text


def _fmt(v: float) -> str:
    return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def ambiguity_hint(example: str, kind: Literal["number", "date", "timestamp"]) -> str:
    """One short phrase telling the user which ``locale:`` setting reads an ambiguous text.

    Parameters
    ----------
    example
        An ambiguous text of the column (``"1.200"``, ``"03/04/2025"``).
    kind
        What the column holds.

    Returns
    -------
    str
        For example ``set locale: id-ID (1.200 = 1200) or en-US (1.200 = 1.2) in workbench.yml``.
    """
    ex = example.strip()
    if kind == "number":
        sep = "," if ex.rfind(",") > ex.rfind(".") else "."
        names = ("id-ID", "en-US") if sep == "." else ("en-US", "id-ID")
        parts = []
        for n in names:
            v = _py_number(ex, LOCALES[n])
            if isinstance(v, float) and math.isfinite(v):
                parts.append(f"{n} ({ex} = {_fmt(v)})")
        if parts:
            return "set locale: " + " or ".join(parts) + " in workbench.yml"
        return "set locale: id-ID or en-US (or decimal and thousands) in workbench.yml"
    m = re.match(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", ex)
    if m:
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        parts = []
        if 1 <= b <= 12 and 1 <= a <= 31:
            parts.append(f"en-GB ({m[0]} = {a} {_MONTHS[b - 1]} {y})")
        if 1 <= a <= 12 and 1 <= b <= 31:
            parts.append(f"en-US ({m[0]} = {_MONTHS[a - 1]} {b}, {y})")
        if parts:
            return "set locale: " + " or ".join(parts) + " in workbench.yml (or day_first: true/false)"
    return "set locale: a day-first locale such as en-GB or id-ID, or en-US, in workbench.yml"
