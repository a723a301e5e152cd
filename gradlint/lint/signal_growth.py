"""GL103's quantity: how much the backward signal grows between a layer and the loss.

The signal is the size of ∂L/∂(a tensor) per example, ‖·‖ over the tensor's entries (r times
its entries): unlike the per-entry r, a change of width or resolution alone does not move it
(a Linear + ReLU factor is fan_in·E[W²]·E[φ′²] whatever its shapes).

Along the strongest path from the loss, every weight layer and every residual join (an add of
two computed tensors) closes a factor: the ratio of the signal at two consecutive boundaries.
The growth is the sum of their log10 from the model's output to the layer, except that a
factor passing a normalization (or whose tensor also feeds a branch that starts with one: a
pre-norm block, a Conv into BatchNorm) counts only when it shrinks. A normalization's own
growth (train-mode BatchNorm, π/(π−1) per BN-ReLU layer; a norm behind a small-scale input) is
not what explodes, but a final norm that divides an over-scaled forward signal back out does
cancel the growth before it. At least 3 factors above 1/0.9 must contribute, as for GL101. One
reverse sweep over the estimate's strongest-path links, linear in the graph.

A weight layer whose output feeds only normalizations (through views or ReLU-family
activations) is scale-invariant: the norm divides out its weight's scale, its gradient is
orthogonal to the weight and ∝ 1/‖W‖, so a large gradient grows ‖W‖ and damps itself in the
first steps (the "auto rate-tuning" of BatchNorm). Such layers are marked ``invariant``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from gradlint.core.graph import GraphNode
from gradlint.core.op_kinds import HOMOGENEOUS, SOURCE_KINDS, WEIGHT_KINDS
from gradlint.estimate.strongest_path import LN10, NEG_INF
from gradlint.lint.rule_api import ModelAnalysis

# a factor counts towards "at least 3" only when it is clearly above 1 (GL101's 0.9, mirrored)
FACTOR_COUNTS_ABOVE = math.log10(1 / 0.9)
_SCALERS = frozenset({"rsqrt", "reciprocal", "sqrt"})
_MAY_PASS = frozenset({"norm", "mul", "div", "passthrough"})  # may normalize, or a view


class Growth(NamedTuple):
    """One layer's backward-signal growth towards it, from the model's output."""

    module: str
    site: int  # the layer's call that carries the most gradient
    # log10 ‖∂L/∂(layer output)‖ / ‖∂L/∂(model output)‖ per example, normalizations' growth out
    log10_growth: float
    factors: int  # compounding factors above 1/0.9 between the layer and the loss
    joins: int  # residual joins on the strongest path (the skip adds its branch's signal)
    invariant: bool  # the output feeds only normalizations: the weight is scale-invariant


class _State(NamedTuple):
    """The strongest path from a tensor to the loss, summed per factor."""

    closed: float  # log10 growth of the closed factors that count
    factors: int  # closed factors above 1/0.9 that count
    boundary: float  # signal at the nearest factor boundary towards the loss
    normed: bool  # the open factor passes a normalization (its growth does not count)
    joins: int


def _counted(f: float, normed: bool) -> float:
    """A factor's share of the growth: all of a shrink, none of a normalization's growth."""
    return 0.0 if normed and f > 0 else f


def is_join(analysis: ModelAnalysis, i: int) -> bool:
    """An add of two computed tensors: a residual join (a bias add has one)."""
    nodes = analysis.nodes
    node = nodes[i]
    return node.op == "add" and sum(1 for j in node.inputs if nodes[j].op not in SOURCE_KINDS) >= 2


def normalizes(analysis: ModelAnalysis, i: int) -> bool:
    """A normalization: a norm op, or one written out (exported RMSNorm: x * rsqrt(mean(x²)),
    x / sqrt(var))."""
    nodes = analysis.nodes
    node = nodes[i]
    kind = node.kind
    if kind == "norm":
        return True
    if kind not in ("mul", "div") or len(node.inputs) < 2:
        return False
    for j in node.inputs[1:2] if kind == "div" else node.inputs[:2]:
        src = nodes[j]
        while src.kind in ("passthrough", "scale") and src.inputs:
            src = nodes[src.inputs[0]]
        if src.op in _SCALERS:
            return True
    return False


def signal(analysis: ModelAnalysis) -> list[float]:
    """log10 ‖∂L/∂(node output)‖ per example, from the estimate's mean squared gradient."""
    return [_signal(node, lr) for node, lr in zip(analysis.nodes, analysis.estimate.log_r,
                                                  strict=True)]


