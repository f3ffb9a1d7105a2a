"""The architecture, checked: arrows between packages point down only, the rules import no
web or CLI framework, nothing imports the tests, no module imports itself back through
others, and no package reaches into another's private names.

    ledger  <-  traceability  <-  nodes  <-  api  <-  cli
                     ^  \\_____________ sdk <-/         |
                     devtools (clusters, demo chains, simulator) <-/
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Each package and the project packages it may import.
ALLOWED = {
    "ledger": set(),
    "traceability": {"ledger"},
    "nodes": {"ledger", "traceability"},
    "sdk": {"ledger", "traceability"},
    "api": {"ledger", "traceability", "nodes", "sdk", "web"},
    "devtools": {"ledger", "traceability", "nodes", "sdk", "api"},
    "cli": {"ledger", "traceability", "nodes", "sdk", "api", "devtools"},
    "web": set(),
}
FRAMEWORKS = {"fastapi", "starlette", "typer", "uvicorn"}


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def _module_of(name: str, level: int, module: str | None, importer: str, is_pkg: bool) -> str:
    """The absolute module a (possibly relative) `from … import` names."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_pkg else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that runs, lazy imports in functions included; `if TYPE_CHECKING:` blocks
    are for the type checker only and never run."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import statement that runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _module_of(name, node.level, node.module, name, path.name == "__init__.py")
            found.append((target, [alias.name for alias in node.names]))
    return found


PROJECT = {name: path for package in ALLOWED for name, path in _modules(package).items()}


def _resolve(target: str, names: list[str]) -> set[str]:
    """The project modules an import loads: `from a import b` is module a.b if that exists."""
    loaded = {target} if target in PROJECT else set()
    loaded |= {f"{target}.{n}" for n in names if f"{target}.{n}" in PROJECT}
    return loaded


def _graph() -> dict[str, set[str]]:
    return {
        name: {m for target, names in _imports(name, path) for m in _resolve(target, names)}
        for name, path in PROJECT.items()
        if ".migrations" not in name
    }


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_packages_beneath_it(package: str) -> None:
    wrong = []
    for name, path in _modules(package).items():
        for target, _ in _imports(name, path):
            top = target.split(".")[0]
            if top in ALLOWED and top != package and top not in ALLOWED[package]:
                wrong.append(f"{name} imports {target}")
            if top == "tests":
                wrong.append(f"{name} imports the tests ({target})")
    assert not wrong, wrong


def test_there_is_no_import_circle() -> None:
    graph = _graph()
    # A package's __init__ may re-export its own modules; only module-to-module edges count.
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    try:
        tuple(TopologicalSorter(edges).static_order())
    except CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")


def test_no_package_imports_another_packages_private_names() -> None:
    wrong = []
    for name, path in PROJECT.items():
        for target, names in _imports(name, path):
            if target.split(".")[0] == name.split(".")[0]:
                continue
            parts = [*names, *target.split(".")]
            private = [p for p in parts if p.startswith("_") and not p.endswith("__")]
            if private:
                wrong.append(f"{name} imports {private} from {target}")
    assert not wrong, wrong


@pytest.mark.parametrize("package", ["ledger", "traceability", "nodes", "sdk"])
def test_the_rules_and_the_sdk_load_no_web_server_or_cli_framework(package: str) -> None:
    """Loaded in a fresh interpreter, so that what the modules pull in at import time counts."""
    names = [n for n in _modules(package) if ".migrations" not in n]
    code = f"import sys; {'; '.join(f'import {n}' for n in names)}; print(' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = {m.split(".")[0] for m in out.stdout.split()}
    assert not loaded & FRAMEWORKS, f"{package} pulls in {loaded & FRAMEWORKS}"
    assert not loaded & ({"tests"} | set(ALLOWED) - ALLOWED[package] - {package})
