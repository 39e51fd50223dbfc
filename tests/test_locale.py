"""Local number and date formats: exact readings, ambiguity flagged, never a different value."""

from __future__ import annotations

import math
from datetime import date, datetime
from functools import lru_cache

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.data.locale import (
    LOCALES,
    Locale,
    ambiguity_hint,
    date_value,
    number,
    plain_number_text,
    resolve_locale,
    timestamp_value,
)

AMB = "ambiguous"


@lru_cache(maxsize=None)
def connection(tz: str = "Asia/Jakarta"):
    con = ibis.duckdb.connect()
    con.raw_sql(f"SET TimeZone = '{tz}'")
    return con


def read_many(fn, jobs, tz="Asia/Jakarta", as_text=False):
    """One query for several (texts, locale) jobs of the same length: per job the list of
    (value, ambiguous) of ``fn``."""
    t = ibis.memtable(pa.table({f"s{i}": pa.array(list(texts), pa.string()) for i, (texts, _) in enumerate(jobs)}))
    cols = {}
    for i, (_, loc) in enumerate(jobs):
        p = fn(t[f"s{i}"], resolve_locale(loc))
        cols[f"v{i}"] = p.value.cast(dt.string) if as_text else p.value
        cols[f"a{i}"] = p.ambiguous
    out = connection(tz).to_pyarrow(t.select(**cols)).to_pydict()
    return [list(zip(out[f"v{i}"], out[f"a{i}"])) for i in range(len(jobs))]


def read_all(fn, texts, locs, **kw):
    """Per locale in ``locs``: the list of (value, ambiguous) of ``fn`` over ``texts``."""
    return read_many(fn, [(texts, loc) for loc in locs], **kw)


def read(fn, texts, loc=None, **kw):
    """``fn`` over ``texts`` under one locale: the value, or ``AMB`` when flagged ambiguous."""
    rows = read_all(fn, texts, [loc], **kw)[0]
    for (v, a), text in zip(rows, texts):
        assert isinstance(a, bool), (text, a)  # the flag is never NULL
        assert not (a and v is not None), (text, v)  # an ambiguous text has no value
    return [AMB if a else v for v, a in rows]


def one(fn, text, loc=None, **kw):
    return read(fn, [text], loc, **kw)[0]


# -- numbers: the matrix ---------------------------------------------------------------------

NO_LOCALE = {
    "1200": 1200.0,
    "1200.5": 1200.5,
    "-3": -3.0,
    "+7": 7.0,
    "1e5": 1e5,
    "1.5E-3": 0.0015,
    " 42 ": 42.0,
    "007": 7.0,
    ".5": 0.5,
    "\u22125": -5.0,  # U+2212 minus sign
    # a single group of three digits: 1200 in Indonesia, 1.2 in the US
    "1.200": AMB,
    "1,200": AMB,
    "299.000": AMB,
    "-1,500": AMB,
    "+1.200": AMB,
    # repeated groups: thousands
    "56.100.000": 56100000.0,
    "1,200,000": 1200000.0,
    "-1.234.567": -1234567.0,
    # spaces and apostrophes never mark decimals
    "1 200": 1200.0,
    "1\u00a0200\u00a0000": 1200000.0,
    "1\u202f200,5": 1200.5,
    "1'234'567.25": 1234567.25,
    # both separators: the last is the decimal
    "1.200,50": 1200.5,
    "1,200.50": 1200.5,
    "56.100.000,00": 56100000.0,
    "1.234,5678": 1234.5678,
    # a group that is not three digits: a decimal
    "1,5": 1.5,
    "12,25": 12.25,
    "1.5": 1.5,
    "1234.567": 1234.567,  # four digits before the separator: not a grouping
    "0.500": 0.5,  # a grouping never starts with 0
    "0,125": 0.125,
    "1,5e3": 1500.0,
    # unparseable: NULL and not ambiguous
    "5.61.000": None,
    "1.200.50": None,
    "1,00,000": None,
    "1.200,000.5": None,
    "1 200 00": None,
    "(1.200)": None,
    "1.200-": None,
    "Rp 5.000": None,
    "Rp 56.100.000": None,
    "$1,200": None,
    "12%": None,
    "1_000": None,
    "abc": None,
    "": None,
    "   ": None,
}


