"""The label emulator's apply rules, without a broker (plain data in, ack out)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from label_gateway.broker import BrokerAddress
from label_gateway.protocol import DesiredState, Topics
from simulator.gateways import GatewayEmulator


def _gateway() -> GatewayEmulator:
    return GatewayEmulator(BrokerAddress("127.0.0.1"), Topics("s"), "gw-01", {"L1": "0001", "L2": "0002"})


def _state(version: int, cents: int, label: str = "L1", sku: str = "0001") -> DesiredState:
    return DesiredState.build(label=label, sku=sku, version=version, price_cents=cents, currency="EUR", correlation="p")


updates = st.lists(st.tuples(st.integers(1, 20), st.integers(1, 5000)), min_size=1, max_size=40)


@given(updates)
def test_label_shows_the_highest_version_whatever_the_order(sequence: list[tuple[int, int]]) -> None:
    """QoS 1 may deliver late or twice: the label ends on the newest version, never an older one."""
    gateway = _gateway()
    shown_versions = []
    first_price_of: dict[int, int] = {}
    for version, cents in sequence:
        first_price_of.setdefault(version, cents)
        gateway.apply(_state(version, cents))
        shown_versions.append(gateway.displayed()["L1"].version)
    assert shown_versions == sorted(shown_versions)  # never goes back
    top = max(v for v, _ in sequence)
    final = gateway.displayed()["L1"]
    assert final.version == top and final.price_cents == first_price_of[top]


def test_duplicate_is_acknowledged_again_without_refresh() -> None:
    gateway = _gateway()
    assert gateway.apply(_state(3, 199)).status == "displayed"
    again = gateway.apply(_state(3, 199))
    assert again.status == "displayed" and again.shown_version == 3
    assert gateway.counters.applied == 1


def test_same_content_new_version_costs_no_refresh() -> None:
    gateway = _gateway()
    gateway.apply(_state(3, 199))
    ack = gateway.apply(_state(4, 199))
    assert ack.status == "unchanged" and gateway.counters.applied == 1
    assert gateway.displayed()["L1"].version == 4


def test_older_version_is_stale() -> None:
    gateway = _gateway()
    gateway.apply(_state(5, 199))
    ack = gateway.apply(_state(4, 149))
    assert ack.status == "stale" and ack.shown_version == 5
    assert gateway.displayed()["L1"].price_cents == 199


def test_unknown_label_or_wrong_sku_is_rejected_with_reason() -> None:
    gateway = _gateway()
    unknown = gateway.apply(_state(1, 199, label="L9"))
    assert unknown.status == "rejected" and "no label L9" in (unknown.reason or "")
    wrong = gateway.apply(_state(1, 199, label="L2", sku="0001"))
    assert wrong.status == "rejected" and "another sku" in (wrong.reason or "")
    assert gateway.displayed() == {}
