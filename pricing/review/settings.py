"""What the review page needs to know: where the plans, data and database are, how to push, and
the secret that allows approvals.

Built from config/engine.yaml (``ReviewSettings.from_engine_config``) so the page and the daemon
agree on the store, the broker, the delivery, the freeze windows and the kill switch. The secret
comes from the environment (``ESL_REVIEW_TOKEN``), never from a config file: the config is
committed and shared, the secret is not. Without a secret the page is read-only.

Behind a TLS-terminating proxy, ``trusted_proxies`` lists the proxies' addresses (IPs or CIDR
networks): only from those are X-Forwarded-Proto and X-Forwarded-For believed (the client's
address for throttling, https for the Secure cookie). ``auth_*`` set how wrong tokens are
throttled per client (pricing.review.auth.Throttle).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from label_gateway.broker import BrokerAddress
from label_gateway.delivery import DeliverySettings
from label_gateway.signing import KEYS_ENV, KeyDirectory, Signer, SigningError
from pricing.core.store_calendar import StoreCalendar
from pricing.store.engine_config import DeliveryConfig, EngineConfig

TOKEN_ENV = "ESL_REVIEW_TOKEN"
MIN_SECRET_CHARS = 8


def trusted_proxy(text: str) -> str:
    """A trusted proxy as written (an IP address or a CIDR network); ValueError (one line) otherwise."""
    try:
        if "/" in text:
            ipaddress.ip_network(text)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        example = "e.g. 10.0.0.5 or 10.0.0.0/24"
        raise ValueError(f"trusted proxy '{text}': not an IP address or network ({example})") from None
    return text


@dataclass(frozen=True)
class ReviewSettings:
    """One store's review page. ``secret`` None: read-only (every POST is refused)."""

    store: str
    plans_dir: Path
    data_dir: Path
    database: str  # a SQLite file or a SQLAlchemy URL (pricing.core.database.open_engine)
    broker: BrokerAddress
    prefix: str = "esl"
    delivery_config: DeliveryConfig = field(default_factory=DeliveryConfig)  # engine.yaml's delivery:
    calendar: StoreCalendar = field(default_factory=StoreCalendar)
    kill_switch: bool = False  # the config's switch; `esl-pricing kill-switch on` is read from the database
    secret: str | None = field(default=None, repr=False)
    signing_keys: Path | None = None  # the engine's key directory (None: $ESL_SIGNING_KEYS); approvals push signed states
    label_templates: Path | None = None  # None: the packaged label_gateway/label_templates.yaml
    max_rows: int = 500  # plan rows one page shows at most
    probe_ttl_s: float = 10.0  # how long a look at the broker's gateway statuses is reused
    login_max_age_s: int = 12 * 3600
    trusted_proxies: tuple[str, ...] = ()  # IPs / CIDR networks whose X-Forwarded-* headers are believed
    auth_max_failures: int = 5  # wrong tokens (bearer or login) per client within auth_window_s ...
    auth_window_s: float = 300.0
    auth_lockout_s: float = 300.0  # ... lock that client out (429 + Retry-After) this long
    auth_max_clients: int = 10_000  # clients the throttle remembers at most (bounded memory)

    def __post_init__(self) -> None:
        if self.secret is not None and len(self.secret) < MIN_SECRET_CHARS:
            raise ValueError(f"{TOKEN_ENV} is too short: use at least {MIN_SECRET_CHARS} characters")
        if self.max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        for proxy in self.trusted_proxies:
            trusted_proxy(proxy)
        if self.auth_max_failures < 1 or self.auth_max_clients < 1:
            raise ValueError("auth_max_failures and auth_max_clients must be at least 1")
        if self.auth_window_s <= 0 or self.auth_lockout_s <= 0:
            raise ValueError("auth_window_s and auth_lockout_s must be more than 0 seconds")

    @property
    def delivery(self) -> DeliverySettings:
        """How a push paces itself: engine.yaml's delivery, the rest at DeliverySettings' defaults."""
        return self.delivery_config.settings()

    @property
    def deadline_s(self) -> float | None:
        """A push stops waiting for acks after this; the rest stays in the outbox (None: no deadline)."""
        return self.delivery_config.deadline_s

    @property
    def read_only(self) -> bool:
        return self.secret is None

    def signer(self) -> Signer:
        """The engine's current signing key; SigningError (one line) when there is none."""
        directory = self.signing_keys or os.environ.get(KEYS_ENV)
        if not directory:
            raise SigningError(f"no signing-key directory (signing_keys in engine.yaml, or {KEYS_ENV})")
        return KeyDirectory(directory).signer()

    @classmethod
    def from_engine_config(
        cls,
        config: EngineConfig,
        config_dir: Path | str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> ReviewSettings:
        """The settings of config/engine.yaml (paths relative to ``config_dir``, by default the
        folder the config was loaded from); the secret from ``ESL_REVIEW_TOKEN`` in ``environ``."""
        env = os.environ if environ is None else environ
        return cls(
            store=config.store,
            plans_dir=config.resolve("plans_dir", config_dir),
            data_dir=config.resolve("data_dir", config_dir),
            database=config.database_target(config_dir),
            broker=BrokerAddress.parse(config.broker),
            prefix=config.prefix,
            delivery_config=config.delivery,
            calendar=config.calendar,
            kill_switch=config.kill_switch,
            secret=env.get(TOKEN_ENV) or None,
            signing_keys=config.signing_keys_dir(config_dir),
        )