def test_numbers_without_locale():
    texts = list(NO_LOCALE)
    assert dict(zip(texts, read(number, texts))) == NO_LOCALE


def test_null_text_is_null_and_not_ambiguous():
    assert read_all(number, [None], [None, "id-ID"]) == [[(None, False)], [(None, False)]]
    assert read_all(date_value, [None], [None, "id-ID"]) == [[(None, False)], [(None, False)]]


ID_ID = {
    "Rp 56.100.000": 56100000.0,
    "Rp56.100.000": 56100000.0,
    "rp 56.100.000": 56100000.0,
    "Rp. 5.000": 5000.0,
    "Rp.5.000": 5000.0,
    "IDR 1.500": 1500.0,
    "IDR1.500,75": 1500.75,
    "5.000 Rp": 5000.0,
    "5.000IDR": 5000.0,
    "-Rp 5.000": -5000.0,
    "Rp -5.000": -5000.0,
    "56.100.000,00": 56100000.0,
    "1.500": 1500.0,
    "299.000": 299000.0,
    "1.200": 1200.0,
    "1,200": 1.2,
    "1,5": 1.5,
    "1200": 1200.0,
    "0,5": 0.5,
    "1e3": 1000.0,
    # strict: never silently another number
    "1,200.50": None,
    "1200.5": None,
    "1.5": None,
    "5.61.000": None,
    "1.2345": None,
    "1 200": None,
    "Rp 5.000 IDR": None,
    "Rp Rp 5.000": None,
    "$5.000": None,
    "€ 5.000": None,
    "Rp": None,
}


def test_numbers_id_id():
    texts = list(ID_ID)
    assert dict(zip(texts, read(number, texts, "id-ID"))) == ID_ID


@pytest.mark.parametrize(
    "loc, cases",
    [
        ("en-US", {"1.200": 1.2, "1,200": 1200.0, "1,200.50": 1200.5, "$1,200": 1200.0, "USD 1,200.50": 1200.5,
                   "US$ 3": 3.0, "-$1,500": -1500.0, "1.200,50": None, "56.100.000": None, "1,2": None}),
        ("en-GB", {"£1,200.50": 1200.5, "1,200": 1200.0, "1.200": 1.2, "GBP 12": 12.0, "$12": None}),
        ("de-DE", {"1.200": 1200.0, "1.200,50 €": 1200.5, "EUR 3,5": 3.5, "1,200.50": None, "1,5": 1.5}),
        ("fr-FR", {"1 200,50": 1200.5, "1\u00a0200,50 €": 1200.5, "1\u202f200": 1200.0, "1\u2009200": 1200.0,
                   "1,5": 1.5, "1.200": None, "1.200,50": None, "12 00": None}),
        ("es-ES", {"1.200,50": 1200.5, "1.200": 1200.0}),
        ("it-IT", {"1.200,50": 1200.5, "€1.200": 1200.0}),
        ("nl-NL", {"€ 1.200,50": 1200.5, "-1.200": -1200.0}),
        ("pt-BR", {"R$ 1.200,50": 1200.5, "R$1.200": 1200.0, "BRL 3,25": 3.25, "1,200.50": None}),
        ("en-IN", {"₹1,00,000": 100000.0, "12,34,567.5": 1234567.5, "1,000,000": 1000000.0, "Rs. 1,200": 1200.0,
                   "INR 5": 5.0, "1,00,00": None, "1.200,5": None}),
        ("ja-JP", {"¥1,200": 1200.0, "1,200円": 1200.0, "1.5": 1.5, "1.200": 1.2}),
        ("en-AU", {"A$1,200.50": 1200.5, "$1,200": 1200.0, "1.200": 1.2}),
        ("de-CH", {"1'200.50": 1200.5, "CHF 1'200": 1200.0, "1.200": 1.2, "1,200": None}),
        ({"decimal": ","}, {"1.200": 1200.0, "1 200": 1200.0, "1,200": 1.2, "1.5": None, "Rp 1.200": None}),
        ({"thousands": "."}, {"1.200": 1200.0, "1,5": 1.5, "1.5": None}),
        ({"thousands": " "}, {"1 200.5": 1200.5, "1 200,5": 1200.5, "1.200": 1.2, "1,200": 1.2, "1.200,5": None}),
        ({"decimal": ".", "thousands": ""}, {"1200.5": 1200.5, "1,200": None, "1.200": 1.2}),
        ({"day_first": True}, {"1.200": AMB, "1,200,000": 1200000.0}),  # numbers as without a locale
        ({"currency_prefixes": ["Rp"]}, {"Rp 1.200": AMB, "Rp 1.200.000": 1200000.0}),
    ],
)
def test_numbers_under_locales(loc, cases):
    texts = list(cases)
    assert dict(zip(texts, read(number, texts, loc))) == cases


