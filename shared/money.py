"""Money: exact Decimal arithmetic, rounding once at output, integer micro-units, one text format.

Rules every stage follows (costs computes amounts, alerts and the email show them):
* Amounts are exact Decimals (tokens x per-token price, summed in MONEY_CONTEXT, which refuses to
  round), so summing a million one-token rows gives exactly the cost of the total.
* Rounding happens once, at output, always ROUND_HALF_EVEN (banker's rounding): ties go both ways
  equally, so summing many rounded rows does not drift in one direction.
  - summary rows (uploaded, summed by dashboards and alerts): SUMMARY_COST_DECIMAL_PLACES = 6,
    i.e. micro-units of the currency (MICROS_PER_UNIT); a one-token row is still visible, and the
    value stays exact in the 64-bit float Log Analytics stores up to ~10^9 currency units. Sums of
    summary amounts are taken as integer micro-units (to_micros / from_micros), so they are exact;
  - display: the currency's ISO 4217 minor unit (USD 2, JPY 0, KWD 3): format_money for log lines
    ("1234.50 USD"), display_money for people ("$1,234.50", "1,234.50 CHF").

Stdlib only: costs' outputs and the alert findings import it, and they must stay cheap to import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow

__all__ = [
    "ISO_4217_MINOR_UNITS",
    "MICROS_PER_UNIT",
    "MONEY_CONTEXT",
    "SUMMARY_COST_DECIMAL_PLACES",
    "display_money",
    "format_money",
    "from_micros",
    "is_currency",
    "round_money",
    "round_summary_cost",
    "sum_money",
    "to_micros",
]

# Exact arithmetic for money: 60 digits is far beyond any token count x price, and Inexact is
# trapped so that if an operation ever had to round, it fails loudly instead of drifting.
# Explicit context methods are used so a caller changing the thread's decimal context cannot
# change our results.
MONEY_CONTEXT = Context(prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])

# ISO 4217 codes accepted as a price currency, with their minor units (decimal places used when
# rounding for display). Azure's billing currencies plus other widely used ones; extend as needed.
ISO_4217_MINOR_UNITS: Mapping[str, int] = {
    "AED": 2, "ARS": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2,
    "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2,
    "ILS": 2, "INR": 2, "ISK": 0, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "MYR": 2, "NGN": 2,
    "NOK": 2, "NZD": 2, "PHP": 2, "PKR": 2, "PLN": 2, "QAR": 2, "RON": 2, "RUB": 2, "SAR": 2,
    "SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip

SUMMARY_COST_DECIMAL_PLACES = 6
MICROS_PER_UNIT = 10**SUMMARY_COST_DECIMAL_PLACES  # summary amounts as integers: micro-units of the currency

_SUMMARY_QUANTUM = Decimal(1).scaleb(-SUMMARY_COST_DECIMAL_PLACES)
_ZERO = Decimal(0)
# Rounding is the one place where dropping digits is the point, so Inexact is not trapped here.
_ROUNDING_CONTEXT = MONEY_CONTEXT.copy()
_ROUNDING_CONTEXT.traps[Inexact] = False
# Symbols people read without a second look; any other currency is shown by its code.
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def is_currency(code: str) -> bool:
    """Whether `code` is an ISO 4217 code this app prices and rounds in."""
    return code in ISO_4217_MINOR_UNITS


def sum_money(amounts: Iterable[Decimal]) -> Decimal:
    """Exact sum (independent of the thread's decimal context, which may round at 28 digits)."""
    total = _ZERO
    for amount in amounts:
        total = MONEY_CONTEXT.add(total, amount)
    return total


def round_money(amount: Decimal, currency: str) -> Decimal:
    """For display: to the currency's minor unit (USD cents), ROUND_HALF_EVEN."""
    try:
        places = ISO_4217_MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}") from None
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=_ROUNDING_CONTEXT)


def round_summary_cost(amount: Decimal) -> Decimal:
    """For summary rows: SUMMARY_COST_DECIMAL_PLACES decimals, ROUND_HALF_EVEN (any currency)."""
    return amount.quantize(_SUMMARY_QUANTUM, rounding=ROUND_HALF_EVEN, context=_ROUNDING_CONTEXT)


def to_micros(amount: Decimal) -> int:
    """The summary-row amount (rounded once, ROUND_HALF_EVEN) as integer micro-units."""
    return int(round_summary_cost(amount).scaleb(SUMMARY_COST_DECIMAL_PLACES))


def from_micros(micros: int) -> Decimal:
    """Integer micro-units -> the exact amount, with the summary rows' SUMMARY_COST_DECIMAL_PLACES decimals."""
    return Decimal(micros).scaleb(-SUMMARY_COST_DECIMAL_PLACES)


def format_money(amount: Decimal, currency: str) -> str:
    """For log lines: "1234.50 USD", the amount rounded to the minor unit, no grouping (greppable)."""
    return f"{round_money(amount, currency)} {currency}"


def display_money(amount: Decimal, currency: str) -> str:
    """For people (emails): "$1,234.50", or "1,234.50 CHF" for a currency without a well-known symbol."""
    rounded = round_money(amount, currency)
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{rounded:,}" if symbol else f"{rounded:,} {currency}"
