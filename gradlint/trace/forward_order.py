"""The layers ``forward`` applies to an input, in the order it applies them, read from the AST of
``forward`` (for the export fallback, where there is no fx graph to follow).

Registration order (``model.modules()``) is not call order: a seq2seq model may register its
``nn.Transformer`` before the ``Embedding`` its tokens go through first. Here the first
``self.<name>(...)`` calls on the input (or on a value computed from it) are followed to the
submodules they name; a container is followed to its children in order, a submodule with a
``forward`` of its own into that ``forward``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterator

import torch.nn as nn

MAX_DEPTH = 6  # submodules followed into their own forward
KNOWN_LAYERS: tuple[type, ...] = (
    nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.Embedding, nn.EmbeddingBag,
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RNNBase,
    nn.MultiheadAttention, nn.Transformer, nn.TransformerEncoder, nn.TransformerDecoder)


def forward_params(model: nn.Module) -> list[str]:
    """The names of ``forward``'s required positional parameters (the inputs to give)."""
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return []
    return [n for n, p in sig.parameters.items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.default is inspect.Parameter.empty]


def layers_on(model: nn.Module, arg: int = 0) -> list[nn.Module]:
    """The submodules ``forward`` applies to its ``arg``-th input (or values computed from it),
    first applied first, expanded down to known layers and parameterless helpers; empty when
    the source cannot be read."""
    out: list[nn.Module] = []
    seen: set[int] = set()
    for mod in _expand_call(model, arg, 0, {id(model)}):
        if id(mod) not in seen:
            seen.add(id(mod))
            out.append(mod)
    return out


def _expand_call(model: nn.Module, arg: int, depth: int, active: set[int]
                 ) -> Iterator[nn.Module]:
    tree = _forward_tree(type(model))
    if tree is None:
        return
    params = [a.arg for a in (*tree.args.posonlyargs, *tree.args.args)][1:]  # without self
    if arg >= len(params):
        return
    for called in _CallOrder(model, params[arg]).calls(tree.body):
        yield from _expand(called, depth + 1, active)


def _expand(mod: nn.Module, depth: int, active: set[int]) -> Iterator[nn.Module]:
    """A called module as the layers it runs, in order: a container's children, a custom
    module's own calls (or its registration order when its source cannot be read). A
    container's empty slot (``nn.ModuleList([None, block])``) runs nothing."""
    if not isinstance(mod, nn.Module):
        return
    if isinstance(mod, KNOWN_LAYERS) or depth > MAX_DEPTH or id(mod) in active:
        yield mod
        return
    if isinstance(mod, (nn.Sequential, nn.ModuleList)):
        for child in mod:
            yield from _expand(child, depth + 1, active)
        return
    own_forward = type(mod).forward is not nn.Module.forward
    inner = list(_expand_call(mod, 0, depth, active | {id(mod)})) if own_forward else []
    if inner:
        yield mod  # a helper in front (a reshape) is still on the way
        yield from inner
        return
    yield mod
    for child in mod.children():  # no readable forward: registration order is all there is
        yield from _expand(child, depth + 1, active | {id(mod)})


def _forward_tree(cls: type) -> ast.FunctionDef | None:
    forward = getattr(cls, "forward", None)
    try:
        source = textwrap.dedent(inspect.getsource(forward))  # type: ignore[arg-type]
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, ast.FunctionDef) else None


class _CallOrder:
    """Walks ``forward``'s statements in order, tracking which local names hold values computed
    from the input and which name submodules (``layer`` in ``for layer in self.blocks``)."""

    def __init__(self, model: nn.Module, arg: str) -> None:
        self.model = model
        self.tainted = {arg}
        self.aliases: dict[str, nn.Module] = {}

    def calls(self, body: list[ast.stmt]) -> Iterator[nn.Module]:
        for stmt in body:
            yield from self._statement(stmt)

    def _statement(self, stmt: ast.stmt) -> Iterator[nn.Module]:
        if isinstance(stmt, ast.For):
            yield from self._calls_in(stmt.iter)
            container = self._module_of(stmt.iter)
            if isinstance(container, (nn.Sequential, nn.ModuleList)) and len(container):
                for name in _names(stmt.target):
                    self.aliases[name] = container  # each element in turn: the container
            elif self._uses_input(stmt.iter):
                self.tainted.update(_names(stmt.target))
            yield from self.calls(stmt.body)
            return
        children = [c for c in ast.iter_child_nodes(stmt) if isinstance(c, ast.expr)]
        for expr in children:
            yield from self._calls_in(expr)
        value = getattr(stmt, "value", None)
        targets = getattr(stmt, "targets", None) or [getattr(stmt, "target", None)]
        if isinstance(value, ast.expr):
            module = self._module_of(value)
            for target in (t for t in targets if t is not None):
                if module is not None and isinstance(target, ast.Name):
                    self.aliases[target.id] = module
                elif self._uses_input(value):
                    self.tainted.update(_names(target))
        for field in ("body", "orelse", "handlers", "finalbody"):
            for inner in getattr(stmt, field, None) or ():
                if isinstance(inner, ast.ExceptHandler):
                    yield from self.calls(inner.body)
                elif isinstance(inner, ast.stmt):
                    yield from self._statement(inner)

    def _calls_in(self, expr: ast.expr) -> Iterator[nn.Module]:
        """Calls of submodules on the input, inner calls first (evaluation order)."""
        for call in _post_order_calls(expr):
            args = [*call.args, *(k.value for k in call.keywords)]
            if not any(self._uses_input(a) for a in args):
                continue
            module = self._module_of(call.func)
            if module is not None:
                yield module
            elif isinstance(call.func, ast.Attribute):
                target = self._module_of(call.func.value)  # self.block.forward(x)
                if target is not None and call.func.attr == "forward":
                    yield target

    def _uses_input(self, expr: ast.expr) -> bool:
        return any(isinstance(n, ast.Name) and n.id in self.tainted for n in ast.walk(expr))

    def _module_of(self, expr: ast.expr) -> nn.Module | None:
        """``self.a.b``, ``self.a[0]``, an alias -> the submodule it names (None otherwise)."""
        if isinstance(expr, ast.Name):
            return self.aliases.get(expr.id)
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name) and expr.value.id == "self":
                owner: object = self.model
            else:
                owner = self._module_of(expr.value)
            value = getattr(owner, expr.attr, None) if owner is not None else None
            return value if isinstance(value, nn.Module) else None
        if isinstance(expr, ast.Subscript):
            container = self._module_of(expr.value)
            if isinstance(container, (nn.Sequential, nn.ModuleList)) and len(container):
                index = expr.slice
                if isinstance(index, ast.Constant) and isinstance(index.value, int):
                    try:
                        return container[index.value]  # type: ignore[no-any-return]
                    except IndexError:
                        return None
                return container
            if isinstance(container, nn.ModuleDict) and isinstance(expr.slice, ast.Constant):
                return container[str(expr.slice.value)] if str(expr.slice.value) in container \
                    else None
        return None


def _post_order_calls(expr: ast.expr) -> list[ast.Call]:
    out: list[ast.Call] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.Lambda, ast.FunctionDef)):
                visit(child)
        if isinstance(node, ast.Call):
            out.append(node)

    visit(expr)
    return out


def _names(target: ast.expr) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
