"""The price plan: what each SKU should cost, why, and what it is expected to bring.

A plan is plain data. It is written as JSON (the full record) and CSV (one line per SKU, for
spreadsheets); money is decimal text in both, integer cents inside.

A plan file is read back by ``esl-pricing apply`` and ``approve`` and by the review page, and a
person may have edited it, so reading checks what would otherwise crash later or reach a label:
prices are whole cents (an integer: never ``2.5``, ``"260"`` or ``true``), old and new prices are
> 0, a cost is >= 0 or null, expected units and profits are finite numbers, a SKU is a SKU and
appears once, the store and the plan id are ids (pricing.core.data.ID_PATTERN: the store is an
MQTT topic level, the plan id a file name), the currency is three capitals and ``created_at``
has a time zone. The last gate (pricing.store.last_gate) still checks every price against cost
before it is pushed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import numbers
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pricing.core.files import atomic_write_text
from pricing.core.ids import id_problem, shown, sku_problem
from pricing.core.money import to_decimal

LineStatus = Literal["change", "keep", "held", "approval", "rejected"]
PUSHED_STATUSES = ("change",)


def _whole_cents(value: object) -> int:
    """An integer (not a bool, a float or a text): money in a plan is whole cents."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise PydanticCustomError(
            "whole_cents", "must be whole cents (an integer), got {value}", {"value": repr(value)}
        )
    return int(value)


def _positive(cents: int) -> int:
    if cents <= 0:
        raise PydanticCustomError("positive_cents", "must be more than 0 cents, got {value}", {"value": cents})
    return cents


def _not_negative(cents: int | None) -> int | None:
    if cents is not None and cents < 0:
        raise PydanticCustomError("negative_cents", "must be 0 cents or more, got {value}", {"value": cents})
    return cents


def _check(problem: str | None) -> None:
    if problem is not None:
        raise PydanticCustomError("bad_id", "{problem}", {"problem": problem})


def _sku(value: str) -> str:
    _check(sku_problem(value))
    return value


def _id(value: str) -> str:
    _check(id_problem(value))
    return value


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise PydanticCustomError("currency", "must be an ISO 4217 code such as EUR, got '{value}'",
                                  {"value": shown(value)})
    return value


