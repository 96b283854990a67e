"""A 400-tag push through the OEPL gateway against the AP emulator with realistic timings, on a
simulated clock running faster than real time.

engine (push_prices, signed) -> MQTT broker -> OeplGateway -> AP emulator (40 s check-ins, one
radio, 2 s + 2 bits a pixel at 5 kB/s per transfer) -> tags -> acks.

The bar: the push finishes within 10% of the radio-bound time (tags x one transfer's radio time:
the AP's single radio sends one image at a time), with every tag confirmed. Prints one JSON line:
tags, confirmed, simulated_seconds, radio_bound_seconds, ratio, real_seconds.

    python benchmarks/oepl_bench.py [--tags 400] [--speed 100] [--broker mqtt://127.0.0.1:1883]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from label_gateway.broker import BrokerAddress, clear_retained
from label_gateway.delivery import DeliverySettings, push_prices
from label_gateway.oepl import OeplGateway, OeplSettings, TagBinding
from label_gateway.outbox import Outbox
from label_gateway.protocol import Topics
from label_gateway.signing import Signer
from simulator.oepl_ap import HW_TYPES, AccessPoint, ApSettings, OeplServer, SimClock


def run(tags: int, speed: float, broker: str, hw_type: int = 1) -> dict[str, object]:
    address = BrokerAddress.parse(broker)
    clock = SimClock(speed=speed)
    settings = ApSettings()
    ap = AccessPoint(settings, clock)
    labels, bindings = [], {}
    for i in range(tags):
        mac = f"0000021E{i:08X}"
        ap.add_tag(mac, hw_type)
        label = f"L{i:05d}"
        labels.append((label, "gw-oepl", f"{i:05d}"))
        bindings[label] = TagBinding(label, mac)
    topics = Topics("bench-store", prefix=f"bench-{uuid.uuid4().hex[:8]}")
    signer = Signer.generate()
    prices = {sku: 100 + i for i, (_, _, sku) in enumerate(labels)}
    with tempfile.TemporaryDirectory() as tmp, OeplServer(ap) as server:
        gateway = OeplGateway(address, topics, "gw-oepl", server.url, bindings, trusted=signer.trusted(),
                              settings=OeplSettings(), clock=clock).start()
        try:
            outbox = Outbox.open(Path(tmp) / "engine.db", topics.store)
            sim0, real0 = clock.now(), time.monotonic()
            report = push_prices(prices, labels, address, topics, outbox, currency="EUR", correlation="bench",
                                 signer=signer, settings=DeliverySettings(ack_timeout_s=120, max_attempts=2))
            simulated = clock.now() - sim0
            real = time.monotonic() - real0
        finally:
            gateway.stop()
        clear_retained(address, f"{topics.prefix}/#", settle_s=0.3)
    radio_bound = tags * settings.radio_s(HW_TYPES[hw_type])
    return {
        "tags": tags,
        "confirmed": len(report.confirmed),
        "failed": len(report.failed),
        "simulated_seconds": round(simulated, 1),
        "radio_bound_seconds": round(radio_bound, 1),
        "ratio": round(simulated / radio_bound, 4),
        "real_seconds": round(real, 2),
        "speed": speed,
        "uploads": gateway.counters.uploads,
        "conflicts": gateway.counters.conflicts,
        "polls": gateway.counters.polls,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=400)
    parser.add_argument("--speed", type=float, default=100.0, help="simulated seconds per real second")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    args = parser.parse_args(argv)
    result = run(args.tags, args.speed, args.broker)
    print(json.dumps(result), flush=True)
    ok = result["confirmed"] == args.tags and float(result["ratio"]) <= 1.10  # type: ignore[arg-type]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
