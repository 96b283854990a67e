"""Tests for pricing/store/metrics.py: the daemon's Prometheus metrics and their HTTP endpoint."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from pricing.store.metrics import (
    ACK_LATENCY_BUCKETS,
    CYCLE_RESULTS,
    EngineMetrics,
    MetricsServerError,
)

ALLOWED_LABELS = {"job", "kind", "result", "status", "le"}


def samples(metrics: EngineMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.scrape().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(metrics: EngineMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, tuple(sorted(labels.items())))]


def busy_metrics() -> EngineMetrics:
    m = EngineMetrics()
    m.declare_jobs([("nightly-reprice", "reprice"), ("reconcile", "reconcile")])
    m.cycle_finished("nightly-reprice", "reprice", "ok", 12.5, datetime(2026, 6, 1, 3, 30, tzinfo=UTC))
    m.cycle_finished("reconcile", "reconcile", "frozen", 0.01)
    m.cycle_finished("reconcile", "reconcile", "missed", 0.0)
    m.pushes("confirmed", 1900)
    m.pushes("failed", 3)
    m.pushes("waiting", 0)
    m.ack_latency(0.004)
    m.ack_latency(41.0)
    m.solver_finished("OPTIMAL", 0.0)
    m.outbox(97, 3)
    m.gateways(2)
    m.set_kill_switch(True)
    m.broker(True)
    return m


def test_names_types_and_values() -> None:
    m = busy_metrics()
    families = {
        f.name: f.type
        for f in text_string_to_metric_families(m.scrape().decode())
        if not f.name.endswith("_created")  # prometheus-client's creation times of counters and histograms
    }
    assert families == {
        "esl_cycle_seconds": "histogram",
        "esl_cycles": "counter",
        "esl_pushes": "counter",
        "esl_ack_latency_seconds": "histogram",
        "esl_solver_runs": "counter",
        "esl_solver_gap_pct": "gauge",
        "esl_outbox_open": "gauge",
        "esl_labels_failed": "gauge",
        "esl_gateways_online": "gauge",
        "esl_kill_switch": "gauge",
        "esl_broker_connected": "gauge",
        "esl_last_cycle_timestamp_seconds": "gauge",
        "esl_security_events": "counter",
    }
    assert value(m, "esl_cycles_total", job="nightly-reprice", kind="reprice", result="ok") == 1
    assert value(m, "esl_cycles_total", job="reconcile", kind="reconcile", result="frozen") == 1
    assert value(m, "esl_cycles_total", job="reconcile", kind="reconcile", result="missed") == 1
    assert value(m, "esl_cycles_total", job="nightly-reprice", kind="reprice", result="failed") == 0  # declared
    assert value(m, "esl_cycle_seconds_count", job="nightly-reprice", kind="reprice") == 1
    assert value(m, "esl_cycle_seconds_sum", job="nightly-reprice", kind="reprice") == 12.5
    assert value(m, "esl_cycle_seconds_count", job="reconcile", kind="reconcile") == 1  # missed is not timed
    assert value(m, "esl_last_cycle_timestamp_seconds", job="nightly-reprice") == datetime(
        2026, 6, 1, 3, 30, tzinfo=UTC
    ).timestamp()
    assert value(m, "esl_pushes_total", result="confirmed") == 1900
    assert value(m, "esl_pushes_total", result="failed") == 3
    assert value(m, "esl_pushes_total", result="already_shown") == 0  # present from the start
    assert value(m, "esl_ack_latency_seconds_count") == 2
    assert value(m, "esl_ack_latency_seconds_bucket", le="0.01") == 1
    assert value(m, "esl_ack_latency_seconds_bucket", le="600.0") == 2
    assert value(m, "esl_solver_runs_total", status="OPTIMAL") == 1
    assert value(m, "esl_solver_gap_pct") == 0
    assert value(m, "esl_outbox_open") == 97 and value(m, "esl_labels_failed") == 3
    assert value(m, "esl_gateways_online") == 2
    assert value(m, "esl_kill_switch") == 1 and value(m, "esl_broker_connected") == 1
    m.set_kill_switch(False)
    m.broker(False)
    assert value(m, "esl_kill_switch") == 0 and value(m, "esl_broker_connected") == 0


def test_every_metric_is_prefixed_and_no_per_sku_or_per_label_labels() -> None:
    m = busy_metrics()
    for family in text_string_to_metric_families(m.scrape().decode()):
        assert family.name.startswith("esl_"), family.name
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, (sample.name, sample.labels)
            assert not {"sku", "label", "label_id", "gateway"} & set(sample.labels)


def test_ack_latency_buckets_span_10ms_to_10min() -> None:
    assert ACK_LATENCY_BUCKETS[0] == 0.01 and ACK_LATENCY_BUCKETS[-1] == 600
    assert list(ACK_LATENCY_BUCKETS) == sorted(ACK_LATENCY_BUCKETS)


def test_each_instance_has_its_own_registry() -> None:
    a, b = EngineMetrics(), EngineMetrics()  # would raise "Duplicated timeseries" in one registry
    a.pushes("confirmed", 5)
    assert value(a, "esl_pushes_total", result="confirmed") == 5
    assert value(b, "esl_pushes_total", result="confirmed") == 0
    shared = CollectorRegistry()
    EngineMetrics(shared)
    with pytest.raises(ValueError, match="Duplicated"):
        EngineMetrics(shared)


def test_results_are_checked() -> None:
    m = EngineMetrics()
    assert set(CYCLE_RESULTS) == {"ok", "failed", "frozen", "kill_switch", "missed", "parked"}
    with pytest.raises(ValueError, match="cycle result"):
        m.cycle_finished("j", "reprice", "great", 1.0)
    with pytest.raises(ValueError, match="push result"):
        m.pushes("lost", 1)
    with pytest.raises(ValueError, match="negative"):
        m.pushes("confirmed", -1)


def _get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read().decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_over_http_and_stop() -> None:
    m = busy_metrics()
    port = _free_port()
    server = m.serve("127.0.0.1", port)
    try:
        assert server.port == port and server.url == f"http://127.0.0.1:{port}/metrics"
        status, content_type, body = _get(server.url)
        assert status == 200 and content_type.startswith("text/plain")
        assert 'esl_pushes_total{result="confirmed"} 1900.0' in body
        assert "esl_cycles_total" in body
        m.pushes("confirmed", 100)
        assert 'esl_pushes_total{result="confirmed"} 2000.0' in _get(server.url)[2]  # live values
    finally:
        server()  # the stopper
    server()  # twice is fine
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        _get(f"http://127.0.0.1:{port}/metrics")
    again = m.serve("127.0.0.1", port)  # the port is free again
    again.stop()


def test_serve_on_any_free_port() -> None:
    m = EngineMetrics()
    with m.serve("127.0.0.1", 0) as server:
        assert server.port > 0
        assert _get(server.url)[0] == 200


def test_serve_on_a_taken_port_is_one_clear_error() -> None:
    m = EngineMetrics()
    with m.serve("127.0.0.1", 0) as server, pytest.raises(MetricsServerError, match=f"127.0.0.1:{server.port}"):
        EngineMetrics().serve("127.0.0.1", server.port)


def test_security_events_add_a_pushs_tampering_counters() -> None:
    metrics = EngineMetrics()
    metrics.security_events({"forged_versions": 2, "foreign_acks": 0, "signature_rejections": 3, "confirmed": 9})
    metrics.security_events({"forged_versions": 1})
    text = metrics.scrape().decode()
    assert 'esl_security_events_total{kind="forged_versions"} 3.0' in text
    assert 'esl_security_events_total{kind="signature_rejections"} 3.0' in text
    assert 'esl_security_events_total{kind="foreign_acks"} 0.0' in text
