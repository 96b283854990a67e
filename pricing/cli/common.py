"""What every esl-pricing command shares: the stderr console, one-line errors, the JSON last line,
the options several commands take, the stage progress display and the plan-file reading.

Exit codes: 0 ok, 1 failure (broker or database unusable, labels failed), 2 user error (config,
data, arguments)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from label_gateway.broker import BrokerError, BrokerUrlError
from label_gateway.delivery import DeliverySettings
from label_gateway.outbox import OutboxError
from label_gateway.signing import KEYS_ENV, KeyDirectory, Signer, SigningError
from pricing.core.data import DataError, Reject
from pricing.core.yaml_config import ConfigError
from pricing.demand.model_store import ModelLoadError
from pricing.plan.plan_files import PlanFileError, read_plan
from pricing.plan.price_plan import PricePlan
from pricing.store.engine_config import DATABASE_ENV

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
    except (DataError, ModelLoadError, BrokerUrlError, SigningError, *also) as exc:
        fail(str(exc))
    except (BrokerError, OutboxError) as exc:
        fail(str(exc), EXIT_FAILURE)


def command_group(help: str) -> typer.Typer:  # noqa: A002  (typer's own name for it)
    """A sub-command group (``esl-pricing GROUP COMMAND``): help when called bare, and no locals
    in a traceback (they can hold broker passwords)."""
    return typer.Typer(help=help, no_args_is_help=True, pretty_exceptions_show_locals=False)


def emit_json(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload, default=str, sort_keys=True) + "\n")
    sys.stdout.flush()


# -- options several commands take ---------------------------------------------------------------
DEFAULT_DATABASE = "esl-engine.db"

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=f"Engine database: a SQLite file or a SQLAlchemy URL (default: ${DATABASE_ENV}, else {DEFAULT_DATABASE}).",
    ),
]

BrokerOption = Annotated[
    str, typer.Option(help="MQTT broker, mqtt://HOST:PORT or mqtts://HOST:PORT (TLS; credentials from ESL_MQTT_*).")
]

PrefixOption = Annotated[str, typer.Option(help="Topic prefix.")]

AckTimeoutOption = Annotated[float, typer.Option(min=0.01, help="Seconds a label has to acknowledge an update.")]

AttemptsOption = Annotated[int, typer.Option(min=1, help="Sends of one update before it is failed.")]

WindowOption = Annotated[int, typer.Option(min=1, max=900, help="Updates in flight per gateway at most.")]

DeadlineOption = Annotated[
    float | None, typer.Option(min=0, help="Stop waiting after this many seconds (what is left stays in the outbox).")
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")]

StoreOption = Annotated[str | None, typer.Option(help="Store id (needed when the database holds several).")]

DEFAULT_KEYS = Path("keys")

KeysOption = Annotated[
    Path,
    typer.Option(
        "--keys",
        envvar=KEYS_ENV,
        help=f"The engine's signing-key directory (esl-pricing keys create); default: ${KEYS_ENV}, else ./keys.",
    ),
]


def signer_or_fail(keys: Path) -> Signer:
    """The engine's current signing key; one line and exit 2 when there is none."""
    try:
        return KeyDirectory(keys).signer()
    except SigningError as exc:
        fail(str(exc))


#: The delivery options' defaults are DeliverySettings' own.
DELIVERY_DEFAULTS = DeliverySettings()

DEFAULT_RULES = Path("config/rules.yaml")


def database_target(db: str | None) -> str:
    return db or os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE


def resolve_rules(path: Path | None) -> Path | None:
    if path is not None:
        if not path.exists():
            fail(f"{path}: rules file not found")
        return path
    return DEFAULT_RULES if DEFAULT_RULES.exists() else None


# -- output ----------------------------------------------------------------------------------------
#: Reports a stage's progress: (stage name, done, total).
StageProgress = Callable[[str, int | None, int | None], None]


@contextmanager
def stage_progress() -> Iterator[StageProgress]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int | None, total: int | None) -> None:
            if stage not in tasks:
                for task_id in tasks.values():
                    bar.update(task_id, visible=False)
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done or 0, total=total)

        yield report


def report_rejects(rejects: Sequence[Reject]) -> None:
    if not rejects:
        return
    err.print(f"[yellow]{len(rejects)} input row(s) rejected[/] (not used):")
    for reject in rejects[:10]:
        err.print(f"  {reject}", highlight=False, markup=False, soft_wrap=True)
    if len(rejects) > 10:
        err.print(f"  ... and {len(rejects) - 10} more")


def read_plan_or_fail(path: Path) -> PricePlan:
    try:
        return read_plan(path)
    except PlanFileError as exc:
        fail(str(exc))


def print_still_waiting(plan_file: Path, waiting: int) -> None:
    if waiting:
        err.print(
            f"[yellow]{waiting} changes await approval and were not pushed[/] "
            f"(esl-pricing approve {escape(str(plan_file))} --sku SKU or --all)",
            highlight=False,
        )


class Market(str, Enum):
    """A simulated market (pricing.plan.evaluation.MARKETS): today's log-log shoppers, or shoppers
    choosing among a category's substitutes by a mixed logit, with sparse dirty receipts."""

    loglog = "loglog"
    choice = "choice"
