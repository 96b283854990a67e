"""Load the YAML configs that pricing managers edit, with errors they can act on.

Every problem is one line, ``FILE:LINE: key.path: message`` (``FILE:LINE: message`` when the
problem is not about one key, ``FILE: cannot read: reason`` when there is no line), so editors and
CI logs can jump to it::

    config/rules.yaml:7: default.margn_floor_pct: unknown key; did you mean 'margin_floor_pct'? (allowed: ...)
    config/rules.yaml:9: default.max_change_pct: must be a valid decimal, got 'lots'

YAML is read with ruamel.yaml's round-trip loader so every mapping and list keeps its line numbers;
the data is converted to plain Python (dict, list, str, int, bool, ``Decimal`` for YAML floats so
that ``0.1`` stays exactly ``Decimal("0.1")``) and validated by the pydantic model, and each
pydantic error's ``loc`` is mapped back to the line of the deepest YAML node along it.

Each config model is loaded by the package that owns it, with this loader (``load_rules`` in
pricing.rules, ``load_engine_config`` in pricing.store, ``load_scenario`` in simulator,
``load_label_templates`` in label_gateway); ``esl-pricing config validate`` (pricing.cli.config)
recognises a file's kind and regenerates the committed JSON Schemas.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarfloat import ScalarFloat

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "ConfigError",
    "allowed_keys",
    "json_schema",
    "load_yaml_model",
    "loads_yaml_model",
    "schema_text",
    "validate_yaml_file",
]

M = TypeVar("M", bound=BaseModel)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_MERGE_KEY = "<<"


class ConfigError(Exception):
    """A config file that cannot be used; ``problems`` holds one ``FILE:LINE: key.path: message`` each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------------------------
# Reading YAML
# --------------------------------------------------------------------------------------------


class _TextKeepingConstructor(RoundTripConstructor):
    """Round-trip constructor whose floats remember the exact text they were written as."""

    def construct_text_float(self, node: Any) -> Any:
        value = RoundTripConstructor.construct_yaml_float(self, node)
        if isinstance(value, ScalarFloat):
            value._esl_text = str(node.value)  # ScalarFloat has a __dict__
        return value


_TextKeepingConstructor.add_constructor("tag:yaml.org,2002:float", _TextKeepingConstructor.construct_text_float)


def _new_yaml() -> YAML:
    # A fresh instance per file: a ruamel YAML object is not reusable after an error.
    yaml = YAML(typ="rt")
    yaml.Constructor = _TextKeepingConstructor
    return yaml


def _read_text(path: Path, filename: str) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{filename}: cannot read: {exc.strerror or exc}"]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{filename}: cannot read: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"]
        ) from None


def _syntax_problem(filename: str, exc: YAMLError) -> str:
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if message.startswith("expected <block end>"):
            message += "; check the indentation"
        if exc.context and exc.problem:
            where = ""
            if exc.context_mark is not None and mark is not None and exc.context_mark.line != mark.line:
                where = f" started on line {exc.context_mark.line + 1}"
            message = f"{message} ({exc.context}{where})"
        if mark is not None:
            return f"{filename}:{mark.line + 1}: {message}"
        return f"{filename}: {message}"
    return f"{filename}: invalid YAML: {str(exc).strip()}"


