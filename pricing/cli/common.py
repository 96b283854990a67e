"""What every esl-pricing command shares: the stderr console, one-line errors, the JSON last line.

Exit codes: 0 ok, 1 failure (broker or database unusable, labels failed), 2 user error (config,
data, arguments)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from label_gateway.broker import BrokerError, BrokerUrlError
from label_gateway.outbox import OutboxError
from pricing.core.yaml_config import ConfigError
from pricing.core.data import DataError
from pricing.demand.model_store import ModelLoadError

err = Console(stderr=True)

EXIT_FAILURE = 1
EXIT_USER_ERROR = 2


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors(*also: type[Exception]) -> Iterator[None]:
    """Turn errors a user can cause into one line and an exit code, never a traceback.
    ``also``: more exception types that mean a user error (exit 2)."""
    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(problem, highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_USER_ERROR) from None
    except (DataError, ModelLoadError, BrokerUrlError, *also) as exc:
        fail(str(exc))
    except (BrokerError, OutboxError) as exc:
        fail(str(exc), EXIT_FAILURE)


def emit_json(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload, default=str, sort_keys=True) + "\n")
    sys.stdout.flush()