@pytest.mark.parametrize("loc", [None, "id-ID", "en-US", "fr-FR"])
def test_non_finite_texts_are_float_values_not_null(loc):
    texts = ["nan", "NaN", "-nan", "inf", "-inf", "+inf", "Infinity", "-infinity", "1e309", "-1e309", "1e99999"]
    got = read(number, texts, loc)
    assert all(v is not None and v != AMB for v in got), got
    assert math.isnan(got[0]) and math.isnan(got[1]) and math.isnan(got[2])
    assert got[3:] == [math.inf, -math.inf, math.inf, math.inf, -math.inf, math.inf, -math.inf, math.inf]


# -- numbers: properties ---------------------------------------------------------------------


def group(digits: str, sep: str, lakh: bool = False) -> str:
    if not sep:
        return digits
    if lakh and len(digits) > 3:
        head, tail = digits[:-3], digits[-3:]
        parts = []
        while len(head) > 2:
            parts.insert(0, head[-2:])
            head = head[:-2]
        return sep.join([head, *parts, tail])
    parts = []
    while len(digits) > 3:
        parts.insert(0, digits[-3:])
        digits = digits[:-3]
    return sep.join([digits, *parts])


def write(loc: Locale, whole: int, frac: str, negative: bool, currency: int, lakh: bool, nbsp: bool) -> str:
    sep = loc.thousands or ""
    if sep == " " and nbsp:
        sep = "\u00a0"
    text = group(str(whole), sep, lakh and loc.lakh)
    if frac:
        text += loc.decimal + frac
    if negative:
        text = "-" + text
    if currency and loc.currency_prefixes:
        cur = loc.currency_prefixes[currency % len(loc.currency_prefixes)]
        text = f"{cur} {text}" if currency % 2 else f"{text}{cur}"
    return text


amounts = st.tuples(
    st.one_of(st.integers(0, 999), st.integers(0, 10**15)),
    st.text("0123456789", max_size=4),
    st.booleans(),
    st.integers(0, 7),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(LOCALES)), st.lists(amounts, min_size=1, max_size=60))
def test_amounts_written_in_a_locale_read_back_exactly(name, batch):
    """Each locale reads its own writing exactly; without a locale the reading is exact, or NULL
    (ambiguous or unparseable), never another number."""
    texts = [write(LOCALES[name], *a) for a in batch]
    expected = [float(f"{'-' if a[2] else ''}{a[0]}.{a[1] or '0'}") for a in batch]
    own, bare = read_all(number, texts, [name, None])
    for text, want, (v, amb), (v0, amb0) in zip(texts, expected, own, bare):
        assert (v, amb) == (want, False), (name, text)
        assert v0 is None or v0 == want, (name, text, v0)
        assert not (amb0 and v0 is not None)


number_texts = st.text("0123456789.,' -", min_size=1, max_size=12)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(number_texts, min_size=1, max_size=300))
def test_no_locale_reading_agrees_with_every_locale(texts):
    """A value read without a locale is the value under every locale that reads the text; a text
    flagged ambiguous is read differently by id-ID and en-US."""
    names = sorted(LOCALES)
    rows = read_all(number, texts, [None, *names])
    bare, per_locale = rows[0], dict(zip(names, rows[1:]))
    for i, text in enumerate(texts):
        v0, amb0 = bare[i]
        for name in names:
            v, amb = per_locale[name][i]
            assert not amb, (name, text)  # a named locale decides every text
            if v0 is not None and v is not None:
                assert v == v0, (name, text, v, v0)
        if amb0:
            a, b = per_locale["id-ID"][i][0], per_locale["en-US"][i][0]
            assert a is not None and b is not None and a != b, text


