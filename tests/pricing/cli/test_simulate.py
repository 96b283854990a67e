"""`esl-pricing simulate ...` (pricing.cli.simulate): run, status and generate, and their user errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from label_gateway.broker import connect, disconnect, new_client
from label_gateway.embedded_broker import free_port
from label_gateway.protocol import QOS, DesiredState, Topics, parse_acks
from pricing.cli.simulate import simulate_app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(simulate_app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _scenario(tmp_path: Path, text: str = "labels: {gateways: 2, per_gateway: 5}\nfast: true\n", store: str = "") -> Path:
    if store:
        text = f"store: {store}\n{text}"
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _state_file(tmp_path: Path) -> Path:
    """A small state file as `simulate run --state` writes it."""
    label = {
        "gateway": "gw-01", "sku": "000001", "price_cents": 199, "version": 3, "content_hash": "abc",
        "applied_at": "2026-11-01T08:00:00+00:00", "battery_mv": 2400, "refreshes": 600, "dead": False,
        "regressions": 0,
    }
    blank = {**label, "price_cents": None, "version": 0, "content_hash": None, "applied_at": None,
             "battery_mv": 3000, "refreshes": 0}
    state = {
        "format": "esl-simulator-state", "version": 1, "store": "store-001", "prefix": "esl",
        "written_at": "2026-11-01T09:00:00+00:00", "running": False, "battery_low_mv": 2450,
        "gateways": {
            "gw-01": {"state": "online", "labels": 2, "counters": {"applied": 600}},
            "gw-02": {"state": "offline", "labels": 1, "counters": {}},
        },
        "labels": {
            "L1": label,
            "L2": {**blank, "sku": "000002"},
            "L3": {**blank, "gateway": "gw-02", "sku": "000003", "dead": True},
        },
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    return path


# ------------------------------------------------------------------------------------------------
# status
# ------------------------------------------------------------------------------------------------


def test_status_per_gateway(tmp_path: Path) -> None:
    code, out, err = _invoke("status", "--state", str(_state_file(tmp_path)), "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["gateways"]["gw-01"] == {
        "state": "online", "labels": 2, "showing": 1, "low_battery": 1, "dead": 0, "refreshes": 600
    }
    assert summary["gateways"]["gw-02"]["dead"] == 1 and summary["gateways"]["gw-02"]["state"] == "offline"
    assert summary["totals"]["labels"] == 3 and summary["running"] is False
    assert "gw-01" in err and "store-001" in err  # the Rich table on stderr


def test_status_of_one_gateway_or_label(tmp_path: Path) -> None:
    state = str(_state_file(tmp_path))
    code, out, _ = _invoke("status", "--state", state, "--gateway", "gw-02", "--json")
    assert code == 0 and list(json.loads(out.splitlines()[-1])["gateways"]) == ["gw-02"]
    code, out, err = _invoke("status", "--state", state, "--label", "L1", "--json")
    detail = json.loads(out.splitlines()[-1])
    assert code == 0 and detail["price_cents"] == 199 and detail["battery_mv"] == 2400 and detail["label"] == "L1"
    assert "label L1" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "L9"], "no label L9"),
        (["--gateway", "gw-9"], "no gateway gw-9 (gateways: gw-01, gw-02)"),
    ],
)
def test_status_unknown_gateway_or_label(tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = _invoke("status", "--state", str(_state_file(tmp_path)), *args)
    assert code == 2 and message in err and "Traceback" not in err and out == ""


def test_status_missing_or_corrupt_state_file(tmp_path: Path) -> None:
    code, _, err = _invoke("status", "--state", str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json: no such state file" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    code, _, err = _invoke("status", "--state", str(bad))
    assert code == 2 and "not a simulator state file" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------
# run: user errors and an unreachable broker
# ------------------------------------------------------------------------------------------------


def test_run_needs_a_scenario_or_data() -> None:
    code, _, err = _invoke("run")
    assert code == 2 and "nothing to simulate" in err


def test_run_with_a_broken_scenario_prints_file_line_problems(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "labels: {gateways: 2, per_gateway: 5}\nradio: {loss_rate: 2}\nfsat: true\n")
    code, out, err = _invoke("run", "--scenario", str(path))
    lines = err.strip().splitlines()
    assert code == 2 and out == ""
    assert lines[0].startswith(f"{path}:2: radio.loss_rate: must be less than or equal to 1")
    assert lines[1].startswith(f"{path}:3: fsat: unknown key; did you mean 'fast'?")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "missing.yaml"], "missing.yaml: scenario file not found"),
        (["--data", "no-such-dir"], "no-such-dir: not a directory"),
        (["--broker", "http://x"], "scheme must be mqtt://"),
        (["--prefix", "a/+"], "prefix 'a/+' is not a usable topic prefix"),
    ],
)
def test_run_user_errors_are_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    base = [] if "--scenario" in args or "--data" in args else ["--scenario", str(_scenario(tmp_path))]
    code, _, err = _invoke("run", *base, *args)
    assert code == 2 and message in err and "Traceback" not in err, err


def test_run_data_dir_without_labels_csv(tmp_path: Path) -> None:
    code, _, err = _invoke("run", "--data", str(tmp_path))
    assert code == 2 and "labels.csv" in err and "Traceback" not in err


def test_unreachable_broker_is_one_line_exit_1(tmp_path: Path) -> None:
    port = free_port()
    code, out, err = _invoke("run", "--scenario", str(_scenario(tmp_path)), "--broker", f"mqtt://127.0.0.1:{port}")
    assert code == 1 and out == ""
    assert f"cannot reach MQTT broker at mqtt://127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1


def test_outage_for_a_gateway_not_in_labels_csv(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("label_id,store,gateway,sku,tag_type\nE1,store-007,gw-a,0001,2.9\n")
    path = _scenario(tmp_path, "labels: {from_csv: labels.csv}\noutages: [{gateway: gw-z, at_s: 1, for_s: 1}]\n")
    code, _, err = _invoke("run", "--scenario", str(path))
    assert code == 2 and "outage for gateway gw-z: no such gateway in this store (gw-a)" in err


# ------------------------------------------------------------------------------------------------
# run: against the real broker
# ------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_run_for_a_duration_in_process(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    code, out, err = _invoke(
        "run", "--scenario", str(_scenario(tmp_path, store=topics.store)), "--broker", mqtt_broker.address.url,
        "--prefix", topics.prefix, "--state", str(state), "--duration", "0.3", "--json",
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert json.loads(lines[0]) == {"ready": True, "gateways": 2, "labels": 10}
    summary = json.loads(lines[-1])
    assert summary["labels"] == 10 and summary["regressions"] == 0 and summary["malformed"] == 0
    assert state.exists()
    code, out, _ = _invoke("status", "--state", str(state), "--json")
    assert code == 0 and json.loads(out.splitlines()[-1])["totals"]["labels"] == 10


@pytest.mark.integration
def test_run_as_a_process_stops_on_sigterm_with_a_summary(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from pricing.cli.simulate import simulate_app; simulate_app()", "run",
         "--scenario", str(_scenario(tmp_path, store=topics.store)), "--broker", mqtt_broker.address.url,
         "--prefix", topics.prefix,
         "--state", str(state), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        ready = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert ready == {"ready": True, "gateways": 2, "labels": 10}
        acks = _push_one(mqtt_broker.address, topics)
        assert [(a.label, a.status) for a in acks] == [("L000003", "displayed")]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["applied"] == 1 and summary["displayed"] == 1 and summary["labels"] == 10
    saved = json.loads(state.read_text())
    assert saved["labels"]["L000003"]["price_cents"] == 321 and saved["running"] is False


def _push_one(address, topics: Topics) -> list:
    """Publish one desired state like the engine and wait for its ack batch."""
    got: list = []
    arrived = threading.Event()
    client = new_client("test-cli-engine")

    def on_message(c, userdata, message) -> None:  # type: ignore[no-untyped-def]
        got.extend(parse_acks(message.payload).acks)
        arrived.set()

    subscribed = threading.Event()
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    connect(client, address)
    try:
        client.subscribe(topics.ack_filter, qos=QOS)
        assert subscribed.wait(5)
        state = DesiredState.build(
            label="L000003", sku="000003", version=1, price_cents=321, currency="EUR", correlation="cli-test"
        )
        client.publish(topics.desired("gw-01", state.label), state.to_json(), qos=QOS, retain=True)
        assert arrived.wait(10)
        time.sleep(0.05)
    finally:
        disconnect(client)
    return got


# ------------------------------------------------------------------------------------------------
# generate
# ------------------------------------------------------------------------------------------------


def test_generate_writes_a_sample_store(tmp_path: Path) -> None:
    out_dir = tmp_path / "store"
    code, out, err = _invoke("generate", "--out", str(out_dir), "--skus", "30", "--days", "14", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["skus"] == 30 and (out_dir / "labels.csv").exists()
    code, _, err = _invoke("run", "--data", str(out_dir), "--broker", "mqtt://127.0.0.1:1", "--fast")
    assert code == 1 and "cannot reach MQTT broker" in err  # labels.csv read, then the broker is tried


@pytest.mark.parametrize("market", ["loglog", "choice"])
def test_generate_store_option_names_the_store_of_sales_and_labels(tmp_path: Path, market: str) -> None:
    out_dir = tmp_path / "store"
    code, out, err = _invoke("generate", "--out", str(out_dir), "--skus", "30", "--days", "14", "--market", market,
                             "--store", "S042", "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["store"] == "S042"
    from pricing.core.store_data import load_store

    store = load_store(out_dir)
    assert store.store_id == "S042" and set(store.labels["store"]) == {"S042"} and set(store.sales["store"]) == {"S042"}


def test_generate_store_must_be_a_topic_level(tmp_path: Path) -> None:
    code, _, err = _invoke("generate", "--out", str(tmp_path / "store"), "--skus", "30", "--store", "a/b")
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --store has a character other than")
    assert not (tmp_path / "store").exists()


def test_one_store_id_out_of_the_box() -> None:
    """simulate generate's default store, config/engine.yaml's and config/scenario.yaml's agree, so
    the daemon pushes to the topics the simulated gateways listen on."""
    import inspect

    from pricing.cli.simulate import simulate_generate
    from pricing.store.engine_config import load_engine_config
    from simulator.scenario import DEFAULT_STORE, load_scenario
    from simulator.store import generate_store

    generated = inspect.signature(simulate_generate).parameters["store"].default
    assert generated == DEFAULT_STORE == inspect.signature(generate_store).parameters["store"].default
    assert load_engine_config(REPO / "config" / "engine.yaml").store == generated
    assert load_scenario(REPO / "config" / "scenario.yaml").store == generated
