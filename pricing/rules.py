"""Pricing rules that pricing managers edit (config/rules.yaml), as pydantic models.

Scopes: ``default`` applies to every SKU; ``categories.<name>`` overrides any of its fields for
one category (most specific wins). Money is written as decimal text ("0.49") and held as
integer cents once resolved.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pricing.money import to_cents

ENDING_PATTERN = re.compile(r"^\.[0-9x]{2}$")



def _check_ending(ending: str) -> str:
    if not ENDING_PATTERN.match(ending):
        raise ValueError(f"ending '{ending}' is not of the form '.DD' (digits or x), e.g. '.99' or '.x9'")
    return ending


Ending = Annotated[
    str,
    AfterValidator(_check_ending),
    Field(json_schema_extra={"pattern": ENDING_PATTERN.pattern}, examples=[".99", ".x9"]),
]

Money = Annotated[
    Decimal,
    Field(ge=Decimal("0.01"), le=Decimal(100000), decimal_places=2, examples=["0.99", "12.49"]),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Title, description and bounds of each rule, shared by the defaults and the overrides.
_RULE_FIELDS: dict[str, dict[str, Any]] = {
    "margin_floor_pct": dict(
        title="Margin floor (%)",
        description="Lowest allowed price as a markup over cost, in percent: 10 means price >= cost x 1.10.",
        ge=0,
        le=1000,
    ),
    "min_price": dict(title="Minimum price", description="No price below this amount, whatever else the rules say."),
    "max_price": dict(title="Maximum price", description="No price above this amount, whatever else the rules say."),
    "max_change_pct": dict(
        title="Maximum change per cycle (%)",
        description="A price moves at most this many percent up or down from the current price in one cycle.",
        gt=0,
        le=100,
    ),
    "uncertain_max_change_pct": dict(
        title="Maximum change when demand is uncertain (%)",
        description=(
            "For a SKU whose price response the demand model cannot pin down (too little sales or price "
            "variation), the price moves at most this many percent per cycle."
        ),
        gt=0,
        le=100,
    ),
    "endings": dict(
        title="Allowed price endings",
        description=(
            "The last two digits a price may end in, written '.DD' with 'x' for any digit: "
            "'.99' allows 1.99 and 12.99; '.x9' allows any price whose last digit is 9."
        ),
        min_length=1,
    ),
}


class RuleValues(_Strict):
    """Rule values for one scope. Every field may be left out to inherit from the wider scope."""

    margin_floor_pct: Decimal | None = Field(default=None, **_RULE_FIELDS["margin_floor_pct"])
    min_price: Money | None = Field(default=None, **_RULE_FIELDS["min_price"])
    max_price: Money | None = Field(default=None, **_RULE_FIELDS["max_price"])
    max_change_pct: Decimal | None = Field(default=None, **_RULE_FIELDS["max_change_pct"])
    uncertain_max_change_pct: Decimal | None = Field(default=None, **_RULE_FIELDS["uncertain_max_change_pct"])
    endings: list[Ending] | None = Field(default=None, **_RULE_FIELDS["endings"])

    @field_validator("endings")
    @classmethod
    def _endings_valid(cls, endings: list[str] | None) -> list[str] | None:
        if endings is not None and len(set(endings)) != len(endings):
            raise ValueError("endings are listed twice")
        return endings

    @model_validator(mode="after")
    def _min_le_max(self) -> RuleValues:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError(f"min_price {self.min_price} is greater than max_price {self.max_price}")
        return self


class DefaultRules(RuleValues):
    """Rules for every SKU unless a category overrides them."""

    margin_floor_pct: Decimal = Field(default=Decimal(5), **_RULE_FIELDS["margin_floor_pct"])
    min_price: Money = Field(default=Decimal("0.10"), **_RULE_FIELDS["min_price"])
    max_price: Money = Field(default=Decimal("9999.99"), **_RULE_FIELDS["max_price"])
    max_change_pct: Decimal = Field(default=Decimal(10), **_RULE_FIELDS["max_change_pct"])
    uncertain_max_change_pct: Decimal = Field(default=Decimal(3), **_RULE_FIELDS["uncertain_max_change_pct"])
    endings: list[Ending] = Field(default_factory=lambda: [".99", ".49"], **_RULE_FIELDS["endings"])


class SolverConfig(_Strict):
    """How long and how exactly the optimizer may work."""

    time_limit_s: float = Field(default=20.0, gt=0, le=3600, title="Time limit (s)", description="Wall-clock limit per solve.")
    relative_gap: float = Field(
        default=0.0,
        ge=0,
        le=0.1,
        title="Relative optimality gap",
        description="Stop when the objective is within this fraction of the best bound (0 = prove optimal).",
    )
    workers: int = Field(default=2, ge=1, le=64, title="Solver workers", description="CP-SAT search threads.")
    log: bool = Field(default=False, title="Solver log", description="Print the CP-SAT search log.")


class ResolvedRules(BaseModel):
    """The rules in force for one SKU, money in integer cents."""

    model_config = ConfigDict(frozen=True)

    margin_floor_pct: Decimal
    min_price_cents: int
    max_price_cents: int
    max_change_pct: Decimal
    uncertain_max_change_pct: Decimal
    endings: tuple[str, ...]


class RulesConfig(_Strict):
    """config/rules.yaml: the pricing rules of one store (or chain)."""

    currency: str = Field(
        default="EUR", pattern=r"^[A-Z]{3}$", title="Currency", description="ISO 4217 code of the store's currency."
    )
    default: DefaultRules = Field(
        default_factory=DefaultRules, title="Default rules", description="Rules for every SKU."
    )
    categories: dict[str, RuleValues] = Field(
        default_factory=dict,
        title="Category overrides",
        description="Per category, the fields that differ from the defaults.",
    )
    max_candidates: int = Field(
        default=20,
        ge=2,
        le=200,
        title="Candidate prices per SKU",
        description="At most this many allowed prices are scored per SKU (spread evenly over its allowed range).",
    )
    solver: SolverConfig = Field(default_factory=SolverConfig, title="Solver", description="Optimizer limits.")

    @field_validator("categories")
    @classmethod
    def _merged_min_le_max(cls, categories: dict[str, RuleValues], info: ValidationInfo) -> dict[str, RuleValues]:
        default = info.data.get("default")
        if default is None:  # the defaults themselves failed; that error is reported on its own
            return categories
        for name, override in categories.items():
            low = override.min_price if override.min_price is not None else default.min_price
            high = override.max_price if override.max_price is not None else default.max_price
            if low > high:
                raise ValueError(
                    f"category '{name}': min_price {low} is greater than max_price {high} once merged with the defaults"
                )
        return categories

    def resolve(self, category: str | None) -> ResolvedRules:
        """The rules in force for a SKU of ``category``: the category's fields over the defaults."""
        merged = self.default.model_dump()
        override = self.categories.get(category or "")
        if override is not None:
            merged.update(override.model_dump(exclude_none=True))
        return ResolvedRules(
            margin_floor_pct=merged["margin_floor_pct"],
            min_price_cents=to_cents(merged["min_price"]),
            max_price_cents=to_cents(merged["max_price"]),
            max_change_pct=merged["max_change_pct"],
            uncertain_max_change_pct=merged["uncertain_max_change_pct"],
            endings=tuple(merged["endings"]),
        )
