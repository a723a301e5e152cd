"""Which saturating activations a fix may change: the rule side of ``--fix``
(gradlint.lint.autofix).

The rules (GL101, GL102) call ``activation_edits`` on the traced graph, the only place that
knows which activations are *hidden*: never an output activation (its value reaches the model
output without another weight layer), never a gate (its value multiplies another tensor:
LSTM/GRU cells, squeeze-excitation, GLU, attention), never softmax (not saturating in the
catalogue). An edit names a source span symbolically (``sigmoid -> relu``) and travels in
``Diagnostic.fix.edits``; the CLI's codemod (gradlint.lint.autofix, libcst) applies it. Kept apart
from
the codemod so the worker that runs the rules never imports libcst (~0.25 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from gradlint.core.op_kinds import SOURCE_KINDS, WEIGHT_KINDS
from gradlint.core.values import Edit, Location

if TYPE_CHECKING:
    from gradlint.core.graph import GraphNode, LayerGraph
    from gradlint.lint.rule_api import ModelAnalysis

_SCALARS = ("param", "constant")  # a mul by these scales, it does not gate


def replacement_for(graph: LayerGraph) -> str:
    """``gelu`` for a model with attention (transformer-like code), else ``relu``."""
    if graph.ops().isdisjoint(("multihead_attention", "sdpa", "softmax")):
        return "relu"
    users = graph.consumers()
    for node in graph.nodes:
        if node.op in ("multihead_attention", "sdpa"):
            return "gelu"
        if node.op == "softmax" and any(graph.nodes[u].op == "matmul"
                                        for u in _through(node.index, graph, users)):
            return "gelu"
    return "relu"


def _through(start: int, graph: LayerGraph, users: list[list[int]]) -> Iterable[int]:
    """Consumers of ``start``, looking through reshapes and dropout."""
    stack = list(users[start])
    seen: set[int] = set()
    while stack:
        u = stack.pop()
        if u in seen:
            continue
        seen.add(u)
        yield u
        if graph.nodes[u].op == "passthrough":
            stack.extend(users[u])


def _weights(nodes: Sequence[GraphNode]) -> list[bool]:
    """Weight layers, including ``x @ W`` with a parameter ``W``."""
    return [n.kind in WEIGHT_KINDS or (
        n.op == "matmul" and any(nodes[i].op == "param" for i in n.inputs)) for n in nodes]


def _is_gate(start: int, nodes: Sequence[GraphNode], users: list[list[int]]) -> bool:
    """Its value multiplies (or divides) another computed tensor, directly or after reshapes,
    scaling, another activation or a constant shift such as ``1 - z`` (GRU)."""

    stack, seen = [start], {start}
    while stack:
        j = stack.pop()
        for u in users[j]:
            un = nodes[u]
            if un.op in ("mul", "div", "matmul") and any(
                    k != j and nodes[k].op not in _SCALARS for k in un.inputs):
                return True
            follow = un.kind in ("passthrough", "scale", "elementwise", "mul", "div") or (
                un.op == "add"
                and sum(1 for k in un.inputs if nodes[k].op not in SOURCE_KINDS) <= 1)
            if follow and u not in seen:
                seen.add(u)
                stack.append(u)
    return False


def _site(loc: Location) -> tuple[str, int, int]:
    return (loc.file, loc.line, loc.col)


def fixable_sites(graph: LayerGraph) -> dict[tuple[str, int, int], bool]:
    """Per source site of a saturating activation: may it change? Only if every activation
    built or called there is hidden and not a gate (a module built in a loop or list
    comprehension is one site for all the layers it builds; one module instance called as a
    hidden layer and as the output is one site too), and they are all the same activation."""

    nodes, users = graph.nodes, graph.consumers()
    # free[i]: the value of i reaches the output (or another returned/unused tensor) through
    # no weight layer, so changing an activation there changes what the model outputs
    weight = _weights(nodes)
    free = [False] * len(nodes)
    for i in range(len(nodes) - 1, -1, -1):
        us = users[i]
        if i == graph.output or not us:
            free[i] = True
            continue
        for u in us:
            if free[u] and not weight[u]:
                free[i] = True
                break
    ok: dict[tuple[str, int, int], bool] = {}
    first_op: dict[tuple[str, int, int], str] = {}  # all of a site's activations: this one
    for node in nodes:
        if not node.saturating or node.location is None:
            continue
        key = _site(node.location)
        if ok.get(key, True):  # once a site may not change, the rest cannot change that
            ok[key] = (first_op.setdefault(key, node.op) == node.op and not free[node.index]
                       and not _is_gate(node.index, nodes, users))
    return ok


def _fixable_sites(analysis: ModelAnalysis) -> dict[tuple[str, int, int], bool]:
    return fixable_sites(analysis.estimate.graph)


def _replacement(analysis: ModelAnalysis) -> str:
    return replacement_for(analysis.estimate.graph)


def activation_edits(analysis: ModelAnalysis, chosen: Iterable[GraphNode]) -> tuple[Edit, ...]:
    """Edits for the ``chosen`` activations (a rule's culprits) that may change, one per site."""

    chosen = [n for n in chosen if n.saturating and n.location is not None]
    if not chosen:
        return ()
    ok = analysis.derived(_fixable_sites)
    new = analysis.derived(_replacement)
    edits: dict[tuple[str, int, int], Edit] = {}
    for n in chosen:
        loc = n.location
        assert loc is not None
        if ok.get(_site(loc)) and _site(loc) not in edits:
            # a module's construction site is an exact span (frame positions); an op in
            # forward() is known by its line only
            exact = n.module is not None and n.module_type is not None and loc.end_col is not None
            edits[_site(loc)] = Edit(loc, n.op, new, exact=exact)
    return tuple(edits.values())