PriceCents = Annotated[int, BeforeValidator(_whole_cents), AfterValidator(_positive)]
CostCents = Annotated[int | None, BeforeValidator(lambda v: v if v is None else _whole_cents(v)),
                      AfterValidator(_not_negative)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class PlanLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Annotated[str, AfterValidator(_sku)]
    name: str
    category: str
    status: LineStatus = Field(
        description=(
            "change: new price, to push; keep: the best allowed price is today's; held: not priced (reason in "
            "explanation); approval: a change beyond the approval band, waiting for esl-pricing approve; "
            "rejected: a change a pricing manager rejected (not pushed)"
        )
    )
    old_cents: PriceCents
    new_cents: PriceCents
    cost_cents: CostCents
    units_old: Finite | None = Field(description="Expected units per day at the old price")
    units_new: Finite | None = Field(description="Expected units per day at the new price")
    profit_old_cents: Finite | None = Field(description="Expected profit per day at the old price, cents")
    profit_new_cents: Finite | None = Field(description="Expected profit per day at the new price, cents")
    binding_rule: str = Field(description="The rule that decided the price, or the reason it was held")
    explanation: str
    relaxed_rules: list[str] = Field(
        default_factory=list, description="Hard rules relaxed for this SKU because they conflicted (lowest priority first)"
    )
    soft_rules_broken: list[str] = Field(
        default_factory=list, description="Soft rules the new price breaks (their penalty was worth paying)"
    )
    group: str | None = Field(default=None, description="The family, ladder or tier group the SKU was priced with")
    decided_by: str | None = Field(default=None, description="Who approved or rejected a change held for approval")
    decided_at: datetime | None = Field(default=None, description="When it was approved or rejected")

    @property
    def change_pct(self) -> float:
        return (self.new_cents - self.old_cents) / self.old_cents * 100


class SolverStats(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str
    objective_cents: float
    bound_cents: float
    seconds: float
    gap_pct: float = Field(default=0.0, description="How far the objective may be from the optimum, % (0: proved)")
    changes: int = Field(default=0, description="Prices the plan changes (including those awaiting approval)")
    budget_price_cents: float = Field(
        default=0.0, description="With a binding change budget: the expected gain per day a change had to beat"
    )
    budget_relaxed: bool = Field(default=False, description="The rules forced more changes than the budget allows")
    groups_dp: int = Field(default=0, description="Linked groups solved exactly by dynamic programming")
    groups_cpsat: int = Field(default=0, description="Linked groups solved by CP-SAT")


class InputFile(BaseModel):
    """One file a plan was computed from: where it was and the SHA-256 of its bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="The file's absolute path when the plan was made")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes, hex")


def input_file(path: Path) -> InputFile:
    """The record of ``path`` as it is now: absolute path and content hash (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return InputFile(path=str(path.resolve()), sha256=digest.hexdigest())


class PlanInputs(BaseModel):
    """What a plan was computed from, so it can be told apart from one made with other inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: InputFile | None = Field(default=None, description="The rules file (null: rules built in code)")
    model: InputFile | None = Field(default=None, description="The demand model file (null: not a saved model)")
    data: list[InputFile] = Field(
        default_factory=list, description="The store's data files read (products, sales or receipts, labels ...)"
    )


class PricePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: Annotated[str, AfterValidator(_id)]
    created_at: AwareDatetime
    store: Annotated[str, AfterValidator(_id)]
    currency: Annotated[str, AfterValidator(_currency)]
    model: str = Field(description="Which demand model scored the candidates")
    lines: list[PlanLine]
    solver: SolverStats
    rejected_rows: int = Field(default=0, description="Input rows rejected by validation")
    notes: list[str] = Field(default_factory=list, description="Plan-wide remarks: relaxed budget, unusable groups")
    inputs: PlanInputs | None = Field(default=None, description="The files the plan was computed from (null in older plans)")

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> PricePlan:
        seen: set[str] = set()
        for i, line in enumerate(self.lines):
            if line.sku in seen:
                raise PydanticCustomError(
                    "duplicate_sku", "lines[{i}]: sku '{sku}' is in the plan twice", {"i": i, "sku": shown(line.sku)}
                )
            seen.add(line.sku)
        return self

    @property
    def changes(self) -> list[PlanLine]:
        return [line for line in self.lines if line.status == "change"]

    @property
    def held(self) -> list[PlanLine]:
        return [line for line in self.lines if line.status == "held"]

    @property
    def awaiting_approval(self) -> list[PlanLine]:
        return [line for line in self.lines if line.status == "approval"]

    def decide(self, skus: list[str] | None, *, approve: bool, by: str, at: datetime) -> list[str]:
        """Approve (status change: pushed by apply) or reject the listed SKUs' changes awaiting
        approval, all of them when ``skus`` is None; the waiting members of a listed SKU's family,
        ladder or tier group are decided with it. Returns the SKUs decided; raises KeyError
        naming a listed SKU that is not awaiting approval."""
        waiting = {line.sku: i for i, line in enumerate(self.lines) if line.status == "approval"}
        chosen = list(waiting) if skus is None else skus
        unknown = [sku for sku in chosen if sku not in waiting]
        if unknown:
            raise KeyError(", ".join(unknown))
        # A linked group is decided as one: its waiting members join the first of them chosen.
        groups = {self.lines[waiting[sku]].group for sku in chosen} - {None}
        mates = [line.sku for line in self.lines if line.status == "approval" and line.group in groups]
        chosen = list(dict.fromkeys([*chosen, *mates]))
        for sku in chosen:
            i = waiting[sku]
            self.lines[i] = self.lines[i].model_copy(
                update={"status": "change" if approve else "rejected", "decided_by": by, "decided_at": at}
            )
        return chosen

    def expected_profit(self) -> tuple[float, float]:
        """Total expected daily profit (cents) at old and new prices over the priced SKUs (changes
        awaiting approval counted as if approved)."""
        priced = [line for line in self.lines if line.status not in ("held", "rejected")]
        old = sum(line.profit_old_cents or 0.0 for line in priced)
        new = sum(line.profit_new_cents or 0.0 for line in priced)
        return old, new

    def expected_profit_delta_pct(self) -> float:
        old, new = self.expected_profit()
        return (new - old) / abs(old) * 100 if old else 0.0

    def new_prices(self) -> dict[str, int]:
        """sku -> new price in cents, for the lines to push (changes, approved ones included)."""
        return {line.sku: line.new_cents for line in self.changes}

    def proposed_prices(self) -> dict[str, int]:
        """sku -> new price, including changes still awaiting approval (as if all were approved)."""
        return {line.sku: line.new_cents for line in self.lines if line.status in ("change", "approval")}

    # -- files -----------------------------------------------------------------------------
    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``<plan_id>.json`` and ``<plan_id>.csv`` into directory, each file replaced whole
        (a reader sees the old or the new plan, never half of one)."""
        json_path = directory / f"{self.plan_id}.json"
        csv_path = directory / f"{self.plan_id}.csv"
        table = io.StringIO(newline="")
        writer = csv.writer(table)
        writer.writerow(CSV_COLUMNS)
        for line in self.lines:
            writer.writerow(_csv_row(line))
        atomic_write_text(csv_path, table.getvalue())
        atomic_write_text(json_path, self.model_dump_json(indent=2) + "\n")
        return json_path, csv_path

    @classmethod
    def read(cls, path: Path) -> PricePlan:
        return cls.model_validate(json.loads(path.read_text()))


CSV_COLUMNS = [
    "sku", "name", "category", "status", "old_price", "new_price", "change_pct", "cost",
    "units_old", "units_new", "profit_old", "profit_new", "binding_rule", "explanation",
    "relaxed_rules", "soft_rules_broken", "group", "decided_by", "decided_at",
]


def _money(cents: float | None) -> str:
    return "" if cents is None else str(to_decimal(round(cents)))


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _csv_row(line: PlanLine) -> list[str]:
    return [
        line.sku, line.name, line.category, line.status,
        _money(line.old_cents), _money(line.new_cents), f"{line.change_pct:.2f}", _money(line.cost_cents),
        _number(line.units_old), _number(line.units_new),
        _money(line.profit_old_cents), _money(line.profit_new_cents),
        line.binding_rule, line.explanation,
        ";".join(line.relaxed_rules), ";".join(line.soft_rules_broken), line.group or "", line.decided_by or "",
        "" if line.decided_at is None else line.decided_at.isoformat(),
    ]
