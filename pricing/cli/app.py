"""The esl-pricing command line: one Typer app assembled from the command modules of pricing.cli.

Each module registers its commands (``register(app)``); the options and output helpers they share
live in pricing.cli.common, which imports none of them."""

from __future__ import annotations

import typer

from pricing.cli import (
    config,
    daemon,
    data,
    db,
    demand,
    demo,
    gateways,
    keys,
    model,
    outbox,
    plan,
    render,
    serve,
    simulate,
)

app = typer.Typer(
    name="esl-pricing",
    help="Dynamic electronic shelf-label pricing: demand model, price optimizer, label delivery.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
for module in (demo, demand, model, data, plan, outbox, daemon, serve, render, simulate, keys, gateways, config, db):  # the order of --help
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
