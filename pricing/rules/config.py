"""Pricing rules that pricing managers edit (config/rules.yaml), as pydantic models.

Scopes, widest first: ``default`` (every SKU) -> ``zones.<zone>`` (a chain's price zone) ->
``categories.<name>`` -> ``brands.<name>`` -> ``skus.<sku>``. Each scope lists only the rules it
changes; for every rule the most specific scope that sets it wins, attribute by attribute (a brand
may make a category's margin floor soft without repeating its value).

A zone scope applies only where the rules are resolved for a zone (``resolve(..., zone=...)``,
``for_zone``, pricing.plan.zone_cycle); a store priced on its own (no zone) resolves exactly as
if the ``zones`` section were not there. Zone names are checked against the chain's zones when
those are given (``unmatched_scopes(products, zones=...)``), else not at all.

A rule is written either as its value (``margin_floor_pct: 10``) or as a mapping with the value
and how it is enforced::

    max_change_pct: {value: 10, hard: false, penalty: "0.50", priority: 30}

- ``hard`` (default true): the price must obey it. When a SKU's hard rules leave no allowed price,
  the engine relaxes them lowest ``priority`` first (``on_conflict: relax``) and reports which it
  relaxed, or holds the SKU at its current price (``on_conflict: hold``).
- ``penalty`` (for ``hard: false``): what breaking the rule costs in the objective, in money per
  day; the optimizer breaks a soft rule only where that earns more than the penalty.

Money is written as decimal text ("0.49") and held as integer cents once resolved.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from pricing.core.money import to_cents
from pricing.core.yaml_config import ConfigError, load_yaml_model

if TYPE_CHECKING:
    import pandas as pd

ENDING_PATTERN = re.compile(r"^\.[0-9x]{2}$")

# Priority of each rule when none is configured: the higher, the later it is relaxed.
DEFAULT_PRIORITY: dict[str, int] = {
    "margin_floor_pct": 100,
    "min_price": 90,
    "max_price": 90,
    "max_change_pct": 60,
    "max_change_abs": 60,
    "uncertain_max_change_pct": 55,
    "endings": 50,
    "price_points": 50,
    "family": 45,
    "ladder": 40,
    "tier": 30,
    "competitor_index": 20,
    "change_budget": 10,
}
DEFAULT_PENALTY = Decimal("1.00")  # per soft-rule violation per day, when none is configured


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
Percent = Annotated[Decimal, Field(ge=0, le=1000, decimal_places=2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSetting(_Strict):
    """A rule's value and how it is enforced. Any attribute left out comes from the wider scope."""

    value: Any = Field(default=None, title="Value", description="The rule's value.")
    hard: bool | None = Field(
        default=None,
        title="Hard",
        description="true (default): the price must obey the rule. false: breaking it costs `penalty`.",
    )
    priority: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        title="Priority",
        description="When hard rules conflict, the lowest priority is relaxed first (higher = kept longer).",
    )
    penalty: Money | None = Field(
        default=None,
        title="Penalty",
        description="For a soft rule: the cost of breaking it, in money per day (default 1.00).",
    )


_SETTING_KEYS = frozenset(RuleSetting.model_fields)


def _as_setting(raw: Any, *, value_is_mapping: bool = False) -> Any:
    """Shorthand: a plain value stands for ``{value: ...}``.

    A mapping is the long form (so a misspelt key such as ``hardd`` is reported as an unknown
    key), unless the rule's value is itself a mapping: then only a mapping naming a setting key
    (value, hard, priority, penalty) is the long form.
    """
    if isinstance(raw, RuleSetting):
        return raw
    if isinstance(raw, dict) and raw and (not value_is_mapping or set(raw) & _SETTING_KEYS):
        return raw
    return {"value": raw}