@pytest.mark.parametrize(
    "value, loc, text",
    [
        (1200.5, "id-ID", "1200,5"),
        (1200, "id-ID", "1200"),
        (1200.0, "id-ID", "1200"),
        (56100000, "de-DE", "56100000"),
        (1200.5, "en-US", "1200.5"),
        (0.1, "fr-FR", "0,1"),
        (1.234, None, "1.2340"),  # not the ambiguous "1.234"
        (1.234, "id-ID", "1,234"),
        (123.456, "en-US", "123.456"),
        (1.5e-7, "de-DE", "1,5e-07"),
        (1e20, None, "100000000000000000000"),
        (-0.0, None, "-0"),
        (float("inf"), "id-ID", "inf"),
        (float("-inf"), None, "-inf"),
        (float("nan"), None, "nan"),
        (True, None, "1"),
    ],
)
def test_plain_number_text(value, loc, text):
    assert plain_number_text(value, resolve_locale(loc)) == text


ROUND_TRIP_LOCALES = [None, *sorted(LOCALES), {"decimal": ","}, {"thousands": " "}, {"thousands": "."}]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(ROUND_TRIP_LOCALES))),
    st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**18), 10**18),
                       st.decimals(0, 10**9, places=3).map(float)), min_size=1, max_size=60),
)
def test_plain_number_text_round_trips(k, values):
    name = ROUND_TRIP_LOCALES[k]
    texts = [plain_number_text(v, resolve_locale(name)) for v in values]
    for v, text, (r, amb) in zip(values, texts, read_all(number, texts, [name])[0]):
        assert (r, amb) == (float(v), False), (name, v, text, r)
        assert math.copysign(1, r) == math.copysign(1, float(v))


# -- dates -----------------------------------------------------------------------------------

DATES_NO_LOCALE = {
    "2025-07-14": date(2025, 7, 14),
    "2025-7-4": date(2025, 7, 4),
    "2025-07-14T09:30:00.000+0000": date(2025, 7, 14),
    "2025-07-14T23:30:00-05:00": date(2025, 7, 14),  # the date as written, never shifted
    "2025-07-14 09:30": date(2025, 7, 14),
    "2025/07/14": date(2025, 7, 14),
    "2025.07.14": date(2025, 7, 14),
    "14/07/2025": date(2025, 7, 14),  # 14 can only be a day
    "7/14/2025": date(2025, 7, 14),  # 14 can only be a day
    "14.07.2025": date(2025, 7, 14),
    "14-07-2025": date(2025, 7, 14),
    "03/03/2025": date(2025, 3, 3),
    "14/07/2025 09:30": date(2025, 7, 14),
    "14/07/2025 09.30": date(2025, 7, 14),
    "14/07/2025, 9:30:15 PM": date(2025, 7, 14),
    "03/04/2025": AMB,
    "12/11/2025": AMB,
    "03.04.2025": AMB,
    "03/04/2025 09:30": AMB,
    "31/02/2025": None,
    "02/30/2025": None,
    "13/13/2025": None,
    "00/05/2025": None,
    "14/07/25": None,
    "14/07-2025": None,
    "14/07/2025 foo": None,
    "14/07/2025 13:00 PM": None,
    "July 14, 2025": None,
    "2025-02-31": None,
    "2025-07-14 (BC)": None,
    "": None,
    "garbage": None,
}


def test_dates_without_locale():
    texts = list(DATES_NO_LOCALE)
    assert dict(zip(texts, read(date_value, texts))) == DATES_NO_LOCALE


@pytest.mark.parametrize(
    "loc, cases",
    [
        ("id-ID", {"14/07/2025": date(2025, 7, 14), "03/04/2025": date(2025, 4, 3), "7/14/2025": None,
                   "2025-07-14": date(2025, 7, 14), "03.04.2025 09.30": date(2025, 4, 3)}),
        ("en-GB", {"03/04/2025": date(2025, 4, 3), "31/12/2025": date(2025, 12, 31)}),
        ("en-US", {"03/04/2025": date(2025, 3, 4), "14/07/2025": None, "7/14/2025 9:30 AM": date(2025, 7, 14),
                   "2025-07-14": date(2025, 7, 14)}),
        ("ja-JP", {"2025/07/14": date(2025, 7, 14), "03/04/2025": AMB, "14/07/2025": date(2025, 7, 14)}),
        ({"day_first": False}, {"03/04/2025": date(2025, 3, 4)}),
        ({"decimal": ","}, {"03/04/2025": AMB}),
    ],
)
def test_dates_under_locales(loc, cases):
    texts = list(cases)
    assert dict(zip(texts, read(date_value, texts, loc))) == cases


