"""pricing.core.money: exact cents <-> Decimal at the edges; everything else is rejected."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.core.money import format_money, to_cents, to_decimal

CENTS = st.integers(min_value=-(10**15), max_value=10**15)


@given(CENTS)
def test_cents_decimal_round_trip(cents: int) -> None:
    amount = to_decimal(cents)
    assert isinstance(amount, Decimal)
    assert amount.as_tuple().exponent == -2  # always two decimals: 3 -> 0.03, 300 -> 3.00
    assert to_cents(amount) == cents
    assert to_cents(str(amount)) == cents


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False, allow_infinity=False))
def test_decimal_cents_round_trip(amount: Decimal) -> None:
    cents = to_cents(amount)
    assert to_decimal(cents) == amount
    assert cents == amount * 100


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_whole_amounts_are_accepted_as_ints_and_text(units: int) -> None:
    assert to_cents(units) == units * 100
    assert to_cents(str(units)) == units * 100


@pytest.mark.parametrize(
    ("value", "cents"),
    [("2.99", 299), (" 2.99 ", 299), ("2.990", 299), ("0.01", 1), ("-1.50", -150), ("1E+2", 10000),
     (Decimal("12.49"), 1249), (3, 300), (0, 0), ("0", 0)],
)
def test_examples(value: object, cents: int) -> None:
    assert to_cents(value) == cents


def test_to_decimal_examples() -> None:
    assert str(to_decimal(299)) == "2.99"
    assert str(to_decimal(3)) == "0.03"
    assert str(to_decimal(300)) == "3.00"
    assert str(to_decimal(-5)) == "-0.05"
    assert format_money(299, "EUR") == "2.99 EUR"
    assert format_money(123456) == "1,234.56"


@given(st.decimals(min_value=-(10**6), max_value=10**6, places=5, allow_nan=False, allow_infinity=False))
def test_more_than_two_decimals_rejected(amount: Decimal) -> None:
    if amount * 100 == (amount * 100).to_integral_value():
        assert to_cents(amount) == int(amount * 100)
    else:
        with pytest.raises(ValueError, match="more than two decimals"):
            to_cents(amount)
        with pytest.raises(ValueError, match="more than two decimals"):
            to_cents(str(amount))


@pytest.mark.parametrize("value", ["0.001", "2.999", "1.005", Decimal("0.125")])
def test_three_decimals_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="more than two decimals"):
        to_cents(value)


@pytest.mark.parametrize(
    "value",
    [
        float("nan"), float("inf"), float("-inf"), "nan", "NaN", "sNaN", "inf", "-Infinity",
        Decimal("NaN"), Decimal("Infinity"),
        True, False,
        "", "   ", "abc", "2,99", "€2.99", "2.99 EUR", "0x10", "1.2.3", None, [], {}, object(),
        # would overflow or need rounding inside Decimal arithmetic: never silently accepted
        "1e999999", "1e-1000030", "1234567890123456789012345678.91",
    ],
)
def test_junk_rejected_with_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        to_cents(value)


@given(st.text(max_size=12))
def test_arbitrary_text_gives_cents_or_value_error(text: str) -> None:
    try:
        cents = to_cents(text)
    except ValueError:
        return
    assert isinstance(cents, int)
    assert Decimal(text.strip()) * 100 == cents


@given(st.from_regex(r"\A\s?-?[0-9]{1,16}(\.[0-9]{0,3})?\s?\Z"))
def test_plain_text_fast_path_agrees_with_decimal(text: str) -> None:
    """Plain amounts skip Decimal (the delivery hot path); the answer must be Decimal's."""
    amount = Decimal(text.strip())
    if amount != amount.quantize(Decimal("0.01")):
        with pytest.raises(ValueError):
            to_cents(text)
    else:
        assert to_cents(text) == int(amount * 100)
