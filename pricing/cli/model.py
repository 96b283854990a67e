"""esl-pricing model show: what the demand model learned per category and per SKU (pricing/demand/model_view.py).

Tables go to stderr; with ``--json`` the last stdout line is one object: ``model_dir``, ``skus``
(sku, category, elasticity, se, uncertain, model, days, distinct_prices), ``categories``
(category, model, n_skus, mean_elasticity, elasticity_sd, n_uncertain) and ``bounds_binding``
(what the fit would have crossed but for a bound; empty when nothing binds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pricing.cli.common import JsonOption, command_group, emit_json, err, user_errors

model_app = command_group("See the demand model: per-SKU elasticity, its standard error, the data behind it.")


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")


@model_app.command("show")
def model_show(
    model_dir: Annotated[Path, typer.Argument(help="The model directory (esl-pricing train --out).")],
    sku: Annotated[
        list[str] | None, typer.Option("--sku", help="Only this SKU (repeat for several).")
    ] = None,
    category: Annotated[str | None, typer.Option("--category", help="Only this category's SKUs.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per category and per SKU: own-price elasticity, standard error, model family, days and
    distinct prices in the training data, and whether the SKU is flagged uncertain."""
    from pricing.demand.model_store import load_model
    from pricing.demand.model_view import ModelViewError, model_view

    with user_errors(ModelViewError):
        model, _card = load_model(model_dir)
        view = model_view(model, skus=sku, category=category)

    cats = Table("category", "model", "SKUs", "mean elasticity", "spread (sd)", "uncertain", title="categories")
    for c in view.categories:
        cats.add_row(
            escape(c.category), c.model, str(c.n_skus), f"{c.mean_elasticity:.3f}", f"{c.elasticity_sd:.3f}", str(c.n_uncertain)
        )
    err.print(cats)
    bounds = [str(b) for b in getattr(model, "bounds_binding_", [])]
    for line in bounds:
        err.print(f"[yellow]bound binding:[/] {escape(line)}")
    skus = Table("sku", "category", "elasticity", "se", "model", "days", "prices", "uncertain", title="SKUs")
    for r in view.skus:
        skus.add_row(
            escape(r.sku), escape(r.category), f"{r.elasticity:.3f}", "-" if r.se is None else f"{r.se:.3f}", r.model,
            "-" if r.days is None else str(r.days), "-" if r.distinct_prices is None else str(r.distinct_prices),
            "[yellow]yes[/]" if r.uncertain else "",
        )
    err.print(skus)
    if not view.skus:
        err.print("no SKU matches the filters", highlight=False)
    if as_json:
        emit_json({"model_dir": str(model_dir), **view.as_dict(), "bounds_binding": bounds})
