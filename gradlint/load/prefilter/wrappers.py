"""Decorators that only wrap: whether a local decorator's subject runs, or may run, when the
decorator is applied.

``def eval_decorator(fn): def inner(self, *a): ...; out = fn(self, *a); ...; return inner``
calls ``fn`` only inside the closure it returns, so applying it runs none of ``fn``: the
decorated name is bound to the closure (and to ``fn``, which the closure calls) and both are
judged where the name is called. Any other use of the subject (stored, passed to unknown code,
called while decorating) hands it on, and it is judged as called."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _parents(root: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(root) for child in ast.iter_child_nodes(node)}


def _in_body(child: ast.AST, func: ast.AST) -> bool:
    """``child`` runs when ``func`` is called (its body), not where ``func`` is defined (its
    decorators, defaults and annotations)."""
    if isinstance(func, ast.Lambda):
        return child is func.body
    return child in getattr(func, "body", ())


def _outermost_function(node: ast.AST, top: ast.AST, parents: dict[ast.AST, ast.AST]
                        ) -> ast.AST | None:
    """The outermost function nested in ``top`` whose body ``node`` is in: None when ``node``
    runs when ``top`` itself runs."""
    found: ast.AST | None = None
    child, parent = node, parents.get(node)
    while parent is not None and parent is not top:
        if isinstance(parent, _FUNCTIONS) and _in_body(child, parent):
            found = parent
        child, parent = parent, parents.get(parent)
    return found


def _binds(root: ast.AST, name: str, defs: Iterable[ast.AST] = ()) -> bool:
    """Whether ``name`` is rebound anywhere under ``root`` (besides ``root``'s own parameter
    and the ``defs`` that bind it)."""
    own = set(defs)
    for node in ast.walk(root):
        if node in own:
            continue
        if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and (
                node is not root and node.name == name):
            return True
        if isinstance(node, _FUNCTIONS) and node is not root:
            args = node.args
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs,
                     *(a for a in (args.vararg, args.kwarg) if a is not None)]
            if any(a.arg == name for a in every):
                return True
        if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (a.asname or a.name.partition(".")[0]) == name for a in node.names):
            return True
        if isinstance(node, ast.ExceptHandler) and node.name == name:
            return True
        if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name == name:
            return True
        if isinstance(node, ast.MatchMapping) and node.rest == name:
            return True
    return False


def _loads(root: ast.AST, name: str) -> Iterator[ast.Name]:
    for node in ast.walk(root):
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load):
            yield node


def only_wraps(node: ast.AST, stores: Callable[[ast.expr], bool]) -> bool:
    """Whether applying the decorator ``node`` runs none of its subject (its first parameter)
    and hands it to nothing but storing calls (``stores(callee)``: ``functools.wraps``): the
    subject is called only inside closures the decorator defines and returns, and those
    closures are only returned (or handed to storing calls)."""
    if not isinstance(node, ast.FunctionDef):
        return False
    positional = [*node.args.posonlyargs, *node.args.args]
    if not positional:
        return False
    subject = positional[0].arg
    parents = _parents(node)
    closures = {stmt: stmt.name for stmt in node.body if isinstance(stmt, ast.FunctionDef)}
    returned = [n.value for n in ast.walk(node) if isinstance(n, ast.Return)
                and n.value is not None and _outermost_function(n, node, parents) is None]
    if any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)) and
           _outermost_function(n, node, parents) is None for n in ast.walk(node)):
        return False
    if _binds(node, subject):
        return False
    if len(set(closures.values())) != len(closures) or any(
            _binds(node, name, closures) for name in closures.values()):
        return False  # a closure's name rebound: what it stands for is not the def
    for closure in closures:
        if not all(stores(d) for d in closure.decorator_list):
            return False  # applied to the closure while decorating: it may call it
    for load in _loads(node, subject):
        parent = parents[load]
        outer = _outermost_function(load, node, parents)
        if isinstance(parent, ast.Call) and parent.func is load and outer is not None:
            if outer in closures or any(outer is r for r in returned):
                continue  # called when the closure is called
            return False
        if outer is None and isinstance(parent, ast.Call) and load in parent.args and (
                stores(parent.func)):
            continue  # ``functools.wraps(fn)``: keeps its name and doc, never calls it
        if outer is None and isinstance(parent, ast.Return):
            continue  # returned as it is: the name stays bound to it
        return False
    for name in set(closures.values()):
        for load in _loads(node, name):
            parent = parents[load]
            outer = _outermost_function(load, node, parents)
            if outer is not None and outer in closures:
                continue  # runs only when a closure runs
            if outer is None and isinstance(parent, ast.Return):
                continue
            if outer is None and isinstance(parent, ast.Call) and load in parent.args and (
                    stores(parent.func)):
                continue  # ``functools.update_wrapper(inner, fn)``
            return False
    return True