def _signal(node: GraphNode, log_r: float) -> float:
    return NEG_INF if log_r == NEG_INF else 0.5 * (log_r + math.log(node.numel_per_example)) / LN10


def scale_invariant(analysis: ModelAnalysis, i: int, users: list[list[int]]) -> bool:
    """Every use of node ``i``'s output reaches a normalization through views or ReLU-family
    activations only (``users``: the graph's consumers)."""
    nodes = analysis.nodes
    for c in users[i]:  # the common answer from the direct users alone: no
        if nodes[c].kind not in _MAY_PASS and nodes[c].op not in HOMOGENEOUS:
            return False
    stack, seen = [i], {i}
    while stack:
        us = users[stack.pop()]
        if not us:
            return False
        for c in us:
            kind = nodes[c].kind
            if normalizes(analysis, c):
                continue
            if kind == "passthrough" or nodes[c].op in HOMOGENEOUS:
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
                continue
            return False
    return True


def may_grow_beyond(analysis: ModelAnalysis, limit: float) -> bool:
    """Could some layer's growth exceed ``limit`` (log10)? Its factors' log10 telescope to its
    signal's ratio to the output's, and the growth drops only some of the positive ones, so it
    is at most that ratio: where no layer's signal tops the output's by ``limit`` (a healthy or
    a vanishing model) the sweep would find nothing, and GL103 skips it."""
    log_r = analysis.estimate.log_r
    nodes = analysis.nodes
    out = analysis.estimate.graph.output
    if log_r[out] == NEG_INF:
        return False
    ref = _signal(nodes[out], log_r[out])
    return any(_signal(nodes[i], log_r[i]) - ref > limit
               for i in analysis.layer_sites().values())


def signal_growth(analysis: ModelAnalysis) -> list[Growth]:
    """Every live layer's growth; one sweep from the loss along the strongest-path links."""
    nodes = analysis.nodes
    graph = analysis.estimate.graph
    paths = analysis.estimate.paths
    users = graph.consumers()
    s = signal(analysis)
    norms = {n.index for n in nodes
             if n.kind in ("norm", "mul", "div") and normalizes(analysis, n.index)}
    invariant = {n.index for n in nodes if n.kind in WEIGHT_KINDS
                 and scale_invariant(analysis, n.index, users)}

    entries = norms | invariant  # a branch that starts with a normalization
    states: list[_State | None] = [None] * len(nodes)
    states[graph.output] = _State(0.0, 0, s[graph.output], False, 0)
    for p in range(len(nodes) - 1, -1, -1):
        c = paths[p].next
        if c is None:
            continue
        sc = states[c]
        if sc is None:
            continue
        us = users[p]
        side = len(us) > 1 and any(u in entries for u in us if u != c)
        cnode = nodes[c]
        join = cnode.op == "add" and is_join(analysis, c)
        if ((join or cnode.kind in WEIGHT_KINDS and cnode.params) and s[c] > NEG_INF):
            f = s[c] - sc.boundary
            states[p] = _State(sc.closed + (0.0 if sc.normed and f > 0 else f),  # _counted
                               sc.factors + (not sc.normed and f > FACTOR_COUNTS_ABOVE),
                               s[c], side, sc.joins + join)
        else:
            normed = sc.normed or side or c in norms
            states[p] = sc if normed == sc.normed else sc._replace(normed=normed)
    ref = s[graph.output]
    sites = analysis.layer_sites()
    out = []
    for le in analysis.layers:
        site = sites.get(le.module)
        if site is None or le.frozen or le.zero or s[site] == NEG_INF or ref == NEG_INF:
            continue
        st = states[site]
        if st is None:
            continue
        f = s[site] - st.boundary
        out.append(Growth(le.module, site, st.closed + _counted(f, st.normed),
                          st.factors + (not st.normed and f > FACTOR_COUNTS_ABOVE), st.joins,
                          site in invariant))
    return out
