"""esl-pricing train / evaluate: the demand model from a sales history, and measured against the simulator's truth."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pricing.cli.common import (
    Market,
    RulesOption,
    emit_json,
    err,
    load_rules_or_fail,
    report_rejects,
    say_rules,
    user_errors,
)
from pricing.cli.progress import show_progress

if TYPE_CHECKING:
    from pricing.plan.evaluation import EvaluationReport


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(evaluate)


def train(
    data: Annotated[
        Path,
        typer.Option(help="Store data directory (products.csv and sales.csv or receipts.csv; labels.csv not needed)."),
    ],
    out: Annotated[Path, typer.Option(help="Directory for the model and its card.")] = Path("models"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Train the demand model on a store's sales history and save it with its model card."""
    from pricing.core.store_data import load_store
    from pricing.demand.model_store import save_model
    from pricing.demand.training import train_demand_model

    with user_errors():
        store = load_store(data, require_labels=False)
        report_rejects(store.rejects)
        if store.duplicates:
            err.print(
                f"[yellow]{len(store.duplicates)} exact duplicate {store.sales_file} row(s) dropped[/] (first kept; "
                f"esl-pricing data check {escape(str(data))} lists them)",
                highlight=False,
            )
        if store.receipt_counts is not None:
            c = store.receipt_counts
            err.print(
                f"{store.rows_read[store.sales_file]:,} receipt lines read, netted into {len(store.sales):,} daily rows "
                f"({c.void_lines:,} void and {c.refund_lines:,} refund lines, {c.netted_units:,} units netted; "
                f"{c.negative_days:,} days below zero set to 0)",
                highlight=False,
            )
        with show_progress(quiet=as_json) as progress:  # the fits take minutes on a large store
            result = train_demand_model(store.sales, store.products, listing=store.listing, progress=progress.say)
        if as_json:  # no progress lines: what training did to the data is still said
            for note in result.notes:
                err.print(f"  {note}", highlight=False, markup=False)
        result.data_counts = {name: store.counts(name) for name in store.rows_read}
        path = save_model(result, out)
    err.print(
        f"model {path}: {result.n_skus} SKUs, {result.n_rows} rows {result.data_start}..{result.data_end}, "
        f"holdout WAPE {result.metrics['wape']:.3f} (seasonal-naive {result.metrics['baseline_wape']:.3f})"
    )
    if as_json:
        emit_json({"model": str(path), "n_skus": result.n_skus, "n_rows": result.n_rows, **result.metrics})

def evaluate(
    data: Annotated[
        Path | None,
        typer.Option(help="A simulated store directory (with truth.csv); default: generate the sample store."),
    ] = None,
    market: Annotated[
        Market,
        typer.Option(help="The generated store's shoppers: loglog (today's market) or choice (a mixed logit among substitutes, sparse dirty receipts)."),
    ] = Market.loglog,
    skus: Annotated[
        int | None, typer.Option(min=10, max=200_000, help="SKUs of the generated store (default 2000 loglog, 128 choice).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated store and of the simulated weeks.")] = 7,
    holdout_weeks: Annotated[int, typer.Option(min=1, max=26, help="Weeks held out for the forecast error.")] = 4,
    weeks: Annotated[int, typer.Option(min=1, max=52, help="Weeks of closed-loop pricing.")] = 8,
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Measure the demand model against the simulator's truth: forecast, elasticities, closed loop.

    The closed loop prices with the rules; their categories, brands or SKUs that match no product of
    the evaluated store are listed ("rules not used here") and do not apply."""
    from pricing.plan.evaluation import EvaluationOptions
    from pricing.plan.evaluation import evaluate as run_evaluation

    config = load_rules_or_fail(rules)
    with user_errors():
        options = EvaluationOptions(data, skus, seed, holdout_weeks, weeks, config, market.value)
        with err.status("evaluating") as status:

            def progress(message: str) -> None:
                err.print(f"  {message}")
                status.update(message.strip())

            report = run_evaluation(options, progress=progress)
    _print_evaluation(report)
    say_rules(config)
    if as_json:
        emit_json(report.summary())

def _print_evaluation(report: EvaluationReport) -> None:
    summary = report.summary()
    table = Table(title=f"Own-price elasticity: learned vs true, per category ({report.market} market)")
    columns = ("category", "model", "SKUs", "true", "learned", "MAE", "MAE true cat. mean", "90% cover", "uncertain", "cross (learned/true)")
    for column in columns:
        table.add_column(column, justify="left" if column in ("category", "model") else "right")
    for cat, row in report.categories.iterrows():
        cross_true = f"{row['cross_true']:.2f}" if row["cross_true"] == row["cross_true"] else "-"
        table.add_row(
            str(cat), str(row["model"]), f"{int(row['skus'])}", f"{row['true_mean']:.2f}", f"{row['learned_mean']:.2f}",
            f"{row['mae']:.3f}", f"{row['mae_category_mean']:.3f}", f"{row['coverage']:.0%}", f"{row['uncertain_share']:.0%}",
            f"{row['cross_learned']:.2f} / {cross_true}",
        )
    err.print(table)
    err.print(
        f"forecast WAPE {summary['wape']:.3f} vs seasonal-naive {summary['wape_baseline']:.3f} "
        f"(ratio {summary['wape_ratio']:.2f}); elasticity MAE {summary['elasticity_mae']:.3f} "
        f"(true category means {summary['elasticity_mae_category_mean']:.3f}, the model's category means "
        f"{summary['elasticity_mae_category_only']:.3f}, -1.0 for all {summary['elasticity_mae_constant']:.3f}); "
        f"90% intervals cover {summary['interval_coverage']:.0%} of the true elasticities"
    )
    err.print(
        f"closed loop, {summary['closed_loop_weeks']} weeks: realised profit {summary['closed_loop_profit_vs_oracle']:.3f} "
        f"of the oracle's (expected {summary['closed_loop_expected_profit_vs_oracle']:.3f}); "
        f"keeping today's prices: {summary['hold_profit_vs_oracle']:.3f}"
    )
