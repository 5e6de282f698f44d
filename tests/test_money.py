"""Money: exact sums, rounding once (half to even) at output, micro-units, the log and display formats."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal, localcontext

import pytest

from shared.money import (
    ISO_4217_MINOR_UNITS,
    MICROS_PER_UNIT,
    SUMMARY_COST_DECIMAL_PLACES,
    display_money,
    format_money,
    from_micros,
    is_currency,
    round_money,
    round_summary_cost,
    sum_money,
    to_micros,
)
from tests import ROOT

# --- rounding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "rounded"),
    [
        ("0.125", "USD", "0.12"),  # half to even
        ("0.135", "USD", "0.14"),
        ("0.1251", "USD", "0.13"),
        ("12.5", "JPY", "12"),
        ("1.2345", "KWD", "1.234"),
        ("-0.005", "EUR", "-0.00"),
    ],
)
def test_round_money_to_minor_unit_half_even(amount: str, currency: str, rounded: str) -> None:
    assert str(round_money(Decimal(amount), currency)) == rounded


def test_round_summary_cost_keeps_six_decimals_half_even() -> None:
    assert str(round_summary_cost(Decimal("0.0000005"))) == "0.000000"
    assert str(round_summary_cost(Decimal("0.0000015"))) == "0.000002"
    assert str(round_summary_cost(Decimal("1234567.123456789"))) == "1234567.123457"


def test_round_money_unknown_currency() -> None:
    with pytest.raises(ValueError, match="XXY"):
        round_money(Decimal(1), "XXY")


# --- sums and micro-units ---------------------------------------------------------------------


def test_sum_is_exact_whatever_the_thread_context() -> None:
    amounts = [Decimal("1234567890123456789.000000001"), Decimal("0.000000001")]
    with localcontext() as ctx:
        ctx.prec = 10  # a caller's coarse context must not round our sums
        assert sum_money(amounts) == Decimal("1234567890123456789.000000002")


def test_micros_are_the_summary_amount_as_an_integer() -> None:
    assert MICROS_PER_UNIT == 10**SUMMARY_COST_DECIMAL_PLACES == 1_000_000
    assert to_micros(Decimal("3.167592575")) == 3_167_593  # rounded once, half to even
    assert to_micros(Decimal("0.0000005")) == 0
    assert to_micros(Decimal("0.0000015")) == 2
    assert str(from_micros(3_167_593)) == "3.167593"
    assert str(from_micros(0)) == "0.000000"
    assert from_micros(to_micros(Decimal("412.5"))) == Decimal("412.5")


# --- text -------------------------------------------------------------------------------------


def test_log_format_is_the_rounded_amount_and_the_code() -> None:
    assert format_money(Decimal("1234.565"), "USD") == "1234.56 USD"
    assert format_money(Decimal("0.5"), "JPY") == "0 JPY"
    assert format_money(Decimal("1.2345"), "KWD") == "1.234 KWD"


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("412.5", "USD", "$412.50"),
        ("1234567.891", "EUR", "€1,234,567.89"),
        ("1234.5", "JPY", "¥1,234"),
        ("1234.5", "CHF", "1,234.50 CHF"),
    ],
)
def test_display_format_has_symbol_or_code_and_grouping(amount: str, currency: str, shown: str) -> None:
    assert display_money(Decimal(amount), currency) == shown


def test_currencies_are_iso_4217_codes_with_minor_units() -> None:
    assert is_currency("USD") and is_currency("JPY") and not is_currency("tokens") and not is_currency("%")
    assert all(len(code) == 3 and code.isupper() for code in ISO_4217_MINOR_UNITS)
    with pytest.raises(ValueError, match="XXY"):
        format_money(Decimal(1), "XXY")


def test_importing_money_stays_cheap() -> None:
    code = "import sys, shared.money; assert 'pandas' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
