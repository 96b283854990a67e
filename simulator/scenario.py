"""A simulator scenario: which labels and gateways a store has, and how they behave (config/scenario.yaml).

Read with ``load_scenario(path)``; problems are ``FILE:LINE: key.path: message`` lines (a
ConfigError, as for the rules). Defaults follow OpenEPaperLink figures: labels check in about every
40 s, a ~9.5 kB image takes about 2 s at ~5 kB/s, a battery is low around 2450 mV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pricing.core.yaml_config import load_yaml_model
from simulator.gateways import GatewayOptions, SimulatorError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_STORE = "store-001"
MAX_LABELS = 1_000_000

TopicLevel = Annotated[str, StringConstraints(min_length=1, pattern=r"^[^/+#\s]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelSource(_Strict):
    """Where the store's labels come from: a labels.csv, or generated."""

    from_csv: Path | None = Field(
        default=None,
        title="labels.csv",
        description="A store's labels.csv (label_id, store, gateway, sku, tag_type); relative paths are "
        "relative to the scenario file.",
    )
    gateways: int | None = Field(
        default=None, ge=1, le=999, title="Gateways", description="Generate this many gateways (gw-01, gw-02, ...)."
    )
    per_gateway: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        title="Labels per gateway",
        description="Generate this many labels per gateway (L000000, ...; one label per sku, sku = label number).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> LabelSource:
        generated = self.gateways is not None or self.per_gateway is not None
        if self.from_csv is not None and generated:
            raise ValueError("give either from_csv or gateways/per_gateway, not both")
        if self.from_csv is None and not generated:
            raise ValueError("give from_csv (a labels.csv) or gateways and per_gateway (generated labels)")
        if generated and (self.gateways is None or self.per_gateway is None):
            raise ValueError("generated labels need both gateways and per_gateway")
        if generated and (self.gateways or 0) * (self.per_gateway or 0) > MAX_LABELS:
            raise ValueError(f"gateways x per_gateway is more than {MAX_LABELS:,} labels")
        return self

    @property
    def gateway_ids(self) -> list[str] | None:
        """The generated gateways' ids (None for labels from a CSV)."""
        if self.gateways is None:
            return None
        return [generated_gateway(g) for g in range(self.gateways)]


class Timing(_Strict):
    """How long things take on the air (ignored with fast: true)."""

    checkin_interval_s: float = Field(
        default=40.0,
        ge=0,
        le=86_400,
        title="Check-in interval (s)",
        description="Labels poll their gateway about this often and pick up an update at their next check-in "
        "(OpenEPaperLink: ~40 s). 0: at once.",
    )
    radio_seconds_per_update: float = Field(
        default=2.0,
        ge=0,
        le=600,
        title="Radio time per update (s)",
        description="Air time of one label image (~9.5 kB at ~5 kB/s); a gateway's radio sends one at a time.",
    )
    ack_flush_ms: int = Field(
        default=20, ge=1, le=60_000, title="Ack flush (ms)", description="Gateways send their acks in batches this often."
    )
    status_interval_s: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        title="Status heartbeat (s)",
        description="How often a gateway republishes its retained online status with label counts.",
    )


class Radio(_Strict):
    """What the radio loses."""

    loss_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        title="Update loss rate",
        description="Share of desired states the radio loses: the label never gets it and no ack is sent.",
    )
    ack_loss_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        title="Ack loss rate",
        description="Share of acks lost on the way back: the label applied the update but no ack arrives.",
    )
    attempts: int = Field(
        default=15,
        ge=1,
        le=1000,
        title="Transfer attempts",
        description="Attempts before a label counts as unreachable this time (OpenEPaperLink: 10-20).",
    )


