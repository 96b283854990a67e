"""The esl-pricing command line: one Typer app assembled from the command modules of pricing.cli.

Each module registers its commands (``register(app)``); the options and output helpers they share
live in pricing.cli.common, which imports none of them."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from pricing.cli import (
    chain,
    config,
    daemon,
    data,
    db,
    demand,
    demo,
    gateway,
    gateways,
    keys,
    model,
    outbox,
    plan,
    render,
    serve,
    simulate,
)
from pricing.cli.common import EXIT_FAILURE, err

try:  # typer >= 0.22 carries its own copy of Click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer uses Click itself
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError


def usage_error_line(exc: ClickException) -> str:
    """A Click error (unknown option or command, missing or bad argument) as one line:
    ``esl-pricing outbox status: error: No such option: --bogus (see esl-pricing outbox status --help)``."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "esl-pricing"
    message = " ".join(exc.format_message().split())  # Click's texts may hold line breaks
    hint = f" (see {where} --help)" if isinstance(exc, UsageError) else ""
    return f"{where}: error: {message}{hint}"


class OneLineErrors(TyperGroup):
    """The top-level command group: Click's usage errors, from any sub-command, are one line on
    stderr (``usage_error_line``) and exit 2, instead of the usage text and a boxed panel."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except NoArgsIsHelpError as exc:  # the help is printed already
            sys.exit(exc.exit_code)
        except ClickException as exc:
            err.print(escape(usage_error_line(exc)), highlight=False, soft_wrap=True, style="red")
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("aborted", highlight=False)
            sys.exit(EXIT_FAILURE)
        # Not standalone, Click returns a typer.Exit's code, else the command's return value (None).
        sys.exit(code if type(code) is int else 0)


app = typer.Typer(
    cls=OneLineErrors,
    name="esl-pricing",
    help="Dynamic electronic shelf-label pricing: demand model, price optimizer, label delivery.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
for module in (demo, demand, model, data, plan, outbox, daemon, chain, serve, render, simulate, gateway, keys, gateways, config, db):  # the order of --help
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
