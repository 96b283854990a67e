"""The house: one package per stage under pricing/, data flowing one way, no import circles.

The imports are read from the source with ``ast`` (every ``import``, also inside functions and
under ``TYPE_CHECKING``: a deferred import is still a dependency), so a circle cannot hide behind
an import placed inside a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("pricing", "label_gateway", "simulator")

#: pricing's stages, bottom to top: a stage imports only stages before it (and itself).
STAGES = ("core", "demand", "rules", "optimize", "plan", "store", "review", "cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    """Every module of ours, by dotted name. Alembic's migration scripts are loaded by Alembic
    from their files, never imported, and are left out."""
    found: dict[str, Path] = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            if "migrations" in path.relative_to(REPO).parts:
                continue
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module of ours that ``name`` (a module, or a name inside one) is, or None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _with_parents(name: str) -> Iterable[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def _imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [source] + [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in ROOTS:
                continue
            owner = _owner(name)
            if owner is not None:
                targets.update(m for m in _with_parents(owner) if m in MODULES)
    targets.discard(module)
    return targets


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walk_sees_the_imports() -> None:
    """Guards the checks below against passing on an empty graph."""
    assert len(MODULES) > 60
    assert "pricing.core.money" in GRAPH["label_gateway.protocol"]
    assert "pricing.plan.cycle" in GRAPH["pricing.store.daemon"]


def test_the_circle_finder_finds_circles() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    assert _circles(GRAPH) == []


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "pricing" and len(parts) > 1 else None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("pricing.")))
def test_a_stage_imports_only_the_stages_before_it(module: str) -> None:
    stage = _stage(module)
    assert stage in STAGES, f"{module}: pricing/ holds only the stage packages {STAGES}"
    allowed = set(STAGES[: STAGES.index(stage) + 1])
    upward = sorted(t for t in GRAPH[module] if _stage(t) is not None and _stage(t) not in allowed)
    assert upward == [], f"{module} ({stage}) imports later stages"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("pricing")))
def test_label_gateway_and_simulator_use_only_pricing_core(module: str) -> None:
    engine = sorted(t for t in GRAPH[module] if t.startswith("pricing.") and _stage(t) != "core")
    assert engine == [], f"{module} imports engine internals beyond pricing.core"
    if module.startswith("label_gateway"):
        assert not any(t.startswith("simulator") for t in GRAPH[module]), f"{module} imports the simulator"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _stage(m) == "core"))
def test_core_imports_nothing_of_ours_but_core(module: str) -> None:
    ours = sorted(t for t in GRAPH[module] if t != "pricing" and _stage(t) != "core")
    assert ours == [], f"{module} imports {ours}"


def test_few_files_directly_under_pricing() -> None:
    assert len(list((REPO / "pricing").glob("*.py"))) <= 3


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_says_what_flows_in_and_out(stage: str) -> None:
    init = REPO / "pricing" / stage / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc is not None and len(doc.split()) >= 15, f"{init}: a docstring saying what the stage takes and gives"
    body = ast.parse(init.read_text(encoding="utf-8")).body
    assert len(body) == 1, f"{init}: only the docstring (an import here would run for every submodule)"
