"""The OEPL gateway's parts: label -> tag bindings, the JPEG it uploads, the AP client, and the
`esl-pricing gateway oepl` command against the AP emulator and a real broker."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import uuid

import pytest
from PIL import Image

from label_gateway.delivery import DeliverySettings, push_prices
from label_gateway.label_templates import default_label_templates
from label_gateway.oepl import ApClient, OeplError, label_jpeg, load_tag_bindings
from label_gateway.outbox import Outbox
from label_gateway.render import LabelContent
from simulator.oepl_ap import AccessPoint, ApSettings, OeplServer, SimClock


def test_bindings_from_a_tags_file_and_from_labels_csv(tmp_path) -> None:
    tags = tmp_path / "tags.csv"
    tags.write_text("label_id,mac,tag_type\nL1,00:00:02:1e:c9:ec:74:3a,2.9\nL2,0000021EC9EC743B,\n")
    bindings = load_tag_bindings(tags)
    assert bindings["L1"].mac == "0000021EC9EC743A" and bindings["L1"].tag_type == "2.9"
    assert bindings["L2"].tag_type is None
    labels = tmp_path / "labels.csv"
    labels.write_text("label_id,store,gateway,sku,tag_type,mac\nL1,s1,gw-1,0001,2.9,0000021EC9EC0001\n"
                      "L2,s1,gw-2,0002,4.2,0000021EC9EC0002\nL3,s2,gw-1,0003,1.54,0000021EC9EC0003\n")
    mine = load_tag_bindings(labels, store="s1", gateway="gw-1")
    assert list(mine) == ["L1"] and mine["L1"].sku == "0001"


@pytest.mark.parametrize(("text", "problem"), [
    ("label_id\nL1\n", ":1: missing column(s) mac"),
    ("label_id,mac\nL1,0000021EC9EC743A\nL2,XYZ\n", ":3: mac 'XYZ' is not 12 or 16 hex digits"),
    ("label_id,mac\nL1,0000021EC9EC743A\nL2,0000021EC9EC743A\n", ":3: mac 0000021EC9EC743A is already label L1's (line 2)"),
    ("label_id,mac\nL1,0000021EC9EC743A\nL1,0000021EC9EC743B\n", ":3: label L1 appears twice"),
    ("label_id,mac,tag_type\nL1,0000021EC9EC743A,7.5\n", ":2: tag_type must be one of"),
])
def test_a_bad_tags_file_is_one_line_with_its_line_number(tmp_path, text: str, problem: str) -> None:
    tags = tmp_path / "tags.csv"
    tags.write_text(text)
    with pytest.raises(OeplError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        load_tag_bindings(tags)


@pytest.mark.parametrize("tag_type", ["1.54", "2.9", "4.2"])
def test_the_jpeg_is_baseline_at_the_tags_resolution_and_the_same_every_time(tag_type: str) -> None:
    template = default_label_templates().tag(tag_type)
    content = LabelContent.build(sku="000123", name="Oat milk 1 l", price_cents=199, currency="EUR",
                                 reference_cents=249)
    first, second = label_jpeg(content, template), label_jpeg(content, template)
    assert first == second
    with Image.open(io.BytesIO(first)) as image:
        assert image.format == "JPEG" and not image.info.get("progressive")
        assert image.size == (template.width, template.height)
    other = LabelContent.build(sku="000123", name="Oat milk 1 l", price_cents=189, currency="EUR")
    assert hashlib.md5(label_jpeg(other, template)).digest() != hashlib.md5(first).digest()


def test_an_ap_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(OeplError, match="http://HOST"):
        ApClient("mqtt://127.0.0.1:1883")


@pytest.mark.integration
def test_the_command_confirms_a_push_and_reports_battery_and_rssi(mqtt_broker, topics, tmp_path, engine_keys) -> None:
    # The command runs on the wall clock: an AP with fast check-ins (0.5 s) and radio (0.1 s).
    ap = AccessPoint(ApSettings(checkin_s=0.5, radio_overhead_s=0.1, radio_bytes_per_s=1e6), SimClock(speed=1.0))
    macs = {f"L{i}": f"0000021EC9EC00{i:02X}" for i in range(3)}
    for i, mac in enumerate(macs.values()):
        ap.add_tag(mac, i)
    tags = tmp_path / "tags.csv"
    tags.write_text("label_id,mac\n" + "".join(f"{label},{mac}\n" for label, mac in macs.items()))
    with OeplServer(ap) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pricing.cli", "gateway", "oepl", "--ap", server.url, "--gateway", "gw-1",
             "--store", topics.store, "--prefix", topics.prefix, "--broker", mqtt_broker.address.url,
             "--tags", str(tags), "--trust", str(engine_keys.path), "--poll", "0.5", "--upload-interval", "0.1",
             "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            outbox = Outbox.open(tmp_path / "engine.db", topics.store)
            report = push_prices(
                {f"{i:04d}": 100 + i for i in range(3)}, [(label, "gw-1", f"{i:04d}") for i, label in enumerate(macs)],
                mqtt_broker.address, topics, outbox, currency="EUR", correlation=f"p-{uuid.uuid4().hex[:4]}",
                signer=engine_keys.signer(), settings=DeliverySettings(ack_timeout_s=15, max_attempts=1),
            )
            assert len(report.confirmed) == 3, report.summary()
            proc.terminate()  # SIGTERM: a clean stop with the summary
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["displayed"] == 3 and summary["never_seen"] == 0
    assert all(t["battery_mv"] < 3000 and t["rssi"] < 0 for t in summary["tags"].values())
