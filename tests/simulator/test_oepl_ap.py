"""The OEPL access-point emulator on a hand-driven clock: check-ins, one message per check-in, MD5
skip, 400/409, transfer timeouts, battery, reboot; and its HTTP + WebSocket interface."""

from __future__ import annotations

import hashlib
import io
import itertools
import json

import pytest
from PIL import Image

from simulator.oepl_ap import HW_TYPES, AccessPoint, ApSettings, OeplServer, SimClock

MAC = "0000021EC9EC743A"


class HandClock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> float:
        return self.t


def _jpeg(hw_type: int = 1, colour: str = "white", size: tuple[int, int] | None = None) -> bytes:
    kind = HW_TYPES[hw_type]
    out = io.BytesIO()
    Image.new("RGB", size or (kind.width, kind.height), colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def _ap(**settings: object) -> tuple[AccessPoint, HandClock]:
    clock = HandClock()
    ap = AccessPoint(ApSettings(**settings), clock)  # type: ignore[arg-type]
    ap.add_tag(MAC, 1)
    return ap, clock


def test_a_tag_takes_an_upload_at_its_next_checkin_after_its_radio_time() -> None:
    ap, clock = _ap()
    data = _jpeg()
    assert ap.upload(MAC, data).status == 200
    assert ap.record(MAC)["pending"] == 1  # type: ignore[index]
    clock.t += 40 + ap.settings.radio_s(HW_TYPES[1])
    record = ap.record(MAC)
    assert record is not None and record["pending"] == 0 and record["updatecount"] == 1
    assert record["hash"] == hashlib.md5(data).hexdigest() and record["updatelast"] <= clock.t
    shown = ap.shown(MAC)
    assert shown is not None and shown.pixels_md5 is not None and shown.refreshes == 1
    assert record["batteryMv"] == 3000 - ap.settings.drain_mv
    assert f"{MAC} reports xfer complete" in ap.log


def test_one_message_per_checkin_and_identical_content_is_skipped() -> None:
    ap, clock = _ap(upload_busy_s=0.0)
    first, second = _jpeg(colour="white"), _jpeg(colour="black")
    assert ap.upload(MAC, first).status == 200
    assert ap.upload(MAC, first).status == 200  # same MD5 as queued: skipped
    assert ap.upload(MAC, second).status == 200
    clock.t += 40 + 5
    assert ap.record(MAC)["updatecount"] == 1 and ap.pending(MAC) == 1  # type: ignore[index]
    clock.t += 40
    assert ap.record(MAC)["updatecount"] == 2 and ap.pending(MAC) == 0  # type: ignore[index]
    assert ap.upload(MAC, second).status == 200  # what it shows: skipped
    clock.t += 200
    assert ap.shown(MAC).refreshes == 2  # type: ignore[union-attr]


def test_400_for_a_tag_never_seen_and_409_while_busy_or_in_a_storm() -> None:
    ap, clock = _ap()
    ap.add_tag("0000021EC9EC0000", 1, online=False, seen=False)
    assert ap.upload("0000021EC9EC0000", _jpeg()).text == "mac not found in tagDB"
    assert ap.upload(MAC, _jpeg(colour="red")).status == 200
    assert (ap.upload(MAC, _jpeg()).status, ap.upload(MAC, _jpeg()).text) == (409, "come back later")
    clock.t += 1
    ap.storm(10)
    assert ap.upload(MAC, _jpeg()).status == 409
    clock.t += 11
    assert ap.upload(MAC, _jpeg()).status == 200
    assert ap.upload(MAC, _jpeg(size=(128, 296))).status in (400, 409)
    clock.t += 1
    result = ap.upload(MAC, _jpeg(size=(128, 296)))
    assert result.status == 400 and "296x128" in result.text


def test_an_offline_tag_times_out_after_its_attempts_and_takes_content_once_back() -> None:
    ap, clock = _ap(attempts=20)
    ap.set_online(MAC, False)
    seen = ap.record(MAC)["lastseen"]  # type: ignore[index]
    ap.upload(MAC, _jpeg())
    clock.t += 18 * 40  # at most 19 check-ins missed (the first comes within 40 s)
    assert ap.pending(MAC) == 1
    clock.t += 2 * 40
    record = ap.record(MAC)
    assert record["pending"] == 0 and record["updatecount"] == 0 and record["lastseen"] == seen  # type: ignore[index]
    assert f"{MAC} xfer timeout" in ap.log
    ap.set_online(MAC, True)
    clock.t += 1
    ap.upload(MAC, _jpeg())
    clock.t += 50
    assert ap.record(MAC)["updatecount"] == 1  # type: ignore[index]


def test_a_reboot_forgets_the_queue_but_not_what_tags_show() -> None:
    ap, clock = _ap(upload_busy_s=0.0)
    ap.upload(MAC, _jpeg(colour="black"))
    clock.t += 50
    ap.upload(MAC, _jpeg(colour="white"))
    assert ap.reboot() == 1
    clock.t += 500
    record = ap.record(MAC)
    assert record["pending"] == 0 and record["updatecount"] == 1  # type: ignore[index]
    assert record["hash"] == hashlib.md5(_jpeg(colour="black")).hexdigest()  # type: ignore[index]


def test_one_radio_serves_tags_one_after_another() -> None:
    clock = HandClock()
    ap = AccessPoint(ApSettings(upload_busy_s=0.0), clock)  # type: ignore[arg-type]
    macs = [f"0000021EC9EC00{i:02X}" for i in range(10)]
    for mac in macs:
        ap.add_tag(mac, 2)
        ap.upload(mac, _jpeg(2))
    radio = ap.settings.radio_s(HW_TYPES[2])
    clock.t += 40 + 10 * radio + 0.01
    done = sorted(ap.shown(m).updatelast for m in macs)  # type: ignore[union-attr]
    gaps = [b - a for a, b in itertools.pairwise(done)]
    assert all(g >= radio - 1e-6 for g in gaps)


def test_http_pages_uploads_and_websocket() -> None:
    from websockets.sync.client import connect

    from label_gateway.oepl import ApClient

    ap = AccessPoint(ApSettings(upload_busy_s=0.0), SimClock(speed=1000))
    macs = [f"0000021EC9EC10{i:02X}" for i in range(25)]
    for mac in macs:
        ap.add_tag(mac, 0)
    with OeplServer(ap) as server:
        client = ApClient(server.url)
        assert set(client.records()) == set(macs)  # 3 pages of 11
        with connect(server.url.replace("http", "ws") + "/ws") as ws:
            assert client.upload_image(macs[0], _jpeg(0)) == (200, "Ok, saved")
            assert client.upload_image("00000000DEADBEEF", _jpeg(0)) == (400, "mac not found in tagDB")
            messages = []
            while not any("logMsg" in m for m in messages):
                messages.append(json.loads(ws.recv(timeout=10)))
        assert any(m.get("tags", [{}])[0].get("mac") == macs[0] for m in messages)
        assert {"logMsg": f"{macs[0]} reports xfer complete"} in messages
        client.close()


def test_unknown_hw_type_is_refused() -> None:
    ap, _ = _ap()
    with pytest.raises(ValueError, match="hwType"):
        ap.add_tag("0000021EC9EC7400", 9)
