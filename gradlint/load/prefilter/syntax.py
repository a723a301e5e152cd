"""Syntax-tree helpers of the pre-filter: dotted names, callee labels, guards, what a statement
evaluates and binds."""

from __future__ import annotations

import ast
from collections.abc import Iterator


def dotted(node: ast.expr) -> str | None:
    """``torch.nn.Linear`` -> "torch.nn.Linear"; None for anything but names and attributes."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def show(func: ast.expr) -> str:
    """A short name for a callee: ``trainer.fit``, ``Trainer(...).fit``."""
    if isinstance(func, ast.Attribute):
        return f"{show(func.value)}.{func.attr}"
    if isinstance(func, ast.Call):
        return f"{show(func.func)}(...)"
    if isinstance(func, ast.Name):
        return func.id
    text = ast.unparse(func)
    return text if len(text) <= 30 else text[:27] + "..."


def is_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either order) or ``TYPE_CHECKING``: never run at import."""
    if dotted(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
        return True
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def own_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """The nodes of a function body that are its own, not those of nested functions, lambdas
    or classes (their ``return`` is not this function's)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


def bound_names(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            yield from bound_names(elt)
    elif isinstance(node, ast.Starred):
        yield from bound_names(node.value)


def own_expressions(stmt: ast.stmt) -> Iterator[ast.expr]:
    """The expressions a statement evaluates itself (not its nested statements, not the names
    it binds)."""
    for name, value in ast.iter_fields(stmt):
        if name in ("body", "orelse", "finalbody", "handlers", "cases", "target"):
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, ast.expr):
                yield item
            elif isinstance(item, ast.withitem):
                yield item.context_expr


LOOPS: dict[type, str] = {ast.For: "`for` loop", ast.AsyncFor: "`async for` loop",
                           ast.While: "`while` loop", ast.With: "`with` block",
                           ast.AsyncWith: "`async with` block"}
LEVEL_CONTEXT = {"module": "module-level", "class": "class-level", "function": ""}
