"""esl-pricing: the command line. Rich output goes to stderr; --json prints one JSON object as
the last line of stdout. Exit codes: 0 ok, 1 failure, 2 user error (config, data, arguments)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from label_gateway.broker import BrokerError
from pricing.config_loader import ConfigError, validate_config_file
from pricing.data import DataError
from pricing.model_store import ModelLoadError

app = typer.Typer(
    name="esl-pricing",
    help="Dynamic electronic shelf-label pricing: demand model, price optimizer, label delivery.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
simulate_app = typer.Typer(help="The store simulator: sample data, gateways and labels.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(simulate_app, name="simulate")

err = Console(stderr=True)

EXIT_FAILURE = 1
EXIT_USER_ERROR = 2

DEFAULT_RULES = Path("config/rules.yaml")


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors a user can cause into one line and an exit code, never a traceback."""
    try:
        yield
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(problem, highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_USER_ERROR) from None
    except (DataError, ModelLoadError) as exc:
        fail(str(exc))
    except BrokerError as exc:
        fail(str(exc), EXIT_FAILURE)


def emit_json(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload, default=str, sort_keys=True) + "\n")
    sys.stdout.flush()


def _resolve_rules(path: Path | None) -> Path | None:
    if path is not None:
        if not path.exists():
            fail(f"{path}: rules file not found")
        return path
    return DEFAULT_RULES if DEFAULT_RULES.exists() else None


# -- config -------------------------------------------------------------------------------------
@config_app.command("validate")
def config_validate(files: Annotated[list[Path], typer.Argument(help="YAML config files to check.")]) -> None:
    """Check config files; print FILE:LINE: key.path: message for each problem (exit 2 if any)."""
    problems: list[str] = []
    for path in files:
        problems += validate_config_file(path)
    for problem in problems:
        err.print(problem, highlight=False, soft_wrap=True, markup=False)
    if problems:
        raise typer.Exit(EXIT_USER_ERROR)
    err.print(f"[green]ok[/]: {', '.join(str(f) for f in files)}")


# -- demo ---------------------------------------------------------------------------------------
@app.command()
def demo(
    skus: Annotated[int, typer.Option(min=10, max=200_000, help="SKUs in the sample store.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the sample store.")] = 7,
    gateways: Annotated[int, typer.Option(min=1, max=64, help="Label gateways in the sample store.")] = 2,
    broker: Annotated[
        str | None, typer.Option(help="Use this MQTT broker (mqtt://HOST:PORT) instead of the embedded one.")
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Rules file (default: config/rules.yaml if present).")] = None,
    workdir: Annotated[Path, typer.Option(help="Where the sample data, model and plan are written.")] = Path(
        "esl-demo"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Run the whole loop once: sample store, demand model, plan, MQTT push, label acks."""
    from pricing.demo import DemoOptions, run_demo

    options = DemoOptions(
        workdir=workdir, skus=skus, seed=seed, gateways=gateways, broker_url=broker, rules_path=_resolve_rules(rules)
    )
    with user_errors(), _stage_progress() as progress:
        result = run_demo(options, progress)
    summary = result.summary()
    _print_demo(result, summary)
    if as_json:
        emit_json(summary)
    if result.delivery.failed or result.mismatched_labels:
        raise typer.Exit(EXIT_FAILURE)


@contextmanager
def _stage_progress() -> Iterator[object]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int | None, total: int | None) -> None:
            if stage not in tasks:
                for task_id in tasks.values():
                    bar.update(task_id, visible=False)
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done or 0, total=total)

        yield report


def _print_demo(result: object, summary: dict[str, object]) -> None:
    from pricing.demo import DemoResult
    from pricing.money import format_money

    assert isinstance(result, DemoResult)
    stages = Table(title="Pricing cycle", title_justify="left")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    for name, seconds in result.timer.seconds.items():
        stages.add_row(name, f"{seconds:.2f}")
    stages.add_row("[bold]total[/]", f"[bold]{result.timer.total:.2f}[/]")
    err.print(stages)

    old, new = result.plan.expected_profit()
    currency = result.plan.currency
    facts = Table(show_header=False, title="Outcome", title_justify="left")
    facts.add_column()
    facts.add_column(justify="right")
    facts.add_row("SKUs", str(summary["skus"]))
    facts.add_row("repriced", str(summary["changed"]))
    facts.add_row("held (no cost / no allowed price)", str(summary["held"]))
    facts.add_row("input rows rejected", str(summary["rejected_rows"]))
    facts.add_row("expected profit / day", f"{format_money(round(old), currency)} -> {format_money(round(new), currency)}")
    facts.add_row("expected profit change", f"{summary['expected_profit_delta_pct']:+.2f}%")
    facts.add_row("labels confirmed", f"[green]{summary['labels_confirmed']}[/]")
    failed = summary["labels_failed"]
    facts.add_row("labels failed", f"[red]{failed}[/]" if failed else "0")
    facts.add_row("broker", str(summary["broker"]))
    facts.add_row("plan", str(summary["plan"]))
    err.print(facts)
    for line in result.plan.held[:5]:
        err.print(f"  held {line.sku} ({line.name}): {line.explanation}", highlight=False)
    for outcome in result.delivery.failed[:5]:
        err.print(f"  [red]failed[/] label {outcome.update.label_id}: {outcome.detail}", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
