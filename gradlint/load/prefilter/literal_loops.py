"""Module-level ``for`` loops over literal data: configuration tables, not training.

A module-level loop is work (a training script's epochs), except one whose iterable is data
the file writes itself: Lightning's litgpt builds its configuration list with
``for c in pythia: configs.append(...)`` over a list of ``dict(...)`` literals. Iterating a
list, tuple, set, dict or string runs no code of the file's or of anyone's; the loop's body is
then judged as any module-level code is. Iterating anything else calls its
``__iter__``/``__next__``, which the pre-filter does not see (a dataset reading files): that
stays work, and so does ``for epoch in range(...)``, a training script's loop, reported at the
loop. Pure syntax, cached per tree.
"""

from __future__ import annotations

import ast

from gradlint.load import import_resolver
from gradlint.load.prefilter.syntax import bound_names

# builtins that, given literal data, iterate as literal data does; keyword arguments
# (``sorted(key=f)``) are not taken
_THROUGH = frozenset({"enumerate", "zip", "reversed", "sorted", "list", "tuple", "set", "dict"})
_MAX_DEPTH = 6  # names bound to names bound to literals...


def literal_iterable(node: ast.expr, tree: ast.Module, depth: int = 0) -> bool:
    """Whether iterating ``node`` at the module level of ``tree`` runs no code: a literal
    container or string, literal data through ``enumerate``/``zip``/``sorted``
    and the like, a dict's ``items()``/``keys()``/``values()``, or a module-level name bound
    only to such values (its elements may be anything: iterating a list calls none of them)."""
    if depth > _MAX_DEPTH:
        return False
    if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
        return not any(isinstance(e, ast.Starred) for e in getattr(node, "elts", ()))
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes))
    if isinstance(node, ast.Call):
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return False
        func = node.func
        if isinstance(func, ast.Name) and _builtin(tree, func.id):
            return all(
                literal_iterable(a, tree, depth + 1) for a in node.args)
        if isinstance(func, ast.Attribute) and func.attr in ("items", "keys", "values") \
                and not node.args:
            return literal_iterable(func.value, tree, depth + 1)
        return False
    if isinstance(node, ast.Name):
        values = _assigned(tree, node.id)
        return bool(values) and all(literal_iterable(v, tree, depth + 1) for v in values or ())
    return False


def _builtin(tree: ast.Module, name: str) -> bool:
    """``name`` is the builtin: the module binds no name like it."""
    return name in _THROUGH and _assigned(tree, name) == []


def _assigned(tree: ast.Module, name: str) -> list[ast.expr] | None:
    """The values ``name`` is given at module level (plain and augmented assignments); None
    when it is bound any other way (an import, a def, a loop target, ``global`` in a function)
    or as part of a tuple target."""
    cache: dict[str, list[ast.expr] | None] = tree.__dict__.setdefault("_gradlint_assigned", {})
    if name not in cache:
        cache[name] = _find_assigned(tree, name)
    return cache[name]


def _find_assigned(tree: ast.Module, name: str) -> list[ast.expr] | None:
    values: list[ast.expr] = []
    for stmt in import_resolver.module_statements(tree.body):
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if name in bound_names(target):
                    if not isinstance(target, ast.Name):
                        return None
                    values.append(stmt.value)
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
            if name in bound_names(stmt.target) and stmt.value is not None:
                values.append(stmt.value)
        elif name in _other_bindings(stmt):
            return None
    if any(isinstance(n, (ast.Global, ast.Nonlocal)) and name in n.names or (
            isinstance(n, ast.NamedExpr) and name in bound_names(n.target))
           for n in ast.walk(tree)):
        return None
    return values


def _other_bindings(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {a.asname or a.name.partition(".")[0] for a in stmt.names}
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return set(bound_names(stmt.target))
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return {n for item in stmt.items if item.optional_vars is not None
                for n in bound_names(item.optional_vars)}
    if isinstance(stmt, ast.Try):
        return {h.name for h in stmt.handlers if h.name}
    if isinstance(stmt, ast.Delete):
        return {n for t in stmt.targets for n in bound_names(t)}
    return set()
