"""What every esl-pricing command shares: the stderr console, one-line errors, the JSON last line,
the options several commands take, the stage progress display and the plan-file reading.

Exit codes: 0 ok, 1 failure (broker or database unusable, labels failed), 2 user error (config,
data, arguments)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
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
from pricing.rules.config import (
    EXAMPLE_RULES,
    RulesConfig,
    example_rules_path,
    load_rules,
)
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

#: The one place a command looks for rules when --rules is not given (relative to the working directory).
DEFAULT_RULES = Path("config/rules.yaml")

RulesOption = Annotated[
    str | None,
    typer.Option(
        "--rules",
        metavar="FILE",
        help=f"Rules file (default: {DEFAULT_RULES} in the working directory; "
        f"'{EXAMPLE_RULES}': the packaged example rules).",
    ),
]


def database_target(db: str | None) -> str:
    """The engine database named by --db, else $ESL_DATABASE, else esl-engine.db. Naming what cannot
    be one is a user error (one line, exit 2): a directory, a file that is not SQLite, a URL of
    another kind than sqlite:// or postgresql://. An unreachable server stays a failure (exit 1)."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    from pricing.core.database import SUPPORTED_DIALECTS, url_without_password

    target = db or os.environ.get(DATABASE_ENV) or DEFAULT_DATABASE
    hint = "give the engine database: a SQLite file or a PostgreSQL URL"
    if "://" in target:
        try:
            backend = make_url(target).get_backend_name()
        except (ArgumentError, ValueError):
            backend = ""
        if backend not in SUPPORTED_DIALECTS:
            fail(f"database '{url_without_password(target)}': not a SQLite or PostgreSQL URL ({hint})")
        return target
    path = Path(target).expanduser()
    if path.is_dir():
        fail(f"{target}: is a directory, not a database file ({hint})")
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_HEADER))
    except OSError:
        return target  # missing (a push creates it) or unreadable (open_engine says why)
    if head and head != SQLITE_HEADER:
        fail(f"{target}: not a SQLite database ({hint})")
    return target


#: The first bytes of every SQLite database file (an empty file is an empty database).
SQLITE_HEADER = b"SQLite format 3\x00"


def resolve_rules(option: str | Path | None) -> Path:
    """The rules file a command uses: ``--rules FILE``; else config/rules.yaml in the working
    directory; ``--rules example`` names the packaged example rules. None found or a missing
    file: one line and exit 2."""
    if option is None:
        if DEFAULT_RULES.is_file():
            return DEFAULT_RULES
        fail(
            f"no rules file: {DEFAULT_RULES} is not in the working directory ({Path.cwd()}); "
            f"pass --rules FILE (or --rules {EXAMPLE_RULES} for the packaged example rules)"
        )
    if str(option) == EXAMPLE_RULES:
        return example_rules_path()
    path = Path(option)
    if not path.is_file():
        fail(f"{path}: rules file not found")
    return path


def load_rules_or_fail(option: str | Path | None) -> RulesConfig:
    """Resolve (resolve_rules), read and check the rules. Errors: one line per problem, exit 2.
    The command says which file it used with ``say_rules`` once its inputs are all good."""
    path = resolve_rules(option)
    with user_errors():
        return load_rules(path)


def say_rules(rules: RulesConfig) -> None:
    """``rules: PATH (sha256 12ab34cd5e6f...)`` on stderr: which rules file a command used."""
    source = rules.source
    text = "rules: built in (no file)" if source is None else f"rules: {source.path} (sha256 {source.sha256[:12]}...)"
    err.print(text, highlight=False, markup=False, soft_wrap=True)


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


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT (Ctrl-C) set ``stop`` instead of killing the process mid-way."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