def write_date(d: date, day_first: bool, sep: str, pad: bool, time: str) -> str:
    a, b = (d.day, d.month) if day_first else (d.month, d.day)
    f = "{:02d}" if pad else "{}"
    return f"{f.format(a)}{sep}{f.format(b)}{sep}{d.year}{time}"


date_cases = st.tuples(
    st.dates(date(1900, 1, 1), date(2100, 12, 31)),
    st.booleans(),
    st.sampled_from(["/", ".", "-"]),
    st.booleans(),
    st.sampled_from(["", " 09:30", " 9.05", "T23:59:59", ", 10:00:00.250", " 12:01 AM", " 11:59 p.m."]),
)


def wall(d: date, time: str) -> datetime:
    tail = {"": (0, 0, 0, 0), " 09:30": (9, 30, 0, 0), " 9.05": (9, 5, 0, 0), "T23:59:59": (23, 59, 59, 0),
            ", 10:00:00.250": (10, 0, 0, 250000), " 12:01 AM": (0, 1, 0, 0), " 11:59 p.m.": (23, 59, 0, 0)}
    return datetime(d.year, d.month, d.day, *tail[time])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(date_cases, min_size=1, max_size=100))
def test_day_month_texts_read_back_exactly(batch):
    """Under the writer's day_first the date and time read back exactly; without a locale the
    reading is exact, or NULL and ambiguous, never another date."""
    texts = [write_date(*c) for c in batch]
    firsts = [{"day_first": True}, {"day_first": False}]
    dates = read_all(date_value, texts, [*firsts, None])
    stamps = read_all(timestamp_value, texts, [*firsts, None], tz="America/New_York")
    for i, (c, text) in enumerate(zip(batch, texts)):
        d, day_first = c[0], c[1]
        own = 0 if day_first else 1
        assert dates[own][i] == (d, False), text
        assert stamps[own][i] == (wall(d, c[4]), False), text
        ambiguous = d.day != d.month and d.day <= 12
        assert dates[2][i] == ((None, True) if ambiguous else (d, False)), text
        assert stamps[2][i] == ((None, True) if ambiguous else (wall(d, c[4]), False)), text


# -- timestamps ------------------------------------------------------------------------------


def today(text_expr):
    """The loader's reading of timestamp texts before this module."""
    return text_expr.nullif("").try_cast(dt.Timestamp(timezone="UTC")).cast(dt.Timestamp())


ISO_TEXTS = [
    "2025-07-14T09:30:00.000+0000",
    "2025-07-14T09:30:00.000+00:00",
    "2025-07-14T09:30:00Z",
    "2025-07-14T09:30:00-04:00",
    "2025-07-14T09:30:00.000+0530",
    "2025-07-14 09:30",
    "2025-07-14 09:30:15.123456",
    "2025-07-14",
    "2025-7-4 9:30",
    "2025-03-09 02:30:00",  # a New York clock-change gap: whatever the cast says today
    "2025-11-02 01:30:00",
]


@pytest.mark.parametrize("tz", ["Asia/Jakarta", "America/New_York"])
def test_iso_timestamps_read_as_today(tz):
    t = ibis.memtable(pa.table({"s": pa.array(ISO_TEXTS, pa.string())}))
    p = timestamp_value(t.s, resolve_locale("id-ID"))
    out = connection(tz).to_pyarrow(t.select(new=p.value, old=today(t.s), amb=p.ambiguous)).to_pydict()
    assert out["new"] == out["old"]
    assert None not in out["new"] and not any(out["amb"])


@pytest.mark.parametrize(
    "tz, local",
    [("Asia/Jakarta", datetime(2025, 7, 14, 16, 30)), ("America/New_York", datetime(2025, 7, 14, 5, 30))],
)
def test_salesforce_offset_is_converted_to_local_wall_time(tz, local):
    for loc in (None, "id-ID", "en-US"):
        assert one(timestamp_value, "2025-07-14T09:30:00.000+0000", loc, tz=tz) == local
        assert one(timestamp_value, "2025-07-14T09:30:00Z", loc, tz=tz) == local
    # a naive text is local wall time already
    assert one(timestamp_value, "2025-07-14T09:30:00", tz=tz) == datetime(2025, 7, 14, 9, 30)


