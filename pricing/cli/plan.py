"""esl-pricing plan / approve: compute a price plan with a reason per price, and decide the changes held for approval."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pricing.cli.common import (
    DATABASE_ENV,
    RulesOption,
    emit_json,
    err,
    fail,
    load_rules_or_fail,
    read_plan_or_fail,
    report_rejects,
    say_rules,
    user_errors,
)
from pricing.core.money import to_decimal
from pricing.plan.price_plan import PlanLine, PricePlan


def register(app: typer.Typer) -> None:
    app.command()(plan)
    app.command()(approve)


def plan(
    data: Annotated[Path, typer.Option(help="Store data directory.")],
    model: Annotated[Path, typer.Option(help="Model file or directory (from esl-pricing train).")] = Path("models"),
    rules: RulesOption = None,
    out: Annotated[Path, typer.Option(help="Directory for the plan's JSON and CSV.")] = Path("plans"),
    top: Annotated[int, typer.Option(min=0, help="Rows of the diff table to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Compute a price plan: candidates from the rules, the optimizer picks, one reason per price.

    The plan records its inputs (rules, model and data files, each with its SHA-256); a category,
    brand or SKU in the rules that matches no product is an error (FILE:LINE, exit 2)."""
    from pricing.core.data import competitor_reference
    from pricing.core.store_data import load_store
    from pricing.demand.model_store import load_model, require_model_covers
    from pricing.plan.cycle import plan_inputs, run_pricing_cycle

    config = load_rules_or_fail(rules)
    with user_errors():
        store = load_store(data)
        report_rejects(store.rejects)
        demand, card = load_model(model)
        unknown = require_model_covers(demand, store.products["sku"].astype(str), source=str(model))
        if unknown:
            err.print(f"{len(unknown)} SKUs are new to the model and are held at their current price")
        result = run_pricing_cycle(
            store.products, demand, config, store=store.store_id, model_name=str(model),
            rejected_rows=len(store.rejects), competitor=competitor_reference(store.competitors), labels=store.labels,
            inputs=plan_inputs(config, model=model, model_sha256=(card or {}).get("model_sha256"), data_dir=data,
                               data_files=store.rows_read),
        )
        json_path, csv_path = result.write(out)
    _print_plan(result, top)
    say_rules(config)
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
    from pricing.core.database import open_engine
    from pricing.plan.plan_files import PlanFileError, decide
    from pricing.store.event_log import EventLog

    saved = read_plan_or_fail(plan_file)
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
    target = db or os.environ.get(DATABASE_ENV)
    with user_errors(PlanFileError):
        engine = open_engine(target) if target else None
        decision = decide(plan_file, None if all_ else skus, approve=not reject, by=decider, at=datetime.now(UTC))
        if engine is not None:
            EventLog(engine, decision.plan.store).append(decision.events())
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

def _plan_summary(result: PricePlan, json_path: Path) -> dict[str, object]:
    return {
        "plan": str(json_path), "skus": len(result.lines), "changed": len(result.changes),
        "changes": len(result.proposed_prices()), "awaiting_approval": len(result.awaiting_approval),
        "held": len(result.held), "relaxed": sum(1 for line in result.lines if line.relaxed_rules),
        "expected_profit_delta_pct": round(result.expected_profit_delta_pct(), 3),
        "solver_status": result.solver.status, "gap_pct": round(result.solver.gap_pct, 3),
        "inputs": None if result.inputs is None else result.inputs.model_dump(mode="json"),
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