def _rule(name: str, value_type: Any) -> Any:
    """Field type of a rule: its value, or a mapping with the value and its enforcement (both
    forms in the JSON Schema). ``name`` names the mapping's model (e.g. ``PercentRule``)."""
    setting = create_model(
        name,
        __base__=RuleSetting,
        __doc__=f"{RuleSetting.__doc__} Value: see the rule.",
        value=(value_type | None, Field(default=None, title="Value", description="The rule's value.")),
    )
    mapping = isinstance(value_type, type) and issubclass(value_type, BaseModel)
    return Annotated[
        setting,
        BeforeValidator(partial(_as_setting, value_is_mapping=mapping), json_schema_input_type=value_type | setting),
    ]


class CompetitorBand(_Strict):
    """Where a price may sit relative to the lowest known competitor price."""

    min_pct: Percent = Field(title="At least (%)", description="Price >= this % of the competitor price, e.g. 95.")
    max_pct: Percent = Field(title="At most (%)", description="Price <= this % of the competitor price, e.g. 110.")

    @model_validator(mode="after")
    def _ordered(self) -> CompetitorBand:
        if self.min_pct > self.max_pct:
            raise ValueError(f"min_pct {self.min_pct} is greater than max_pct {self.max_pct}")
        return self


class Objective(_Strict):
    """What the optimizer maximises for these SKUs."""

    maximize: Literal["profit", "revenue", "mix"] | None = Field(
        default=None,
        title="Maximise",
        description="profit (default), revenue, or mix: (1 - revenue_weight) x profit + revenue_weight x revenue.",
    )
    revenue_weight: Decimal | None = Field(
        default=None, ge=0, le=1, title="Revenue weight", description="Weight of revenue in the mix (0..1)."
    )
    drift_penalty_pct: Decimal | None = Field(
        default=None,
        ge=0,
        le=100,
        title="Drift guard (%)",
        description=(
            "Each 1% a price moves from today's costs this % of the SKU's expected daily objective at "
            "today's price: keeps prices from drifting far for a small expected gain."
        ),
    )


def _endings_distinct(endings: list[str] | None) -> list[str] | None:
    if endings is not None and len(set(endings)) != len(endings):
        raise ValueError("endings are listed twice")
    return endings


_RULE_DOCS: dict[str, tuple[str, str]] = {
    "margin_floor_pct": ("Margin floor (%)", "Lowest price as a markup over cost in percent: 10 means price >= cost x 1.10."),
    "min_price": ("Minimum price", "No price below this amount."),
    "max_price": ("Maximum price", "No price above this amount."),
    "max_change_pct": ("Maximum change per cycle (%)", "A price moves at most this many percent from today's per cycle."),
    "max_change_abs": ("Maximum change per cycle (amount)", "A price moves at most this amount from today's per cycle."),
    "uncertain_max_change_pct": (
        "Maximum change when demand is uncertain (%)",
        ("For a SKU whose price response the demand model cannot pin down, the price moves at most this many "
        "percent per cycle."),
    ),
    "endings": (
        "Allowed price endings",
        ("The last two digits a price may end in, '.DD' with 'x' for any digit: '.99' allows 1.99 and 12.99; "
        "'.x9' allows any price whose last digit is 9."),
    ),
    "price_points": (
        "Allowed price points",
        "If set, the only prices allowed (e.g. [\"0.99\", \"1.49\", \"1.99\"]); endings then do not apply.",
    ),
    "family": ("Price families", "SKUs of one family (products.csv `family`) share one price. Value: true or false."),
    "ladder": (
        "Size ladders",
        ("Within a ladder (products.csv `ladder`), a larger pack costs more in total and less per unit. "
        "Value: true or false."),
    ),
    "tier": (
        "Brand tier gap (%)",
        ("A private-label SKU (products.csv `tier` names its national-brand reference) costs at least this % "
        "less than its reference."),
    ),
    "competitor_index": (
        "Competitor index",
        "Where a competitor price is known: keep the price within min_pct..max_pct of the lowest one.",
    ),
}


def _doc(name: str) -> dict[str, Any]:
    title, description = _RULE_DOCS[name]
    return {"default": None, "title": title, "description": description}