@pytest.mark.parametrize(
    "loc, cases",
    [
        (None, {"14/07/2025 09:30": datetime(2025, 7, 14, 9, 30), "14/07/2025 09.30": datetime(2025, 7, 14, 9, 30),
                "14/07/2025 09:30:15": datetime(2025, 7, 14, 9, 30, 15), "14/07/2025": datetime(2025, 7, 14),
                "7/14/2025 9:30 AM": datetime(2025, 7, 14, 9, 30), "7/14/2025 12:30 AM": datetime(2025, 7, 14, 0, 30),
                "7/14/2025 12:30 PM": datetime(2025, 7, 14, 12, 30), "2025/07/14 10.15": datetime(2025, 7, 14, 10, 15),
                "2025-07-14 09.30": datetime(2025, 7, 14, 9, 30), "03/04/2025 09:30": AMB,
                "14/07/25 09:30": None, "14/07/25": None, "31/02/2025 09:30": None, "7/14/2025 0:30 AM": None,
                "14/07/2025 09:30 +07:00": None, "": None}),
        ("id-ID", {"03/04/2025 09:30": datetime(2025, 4, 3, 9, 30), "7/14/2025 9:30 AM": None}),
        ("en-US", {"03/04/2025 09:30": datetime(2025, 3, 4, 9, 30), "7/14/2025 9:30 PM": datetime(2025, 7, 14, 21, 30)}),
    ],
)
def test_day_month_timestamps(loc, cases):
    texts = list(cases)
    assert dict(zip(texts, read(timestamp_value, texts, loc))) == cases


OUT_OF_RANGE = [
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "0000-01-01",
    "-0044-03-15",
    "0044-03-15 (BC)",
    "10000-01-01",
    "99999-12-31 23:59:59",
    "01/01/0000",
    "31/12/9999 23:59",
    "9999-99-99",
    "2025-07-14 25:61",
]


@pytest.mark.parametrize("tz", ["Asia/Jakarta", "America/New_York", "Pacific/Kiritimati"])
def test_out_of_range_texts_do_not_raise(tz):
    for fn in (date_value, timestamp_value):
        rows = read_all(fn, OUT_OF_RANGE, [None, "id-ID"], tz=tz, as_text=True)
        assert all(len(r) == len(OUT_OF_RANGE) for r in rows)
    assert one(date_value, "0044-03-15 (BC)") is None  # never 44 AD


# -- locales and hints -----------------------------------------------------------------------


