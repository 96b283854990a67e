"""`esl-pricing gateway ...`: gateway processes that carry our MQTT protocol to real label hardware.

`gateway oepl` runs one gateway for an OpenEPaperLink access point (label_gateway/oepl.py) until
SIGTERM, Ctrl-C or --duration. Rich output goes to stderr; ``--json`` prints one JSON object as the
last line of stdout. Exit codes: 0 ok, 1 failure (broker or access point unreachable), 2 user
error (a bad tags file, a bad option).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from label_gateway.broker import BrokerAddress
from label_gateway.oepl import Product
from label_gateway.protocol import DEFAULT_PREFIX, Topics
from label_gateway.signing import TRUST_ENV, TrustedKeys
from pricing.cli import common
from pricing.cli.common import (
    EXIT_FAILURE,
    BrokerOption,
    JsonOption,
    PrefixOption,
    command_group,
    emit_json,
    err,
    fail,
    stop_on_signals,
)

gateway_app = command_group("Gateway processes for real label hardware (OpenEPaperLink).")


def register(app: typer.Typer) -> None:
    app.add_typer(gateway_app, name="gateway")


@gateway_app.command("oepl")
def gateway_oepl(
    ap: Annotated[str, typer.Option("--ap", help="The OpenEPaperLink access point, http://HOST[:PORT].")],
    gateway: Annotated[str, typer.Option(help="This gateway's id (the MQTT topic level of its labels).")],
    store: Annotated[str, typer.Option(help="Store id.")],
    broker: BrokerOption = "mqtt://127.0.0.1:1883",
    prefix: PrefixOption = DEFAULT_PREFIX,
    tags: Annotated[
        Path | None, typer.Option(help="Tags file: label_id, mac[, tag_type] (one row per label of this gateway).")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="A labels.csv with a mac column (rows of this store and gateway are used).")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Store data directory: names, sizes and units from its products.csv.")
    ] = None,
    trust: Annotated[
        Path | None,
        typer.Option(envvar=TRUST_ENV, help=f"The engine's public keys (directory of *.pub or one file; ${TRUST_ENV}): "
                     "only states the engine signed reach a tag."),
    ] = None,
    poll: Annotated[float, typer.Option(min=0.5, help="Seconds between /get_db polls.")] = 5.0,
    upload_interval: Annotated[float, typer.Option(min=0.1, help="Seconds between two uploads.")] = 1.0,
    deadline: Annotated[float, typer.Option(min=10, help="Seconds a tag has to show an upload.")] = 3600.0,
    duration: Annotated[float | None, typer.Option(min=0, help="Stop after this many seconds.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run an OpenEPaperLink gateway: desired states in, images to the AP, acks out."""
    from label_gateway.oepl import (
        ApClient,
        ApUnavailable,
        OeplError,
        OeplGateway,
        OeplSettings,
        load_tag_bindings,
    )

    with common.user_errors(OeplError):
        address = BrokerAddress.parse(broker)
        try:
            topics = Topics(store, prefix=prefix)
        except ValueError as exc:
            fail(str(exc))
        if (tags is None) == (labels is None):
            fail("give the label -> tag MACs: --tags FILE (label_id, mac) or --labels labels.csv (with a mac column)")
        source = tags if tags is not None else labels
        assert source is not None
        bindings = load_tag_bindings(source, store=store if labels else None, gateway=gateway if labels else None)
        if not bindings:
            fail(f"{source}: no labels of store {store}, gateway {gateway}")
        products = _products(data) if data is not None else {}
        trusted = TrustedKeys.load(trust) if trust is not None else None
        client = ApClient(ap)
        try:
            records = client.records()
        except ApUnavailable as exc:
            fail(str(exc), EXIT_FAILURE)
        unseen = sorted(b.mac for b in bindings.values() if b.mac not in records)
        if unseen:
            err.print(f"[yellow]warning:[/] {len(unseen)} tag(s) never checked in with {client.url}: "
                      f"{', '.join(unseen[:10])}{' ...' if len(unseen) > 10 else ''}", highlight=False, soft_wrap=True)
        if trusted is None:
            err.print("[yellow]warning:[/] no --trust keys: UNSIGNED desired states reach the tags", highlight=False)
        settings = OeplSettings(poll_interval_s=poll, upload_interval_s=upload_interval, deadline_s=deadline)
        process = OeplGateway(address, topics, gateway, client, bindings, products=products, trusted=trusted,
                              settings=settings, on_event=lambda m: err.print(f"  {m}", highlight=False, markup=False))
        stop = threading.Event()
        started = time.monotonic()
        with stop_on_signals(stop):
            process.start()
            try:
                err.print(f"gateway {gateway}: {len(bindings)} labels on {client.url}, broker {address.url} "
                          f"under {prefix}/{store}; Ctrl-C stops", highlight=False)
                end = None if duration is None else started + duration
                while not stop.is_set() and (end is None or time.monotonic() < end):
                    stop.wait(0.5 if end is None else max(0.0, min(0.5, end - time.monotonic())))
            finally:
                process.stop()
    counters = asdict(process.counters)
    health = process.health()
    low = sum(1 for h in health.values() if h.battery_mv is not None and h.battery_mv <= settings.low_battery_mv)
    err.print(", ".join(f"{k} {v}" for k, v in counters.items()), highlight=False)
    if as_json:
        emit_json({
            "gateway": gateway, "labels": len(bindings), "seconds": round(time.monotonic() - started, 3),
            "never_seen": sum(1 for h in health.values() if not h.seen), "low_battery": low,
            "tags": {label: asdict(h) for label, h in health.items()}, **counters,
        })


def _products(data: Path) -> dict[str, Product]:
    import pandas as pd

    from pricing.core.data import PRODUCTS_FILE, load_products

    frame = load_products(data / PRODUCTS_FILE).frame
    out: dict[str, Product] = {}
    for sku, name, size, unit in zip(frame["sku"], frame["name"], frame["size"], frame["unit"], strict=True):
        out[str(sku)] = Product(str(name), None if pd.isna(size) else str(size), None if pd.isna(unit) else str(unit))
    return out
