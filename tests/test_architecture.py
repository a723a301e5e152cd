"""gradlint's import graph: no cycles, and no import against the stage order.

The stages, bottom-up (``gradlint/__init__.py`` documents the same order)::

    core <- load <- trace <- estimate <- verify <- lint <- report <- run <- cli <- entry points

A module may import modules of its own stage and of lower ones only. ``verify`` (the estimate
against autograd) needs only ``core``; it sits above ``estimate`` because it checks it, and
``run`` calls it. The entry points are the package root (``gradlint.check``, ``__version__``),
``__main__``, and the public ``rule``, ``ftypes`` and ``testing`` modules: they may import
anything, and nothing inside a stage imports them. The rule folders (``gradlint.rules``, the
top-level ``rules/``) are plugins the registry loads, outside this graph.

The graph is read with ``ast`` from the source, so it counts every import: module level and
inside functions (a lazy import hides nothing here). The stage order also holds for imports
under ``TYPE_CHECKING``; the cycle check leaves those out, as Python never runs them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "gradlint"
STAGES = ("core", "load", "trace", "estimate", "verify", "lint", "report", "run", "cli")
ENTRY_POINTS = frozenset({"gradlint", "gradlint.__main__", "gradlint.rule", "gradlint.ftypes",
                          "gradlint.testing"})
PLUGINS = "gradlint.rules"

# Known violations, each with what removes it; keep both tables empty.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}  # (importer, imported) -> what removes it
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}  # the modules of a cycle, sorted -> what removes it


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package``."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = ("gradlint", *path.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_only(tree: ast.Module) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:``, which never run."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return hidden


def imported_names(name: str, path: Path, type_only: bool = True) -> Iterator[str]:
    """Every name ``path`` imports, anywhere in the file (with ``type_only``, also under
    ``if TYPE_CHECKING:``), relative imports resolved; ``from pkg import x`` yields ``pkg.x``
    (a module, or an attribute of ``pkg``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = set() if type_only else _type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(package: Path = PACKAGE, type_only: bool = True) -> dict[str, set[str]]:
    """Module -> the gradlint modules it imports (the most specific module each import names);
    ``type_only``: also the imports only the type checker follows."""
    modules = module_files(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_names(name, path, type_only):
            if imported.startswith(PLUGINS) or imported.partition(".")[0] != "gradlint":
                continue
            while imported not in modules:  # pkg.attribute -> pkg
                imported = imported.rpartition(".")[0]
            targets.add(imported)
        targets.discard(name)
        graph[name] = targets
    return graph


def stage_of(module: str) -> int:
    """The module's place in the stage order; entry points above every stage."""
    if module in ENTRY_POINTS:
        return len(STAGES)
    parts = module.split(".")
    assert len(parts) > 1 and parts[1] in STAGES, f"{module} belongs to no stage"
    return STAGES.index(parts[1])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a module imports from a stage above its own."""
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if stage_of(b) > stage_of(a))


def test_every_module_belongs_to_a_stage() -> None:
    for module in module_files():
        stage_of(module)


def test_no_import_cycles() -> None:
    """Imports that run, lazy ones included; two classes that name each other's types under
    ``TYPE_CHECKING`` are no cycle Python runs into."""
    found = cycles(import_graph(type_only=False))
    assert [c for c in found if tuple(c) not in KNOWN_CYCLES] == []


def test_imports_follow_the_stage_order() -> None:
    upward = upward_imports(import_graph())
    assert [pair for pair in upward if pair not in KNOWN_VIOLATIONS] == []


def test_the_check_sees_what_it_must(tmp_path: Path) -> None:
    """The graph counts an import inside a function, a relative one and ``from pkg import
    module``, and the checks report a cycle and an upward import."""
    files = {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/a.py": "def f():\n    from gradlint.lint import b\n",
        "core/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from gradlint.core import a\n",
        "lint/__init__.py": "",
        "lint/b.py": "from ..core.a import f\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["gradlint.core.a"] == {"gradlint.lint.b"}
    assert graph["gradlint.lint.b"] == {"gradlint.core.a"}
    assert graph["gradlint.core.c"] == {"gradlint.core.a"}
    assert import_graph(tmp_path, type_only=False)["gradlint.core.c"] == set()
    assert cycles(graph) == [["gradlint.core.a", "gradlint.lint.b"]]
    assert upward_imports(graph) == [("gradlint.core.a", "gradlint.lint.b")]
