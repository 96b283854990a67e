"""Money at the edges: integer cents inside the engine, ``Decimal`` for people and files."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, Inexact, localcontext

CENT = Decimal("0.01")
#: The common spelling ("2.99", "3", "-0.5"), parsed without Decimal: every desired state a
#: label receives is checked with to_cents, so this is on the delivery hot path.
_PLAIN = re.compile(r"(-?)([0-9]{1,15})(?:\.([0-9]{1,2}))?")


def to_cents(value: Decimal | str | int) -> int:
    """Parse a money amount ("2.99", Decimal("2.99"), 3) into integer cents, exactly.

    Raises ValueError for anything that is not a finite amount with at most two decimals.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a money amount: {value!r}")
    if isinstance(value, str) and (plain := _PLAIN.fullmatch(value.strip())):
        sign, units, fraction = plain.groups()
        cents = int(units) * 100 + int((fraction or "0").ljust(2, "0"))
        return -cents if sign else cents
    try:
        amount = Decimal(str(value).strip())
        if not amount.is_finite():
            raise ValueError(f"not a money amount: {value!r}")
        with localcontext() as ctx:
            ctx.traps[Inexact] = True  # never round: 30 digits or "1e-1000030" must not pass
            cents = amount * 100
    except ArithmeticError:  # InvalidOperation, Inexact, or Overflow for e.g. "1e999999"
        raise ValueError(f"not a money amount: {value!r}") from None
    if cents != cents.to_integral_value():
        raise ValueError(f"more than two decimals: {value!r}")
    return int(cents)


def to_decimal(cents: int) -> Decimal:
    """Integer cents as a two-decimal ``Decimal`` (299 -> Decimal("2.99"))."""
    return (Decimal(int(cents)) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def format_money(cents: int, currency: str = "") -> str:
    """Human text for an amount: ``format_money(299, "EUR") == "2.99 EUR"``."""
    text = f"{to_decimal(cents):,}"
    return f"{text} {currency}".strip()