Change = Annotated[Decimal, Field(gt=0, le=100, decimal_places=2)]
Endings = Annotated[list[Ending], Field(min_length=1), AfterValidator(_endings_distinct)]
PricePoints = Annotated[list[Money], Field(min_length=1)]
TierGap = Annotated[Decimal, Field(ge=0, lt=100, decimal_places=2)]


_PercentRule = _rule("PercentRule", Percent)
_MoneyRule = _rule("MoneyRule", Money)
_ChangeRule = _rule("ChangeRule", Change)
_EndingsRule = _rule("EndingsRule", Endings)
_PricePointsRule = _rule("PricePointsRule", PricePoints)
_SwitchRule = _rule("SwitchRule", bool)
_TierGapRule = _rule("TierGapRule", TierGap)
_CompetitorIndexRule = _rule("CompetitorIndexRule", CompetitorBand)


class RuleValues(_Strict):
    """The rules of one scope. Every field may be left out to inherit from the wider scope."""

    margin_floor_pct: _PercentRule | None = Field(**_doc("margin_floor_pct"))
    min_price: _MoneyRule | None = Field(**_doc("min_price"))
    max_price: _MoneyRule | None = Field(**_doc("max_price"))
    max_change_pct: _ChangeRule | None = Field(**_doc("max_change_pct"))
    max_change_abs: _MoneyRule | None = Field(**_doc("max_change_abs"))
    uncertain_max_change_pct: _ChangeRule | None = Field(**_doc("uncertain_max_change_pct"))
    endings: _EndingsRule | None = Field(**_doc("endings"))
    price_points: _PricePointsRule | None = Field(**_doc("price_points"))
    family: _SwitchRule | None = Field(**_doc("family"))
    ladder: _SwitchRule | None = Field(**_doc("ladder"))
    tier: _TierGapRule | None = Field(**_doc("tier"))
    competitor_index: _CompetitorIndexRule | None = Field(**_doc("competitor_index"))
    objective: Objective | None = Field(
        default=None, title="Objective", description="What the optimizer maximises for these SKUs."
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> RuleValues:
        low, high = _value(self.min_price), _value(self.max_price)
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_price {low} is greater than max_price {high}")
        return self


def _value(setting: RuleSetting | None) -> Any:
    return None if setting is None else setting.value


# What applies where nothing more specific is configured.
BUILTIN_DEFAULTS: dict[str, Any] = {
    "margin_floor_pct": Decimal(5),
    "min_price": Decimal("0.10"),
    "max_price": Decimal("9999.99"),
    "max_change_pct": Decimal(10),
    "max_change_abs": None,
    "uncertain_max_change_pct": Decimal(3),
    "endings": [".99", ".49"],
    "price_points": None,
    "family": True,
    "ladder": True,
    "tier": Decimal(10),
    "competitor_index": None,
}
DEFAULT_OBJECTIVE = {"maximize": "profit", "revenue_weight": Decimal("0.5"), "drift_penalty_pct": Decimal(0)}
RULE_NAMES = tuple(BUILTIN_DEFAULTS)


class DefaultRules(RuleValues):
    """Rules for every SKU unless a narrower scope overrides them; what is left out has a built-in
    default (pricing.rules.config.BUILTIN_DEFAULTS)."""


class SolverConfig(_Strict):
    """How long and how exactly the optimizer may work."""

    time_limit_s: float = Field(
        default=20.0, gt=0, le=3600, title="Time limit (s)", description="Wall-clock limit per CP-SAT solve."
    )
    relative_gap: float = Field(
        default=0.0,
        ge=0,
        le=0.1,
        title="Relative optimality gap",
        description="Stop when the objective is within this fraction of the best bound (0 = prove optimal).",
    )
    workers: int = Field(default=1, ge=1, le=64, title="Solver workers", description="CP-SAT search threads.")
    log: bool = Field(default=False, title="Solver log", description="Print the CP-SAT search log.")
    group_solver: Literal["auto", "cpsat"] = Field(
        default="auto",
        title="Group solver",
        description=(
            "auto: groups shaped as a tree (ladders, tier pairs, families) are solved exactly by dynamic "
            "programming and only groups with a cycle by CP-SAT; cpsat: every group by CP-SAT."
        ),
    )


class ChangeBudget(_Strict):
    """At most this many price changes (labels to refresh) per cycle in the store."""

    max_changes: int | None = Field(default=None, ge=0, title="Maximum changes", description="Changed prices per cycle.")
    max_share_pct: Decimal | None = Field(
        default=None, ge=0, le=100, title="Maximum share (%)", description="Changed prices per cycle, % of priced SKUs."
    )
    hard: bool = Field(default=True, title="Hard", description="false: each change over the budget costs `penalty`.")
    priority: int = Field(
        default=DEFAULT_PRIORITY["change_budget"], ge=0, le=1000, title="Priority",
        description="When the changes the rules force exceed the budget, the budget is relaxed if its priority is "
        "the lowest (it always is unless raised).",
    )
    penalty: Money | None = Field(default=None, title="Penalty", description="Cost per change over the budget, per day.")

    @model_validator(mode="after")
    def _one_limit(self) -> ChangeBudget:
        if (self.max_changes is None) == (self.max_share_pct is None):
            raise ValueError("set exactly one of max_changes and max_share_pct")
        return self

    def limit(self, priced: int) -> int:
        if self.max_changes is not None:
            return self.max_changes
        assert self.max_share_pct is not None
        return int(self.max_share_pct * priced / 100)


class ApprovalBand(_Strict):
    """Changes larger than this are held for a pricing manager's approval instead of pushed."""

    max_change_pct: Decimal | None = Field(
        default=None, gt=0, le=100, title="Up to (%)", description="Changes beyond this % of today's price need approval."
    )
    max_change_abs: Money | None = Field(
        default=None, title="Up to (amount)", description="Changes beyond this amount need approval."
    )


@dataclass(frozen=True)
class Enforcement:
    """How one resolved rule is enforced for a SKU."""

    hard: bool
    priority: int
    penalty_cents: int


@dataclass(frozen=True)
class ResolvedRules:
    """The rules in force for one SKU, money in integer cents (None: the rule does not apply)."""

    margin_floor_pct: Decimal
    min_price_cents: int
    max_price_cents: int
    max_change_pct: Decimal
    max_change_abs_cents: int | None
    uncertain_max_change_pct: Decimal
    endings: tuple[str, ...]
    price_points_cents: tuple[int, ...] | None
    family: bool
    ladder: bool
    tier_gap_pct: Decimal
    competitor_band: CompetitorBand | None
    maximize: str
    revenue_weight: Decimal
    drift_penalty_pct: Decimal
    enforcement: dict[str, Enforcement]

    def hard(self, rule: str) -> bool:
        return self.enforcement[rule].hard


#: The scopes a rules file may name, with what each names in products.csv.
SCOPE_COLUMNS: dict[str, tuple[str, str, str]] = {
    "categories": ("category", "category", "categories"),
    "brands": ("brand", "brand", "brands"),
    "skus": ("sku", "SKU", "SKUs"),
}
#: The zone scope: it names a chain's price zone (stores.csv ``zone``), not a products.csv column.
ZONE_SCOPE = "zones"
#: Every named scope section of a rules file, in precedence order (widest first).
SCOPE_SECTIONS: tuple[str, ...] = (ZONE_SCOPE, *SCOPE_COLUMNS)


@dataclass(frozen=True)
class RulesSource:
    """The file a RulesConfig was read from: its path as given, the SHA-256 of its bytes and the
    line of each scope it names (``("categories", "snacks") -> 57``)."""

    path: Path
    sha256: str
    scope_lines: Mapping[tuple[str, str], int]

    def where(self, section: str, name: str) -> str:
        line = self.scope_lines.get((section, name))
        return f"{self.path}:{line}" if line is not None else str(self.path)


class RulesConfig(_Strict):
    """config/rules.yaml: the pricing rules of one store (or chain)."""

    _source: RulesSource | None = PrivateAttr(default=None)

    currency: str = Field(
        default="EUR", pattern=r"^[A-Z]{3}$", title="Currency", description="ISO 4217 code of the store's currency."
    )
    default: DefaultRules = Field(
        default_factory=DefaultRules, title="Default rules", description="Rules for every SKU."
    )
    zones: dict[str, RuleValues] = Field(
        default_factory=dict,
        title="Zone overrides",
        description=(
            "Per price zone of a chain (stores.csv `zone`), the rules that differ from the defaults; categories, "
            "brands and SKUs override them. Used only when a zone is priced (a store priced on its own ignores them)."
        ),
    )
    categories: dict[str, RuleValues] = Field(
        default_factory=dict, title="Category overrides", description="Per category, the rules that differ."
    )
    brands: dict[str, RuleValues] = Field(
        default_factory=dict, title="Brand overrides", description="Per brand, the rules that differ (over the category's)."
    )
    skus: dict[str, RuleValues] = Field(
        default_factory=dict, title="SKU overrides", description="Per SKU, the rules that differ (most specific)."
    )
    on_conflict: Literal["relax", "hold"] = Field(
        default="relax",
        title="On conflicting hard rules",
        description="relax: relax the lowest-priority rule until a price is possible, and report it; "
        "hold: keep the SKU (or group) at today's price and report it.",
    )
    endings_force_change: bool = Field(
        default=False,
        title="Endings force a change",
        description="false (default): endings apply to new prices; today's price that breaks only the endings "
        "may stay, and no price changes just to end right. true: today's price that breaks the endings must change.",
    )
    change_budget: ChangeBudget | None = Field(
        default=None, title="Change budget", description="At most this many price changes per cycle in the store."
    )
    approval: ApprovalBand | None = Field(
        default=None, title="Approval band", description="Larger changes wait for approval (esl-pricing approve)."
    )
    max_candidates: int = Field(
        default=20,
        ge=2,
        le=200,
        title="Candidate prices per SKU",
        description="At most this many allowed prices are scored per SKU (spread evenly over its allowed range).",
    )
    solver: SolverConfig = Field(default_factory=SolverConfig, title="Solver", description="Optimizer limits.")

    @field_validator("zones", "categories", "brands", "skus")
    @classmethod
    def _merged_min_le_max(cls, overrides: dict[str, RuleValues], info: ValidationInfo) -> dict[str, RuleValues]:
        default = info.data.get("default")
        if default is None:  # the defaults themselves failed; that error is reported on its own
            return overrides
        scope = {"zones": "zone", "categories": "category", "brands": "brand", "skus": "SKU"}[str(info.field_name)]
        for name, override in overrides.items():
            merged = cls._merge([default, override])
            low, high = merged["min_price"].value, merged["max_price"].value
            if low > high:
                raise ValueError(
                    f"{scope} '{name}': min_price {low} is greater than max_price {high} once merged with the defaults"
                )
        return overrides

    @property
    def source(self) -> RulesSource | None:
        """The file these rules were read from (None: built in code)."""
        return self._source

    def unmatched_scopes(self, products: pd.DataFrame, zones: Collection[str] | None = None) -> list[str]:
        """One ``FILE:LINE: categories.NAME: ...`` line per category, brand or SKU scope that names
        nothing in ``products`` (its rules would never apply: a misspelt or stale name); [] when
        every scope matches a product. Without a source file the lines start with ``rules:``.

        ``zones``: the chain's zones (stores.csv ``zone``); each ``zones.NAME`` scope that is not one
        of them is a line too (``FILE:LINE: zones.NAME: no store is in this zone ...``). None (a
        store priced on its own): zone scopes are not checked, as they never apply there."""
        problems: list[str] = []
        if zones is not None:
            known = {str(zone) for zone in zones}
            for name in (str(zone) for zone in self.zones):
                if name not in known:
                    where = self._source.where(ZONE_SCOPE, name) if self._source is not None else "rules"
                    problems.append(f"{where}: {ZONE_SCOPE}.{name}: {_no_zone(name, known)}")
        for section, (column, noun, plural) in SCOPE_COLUMNS.items():
            names = [str(name) for name in getattr(self, section)]
            if not names:
                continue
            present = set(products[column].dropna().astype(str)) if column in products.columns else set()
            for name in names:
                if name in present:
                    continue
                where = self._source.where(section, name) if self._source is not None else "rules"
                problems.append(f"{where}: {section}.{name}: {_no_match(name, noun, plural, present)}")
        return problems

    def check_scopes(self, products: pd.DataFrame, zones: Collection[str] | None = None) -> None:
        """Raise ConfigError (one FILE:LINE line per scope) when a scope names nothing in ``products``
        (or, with ``zones``, a zone scope names no zone of the chain)."""
        problems = self.unmatched_scopes(products, zones)
        if problems:
            raise ConfigError(problems)

    def scopes(
        self, category: str | None, brand: str | None = None, sku: str | None = None, *, zone: str | None = None
    ) -> list[RuleValues]:
        """The scopes that apply to a SKU, widest first (``zone``: the zone's scope after the defaults)."""
        chain: list[RuleValues] = [self.default]
        for table, key in ((self.zones, zone), (self.categories, category), (self.brands, brand), (self.skus, sku)):
            if key is not None and key in table:
                chain.append(table[key])
        return chain

    def for_zone(self, zone: str | None) -> RulesConfig:
        """These rules as a single store of ``zone`` sees them: the zone's overrides folded into
        ``default`` (attribute by attribute, objective field by field) and no ``zones`` section, so
        every resolver that knows no zones (pricing.rules.candidates, the last gate) resolves
        ``for_zone(z).resolve(c, b, s) == resolve(c, b, s, zone=z)``. The source file is kept (plans
        record it; FILE:LINE errors still point into it). ``None`` or a zone without overrides: the
        defaults unchanged."""
        override = self.zones.get(zone) if zone is not None else None
        update: dict[str, Any] = {"zones": {}}
        if override is not None:
            update["default"] = _fold(self.default, override)
        folded = self.model_copy(update=update)
        folded._source = self._source
        return folded

    @staticmethod
    def _merge(chain: list[RuleValues]) -> dict[str, RuleSetting]:
        merged: dict[str, dict[str, Any]] = {
            name: {"value": BUILTIN_DEFAULTS[name], "hard": True, "priority": DEFAULT_PRIORITY[name],
                   "penalty": DEFAULT_PENALTY}
            for name in RULE_NAMES
        }
        for scope in chain:
            for name in RULE_NAMES:
                setting = getattr(scope, name)
                if setting is not None:
                    merged[name].update(
                        {key: getattr(setting, key) for key in _SETTING_KEYS if getattr(setting, key) is not None}
                    )
        return {name: RuleSetting.model_construct(**attrs) for name, attrs in merged.items()}

    def resolve(
        self, category: str | None, brand: str | None = None, sku: str | None = None, *, zone: str | None = None
    ) -> ResolvedRules:
        """The rules in force for one SKU: each rule from the most specific scope that sets it.
        ``zone`` (a chain's price zone): its scope sits between the defaults and the category's;
        None (a store priced on its own) ignores every zone scope."""
        chain = self.scopes(category, brand, sku, zone=zone)
        merged = self._merge(chain)
        objective = dict(DEFAULT_OBJECTIVE)
        for scope in chain:
            if scope.objective is not None:
                objective.update(scope.objective.model_dump(exclude_none=True))
        values = {name: setting.value for name, setting in merged.items()}
        points = values["price_points"]
        return ResolvedRules(
            margin_floor_pct=values["margin_floor_pct"],
            min_price_cents=to_cents(values["min_price"]),
            max_price_cents=to_cents(values["max_price"]),
            max_change_pct=values["max_change_pct"],
            max_change_abs_cents=None if values["max_change_abs"] is None else to_cents(values["max_change_abs"]),
            uncertain_max_change_pct=values["uncertain_max_change_pct"],
            endings=tuple(values["endings"]),
            price_points_cents=None if points is None else tuple(sorted({to_cents(p) for p in points})),
            family=bool(values["family"]),
            ladder=bool(values["ladder"]),
            tier_gap_pct=values["tier"],
            competitor_band=values["competitor_index"],
            maximize=objective["maximize"],
            revenue_weight=objective["revenue_weight"],
            drift_penalty_pct=objective["drift_penalty_pct"],
            enforcement={
                name: Enforcement(bool(s.hard), int(s.priority), to_cents(s.penalty)) for name, s in merged.items()
            },
        )


def _fold(default: DefaultRules, override: RuleValues) -> DefaultRules:
    """``default`` with ``override`` laid over it the way ``RulesConfig._merge`` merges scopes."""
    update: dict[str, Any] = {}
    for name in RULE_NAMES:
        setting = getattr(override, name)
        if setting is None:
            continue
        base = getattr(default, name)
        given = {key: getattr(setting, key) for key in _SETTING_KEYS if getattr(setting, key) is not None}
        update[name] = setting if base is None else base.model_copy(update=given)
    if override.objective is not None:
        base_objective = default.objective
        update["objective"] = (
            override.objective if base_objective is None
            else base_objective.model_copy(update=override.objective.model_dump(exclude_none=True))
        )
    return default.model_copy(update=update)


def _no_zone(name: str, known: set[str]) -> str:
    """Why a zone scope matches no zone of the chain, with the nearest zone name."""
    guess = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f"; did you mean '{guess[0]}'?" if guess else ""
    if not known:
        return f"no store is in this zone (the chain has no zones){hint}"
    if len(known) > 12:
        return f"no store is in this zone ({len(known)} zones in the chain){hint}"
    return f"no store is in this zone (the chain's zones: {', '.join(sorted(known))}){hint}"


def _no_match(name: str, noun: str, plural: str, present: set[str]) -> str:
    """Why a scope matches nothing, with the nearest name the products have."""
    guess = difflib.get_close_matches(name, sorted(present), n=1, cutoff=0.6)
    hint = f"; did you mean '{guess[0]}'?" if guess else ""
    if not present:
        return f"no product has this {noun} (the products have no {noun} column or values){hint}"
    if noun == "SKU" or len(present) > 12:
        return f"no product has this {noun} ({len(present)} {plural} in the products){hint}"
    return f"no product has this {noun} (the products' {plural}: {', '.join(sorted(present))}){hint}"


def _scope_lines(text: str) -> dict[tuple[str, str], int]:
    """The 1-based line of every key under ``zones``, ``categories``, ``brands`` and ``skus``."""
    data = YAML(typ="rt").load(text)
    lines: dict[tuple[str, str], int] = {}
    if not isinstance(data, CommentedMap):
        return lines
    for section in SCOPE_SECTIONS:
        table = data.get(section)
        if isinstance(table, CommentedMap):
            for key in table:
                lines[(section, str(key))] = table.lc.key(key)[0] + 1
    return lines


#: ``--rules example``: the packaged example rules (a copy of the repository's config/rules.yaml).
EXAMPLE_RULES = "example"


def example_rules_path() -> Path:
    """The packaged example rules file, the same text as the repository's config/rules.yaml."""
    return Path(__file__).with_name("example_rules.yaml")


def load_rules(path: str | Path) -> RulesConfig:
    """Read config/rules.yaml (or another rules file), remembering the file (``source``: path,
    SHA-256, each scope's line). Raises ConfigError."""
    config = load_yaml_model(path, RulesConfig)
    raw = Path(path).read_bytes()
    config._source = RulesSource(
        Path(path), hashlib.sha256(raw).hexdigest(), _scope_lines(raw.decode("utf-8-sig"))
    )
    return config
