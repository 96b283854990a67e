"""ReviewServer in a thread, and `esl-pricing serve`'s refusals (through a local Typer app)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from pricing.cli.serve import register
from pricing.review.server import ReviewServer, ServerError, is_loopback
from pricing.review.settings import ReviewSettings


def test_server_on_a_free_port_serves_and_stops(make_settings: Callable[..., ReviewSettings]) -> None:
    with ReviewServer(make_settings(), port=0) as server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/"
        answer = httpx.get(server.url + "api/session", timeout=5)
        assert answer.status_code == 200 and answer.json()["read_only"] is False
        assert "server" not in answer.headers  # no uvicorn banner
        rebound = httpx.get(server.url + "api/session", headers={"Host": f"evil.example:{server.port}"}, timeout=5)
        assert rebound.status_code == 400  # a name pointed at 127.0.0.1 by someone else (DNS rebinding)
        assert httpx.get(f"http://localhost:{server.port}/api/session", timeout=5).status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url, timeout=2)


def test_a_port_in_use_is_one_line(make_settings: Callable[..., ReviewSettings]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{port}: the port is in use"):
            ReviewServer(make_settings(), port=port)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                                 ("127.1.2.3", True), ("0.0.0.0", False), ("192.168.1.5", False),
                                                 ("example.com", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# -- the command ------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False)
    register(app)

    @app.command("noop", hidden=True)
    def _noop() -> None:  # a second command, so Typer keeps `serve` as a subcommand
        pass

    return app


def _engine_yaml(tmp_path: Path, **extra: object) -> Path:
    config = tmp_path / "engine.yaml"
    config.write_text(json.dumps({"store": "S1", "database": "engine.db", "plans_dir": "plans", "data_dir": "data",
                                  **extra}))
    return config


def _run(cli: typer.Typer, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["serve", *args], env=env or {"ESL_REVIEW_TOKEN": ""})
    return result.exit_code, result.output


def _one_line(output: str) -> bool:
    return len([line for line in output.splitlines() if line.strip()]) == 1 and "Traceback" not in output


def test_serve_refuses_the_network_without_a_token(cli: typer.Typer, tmp_path: Path) -> None:
    code, output = _run(cli, "--config", str(_engine_yaml(tmp_path)), "--host", "0.0.0.0")
    assert code == 2 and _one_line(output) and "ESL_REVIEW_TOKEN" in output


def test_serve_user_errors_are_one_line(cli: typer.Typer, tmp_path: Path) -> None:
    code, output = _run(cli, "--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and _one_line(output) and "engine config not found" in output
    code, output = _run(cli, "--config", str(_engine_yaml(tmp_path)), "--broker", "http://x")
    assert code == 2 and _one_line(output) and "scheme must be mqtt" in output
    code, output = _run(cli, "--config", str(_engine_yaml(tmp_path)), env={"ESL_REVIEW_TOKEN": "short"})
    assert code == 2 and _one_line(output) and "too short" in output
    code, output = _run(cli, "--config", str(_engine_yaml(tmp_path)), "--prefix", "a/#")
    assert code == 2 and _one_line(output) and "--prefix" in output
    code, output = _run(cli, "--config", str(_engine_yaml(tmp_path)), "--trusted-proxy", "proxy.example")
    assert code == 2 and _one_line(output) and "trusted proxy 'proxy.example'" in output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        code, output = _run(cli, "--config", str(_engine_yaml(tmp_path)), "--port", port)
    assert code == 2 and _one_line(output) and "the port is in use" in output


def test_settings_from_the_engine_config(tmp_path: Path) -> None:
    from pricing.store.engine_config import load_engine_config

    config = load_engine_config(_engine_yaml(tmp_path, kill_switch=True, prefix="shop"))
    settings = ReviewSettings.from_engine_config(config, environ={"ESL_REVIEW_TOKEN": "a-long-enough-token"})
    assert settings.plans_dir == (tmp_path / "plans").resolve() and settings.data_dir == (tmp_path / "data").resolve()
    assert settings.database == str((tmp_path / "engine.db").resolve())
    assert settings.kill_switch is True and settings.prefix == "shop" and settings.secret == "a-long-enough-token"
    assert "a-long-enough-token" not in repr(settings)
    assert ReviewSettings.from_engine_config(config, environ={}).read_only