def test_locale_table():
    required = {"id-ID", "en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "it-IT", "nl-NL", "pt-BR", "en-IN", "ja-JP", "en-AU"}
    assert required <= set(LOCALES)
    assert (LOCALES["id-ID"].decimal, LOCALES["id-ID"].thousands, LOCALES["id-ID"].day_first) == (",", ".", True)
    assert (LOCALES["en-US"].decimal, LOCALES["en-US"].thousands, LOCALES["en-US"].day_first) == (".", ",", False)
    assert LOCALES["fr-FR"].thousands == " " and LOCALES["en-IN"].lakh
    assert "Rp" in LOCALES["id-ID"].currency_prefixes
    for name, loc in LOCALES.items():
        assert loc.name == name and loc.decimal != loc.thousands


def test_locale_model_validation():
    with pytest.raises(pydantic.ValidationError, match="must differ"):
        Locale(decimal=",", thousands=",")
    with pytest.raises(pydantic.ValidationError):
        Locale(decimal=";")
    with pytest.raises(pydantic.ValidationError):
        Locale(colour="red")
    with pytest.raises(pydantic.ValidationError, match="currency prefix"):
        Locale(currency_prefixes=("1",))
    assert Locale(thousands="\u00a0").thousands == " "
    loc = Locale(decimal=",")
    with pytest.raises(pydantic.ValidationError):
        loc.decimal = "."  # frozen
    assert hash(loc) == hash(Locale(decimal=","))


def test_resolve_locale():
    assert resolve_locale(None) is None
    assert resolve_locale("id-ID") is LOCALES["id-ID"]
    assert resolve_locale("id_id") is LOCALES["id-ID"]
    assert resolve_locale(" EN-us ") is LOCALES["en-US"]
    loc = Locale(decimal=",")
    assert resolve_locale(loc) is loc
    custom = resolve_locale({"name": "id-ID", "day_first": False})
    assert (custom.decimal, custom.thousands, custom.day_first, custom.name) == (",", ".", False, "id-ID")
    assert resolve_locale({"decimal": ",", "thousands": " "}) == Locale(decimal=",", thousands=" ")
    assert resolve_locale({"currency_prefixes": "Rp"}).currency_prefixes == ("Rp",)


@pytest.mark.parametrize(
    "value, message",
    [
        ("id-IDD", "unknown locale 'id-IDD' (did you mean 'id-ID'?); use one of "),
        ("xx-YY", "unknown locale 'xx-YY'; use one of "),
        ({"name": "de_DX"}, "unknown locale 'de_DX' (did you mean 'de-DE'?)"),
        ({"decimal": ",", "thousands": ","}, "must differ"),
        ({"decimals": ","}, "decimals: unknown field"),
        (3, "locale must be a name"),
    ],
)
def test_resolve_locale_errors_are_one_line(value, message):
    with pytest.raises(ValueError) as err:
        resolve_locale(value)
    assert message in str(err.value) and "\n" not in str(err.value)
    if isinstance(value, str):
        assert "id-ID" in str(err.value) and "give decimal, thousands, day_first" in str(err.value)


def test_ambiguity_hints():
    assert ambiguity_hint("1.200", "number") == "set locale: id-ID (1.200 = 1200) or en-US (1.200 = 1.2) in workbench.yml"
    assert ambiguity_hint("1,200", "number") == "set locale: en-US (1,200 = 1200) or id-ID (1,200 = 1.2) in workbench.yml"
    assert "299.000 = 299000" in ambiguity_hint(" 299.000 ", "number")
    assert "locale:" in ambiguity_hint("???", "number")
    hint = ambiguity_hint("03/04/2025", "date")
    assert "03/04/2025 = 3 April 2025" in hint and "03/04/2025 = March 4, 2025" in hint
    assert "en-GB" in ambiguity_hint("03/04/2025 09:30", "timestamp")
    assert "locale:" in ambiguity_hint("???", "timestamp")


def test_expressions_compile_to_plain_sql():
    """Vectorised SQL: regular expressions and casts, no Python UDF."""
    t = ibis.table({"s": "string"}, name="t")
    for fn in (number, date_value, timestamp_value):
        for loc in (None, LOCALES["id-ID"], LOCALES["en-IN"]):
            p = fn(t.s, loc)
            sql = ibis.to_sql(t.select(v=p.value, a=p.ambiguous), dialect="duckdb")
            assert "REGEXP" in sql and "udf" not in sql.lower()


# -- the fast paths read exactly what the full rules read ---------------------------------------

from analysis.data.locale import _date_value, _number, _timestamp_value  # noqa: E402 - the module's own rules

FAST_TEXTS = [
    "0", "7", "007", "-3", "+12", "123456789012345", "1234567890123456", "1.5", "12.25", "-0.5", "1.2345",
    "1.200", "0.500", "1,5", "1.20", "2025-07-14", "2025-07-14T09:30:00", "2025-07-14 09:30",
    "2025-07-14T09:30:00.000+0000", "2025-07-14T09:30:00Z", "2025-07-14T09:30:00+07:00", "2025-02-30",
    "2025-13-01T00:00:00", "0000-01-01", "9999-12-31T23:59:59-14:00", "2025-07-14T25:00:00", "14/07/2025", "",
]


@pytest.mark.parametrize("tz", ["Asia/Jakarta", "America/New_York"])
@pytest.mark.parametrize("fast, full", [(number, _number), (date_value, _date_value),
                                        (timestamp_value, _timestamp_value)])
def test_fast_paths_equal_the_full_rules(fast, full, tz):
    locs = [None, *sorted(LOCALES)]
    assert read_all(fast, FAST_TEXTS, locs, tz=tz, as_text=True) == read_all(full, FAST_TEXTS, locs, tz=tz,
                                                                             as_text=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.from_regex(r"\A[+\-]?\d{1,16}(\.\d{1,6})?\Z"), min_size=1, max_size=20))
def test_fast_number_path_equals_the_full_rules_on_digit_texts(texts):
    locs = [None, "en-US", "id-ID", "de-CH"]
    assert read_all(number, texts, locs, as_text=True) == read_all(_number, texts, locs, as_text=True)
