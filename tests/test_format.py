"""The one money / number / percent formatter: exact strings, en-US and id-ID."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from analysis.data.config import parse_config
from analysis.errors import ConfigError
from analysis.format import Numbers, check_locale, money, number, percent

NOT_AVAILABLE = [None, math.nan, np.float64("nan"), pd.NA, pd.NaT, math.inf, -math.inf, Decimal("NaN")]


@pytest.mark.parametrize(("value", "text"), [
    (27_116_811, "$27.1M"),
    (1_200, "$1.2K"),
    (1_250, "$1.3K"),          # half away from zero, not to even
    (12_000, "$12K"),          # trailing .0 dropped
    (5_000_000, "$5M"),
    (3_000_000_000, "$3B"),
    (2_500_000_000_000, "$2.5T"),
    (1_234_500_000_000_000, "$1,234.5T"),
    (950, "$950"),
    (12.34, "$12"),
    (999.4, "$999"),
    (999.5, "$1K"),            # rounds to 1,000: the next unit
    (999_949, "$999.9K"),
    (999_950, "$1M"),          # never "$1000K"
    (999_950_000, "$1B"),
    (0, "$0"),
    (-0.4, "$0"),              # rounds to zero: no minus sign
    (-1_200, "-$1.2K"),
    (-950, "-$950"),
    (-999_950, "-$1M"),
    (np.int64(5_000_000), "$5M"),
    (np.float32(1_500), "$1.5K"),
    (Decimal(1250), "$1.3K"),
])
def test_money_compact_usd(value, text):
    assert money(value, "USD") == text


@pytest.mark.parametrize(("value", "currency", "text"), [
    (3_400_000, "EUR", "€3.4M"),
    (12_000, "GBP", "£12K"),
    (1_500_000, "JPY", "¥1.5M"),
    (-1_234, "eur", "-€1.2K"),        # case of the code does not matter
    (56_100_000, "IDR", "56.1M IDR"),  # no symbol: the ISO code after the figure
    (-950, "IDR", "-950 IDR"),
    (2_000, "CHF", "2K CHF"),
    (27_116_811, None, "27.1M"),       # no currency: the bare figure
    (27_116_811, "", "27.1M"),
])
def test_money_compact_currencies(value, currency, text):
    assert money(value, currency) == text


@pytest.mark.parametrize(("value", "currency", "text"), [
    (27_116_811, "USD", "$27,116,811"),      # the same symbol as the compact "$27.1M"
    (27_116_810.5, "USD", "$27,116,811"),
    (-1_200, "EUR", "-€1,200"),
    (56_100_000, "IDR", "56,100,000 IDR"),   # no symbol in en-US: the code, as in "56.1M IDR"
    (950, "usd", "$950"),
    (-0.4, "USD", "$0"),
    (1_234, None, "1,234"),
])
def test_money_full(value, currency, text):
    assert money(value, currency, compact=False) == text


@pytest.mark.parametrize(("value", "compact", "text"), [
    (27_116_811, True, "27.1M USD"),
    (27_116_811, False, "27,116,811 USD"),
    (-1_234, True, "-1.2K USD"),
    (950, False, "950 USD"),
])
def test_money_as_code(value, compact, text):
    assert money(value, "USD", compact=compact, currency_display="code") == text
    assert Numbers("usd", currency_display="code").money(value, compact=compact) == text


def test_money_signed():
    assert money(500, "USD", signed=True) == "+$500"
    assert money(-500, "USD", signed=True) == "-$500"
    assert money(0, "USD", signed=True) == "+$0"
    assert money(1_200, "IDR", signed=True) == "+1.2K IDR"
    assert money(1_200, "USD", compact=False, signed=True) == "+$1,200"


ID = Numbers("IDR", "id-ID")


@pytest.mark.parametrize(("value", "text"), [
    (22_500_000_000, "Rp 22,5 M"),     # miliar: 10^9
    (56_100_000, "Rp 56,1 jt"),        # juta: 10^6
    (1_500, "Rp 1,5 rb"),              # ribu: 10^3
    (12_000, "Rp 12 rb"),              # trailing ",0" dropped
    (2_500_000_000_000, "Rp 2,5 T"),   # triliun: 10^12
    (1_234_500_000_000_000, "Rp 1.234,5 T"),
    (950, "Rp 950"),
    (999.5, "Rp 1 rb"),
    (1_250, "Rp 1,3 rb"),              # half away from zero
    (999_950, "Rp 1 jt"),              # the unit follows the rounded figure
    (999_949, "Rp 999,9 rb"),
    (-1_234, "-Rp 1,2 rb"),
    (-0.4, "Rp 0"),
])
def test_money_id_id_compact(value, text):
    assert ID.money(value) == text


def test_id_id_full_figures_numbers_and_percentages():
    assert ID.money(27_116_811, compact=False) == "Rp 27.116.811"
    assert ID.money(-1_200.5, compact=False, signed=True) == "-Rp 1.201"
    assert ID.money(500, signed=True) == "+Rp 500"
    assert ID.number(1_234_567.891, digits=2) == "1.234.567,89"
    assert ID.number(2.25, digits=1) == "2,3"
    assert ID.number(35_000_000, compact=True) == "35 jt"
    assert ID.percent(0.1234) == "12,3%" and ID.percent(-0.05, digits=0, signed=True) == "-5%"
    assert Numbers("IDR", "id-ID", "code").money(22_500_000_000) == "22,5 M IDR"
    assert Numbers("USD", "id-ID").money(27_116_811) == "US$27,1 jt"  # CLDR's symbol of USD in id-ID
    assert ID.money(math.nan) == "n/a" and ID.percent(None) == "n/a"


def test_en_us_numbers_object_and_compact_numbers():
    us = Numbers("USD")
    assert (us.money(27_116_811), us.money(27_116_811, compact=False)) == ("$27.1M", "$27,116,811")
    assert us.number(35_000_000, compact=True) == "35M" and us.number(-999_950, compact=True) == "-1M"
    assert us.percent(0.125, digits=0) == "13%" and us.number(1234.5) == "1,235"
    assert us.currency_label == "$" and ID.currency_label == "Rp" and Numbers("CHF").currency_label == "CHF"
    assert Numbers(None).money(27_116_811) == "27.1M" and Numbers(None).currency_label == ""


@pytest.mark.parametrize(("currency", "text", "full"), [
    ("CHF", "2K CHF", "2,000 CHF"),   # CLDR has no en-US symbol for these: the ISO code after the figure
    ("IDR", "2K IDR", "2,000 IDR"),
    ("XTS", "2K XTS", "2,000 XTS"),   # a code CLDR knows no symbol for at all
])
def test_currency_without_a_symbol(currency, text, full):
    assert money(2_000, currency) == text and money(2_000, currency, compact=False) == full


def test_other_locales_follow_cldr():
    de = Numbers("EUR", "de-DE")
    assert de.money(22_500_000) == "22,5 Mio. €" and de.money(12_000) == "12.000 €"  # no thousands abbreviation
    assert de.percent(0.5) == "50,0 %"
    assert Numbers("INR", "en-IN").money(12_345_678, compact=False) == "₹1,23,45,678"


def test_unknown_locale_and_display_say_how_to_fix():
    assert check_locale("id-ID") == "id_ID" and check_locale("en_us") == "en_US"
    with pytest.raises(ValueError, match=r"unknown display locale 'id-XX' \(did you mean id-ID\?\); write a"):
        Numbers("IDR", "id-XX")
    with pytest.raises(ValueError, match="currency_display 'sign': use symbol"):
        Numbers("IDR", currency_display="sign")
    with pytest.raises(ConfigError, match="display_locale: unknown display locale 'english'.*such as en-US, id-ID"):
        parse_config({"display_locale": "english"})
    with pytest.raises(ConfigError, match="currency_display: Input should be 'symbol' or 'code'"):
        parse_config({"currency_display": "sign"})
    config = parse_config({"currency": "IDR", "display_locale": "id-ID", "currency_display": "code"})
    assert config.numbers == Numbers("IDR", "id-ID", "code") and config.numbers.money(1_500) == "1,5 rb IDR"
    assert parse_config({}).numbers == Numbers("USD", "en-US", "symbol")


@pytest.mark.parametrize("value", NOT_AVAILABLE)
def test_not_available(value):
    assert money(value, "USD") == "n/a"
    assert money(value, "IDR", compact=False) == "n/a"
    assert number(value) == "n/a"
    assert number(value, digits=2) == "n/a"
    assert percent(value) == "n/a"
    assert percent(value, signed=True) == "n/a"


@pytest.mark.parametrize(("value", "kw", "text"), [
    (1234.5, {}, "1,235"),
    (0.5, {}, "1"),
    (-0.5, {}, "-1"),
    (-0.4, {}, "0"),
    (2.25, {"digits": 1}, "2.3"),
    (1_234_567.891, {"digits": 2}, "1,234,567.89"),
    (7, {"digits": 1}, "7.0"),
    (3, {"signed": True}, "+3"),
    (-3, {"signed": True}, "-3"),
    (np.int64(12_345), {}, "12,345"),
])
def test_number(value, kw, text):
    assert number(value, **kw) == text


@pytest.mark.parametrize(("value", "kw", "text"), [
    (0.1234, {}, "12.3%"),
    (0.5, {"digits": 0}, "50%"),
    (0.125, {"digits": 0}, "13%"),
    (1, {}, "100.0%"),
    (12.5, {"digits": 0}, "1,250%"),
    (-0.034, {}, "-3.4%"),
    (-0.0004, {}, "0.0%"),
    (0.05, {"signed": True}, "+5.0%"),
    (-0.05, {"digits": 0, "signed": True}, "-5%"),
])
def test_percent(value, kw, text):
    assert percent(value, **kw) == text


def test_text_is_not_a_number():
    with pytest.raises(TypeError, match="cannot format"):
        money("1200", "USD")


def test_column_formatters_by_kind_follow_the_locale():
    us, idn = Numbers("USD"), Numbers("IDR", "id-ID")
    assert [us.formatter(k)(1234.567) for k in ("money", "money_compact", "count", "number")] == \
        ["$1,235", "$1.2K", "1,235", "1,234.6"]
    assert us.formatter("percent")(0.3456) == "34.6%" and us.formatter("percent", digits=0)(0.3456) == "35%"
    assert idn.formatter("number", digits=2)(1234.5) == "1.234,50" and idn.formatter("money")(22_500_000) == "Rp 22.500.000"
    assert us.formatter("money")(float("nan")) == "n/a"
    with pytest.raises(ValueError, match="unknown format kind 'share'"):
        us.formatter("share")
