"""esl-pricing config validate: check any config file a person edits, recognising its kind.

The kinds (rules, engine, scenario, label templates) are owned and loaded by their packages; this
module only tells them apart by their top-level keys and regenerates their committed JSON Schemas::

    python -m pricing.cli.config --write-schema config/   # after changing a config model
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel

from label_gateway.label_templates import LabelTemplates
from pricing.cli.common import EXIT_USER_ERROR, command_group, err, user_errors
from pricing.core.yaml_config import (
    allowed_keys,
    json_schema,
    schema_text,
    validate_yaml_file,
)
from pricing.rules.config import RulesConfig, load_rules
from pricing.store.engine_config import EngineConfig
from simulator.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd

config_app = command_group("Check configuration files.")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@dataclass(frozen=True)
class ConfigKind:
    """One kind of config file: its model and how to recognise it from its top-level keys."""

    name: str
    model: type[BaseModel]
    detect: Callable[[Path, Mapping[Any, Any]], bool]
    title: str = ""

    def json_schema(self) -> dict[str, Any]:
        return json_schema(self.model, self.title)


def _looks_like(model: type[BaseModel]) -> Callable[[Path, Mapping[Any, Any]], bool]:
    def detect(path: Path, data: Mapping[Any, Any]) -> bool:
        return bool(set(allowed_keys(model)) & {str(key) for key in data})

    return detect


def _has_own_keys(
    model: type[BaseModel], *others: type[BaseModel], name_prefix: str = ""
) -> Callable[[Path, Mapping[Any, Any]], bool]:
    """Detect ``model`` by a top-level key no model of ``others`` has (an engine config and a
    scenario both have ``store``), or by a file name starting with ``name_prefix``."""
    shared = {key for other in others for key in allowed_keys(other)}
    own = set(allowed_keys(model)) - shared

    def detect(path: Path, data: Mapping[Any, Any]) -> bool:
        if name_prefix and path.name.startswith(name_prefix):
            return True
        return bool(own & {str(key) for key in data})

    return detect


# First match wins; a file that matches none is validated as DEFAULT_KIND (rules).
CONFIG_KINDS: dict[str, ConfigKind] = {
    "rules": ConfigKind(
        name="rules",
        model=RulesConfig,
        detect=_looks_like(RulesConfig),
        title="ESL pricing rules (config/rules.yaml)",
    ),
    "engine": ConfigKind(
        name="engine",
        model=EngineConfig,
        detect=_has_own_keys(EngineConfig, RulesConfig, Scenario, name_prefix="engine"),
        title="ESL store daemon (config/engine.yaml)",
    ),
    "scenario": ConfigKind(
        name="scenario",
        model=Scenario,
        detect=_looks_like(Scenario),
        title="ESL store simulator scenario (config/scenario.yaml)",
    ),
    "label_templates": ConfigKind(
        name="label_templates",
        model=LabelTemplates,
        detect=_has_own_keys(LabelTemplates, RulesConfig, EngineConfig, Scenario, name_prefix="label_templates"),
        title="ESL shelf-label templates (label_gateway/label_templates.yaml)",
    ),
}
DEFAULT_KIND = "rules"


def kind_for(path: Path, data: Mapping[Any, Any]) -> ConfigKind:
    for kind in CONFIG_KINDS.values():
        if kind.detect(path, data):
            return kind
    return CONFIG_KINDS[DEFAULT_KIND]


def validate_config_file(path: str | Path, kind: str | None = None, products: pd.DataFrame | None = None) -> list[str]:
    """Problem lines for the config file at ``path``, [] when it is valid.

    ``kind`` names an entry of CONFIG_KINDS; by default it is recognised from the file's keys.
    With ``products`` (products.csv), a valid rules file is also checked for categories, brands
    and SKUs that match no product (``FILE:LINE: categories.NAME: ...``).
    """
    chosen: list[ConfigKind] = [CONFIG_KINDS[kind]] if kind else []

    def choose(p: Path, data: Mapping[Any, Any]) -> type[BaseModel]:
        if not chosen:
            chosen.append(kind_for(p, data))
        return chosen[0].model

    problems = validate_yaml_file(path, choose)
    if problems or products is None or not chosen or chosen[0].name != "rules":
        return problems
    return load_rules(path).unmatched_scopes(products)


def write_schemas(config_dir: str | Path) -> list[Path]:
    """Write ``<kind>.schema.json`` (e.g. rules.schema.json) into ``config_dir``; the paths written."""
    directory = Path(config_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for kind in CONFIG_KINDS.values():
        target = directory / f"{kind.name}.schema.json"
        target.write_text(schema_text(kind.json_schema()), encoding="utf-8")
        written.append(target)
    return written


@config_app.command("validate")
def config_validate(
    files: Annotated[list[Path], typer.Argument(help="YAML config files to check.")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", metavar="DIR",
            help="A store's data directory: rules files must name only categories, brands and SKUs in its products.csv.",
        ),
    ] = None,
) -> None:
    """Check config files; print FILE:LINE: key.path: message for each problem (exit 2 if any).

    With --data, a rules file's categories, brands and SKUs that match no product are problems too."""
    from pricing.core.data import PRODUCTS_FILE, DataError, load_products

    products = None
    if data is not None:
        with user_errors():
            if not data.is_dir():
                raise DataError(f"{data}: not a directory")
            products = load_products(data / PRODUCTS_FILE).frame
    problems: list[str] = []
    for path in files:
        problems += validate_config_file(path, products=products)
    for problem in problems:
        err.print(problem, highlight=False, soft_wrap=True, markup=False)
    if problems:
        raise typer.Exit(EXIT_USER_ERROR)
    err.print(f"[green]ok[/]: {', '.join(str(f) for f in files)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pricing.cli.config",
        description="Validate config YAML files, or regenerate their committed JSON Schemas.",
    )
    parser.add_argument("files", nargs="*", type=Path, help="config files to validate")
    parser.add_argument("--write-schema", metavar="CONFIG_DIR", type=Path, help="write <kind>.schema.json here")
    args = parser.parse_args(argv)
    if args.write_schema is None and not args.files:
        parser.print_help(sys.stderr)
        return 2
    if args.write_schema is not None:
        for target in write_schemas(args.write_schema):
            print(f"wrote {target}")
    status = 0
    for file in args.files:
        problems = validate_config_file(file)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            status = 2
        else:
            print(f"{file}: ok")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
