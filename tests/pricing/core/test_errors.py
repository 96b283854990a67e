"""pricing.core.errors: a pydantic ValidationError as one ``loc.path: message`` line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError, model_validator

from pricing.core.errors import first_error


class Item(BaseModel):
    sku: str
    price_cents: int = Field(ge=1)


class Basket(BaseModel):
    store: str = Field(min_length=1)
    items: list[Item] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> Basket:
        if not self.items:
            raise ValueError("a basket needs items")
        return self


def error_of(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Basket.model_validate(data)
    return caught.value


def test_nested_path_and_message() -> None:
    exc = error_of({"store": "S1", "items": [{"sku": "1", "price_cents": 5}, {"sku": "2", "price_cents": 0}]})
    assert first_error(exc) == "items.1.price_cents: Input should be greater than or equal to 1"


def test_only_the_first_of_several_errors() -> None:
    exc = error_of({"store": "", "items": [{"price_cents": "x"}]})
    assert len(exc.errors()) == 3
    assert first_error(exc) == "store: String should have at least 1 character"


def test_top_level_error_uses_the_fallback_name() -> None:
    exc = error_of({"store": "S1"})
    assert first_error(exc) == "data: Value error, a basket needs items"
    assert first_error(exc, "basket") == "basket: Value error, a basket needs items"


def test_whole_input_of_the_wrong_type() -> None:
    message = first_error(error_of(["not", "a", "mapping"]), "basket")
    assert message.startswith("basket: Input should be a valid dictionary")
    assert "\n" not in message


def test_missing_field() -> None:
    assert first_error(error_of({"items": [{"sku": "1", "price_cents": 1}]})) == "store: Field required"


def test_no_errors_at_all() -> None:
    exc = ValidationError.from_exception_data("Basket", [])
    assert first_error(exc) == "data: invalid"
    assert first_error(exc, "basket") == "basket: invalid"


@given(st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=20))
def test_points_at_the_first_bad_item(prices: list[int]) -> None:
    data = {"store": "S1", "items": [{"sku": str(i), "price_cents": p} for i, p in enumerate(prices)]}
    bad = [i for i, p in enumerate(prices) if p < 1]
    if not bad:
        Basket.model_validate(data)
        return
    assert first_error(error_of(data)) == f"items.{bad[0]}.price_cents: Input should be greater than or equal to 1"
