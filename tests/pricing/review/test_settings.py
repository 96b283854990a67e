"""ReviewSettings: the delivery of config/engine.yaml, whole (pacing, retries and deadline)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from label_gateway.delivery import DeliverySettings
from pricing.review.settings import ReviewSettings
from pricing.store.engine_config import DeliveryConfig, EngineConfig


def test_every_delivery_config_field_reaches_the_review_page() -> None:
    config = DeliveryConfig(ack_timeout_s=7.5, max_attempts=9, window_per_gateway=33, deadline_s=None)
    settings = config.settings()
    carried = set(DeliveryConfig.model_fields) - DeliveryConfig.NOT_DELIVERY_SETTINGS
    assert carried <= set(DeliverySettings.model_fields)
    assert {name: getattr(settings, name) for name in carried} == {name: getattr(config, name) for name in carried}
    defaults = DeliverySettings()
    rest = set(DeliverySettings.model_fields) - carried
    assert {name: getattr(settings, name) for name in rest} == {name: getattr(defaults, name) for name in rest}


def test_settings_from_the_engine_config_carry_its_delivery(tmp_path: Path) -> None:
    delivery = {"ack_timeout_s": 12.0, "max_attempts": 3, "window_per_gateway": 50, "deadline_s": 90.0}
    config = EngineConfig.model_validate({"store": "S1", "delivery": delivery})
    settings = ReviewSettings.from_engine_config(config, tmp_path, environ={})
    assert settings.delivery_config == config.delivery and settings.deadline_s == 90.0
    assert settings.delivery.model_dump(include=set(delivery) - {"deadline_s"}) == {
        k: v for k, v in delivery.items() if k != "deadline_s"
    }
    assert ReviewSettings.from_engine_config(
        config.model_copy(update={"delivery": DeliveryConfig(deadline_s=None)}), tmp_path, environ={}
    ).deadline_s is None


def test_default_delivery(make_settings: Callable[..., ReviewSettings]) -> None:
    settings = make_settings()
    assert settings.delivery == DeliverySettings() and settings.deadline_s == DeliveryConfig().deadline_s == 600.0
    assert "delivery_config" in repr(settings)


def test_a_delivery_config_field_the_settings_lack_is_refused() -> None:
    class Grown(DeliveryConfig):
        new_knob: int = 1

    with pytest.raises(ValueError, match="new_knob"):
        Grown().settings()


def test_trusted_proxies_and_throttle_settings_are_checked(make_settings: Callable[..., ReviewSettings]) -> None:
    settings = make_settings(trusted_proxies=("10.0.0.5", "10.1.0.0/16", "::1"))
    assert settings.trusted_proxies == ("10.0.0.5", "10.1.0.0/16", "::1")
    assert make_settings().trusted_proxies == () and make_settings().auth_max_failures == 5
    with pytest.raises(ValueError, match=r"^trusted proxy 'proxy.local': not an IP address or network"):
        make_settings(trusted_proxies=("proxy.local",))
    with pytest.raises(ValueError, match="trusted proxy '10.0.0.5/24'"):
        make_settings(trusted_proxies=("10.0.0.5/24",))  # host bits set: say what is meant
    with pytest.raises(ValueError, match="at least 1"):
        make_settings(auth_max_failures=0)
    with pytest.raises(ValueError, match="more than 0 seconds"):
        make_settings(auth_lockout_s=0)