def _duplicate_keys(node: Node | None, filename: str) -> list[str]:
    """Every duplicate key in the composed YAML tree, with its key path and both lines."""
    problems: list[str] = []
    seen_nodes: set[int] = set()

    def walk(current: Node | None, path: tuple[str, ...]) -> None:
        if current is None or id(current) in seen_nodes:  # aliases point at the same node
            return
        seen_nodes.add(id(current))
        if isinstance(current, MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in current.value:
                if isinstance(key_node, ScalarNode):
                    key = str(key_node.value)
                    line = key_node.start_mark.line + 1
                    if key != _MERGE_KEY:
                        if key in first_line:
                            problems.append(
                                f"{filename}:{line}: {_dotted(path + (key,))}: duplicate key "
                                f"(first on line {first_line[key]})"
                            )
                        else:
                            first_line[key] = line
                    walk(value_node, path + (key,))
                else:
                    walk(value_node, path + ("?",))
        elif isinstance(current, SequenceNode):
            for index, item in enumerate(current.value):
                walk(item, path + (str(index),))

    walk(node, ())
    return problems


def _parse(text: str, filename: str) -> Any:
    """The round-trip YAML data of ``text``; ConfigError for syntax errors, duplicates, emptiness."""
    try:
        root = _new_yaml().compose(text)
    except YAMLError as exc:
        raise ConfigError([_syntax_problem(filename, exc)]) from None
    if root is None:
        raise ConfigError([f"{filename}:1: the file is empty (no YAML content); expected a mapping such as 'default:'"])
    duplicates = _duplicate_keys(root, filename)
    if duplicates:
        raise ConfigError(duplicates)
    try:
        data = _new_yaml().load(text)
    except DuplicateKeyError as exc:  # keys equal as values but not as text, e.g. 1 and 0x1
        match = re.search(r'duplicate key "([^"]*)"', exc.problem or "")
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        key = match.group(1) if match else "?"
        raise ConfigError([f"{filename}:{line}: {key}: duplicate key"]) from None
    except YAMLError as exc:
        raise ConfigError([_syntax_problem(filename, exc)]) from None
    if not isinstance(data, CommentedMap):
        line = root.start_mark.line + 1
        raise ConfigError(
            [f"{filename}:{line}: the top level must be a mapping of keys (like 'default: ...'), found {_describe(data)}"]
        )
    return data


# --------------------------------------------------------------------------------------------
# Plain Python for pydantic
# --------------------------------------------------------------------------------------------


def _to_plain(value: Any) -> Any:
    """ruamel's round-trip types as plain Python; YAML floats as exact ``Decimal``."""
    if isinstance(value, Mapping):
        return {_to_plain_key(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, float):
        return _float_to_decimal(value)
    if isinstance(value, int):
        if type(value).__name__ == "ScalarBoolean":  # anchored true/false
            return bool(value)
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(value.isoformat())
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, value.day)
    if hasattr(value, "value") and type(value).__name__ == "TaggedScalar":
        return str(value.value)
    return value


def _to_plain_key(key: Any) -> Any:
    plain = _to_plain(key)
    return tuple(plain) if isinstance(plain, list) else plain


def _float_to_decimal(value: float) -> Decimal | float:
    """A YAML float as the exact decimal it was written as (``0.1`` -> ``Decimal("0.1")``)."""
    text = getattr(value, "_esl_text", None)
    if text is not None:
        try:
            number = Decimal(text.replace("_", ""))
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite():
            return number
    if value != value or value in (float("inf"), float("-inf")):
        return float(value)  # .inf / .nan: left to pydantic to reject or accept
    return Decimal(repr(float(value)))


def _yaml_text(value: Any) -> str:
    """How a scalar was written in the file, as near as we know."""
    text = getattr(value, "_esl_text", None)
    if text is not None:
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _describe(value: Any) -> str:
    if type(value).__name__ == "TaggedScalar":
        value = _to_plain(value)
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, bool):
        return f"the boolean {_yaml_text(value)}"
    if isinstance(value, (int, float, Decimal)):
        return f"the number {_yaml_text(value)}"
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 60 else f"'{value[:57]}...'"
    return repr(value)


# --------------------------------------------------------------------------------------------
# pydantic errors -> FILE:LINE: key.path: message
# --------------------------------------------------------------------------------------------


def _locate(data: CommentedMap, loc: tuple[Any, ...]) -> tuple[int, tuple[Any, ...], Any, bool, int]:
    """Follow ``loc`` through the YAML data as far as it exists.

    Returns the 1-based line of the deepest node found (the key's line inside a mapping, the item's
    line inside a list), the part of ``loc`` that was found (without the ``value`` of a rule written
    as its bare value), the node there, whether the whole of ``loc`` was found, and how many parts
    of ``loc`` were followed.
    """
    line = data.lc.line
    node: Any = data
    found: list[Any] = []
    for index, part in enumerate(loc):
        if part == "value" and not (isinstance(node, CommentedMap) and _has_key(node, "value")):
            continue  # a rule written as its bare value (a mapping too, e.g. a band) stands for {value: ...}
        if isinstance(node, CommentedMap) and _has_key(node, part):
            key = _raw_key(node, part)
            try:
                line = node.lc.key(key)[0]
            except (KeyError, TypeError, AttributeError):  # key from a '<<' merge: keep the mapping's line
                pass
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            try:
                line = node.lc.item(part)[0]
            except (KeyError, TypeError, AttributeError):
                pass
            node = node[part]
        else:
            return line + 1, tuple(found), node, False, index
        found.append(part)
    return line + 1, tuple(found), node, True, len(loc)


def _has_key(node: CommentedMap, part: Any) -> bool:
    return _raw_key(node, part) is not _MISSING


_MISSING = object()


def _raw_key(node: CommentedMap, part: Any) -> Any:
    if part in node:
        return part
    for key in node:  # keys that _to_plain changed (e.g. a list key became a tuple)
        if _to_plain_key(key) == part:
            return key
    return _MISSING


def _dotted(path: Sequence[Any]) -> str:
    return ".".join(str(part) for part in path)


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types an annotation may stand for (Annotated and Optional/Union removed)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in typing.get_args(tp):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [tp]


