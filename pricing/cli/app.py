"""esl-pricing: the command line. Rich output goes to stderr; --json prints one JSON object as
the last line of stdout. Exit codes: 0 ok, 1 failure, 2 user error (config, data, arguments)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
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
from rich.table import Table

from label_gateway.protocol import DEFAULT_PREFIX
from pricing.cli.common import (
    EXIT_FAILURE,
    EXIT_USER_ERROR,
    emit_json,
    err,
    fail,
    user_errors,
)
from pricing.core.yaml_config import validate_config_file
from pricing.cli.daemon import register as register_daemon_commands
from pricing.cli.db import db_app
from pricing.cli.outbox import (
    AckTimeoutOption,
    AttemptsOption,
    BrokerOption,
    DbOption,
    DeadlineOption,
    PrefixOption,
    WindowOption,
    apply_plan,
    outbox_app,
)
from pricing.cli.render import register as register_render_commands
from pricing.cli.serve import register as register_review_commands
from pricing.cli.simulate import replay_command, simulate_app

if TYPE_CHECKING:
    from pricing.core.data import Reject
    from pricing.store.demo import DemoOptions, DemoResult
    from pricing.store.demo import Progress as StageProgress
    from pricing.plan.evaluation import EvaluationReport
    from pricing.plan.price_plan import PlanLine, PricePlan

app = typer.Typer(
    name="esl-pricing",
    help="Dynamic electronic shelf-label pricing: demand model, price optimizer, label delivery.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(simulate_app, name="simulate")
app.add_typer(outbox_app, name="outbox")
app.add_typer(db_app, name="db")
app.command("replay")(replay_command)
register_daemon_commands(app)
register_render_commands(app)
register_review_commands(app)

DEFAULT_RULES = Path("config/rules.yaml")


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
    from pricing.store.demo import DemoOptions, run_demo

    options = DemoOptions(
        workdir=workdir, skus=skus, seed=seed, gateways=gateways, broker_url=broker,
        rules_path=_resolve_rules(rules), prefix=prefix,
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
        progress = bar.enter_context(_stage_progress())
        result = run_demo(options, progress, hold=report_and_serve if serve else None)
        if not serve:
            report(result)
    if result.delivery.failed or result.mismatched_labels:
        raise typer.Exit(EXIT_FAILURE)


def _serve_demo(result: DemoResult, options: DemoOptions, port: int) -> None:
    """The review page on the demo's files, database, broker and still-running labels."""
    import os

    from pricing.review.server import ReviewServer, ServerError
    from pricing.review.settings import TOKEN_ENV, ReviewSettings
    from pricing.cli.serve import serve_until_stopped

    try:
        settings = ReviewSettings(
            store=result.store.store_id, plans_dir=options.workdir.resolve() / "plans",
            data_dir=options.workdir.resolve() / "data", database=str(result.database.resolve()),
            broker=result.address, prefix=options.prefix, secret=os.environ.get(TOKEN_ENV) or None,
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


@contextmanager
def _stage_progress() -> Iterator[StageProgress]:
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


def _print_demo(result: DemoResult, summary: dict[str, object]) -> None:
    from pricing.core.money import format_money

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
    err.print(facts)
    for line in result.plan.held[:5]:
        err.print(f"  held {line.sku} ({line.name}): {line.explanation}", highlight=False)
    if len(result.plan.held) > 5:
        err.print(f"  ... and {len(result.plan.held) - 5} more held (status 'held' in the plan CSV)")
    for outcome in result.delivery.failed[:5]:
        err.print(f"  [red]failed[/] label {outcome.update.label_id}: {outcome.detail}", highlight=False)


# -- simulator ----------------------------------------------------------------------------------
# -- engine stages ------------------------------------------------------------------------------
@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Store data directory (products.csv, sales.csv, labels.csv).")],
    out: Annotated[Path, typer.Option(help="Directory for the model and its card.")] = Path("models"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Train the demand model on a store's sales history and save it with its model card."""
    from pricing.core.data import load_store
    from pricing.demand.model_store import save_model
    from pricing.demand.training import train_demand_model

    with user_errors():
        store = load_store(data)
        _report_rejects(store.rejects)
        result = train_demand_model(store.sales, store.products, progress=lambda msg: err.print(f"  {msg}"))
        path = save_model(result, out)
    err.print(
        f"model {path}: {result.n_skus} SKUs, {result.n_rows} rows {result.data_start}..{result.data_end}, "
        f"holdout WAPE {result.metrics['wape']:.3f} (seasonal-naive {result.metrics['baseline_wape']:.3f})"
    )
    if as_json:
        emit_json({"model": str(path), "n_skus": result.n_skus, "n_rows": result.n_rows, **result.metrics})


@app.command()
def evaluate(
    data: Annotated[
        Path | None,
        typer.Option(help="A simulated store directory (with truth.csv); default: generate the sample store."),
    ] = None,
    skus: Annotated[int, typer.Option(min=10, max=200_000, help="SKUs of the generated sample store.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the generated store and of the simulated weeks.")] = 7,
    holdout_weeks: Annotated[int, typer.Option(min=1, max=26, help="Weeks held out for the forecast error.")] = 4,
    weeks: Annotated[int, typer.Option(min=1, max=52, help="Weeks of closed-loop pricing.")] = 8,
    rules: Annotated[Path | None, typer.Option(help="Rules file (default: config/rules.yaml if present).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Measure the demand model against the simulator's truth: forecast, elasticities, closed loop."""
    from pricing.core.yaml_config import load_rules
    from pricing.plan.evaluation import EvaluationOptions
    from pricing.plan.evaluation import evaluate as run_evaluation
    from pricing.rules.config import RulesConfig

    rules_path = _resolve_rules(rules)
    with user_errors():
        config = load_rules(rules_path) if rules_path else RulesConfig()
        options = EvaluationOptions(data, skus, seed, holdout_weeks, weeks, config)
        with err.status("evaluating") as status:

            def progress(message: str) -> None:
                err.print(f"  {message}")
                status.update(message.strip())

            report = run_evaluation(options, progress=progress)
    _print_evaluation(report)
    if as_json:
        emit_json(report.summary())


def _print_evaluation(report: EvaluationReport) -> None:
    summary = report.summary()
    table = Table(title="Own-price elasticity: learned vs true, per category")
    for column in ("category", "SKUs", "true", "learned", "MAE", "MAE cat. only", "uncertain", "cross (learned/true)"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for cat, row in report.categories.iterrows():
        table.add_row(
            str(cat), f"{int(row['skus'])}", f"{row['true_mean']:.2f}", f"{row['learned_mean']:.2f}",
            f"{row['mae']:.3f}", f"{row['mae_category_only']:.3f}", f"{row['uncertain_share']:.0%}",
            f"{row['cross_learned']:.2f} / {row['cross_true']:.2f}",
        )
    err.print(table)
    err.print(
        f"forecast WAPE {summary['wape']:.3f} vs seasonal-naive {summary['wape_baseline']:.3f} "
        f"(ratio {summary['wape_ratio']:.2f}); elasticity MAE {summary['elasticity_mae']:.3f} "
        f"(category means alone {summary['elasticity_mae_category_only']:.3f})"
    )
    err.print(
        f"closed loop, {summary['closed_loop_weeks']} weeks: realised profit {summary['closed_loop_profit_vs_oracle']:.3f} "
        f"of the oracle's (expected {summary['closed_loop_expected_profit_vs_oracle']:.3f}); "
        f"keeping today's prices: {summary['hold_profit_vs_oracle']:.3f}"
    )


@app.command()
def plan(
    data: Annotated[Path, typer.Option(help="Store data directory.")],
    model: Annotated[Path, typer.Option(help="Model file or directory (from esl-pricing train).")] = Path("models"),
    rules: Annotated[Path | None, typer.Option(help="Rules file (default: config/rules.yaml if present).")] = None,
    out: Annotated[Path, typer.Option(help="Directory for the plan's JSON and CSV.")] = Path("plans"),
    top: Annotated[int, typer.Option(min=0, help="Rows of the diff table to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Compute a price plan: candidates from the rules, the optimizer picks, one reason per price."""
    from pricing.core.yaml_config import load_rules
    from pricing.plan.cycle import run_pricing_cycle
    from pricing.core.data import competitor_reference, load_store
    from pricing.demand.model_store import load_model, require_model_covers
    from pricing.rules.config import RulesConfig

    rules_path = _resolve_rules(rules)
    with user_errors():
        config = load_rules(rules_path) if rules_path else RulesConfig()
        store = load_store(data)
        _report_rejects(store.rejects)
        demand, _card = load_model(model)
        unknown = require_model_covers(demand, store.products["sku"].astype(str), source=str(model))
        if unknown:
            err.print(f"{len(unknown)} SKUs are new to the model and are held at their current price")
        result = run_pricing_cycle(
            store.products, demand, config, store=store.store_id, model_name=str(model),
            rejected_rows=len(store.rejects), competitor=competitor_reference(store.competitors), labels=store.labels,
        )
        json_path, csv_path = result.write(out)
    _print_plan(result, top)
    err.print(f"plan written: {json_path} and {csv_path}", highlight=False, markup=False)
    if result.awaiting_approval:
        err.print(
            f"[yellow]{len(result.awaiting_approval)} changes need a pricing manager's approval[/] "
            f"(apply pushes only approved changes): esl-pricing approve {escape(str(json_path))} --sku SKU "
            "(or --all; --reject to reject)",
            highlight=False,
        )
    if as_json:
        emit_json(_plan_summary(result, json_path))


@app.command()
def apply(
    plan_file: Annotated[Path, typer.Argument(help="A plan JSON written by esl-pricing plan.")],
    data: Annotated[Path, typer.Option(help="Store data directory (labels.csv maps SKUs to labels).")],
    db: DbOption = None,
    broker: BrokerOption = "mqtt://127.0.0.1:1883",
    prefix: PrefixOption = DEFAULT_PREFIX,
    ack_timeout: AckTimeoutOption = 30.0,
    max_attempts: AttemptsOption = 5,
    window: WindowOption = 200,
    effective_at: Annotated[
        str | None,
        typer.Option(help="ISO 8601 instant with time zone at which the labels switch (push ahead; registers switch too)."),
    ] = None,
    deadline: DeadlineOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Push a saved plan's changed prices (approved ones included) to the labels and wait for their acks.

    The new prices are first recorded in the engine database's outbox; a label's change is done
    when the label acknowledges it displays it. Changes still awaiting approval (esl-pricing
    approve) and rejected ones are not pushed. If the push is interrupted, `esl-pricing outbox
    resume` finishes it."""
    apply_plan(plan_file, data, db, broker, prefix, ack_timeout, max_attempts, window, effective_at, deadline,
               as_json, _stage_progress)


def _print_still_waiting(plan_file: Path, waiting: int) -> None:
    if waiting:
        err.print(
            f"[yellow]{waiting} changes await approval and were not pushed[/] "
            f"(esl-pricing approve {escape(str(plan_file))} --sku SKU or --all)",
            highlight=False,
        )


@app.command()
def approve(
    plan_file: Annotated[Path, typer.Argument(help="A plan JSON written by esl-pricing plan.")],
    sku: Annotated[
        list[str] | None, typer.Option("--sku", help="A SKU whose change awaits approval (repeat for more).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Decide every change awaiting approval.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject the changes instead (they are never pushed).")] = False,
    by: Annotated[str | None, typer.Option(help="Who decides (default: $USER).")] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Engine database whose event log records the decisions (default: $ESL_DATABASE if set)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Approve (or --reject) changes beyond the approval band; rewrites the plan's JSON and CSV.

    Without --sku or --all, lists the changes awaiting approval. Approved changes are pushed by
    esl-pricing apply."""
    import os
    from datetime import UTC, datetime

    from pricing.core.database import open_engine
    from pricing.plan.plan_files import PlanFileError, decide

    saved = _read_plan(plan_file)
    skus = list(dict.fromkeys(sku or []))  # keep the order, drop repeats
    if skus and all_:
        fail("pass --sku or --all, not both")
    waiting = saved.awaiting_approval
    if not skus and not all_:
        if waiting:
            err.print(_price_table(f"{saved.plan_id}: {len(waiting)} changes awaiting approval", waiting))
            fail(f"pass --sku SKU (repeatable) or --all to {'reject' if reject else 'approve'} these changes")
        fail(f"pass --sku SKU or --all; no changes in {plan_file} await approval")
    decider = by if by is not None else os.environ.get("USER") or "unknown"
    if not decider.strip():
        fail("--by must name who decides")
    target = db or os.environ.get("ESL_DATABASE")
    with user_errors(PlanFileError):
        engine = open_engine(target) if target else None
        decision = decide(plan_file, None if all_ else skus, approve=not reject, by=decider,
                          at=datetime.now(UTC), engine=engine)
    saved, decided = decision.plan, decision.decided
    still = len(saved.awaiting_approval)
    verb = "rejected" if reject else "approved"
    if decided:
        chosen = set(decided)
        lines = [line for line in saved.lines if line.sku in chosen]
        err.print(_price_table(f"{saved.plan_id}: {len(decided)} changes {verb} by {decider}", lines,
                               reason=False, decided=True))
    else:
        err.print(f"nothing to decide: no changes in {plan_file} await approval", highlight=False, markup=False)
    err.print(
        f"{len(decided)} {verb}; {still} still awaiting approval; {len(saved.new_prices())} changes to push "
        f"(esl-pricing apply {plan_file})",
        highlight=False, markup=False,
    )
    if as_json:
        emit_json({
            "plan": str(plan_file), "decision": verb, "decided": decided, "by": decider,
            "awaiting_approval": still, "to_push": len(saved.new_prices()),
        })


def _read_plan(path: Path) -> PricePlan:
    from pricing.plan.plan_files import PlanFileError, read_plan

    try:
        return read_plan(path)
    except PlanFileError as exc:
        fail(str(exc))


def _report_rejects(rejects: Sequence[Reject]) -> None:
    if not rejects:
        return
    err.print(f"[yellow]{len(rejects)} input row(s) rejected[/] (not used):")
    for reject in rejects[:10]:
        err.print(f"  {reject}", highlight=False, markup=False)
    if len(rejects) > 10:
        err.print(f"  ... and {len(rejects) - 10} more")


def _plan_summary(result: PricePlan, json_path: Path) -> dict[str, object]:
    return {
        "plan": str(json_path), "skus": len(result.lines), "changed": len(result.changes),
        "changes": len(result.proposed_prices()), "awaiting_approval": len(result.awaiting_approval),
        "held": len(result.held), "relaxed": sum(1 for line in result.lines if line.relaxed_rules),
        "expected_profit_delta_pct": round(result.expected_profit_delta_pct(), 3),
        "solver_status": result.solver.status, "gap_pct": round(result.solver.gap_pct, 3),
    }


def _gain(line: PlanLine) -> float:
    """Expected profit change per day, cents."""
    return (line.profit_new_cents or 0.0) - (line.profit_old_cents or 0.0)


def _reason(line: PlanLine) -> str:
    parts = [line.binding_rule]
    if line.relaxed_rules:
        parts.append("relaxed: " + ", ".join(line.relaxed_rules))
    if line.soft_rules_broken:
        parts.append("soft broken: " + ", ".join(line.soft_rules_broken))
    if line.group:
        parts.append(f"group {line.group}")
    return "; ".join(parts)


_STATUS_TEXT = {
    "change": "[green]change[/]",
    "approval": "[bold yellow]needs approval[/]",
    "rejected": "[red]rejected[/]",
    "keep": "keep",
    "held": "[magenta]held[/]",
}


def _price_table(title: str, lines: Sequence[PlanLine], *, reason: bool = True, decided: bool = False) -> Table:
    """One row per line: old -> new, change %, expected profit change per day, status, why."""
    from pricing.core.money import to_decimal

    table = Table(title=escape(title), title_justify="left")
    columns = [("sku", "left"), ("name", "left"), ("old -> new", "right"), ("change", "right"),
               ("profit/day", "right"), ("status", "left")]
    if decided:
        columns.append(("by", "left"))
    if reason:
        columns.append(("reason", "left"))
    for column, justify in columns:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for line in lines:
        change = f"{line.change_pct:+.1f}%" if line.old_cents else ""
        row = [
            escape(line.sku), escape(line.name), f"{to_decimal(line.old_cents)} -> {to_decimal(line.new_cents)}",
            change, f"{_gain(line) / 100:+.2f}", _STATUS_TEXT.get(line.status, escape(line.status)),
        ]
        if decided:
            row.append(escape(line.decided_by or ""))
        if reason:
            row.append(escape(_reason(line)))
        table.add_row(*row)
    return table


def _print_plan(result: PricePlan, top: int) -> None:
    changes = sorted(
        (line for line in result.lines if line.status in ("change", "approval")), key=_gain, reverse=True
    )
    shown = changes[:top]
    title = f"{result.plan_id}: {len(changes)} changes"
    if len(shown) < len(changes):
        title += f" (top {len(shown)} by profit gain; all in the plan CSV)"
    if shown:
        err.print(_price_table(title, shown))
    else:
        err.print(title, highlight=False, markup=False)
    waiting = len(result.awaiting_approval)
    relaxed = sum(1 for line in result.lines if line.relaxed_rules)
    solver = result.solver
    counts = (
        f"changes {len(changes)}, awaiting approval {waiting}, held {len(result.held)}, "
        f"relaxed rules on {relaxed} SKUs; expected profit change {result.expected_profit_delta_pct():+.2f}%"
    )
    err.print(counts, highlight=False, markup=False)
    err.print(
        f"solver {solver.status}, gap {solver.gap_pct:.2f}%, groups {solver.groups_dp} by DP and "
        f"{solver.groups_cpsat} by CP-SAT, in {solver.seconds:.2f}s"
        + ("; change budget relaxed (the rules force more changes)" if solver.budget_relaxed else ""),
        highlight=False, markup=False,
    )
    for note in result.notes:
        err.print(f"  note: {note}", highlight=False, markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
