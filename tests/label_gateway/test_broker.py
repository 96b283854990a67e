"""label_gateway.broker without a broker: the reconnect backoff both network loops share."""

from __future__ import annotations

import pytest

from label_gateway.broker import RECONNECT_FIRST_S, RECONNECT_MAX_S, ReconnectBackoff
from simulator.gateways import NetworkLoop, _Connection


def test_backoff_waits_one_second_then_two_as_paho_does() -> None:
    backoff = ReconnectBackoff()
    assert (RECONNECT_FIRST_S, RECONNECT_MAX_S) == (1.0, 2.0)
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 2.0, 2.0, 2.0]


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = ReconnectBackoff(first_s=0.5, max_s=5.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_starts_over_after_a_success() -> None:
    backoff = ReconnectBackoff()
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_each_backoff_keeps_its_own_count() -> None:
    a, b = ReconnectBackoff(), ReconnectBackoff()
    a.next_delay()
    assert (a.next_delay(), b.next_delay()) == (2.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"first_s": -1.0}, "first_s must be >= 0"),
        ({"first_s": 3.0, "max_s": 2.0}, r"max_s \(2.0\) must be >= first_s \(3.0\)"),
        ({"factor": 0.5}, "factor must be >= 1"),
    ],
)
def test_backoff_refuses_settings_that_make_no_sense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReconnectBackoff(**kwargs)


class _LostClient:
    """A paho client whose connection is gone; reconnect() fails ``failures`` times, then works."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[float] = []
        self.now = 0.0

    def socket(self) -> None:
        return None

    def reconnect(self) -> None:
        self.attempts.append(self.now)
        if len(self.attempts) <= self.failures:
            raise ConnectionRefusedError(111, "Connection refused")


def test_the_simulator_network_loop_reconnects_after_1_then_every_2_seconds() -> None:
    loop = NetworkLoop()
    try:
        client = _LostClient(failures=3)
        connection = _Connection(client)  # type: ignore[arg-type]
        for tick in range(120):
            client.now = tick / 10
            loop._reconnect([connection], client.now)
            if len(client.attempts) == 4:
                break
        assert client.attempts == [1.0, 3.0, 5.0, 7.0]  # the connection was found lost at 0.0
        assert connection.reconnect_at is None
        client.failures, client.attempts = 0, []
        for client.now in (20.0, 21.0):  # lost again later: 1 s again, not 2
            loop._reconnect([connection], client.now)
        assert client.attempts == [21.0]
    finally:
        loop.close()