def _model_at(model_cls: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc``, if one does."""
    candidates: list[Any] = [model_cls]
    for part in loc:
        following: list[Any] = []
        for tp in candidates:
            for concrete in _unwrap(tp):
                origin = typing.get_origin(concrete)
                args = typing.get_args(concrete)
                if isinstance(concrete, type) and issubclass(concrete, BaseModel):
                    for name, field in concrete.model_fields.items():
                        if part in (name, field.alias, field.validation_alias):
                            following.append(field.annotation)
                elif origin in (dict, Mapping, typing.Mapping) or concrete is dict:
                    if len(args) == 2:
                        following.append(args[1])
                elif origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int):
                    if args:
                        following.append(args[0])
        candidates = following
        if not candidates:
            return None
    for tp in candidates:
        for concrete in _unwrap(tp):
            if isinstance(concrete, type) and issubclass(concrete, BaseModel):
                return concrete
    return None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


_SHOULD = re.compile(r"^(Input|Decimal input|List|Dictionary|String|Value|Tuple|Set) should ")
_SHOW_INPUT = re.compile(r"(_type|_parsing|_than|_equal|_places|_digits|_mismatch|_error|_too_long|_too_short)$")


def _message(error: Mapping[str, Any], model_cls: type[BaseModel], node: Any, found_all: bool) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    msg = str(error["msg"])
    value = error.get("input")

    if kind == "extra_forbidden":
        model = _model_at(model_cls, loc[:-1])
        if model is None:
            return "unknown key"
        allowed = allowed_keys(model)
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        return f"unknown key{hint} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return "required key is missing"
    if kind == "int_from_float":
        return f"must be a whole number, got {_describe(node if found_all else value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of keys (key: value lines), got {_describe(node if found_all else value)}"
    if kind == "list_type":
        return f"must be a list (lines starting with '- ' or [a, b]), got {_describe(node if found_all else value)}"
    if kind == "string_type" and found_all and isinstance(node, (int, float)) and not isinstance(value, str):
        text = _yaml_text(node)
        return f"must be text, got {_describe(node)}; put it in quotes: \"{text}\""

    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    msg = _SHOULD.sub("must ", msg)
    if _SHOW_INPUT.search(kind) and not isinstance(value, (Mapping, list, tuple)) and kind != "value_error":
        msg = f"{msg}, got {_describe(node if found_all and not isinstance(node, (Mapping, list)) else value)}"
    if "[key]" in loc:
        msg = f"invalid key: {msg}"
    return msg


def _problems_from_validation(
    exc: ValidationError, data: CommentedMap, model_cls: type[BaseModel], filename: str
) -> list[str]:
    rows: list[tuple[int, str]] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        line, found, node, found_all, followed = _locate(data, loc)
        path = found + ((loc[followed],) if error["type"] == "missing" and len(loc) > followed else ())
        message = _message(error, model_cls, node, found_all)
        prefix = f"{filename}:{line}: {_dotted(path)}: " if path else f"{filename}:{line}: "
        rows.append((line, prefix + message))
    seen: set[str] = set()
    problems: list[str] = []
    for _, text in sorted(rows, key=lambda row: row[0]):
        if text not in seen:
            seen.add(text)
            problems.append(text)
    return problems


# --------------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------------


def _validate(data: CommentedMap, model_cls: type[M], filename: str) -> M:
    try:
        return model_cls.model_validate(_to_plain(data))
    except ValidationError as exc:
        raise ConfigError(_problems_from_validation(exc, data, model_cls, filename)) from None


def loads_yaml_model(text: str, model_cls: type[M], *, filename: str = "<string>") -> M:
    """Validate YAML ``text`` as ``model_cls``; problems name ``filename``. Raises ConfigError."""
    return _validate(_parse(text, filename), model_cls, filename)


def load_yaml_model(path: str | Path, model_cls: type[M]) -> M:
    """Read the YAML file at ``path`` and validate it as ``model_cls``. Raises ConfigError."""
    return _validate(_read_yaml(path), model_cls, str(path))


def _read_yaml(path: str | Path) -> CommentedMap:
    """The YAML file at ``path``, parsed with its line numbers. Raises ConfigError."""
    filename = str(path)
    return _parse(_read_text(Path(path), filename), filename)


def validate_yaml_file(path: str | Path, choose: Callable[[Path, Mapping[Any, Any]], type[BaseModel]]) -> list[str]:
    """Problem lines for the YAML file at ``path`` validated as the model ``choose(path, data)``
    picks from its top-level data; [] when it is valid."""
    try:
        data = _read_yaml(path)
        _validate(data, choose(Path(path), data), str(path))
    except ConfigError as exc:
        return exc.problems
    return []


# --------------------------------------------------------------------------------------------
# JSON Schemas for editors (committed; tests check they are current)
# --------------------------------------------------------------------------------------------


def json_schema(model: type[BaseModel], title: str = "") -> dict[str, Any]:
    """The JSON Schema of a config model, as committed next to the configs for editors."""
    schema = model.model_json_schema()
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["title"] = title or model.__name__
    return schema


def schema_text(schema: Mapping[str, Any]) -> str:
    """The committed form of a schema: sorted keys, indent 2, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
