"""esl-pricing serve: the pricing manager's review page (pricing/review), in the foreground.

Settings come from config/engine.yaml (store, plans, data, database, broker, freeze windows, kill
switch), each overridable; the secret that allows approvals from ``ESL_REVIEW_TOKEN``. Without
it the page is read-only, and then it may only listen on a loopback address: a page that anyone
on the network can reach must at least ask for a token before it changes a price.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from label_gateway.broker import BrokerAddress
from label_gateway.signing import SigningError
from pricing.cli.common import err, fail, user_errors
from pricing.review.settings import TOKEN_ENV, ReviewSettings
from pricing.store.engine_config import load_engine_config

if TYPE_CHECKING:
    from pricing.review.server import ReviewServer


def register(app: typer.Typer) -> None:
    """Add `serve` to the esl-pricing command line."""
    app.command("serve")(serve)


def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="The engine config (config/engine.yaml).")] = Path(
        "config/engine.yaml"
    ),
    plans: Annotated[Path | None, typer.Option("--plans", help="Plans folder (default: plans_dir of the config).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Store data folder (default: data_dir of the config).")] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Engine database, a SQLite file or URL (default: the config's / $ESL_DATABASE).")
    ] = None,
    broker: Annotated[str | None, typer.Option("--broker", help="MQTT broker mqtt://HOST:PORT (default: the config's).")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="MQTT topic prefix (default: the config's).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: any free port).")] = 8080,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option("--trusted-proxy", help="IP or CIDR network of a TLS proxy in front whose X-Forwarded-Proto/-For "
                                              "are believed (repeatable; default: none)."),
    ] = None,
) -> None:
    """Serve the review page: the latest plan, approvals, price history, labels and gateways.

    Read-only unless ESL_REVIEW_TOKEN is set (the token, or the password people log in with).
    Stops on Ctrl-C or SIGTERM; a push in flight parks in the outbox."""
    from pricing.review.server import ReviewServer, ServerError, is_loopback

    if not config.is_file():
        fail(f"{config}: engine config not found (pass --config FILE)")
    with user_errors():
        engine_config = load_engine_config(config)
        try:
            settings = ReviewSettings.from_engine_config(engine_config, config.parent)
        except ValueError as exc:
            fail(str(exc))
        changes: dict[str, object] = {}
        if plans is not None:
            changes["plans_dir"] = plans.resolve()
        if data is not None:
            changes["data_dir"] = data.resolve()
        if db is not None:
            changes["database"] = db
        if broker is not None:
            changes["broker"] = BrokerAddress.parse(broker)
        if prefix is not None:
            if not prefix.strip() or any(ch in prefix for ch in "+# ") or prefix.startswith("/") or prefix.endswith("/"):
                fail(f"--prefix '{prefix}': not a usable MQTT topic prefix")
            changes["prefix"] = prefix
        if trusted_proxy:
            changes["trusted_proxies"] = tuple(trusted_proxy)
        try:
            settings = dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
        except ValueError as exc:
            fail(str(exc))
    if not settings.read_only:
        try:
            settings.signer()  # approvals push signed states: a missing key is said now, not at the first approval
        except SigningError as exc:
            fail(str(exc))
    if settings.read_only and not is_loopback(host):
        fail(f"--host {host} would open the page to the network without a token: set {TOKEN_ENV} first "
             "(or keep the default --host 127.0.0.1)")
    with user_errors(ServerError):
        server = ReviewServer(settings, host, port)
    mode = f"read-only (set {TOKEN_ENV} to allow approvals)" if settings.read_only else "approvals need the token"
    err.print(f"review page for store {settings.store}: {mode}; plans in {settings.plans_dir}", highlight=False,
              markup=False, soft_wrap=True)
    if not is_loopback(host):
        err.print("[yellow]warning:[/] listening beyond this machine over plain HTTP: the token travels unencrypted; "
                  "put a TLS proxy in front (and name it with --trusted-proxy)")
    typer.echo(server.url)
    serve_until_stopped(server)


def serve_until_stopped(server: ReviewServer) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped

    # uvicorn shuts down gracefully on SIGTERM / Ctrl-C and then raises the signal again: end here.
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except (_Stopped, KeyboardInterrupt):
        pass
    err.print("stopped")


class _Stopped(Exception):
    """SIGTERM after the server shut down."""
