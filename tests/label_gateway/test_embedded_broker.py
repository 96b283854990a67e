"""The embedded amqtt broker (what a fresh machine uses) carries a real push end to end."""

from __future__ import annotations

import pytest

from label_gateway.broker import BrokerAddress, BrokerError, connect, new_client
from label_gateway.delivery import push_prices
from label_gateway.embedded_broker import EmbeddedBroker
from label_gateway.outbox import Outbox
from label_gateway.protocol import Topics
from simulator.gateways import SimulatedGateways


def test_push_through_embedded_broker(tmp_path) -> None:
    labels = [(f"L{i}", f"gw-{i % 2}", f"{i:04d}") for i in range(50)]
    prices = {sku: 199 + i for i, (_, _, sku) in enumerate(labels)}
    with EmbeddedBroker() as broker:
        address = BrokerAddress(broker.host, broker.port)
        topics = Topics("store-1", prefix="embedded")
        with SimulatedGateways(address, topics, labels) as sim:
            outbox = Outbox.open(tmp_path / "engine.db", "store-1")
            report = push_prices(prices, labels, address, topics, outbox, currency="EUR", correlation="p")
            assert len(report.confirmed) == 50 and not report.failed
            assert {k: v.price_cents for k, v in sim.displayed().items()} == {
                label: prices[sku] for label, _, sku in labels
            }


def test_stopped_broker_is_unreachable() -> None:
    broker = EmbeddedBroker().start()
    address = BrokerAddress(broker.host, broker.port)
    broker.stop()
    with pytest.raises(BrokerError, match="cannot reach"):
        connect(new_client("x"), address, timeout=2)
