"""The one money / number / percent formatter: exact strings."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from analysis.format import money, number, percent

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
    (Decimal("1250"), "$1.3K"),
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
    (27_116_811, "USD", "27,116,811 USD"),
    (27_116_810.5, "USD", "27,116,811 USD"),
    (-1_200, "EUR", "-1,200 EUR"),
    (56_100_000, "IDR", "56,100,000 IDR"),
    (950, "usd", "950 USD"),
    (-0.4, "USD", "0 USD"),
    (1_234, None, "1,234"),
])
def test_money_full(value, currency, text):
    assert money(value, currency, compact=False) == text


def test_money_signed():
    assert money(500, "USD", signed=True) == "+$500"
    assert money(-500, "USD", signed=True) == "-$500"
    assert money(0, "USD", signed=True) == "+$0"
    assert money(1_200, "IDR", signed=True) == "+1.2K IDR"
    assert money(1_200, "USD", compact=False, signed=True) == "+1,200 USD"


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
