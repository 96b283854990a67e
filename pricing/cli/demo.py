"""esl-pricing demo: the whole loop once on a sample store, and the review page on it with --serve."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from label_gateway.protocol import DEFAULT_PREFIX
from pricing.cli.common import (
    EXIT_FAILURE,
    RulesOption,
    emit_json,
    err,
    fail,
    resolve_rules,
    stage_progress,
    user_errors,
)
from pricing.core.money import format_money
from pricing.store.demo import DemoOptions, DemoResult


def register(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    skus: Annotated[int, typer.Option(min=10, max=200_000, help="SKUs in the sample store.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the sample store.")] = 7,
    gateways: Annotated[int, typer.Option(min=1, max=64, help="Label gateways in the sample store.")] = 2,
    broker: Annotated[
        str | None, typer.Option(help="Use this MQTT broker (mqtt://HOST:PORT) instead of the embedded one.")
    ] = None,
    rules: RulesOption = None,
    workdir: Annotated[Path, typer.Option(help="Where the sample data, model and plan are written.")] = Path(
        "esl-demo"
    ),
    prefix: Annotated[str, typer.Option(help="MQTT topic prefix.")] = DEFAULT_PREFIX,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then serve the review page (and keep the broker and labels running) until Ctrl-C.")
    ] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port of the review page with --serve (0: any free port).")] = 8080,
) -> None:
    """Run the whole loop once: sample store, demand model, plan, MQTT push, label acks.

    With --serve the review page stays up on 127.0.0.1 afterwards, with the simulated labels
    still running: approve a held change there and watch its labels confirm it (approvals need
    ESL_REVIEW_TOKEN; without it the page is read-only)."""
    from pricing.store.demo import run_demo

    rules_path = resolve_rules(rules)  # which one: the outcome's `rules` row and the JSON's `rules`
    options = DemoOptions(
        workdir=workdir, skus=skus, seed=seed, gateways=gateways, broker_url=broker,
        rules_path=rules_path, prefix=prefix,
    )
    bar = ExitStack()

    def report(result: DemoResult) -> None:
        bar.close()  # the progress display ends before the outcome is printed
        summary = result.summary()
        _print_demo(result, summary)
        if as_json:
            emit_json(summary)

    def report_and_serve(result: DemoResult) -> None:
        report(result)
        _serve_demo(result, options, port)

    with user_errors(), bar:
        progress = bar.enter_context(stage_progress())
        result = run_demo(options, progress, hold=report_and_serve if serve else None)
        if not serve:
            report(result)
    if result.delivery.failed or result.mismatched_labels:
        raise typer.Exit(EXIT_FAILURE)

def _serve_demo(result: DemoResult, options: DemoOptions, port: int) -> None:
    """The review page on the demo's files, database, broker and still-running labels."""
    from pricing.cli.serve import serve_until_stopped
    from pricing.review.server import ReviewServer, ServerError
    from pricing.review.settings import TOKEN_ENV, ReviewSettings

    try:
        settings = ReviewSettings(
            store=result.store.store_id, plans_dir=options.workdir.resolve() / "plans",
            data_dir=options.workdir.resolve() / "data", database=str(result.database.resolve()),
            broker=result.address, prefix=options.prefix, secret=os.environ.get(TOKEN_ENV) or None,
            signing_keys=options.workdir.resolve() / "keys",
        )
    except ValueError as exc:
        fail(str(exc))
    with user_errors(ServerError):
        server = ReviewServer(settings, "127.0.0.1", port)
    access = (f"read-only: set {TOKEN_ENV} to approve" if settings.read_only
              else f"log in with the {TOKEN_ENV} token to approve")
    err.print(f"[bold]review page:[/] {server.url} ({access}); Ctrl-C stops it and the simulated labels",
              highlight=False)
    serve_until_stopped(server)

def _print_demo(result: DemoResult, summary: dict[str, object]) -> None:
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
    facts.add_row("repriced (pushed)", str(summary["changed"]))
    facts.add_row("awaiting approval (not pushed)", str(summary["awaiting_approval"]))
    facts.add_row("held (no cost / no model / rules conflict)", str(summary["held"]))
    facts.add_row("input rows rejected", str(summary["rejected_rows"]))
    facts.add_row("expected profit / day", f"{format_money(round(old), currency)} -> {format_money(round(new), currency)}")
    facts.add_row("expected profit change", f"{summary['expected_profit_delta_pct']:+.2f}%")
    facts.add_row("labels synced to today's price first", str(summary["labels_synced"]))
    facts.add_row("labels confirmed (plan changes)", f"[green]{summary['labels_confirmed']}[/]")
    failed = summary["labels_failed"]
    facts.add_row("labels failed", f"[red]{failed}[/]" if failed else "0")
    facts.add_row("broker", str(summary["broker"]))
    facts.add_row("plan", str(summary["plan"]))
    facts.add_row("rules", str(summary["rules"]))
    err.print(facts)
    for line in result.plan.held[:5]:
        err.print(f"  held {line.sku} ({line.name}): {line.explanation}", highlight=False)
    if len(result.plan.held) > 5:
        err.print(f"  ... and {len(result.plan.held) - 5} more held (status 'held' in the plan CSV)")
    for outcome in result.delivery.failed[:5]:
        err.print(f"  [red]failed[/] label {outcome.update.label_id}: {outcome.detail}", highlight=False)