class Battery(_Strict):
    """Label batteries: every refresh costs a little."""

    start_mv: int = Field(default=3000, ge=1, le=10_000, title="Start (mV)", description="Battery of a new label.")
    per_refresh_mv: int = Field(
        default=1, ge=0, le=10_000, title="Per refresh (mV)", description="Drain of one display refresh."
    )
    low_mv: int = Field(
        default=2450, ge=0, le=10_000, title="Low (mV)", description="At or below: the gateway reports a low battery."
    )
    empty_mv: int = Field(
        default=2200,
        ge=0,
        le=10_000,
        title="Empty (mV)",
        description="At or below: the label is dead for good and never answers again.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Battery:
        if self.low_mv <= self.empty_mv:
            raise ValueError(f"low_mv {self.low_mv} must be above empty_mv {self.empty_mv}")
        if self.start_mv <= self.empty_mv:
            raise ValueError(
                f"start_mv {self.start_mv} must be above empty_mv {self.empty_mv} "
                "(for labels that never answer use dead_labels)"
            )
        return self


class DeadLabels(_Strict):
    """Labels that never answer (broken, or battery long gone)."""

    rate: float = Field(default=0.0, ge=0, le=1, title="Rate", description="Share of labels that are dead (seeded).")
    ids: list[str] = Field(default_factory=list, title="Label ids", description="These labels are dead.")


class Outage(_Strict):
    """A gateway that drops off abruptly (the broker publishes its last will) and comes back."""

    gateway: TopicLevel = Field(title="Gateway", description="The gateway's id, e.g. gw-02.")
    at_s: float = Field(ge=0, title="At (s)", description="Seconds after the simulator started.")
    for_s: float = Field(gt=0, title="For (s)", description="Seconds it stays away.")


class Scenario(_Strict):
    """config/scenario.yaml: a simulated store's gateways and labels, and how they behave."""

    store: TopicLevel | None = Field(
        default=None,
        title="Store",
        description=f"Store id (topic level). Default: the store in labels.csv, else {DEFAULT_STORE}.",
    )
    labels: LabelSource = Field(title="Labels", description="From a labels.csv, or generated.")
    seed: int = Field(default=0, title="Seed", description="The same seed gives the same losses, dead labels, phases.")
    fast: bool = Field(
        default=False,
        title="Fast mode",
        description="true: no check-in wait and no radio time (updates take milliseconds), for tests and benchmarks.",
    )
    timing: Timing = Field(default_factory=Timing, title="Timing", description="Check-in, radio and ack timing.")
    radio: Radio = Field(default_factory=Radio, title="Radio", description="Losses on the air.")
    battery: Battery = Field(default_factory=Battery, title="Battery", description="Label battery in millivolts.")
    dead_labels: DeadLabels = Field(
        default_factory=DeadLabels, title="Dead labels", description="Labels that never answer."
    )
    outages: list[Outage] = Field(
        default_factory=list, title="Gateway outages", description="Gateways that drop off and come back."
    )

    @field_validator("outages")
    @classmethod
    def _outages_name_generated_gateways(cls, outages: list[Outage], info: ValidationInfo) -> list[Outage]:
        source = info.data.get("labels")
        known = source.gateway_ids if isinstance(source, LabelSource) else None
        if known is None:
            return outages  # labels from a CSV: checked when the simulator starts
        for number, outage in enumerate(outages, start=1):
            if outage.gateway not in known:
                raise ValueError(
                    f"outage {number}: no gateway {outage.gateway}; the generated gateways are {known[0]}..{known[-1]}"
                )
        return outages

    def gateway_options(self) -> GatewayOptions:
        """The emulator's options for this scenario (fast: true sets check-in and radio time to 0)."""
        return GatewayOptions(
            checkin_interval_s=0.0 if self.fast else float(self.timing.checkin_interval_s),
            radio_seconds_per_update=0.0 if self.fast else float(self.timing.radio_seconds_per_update),
            ack_flush_s=self.timing.ack_flush_ms / 1000,
            status_interval_s=float(self.timing.status_interval_s),
            loss_rate=float(self.radio.loss_rate),
            ack_loss_rate=float(self.radio.ack_loss_rate),
            attempts=self.radio.attempts,
            battery_start_mv=self.battery.start_mv,
            battery_per_refresh_mv=self.battery.per_refresh_mv,
            battery_low_mv=self.battery.low_mv,
            battery_empty_mv=self.battery.empty_mv,
            dead_rate=float(self.dead_labels.rate),
            dead_labels=frozenset(self.dead_labels.ids),
            seed=self.seed,
        )

    def load_labels(self, base_dir: Path | str | None = None) -> ScenarioLabels:
        """The labels, the store they belong to, and rejected CSV rows."""
        source = self.labels
        if source.from_csv is None:
            assert source.gateways is not None and source.per_gateway is not None
            return ScenarioLabels(generated_labels(source.gateways, source.per_gateway), self.store or DEFAULT_STORE)
        path = source.from_csv
        if not path.is_absolute():
            path = Path(base_dir or ".") / path
        return labels_from_csv(path, self.store)

    def label_rows(self, base_dir: Path | str | None = None) -> list[tuple[str, str, str]]:
        """(label_id, gateway, sku) of every label; a relative from_csv is read from ``base_dir``."""
        return self.load_labels(base_dir).rows


@dataclass(frozen=True)
class ScenarioLabels:
    rows: list[tuple[str, str, str]]
    store: str
    rejects: tuple[str, ...] = ()


def generated_gateway(index: int) -> str:
    return f"gw-{index + 1:02d}"


def generated_labels(gateways: int, per_gateway: int) -> list[tuple[str, str, str]]:
    """Label n (L000000, ...) shows sku f"{n:06d}" and sits on gateway n // per_gateway (gw-01, ...)."""
    return [
        (f"L{n:06d}", generated_gateway(n // per_gateway), f"{n:06d}") for n in range(gateways * per_gateway)
    ]


def labels_from_csv(path: Path, store: str | None) -> ScenarioLabels:
    """A store's labels.csv; DataError when it cannot be read, SimulatorError when the store is unclear."""
    from pricing.core.data import label_rows, load_labels

    loaded = load_labels(path)
    frame: pd.DataFrame = loaded.frame
    stores = sorted({str(s) for s in frame["store"]})
    if store is None:
        if len(stores) > 1:
            raise SimulatorError(
                f"{path}: labels of {len(stores)} stores ({', '.join(stores[:5])}); "
                "say which one with store: in the scenario"
            )
        store = stores[0] if stores else DEFAULT_STORE
    elif stores and store not in stores:
        raise SimulatorError(f"{path}: no labels for store {store} (it has {', '.join(stores[:5])})")
    else:
        frame = frame[frame["store"] == store]
    rows = [(str(label), str(gateway), str(sku)) for label, gateway, sku in label_rows(frame)]
    return ScenarioLabels(rows, store, tuple(str(r) for r in loaded.rejects))


def load_scenario(path: Path | str) -> Scenario:
    """Read a scenario YAML file. Raises ConfigError (``FILE:LINE: key.path: message`` lines).

    A relative ``labels.from_csv`` is resolved against the scenario file's directory.
    """
    scenario = load_yaml_model(path, Scenario)
    source = scenario.labels
    if source.from_csv is not None and not source.from_csv.is_absolute():
        resolved = Path(path).parent / source.from_csv
        scenario = scenario.model_copy(update={"labels": source.model_copy(update={"from_csv": resolved})})
    return scenario
