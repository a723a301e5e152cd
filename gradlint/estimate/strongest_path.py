"""Path quantities from the loss to every tensor, each in one reverse sweep (no enumeration).

- the strongest path: from each tensor follow the consumer that contributes most of its gradient;
  along it, the attenuation GL101 judges is the sum of log10 per-layer factors since the
  best-fed weight layer between a layer and the loss (a running drawdown, never above 0), where
  a "layer" factor spans one weight layer (Linear/Conv/Embedding/attention/recurrent) and what
  lies between it and the previous weight layer (norms, activations, pools, adds). A factor is
  the ratio of the per-entry weight-gradient RMS of consecutive weight layers on the path: the
  signal gain times the change in input scale, so a stack whose activations grow backwards as
  fast as the signal shrinks (ReLU with Xavier init) learns evenly and is not counted. A factor
  above 1 wins back what earlier ones took, so the sawtooth of bottleneck blocks, dense layers
  or UNet levels (down at each block boundary, up inside the block) does not add up; the
  factors counted are those below 0.9 since the best-fed layer. Learnable gates are left out;
- the worst-case bound: the sum over all paths of the product of sup|f'|, other ops gain 1;
- confidence: low behind an op the catalogue does not know, an activation of an activation,
  or a residual join of an unnormalized ReLU-family stack.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

from gradlint.core.graph import GraphNode, LayerGraph
from gradlint.core.op_kinds import SOURCE_KINDS, WEIGHT_KINDS

NEG_INF = float("-inf")


def gated_cell(node: GraphNode) -> bool:
    """A stacked LSTM/GRU (num_layers > 1): the estimate follows the first layer's rate only
    (docs/design.md, "Confidence"); one layer's per-step rate is within 0.02 decades."""
    return (node.op == "recurrent" and node.attrs.get("mode") in ("LSTM", "GRU")
            and int(node.attrs.get("layers", 1)) > 1)
LN10 = math.log(10.0)
# averages over positions, whose 1/sqrt(positions) in the weight gradient below is resolution
_AVERAGING = frozenset({"avg_pool", "adaptive_avg_pool", "mean"})
# a per-layer factor counts towards GL101's "at least 3 factors" only when it is clearly below 1
FACTOR_COUNTS_BELOW = math.log10(0.9)


class PathState(NamedTuple):  # a tuple: one per node, cheap to build
    """What lies between a tensor and the loss along the strongest path."""

    attenuation: float  # log10, sum of closed per-layer factors below 1
    factors: int  # closed factors below FACTOR_COUNTS_BELOW
    open_from: float | None  # log10 mean sq weight gradient where the open factor began
    saturating: int
    depth: int
    gate: str | None
    low: str | None  # why the confidence is low on the way to the loss (a reason code), or None
    bound: float  # log10 of the sum-over-paths sup|f'| product
    next: int | None = None  # the consumer this path continues through (towards the loss)
    largest: float = 0.0  # log10 of the smallest single factor in ``attenuation`` (<= 0)
    branch: int | None = None  # the x * gate this path enters through its gate (a side branch)

    def close(self, weight_grad: float) -> tuple[float, int, float]:
        """If the open factor closed at a layer with this log10 mean squared weight gradient:
        the attenuation, the factor count, and the largest single loss in it (log10 factor,
        <= 0; GL101 does not fire when one factor carries most of the attenuation, so that one
        structural drop, a squeeze-excitation gate behind a global pool, never fires it alone).
        """
        if self.open_from is None or weight_grad == NEG_INF:
            return self.attenuation, self.factors, self.largest
        g = 0.5 * (weight_grad - self.open_from)
        att = self.attenuation + g
        if att >= 0:  # as well fed as every weight layer between it and the loss: count anew
            return 0.0, 0, 0.0
        return att, self.factors + (g < FACTOR_COUNTS_BELOW), min(self.largest, g)


# PathState's own constructor is a Python function; this builds the same tuple in C (one per
# node, in the reverse sweep below)
_path_state = functools.partial(tuple.__new__, PathState)

_ONE_SIDED = frozenset({"relu", "relu6", "leaky_relu", "prelu", "elu", "celu", "selu", "gelu",
                        "silu", "mish", "softplus", "hardswish"})


def normalized(graph: LayerGraph) -> bool:
    """Any normalization, also one written out (rsqrt: Llama's and T5's RMSNorm): it keeps the
    stream's scale, so the residual-stream effects below do not build up."""
    return "norm" in graph.kinds() or "rsqrt" in graph.ops()


def collapsing_joins(graph: LayerGraph) -> set[int]:
    """Residual joins of an unnormalized ReLU-family stack: the mean-field estimate is known to
    be weak behind them (samples collapse onto one direction; errors up to ~0.8 decades,
    docs/design.md), so the layers behind them are marked ``confidence: low``."""
    nodes = graph.nodes
    if normalized(graph) or graph.ops().isdisjoint(_ONE_SIDED) or "add" not in graph.ops():
        return set()
    return {n.index for n in nodes if n.op == "add"
            and sum(1 for i in n.inputs if nodes[i].op not in SOURCE_KINDS) >= 2}


def stacked_activations(graph: LayerGraph) -> set[int]:
    """Activations applied to another activation's output (through views): the catalogue's
    Gaussian moments assume a Gaussian pre-activation, which the output of a nonlinearity is
    not, and the two gains are not independent (ReLU after ReLU passes every gradient the
    first one passed); measured errors grow ~0.1 decade per stacked pair."""
    nodes = graph.nodes
    out: set[int] = set()
    for node in nodes:
        if node.kind != "elementwise" or not node.inputs:
            continue
        src = nodes[node.inputs[0]]
        while src.kind == "passthrough" and src.inputs:
            src = nodes[src.inputs[0]]
        if src.kind == "elementwise":
            out.add(node.index)
    return out


# why a layer's confidence is low (LayerEstimate.low_reason, docs/design.md "Confidence")
UNKNOWN_OP = "unknown-op"  # behind an op the catalogue does not know (an opaque block)
COLLAPSING_RESIDUAL = "collapsing-residual"  # behind an unnormalized ReLU-family residual join
STACKED_ACTIVATIONS = "stacked-activations"  # behind an activation of an activation
STACKED_RECURRENT = "stacked-recurrent"  # behind a stacked LSTM/GRU


def low_reasons(graph: LayerGraph) -> list[str | None]:
    """Per node: why the estimate is weak for what lies behind it, or None."""
    nodes = graph.nodes
    why: list[str | None] = [None] * len(nodes)
    for i in stacked_activations(graph):
        why[i] = STACKED_ACTIVATIONS
    for i in collapsing_joins(graph):
        why[i] = COLLAPSING_RESIDUAL
    kinds = graph.kinds()
    if "opaque" in kinds or "recurrent" in kinds:
        for node in nodes:
            if node.kind == "opaque":
                why[node.index] = UNKNOWN_OP
            elif gated_cell(node):
                why[node.index] = STACKED_RECURRENT
    return why


def analyse_paths(graph: LayerGraph, log_r: list[float],
                  contrib: list[list[tuple[int, float]]],
                  gates: list[str | None], weight_grad: list[float],
                  attention: frozenset[int] = frozenset()) -> list[PathState]:
    """``contrib[p]`` lists (consumer, log of the r it sends to p); ``log_r`` is natural log;
    ``gates[c]`` names the learnable gate node ``c`` applies, if any; ``weight_grad[c]`` is
    log10 of the mean squared weight gradient of weight layer ``c`` (its factor boundary);
    ``attention``: the sdpa nodes and the softmaxes whose probabilities weight values."""
    nodes = graph.nodes
    n = len(nodes)
    why = low_reasons(graph)
    sup = [node.log10_sup_derivative() for node in nodes]  # once per node, not per consumer
    states: list[PathState | None] = [None] * n
    states[graph.output] = PathState(0.0, 0, None, 0, 0, None, None, 0.0)
    for p in range(n - 1, -1, -1):
        if p == graph.output:
            continue
        cons = contrib[p]
        if len(cons) == 1:  # most tensors have one consumer
            c, best_r = cons[0]
            sc = states[c]
            if sc is None:
                continue
            cnode = nodes[c]
            low = sc.low or why[c]
            bound = sc.bound + sup[c]
        else:
            strongest = _strongest_consumer(cons, states, why, sup)
            if strongest is None:
                continue
            c, best_r, low, bound = strongest
            sc = states[c]
            assert sc is not None
            cnode = nodes[c]
        # the consumer's state in one unpacking (a NamedTuple's fields are slow attributes)
        att, fac, open_from, saturating, depth, gate, _, _, _, largest, branch = sc
        if cnode.kind in WEIGHT_KINDS and weight_grad[c] > NEG_INF:
            att, fac, largest = sc.close(weight_grad[c])
            open_from = weight_grad[c]
        elif gates[c] is not None:
            # a learnable gate: its smallness is by design (GL106), not compounding attenuation
            gate = gates[c]
            if open_from is not None:  # upstream weight gradients all shrink by the gate's gain
                open_from += (best_r - log_r[c]) / LN10
        elif (cnode.kind == "mul" and _gate_operand(nodes, p, cnode)) or (
                c in attention and _attention_scores(p, cnode)):
            # x * gate(pool(x)) (squeeze-excitation), and attention's scores: the branch is
            # judged by the main path at the join, its own layers start their factors afresh
            # (one structural drop across the gate, or across a near-uniform softmax's Jacobian
            # to Q and K, is not compounding attenuation; a deep sick branch still compounds):
            # the attenuation carries on, the factors GL101 counts are the branch's own
            open_from, branch, fac, largest = None, c, 0, 0.0
        if open_from is not None and cnode.op in _AVERAGING:
            # an average over m positions hands each 1/m of the gradient, and the weight layer
            # below sums m times as many positions: its weight gradient is 1/sqrt(m) of the
            # one above for the resolution alone, not attenuation (a verdict must not change
            # with the example input's size)
            m = nodes[p].numel_per_example / max(cnode.numel_per_example, 1)
            if m > 1:
                open_from -= math.log10(m)
        states[p] = _path_state((
            att, fac, open_from, saturating + cnode.saturating,
            depth + (1 if cnode.params and cnode.kind != "param" else 0),
            gate, low, bound, c, largest, branch))
    return [s if s is not None else PathState(0.0, 0, None, 0, 0, None, None, NEG_INF)
            for s in states]


def _attention_scores(p: int, node: GraphNode) -> bool:
    """Does ``p`` reach attention ``node`` as its scores: a softmax's logits, or sdpa's query
    or key (not a tensor that is also its value)?"""
    if node.op == "softmax":
        return True
    return p in node.inputs[:2] and p not in node.inputs[2:3]


def _gate_operand(nodes: Sequence[GraphNode], p: int, mul: GraphNode) -> bool:
    """Is ``p`` the broadcast side of ``mul`` (fewer entries than its product: a per-channel
    gate computed from the tensor it scales), not a parameter or the full-size main path?"""
    src = nodes[p]
    return (src.kind not in SOURCE_KINDS and src.numel_per_example < mul.numel_per_example
            and any(nodes[i].numel_per_example == mul.numel_per_example for i in mul.inputs
                    if i != p))


def _strongest_consumer(cons: list[tuple[int, float]], states: list[PathState | None],
                        why: list[str | None], sup: list[float]
                        ) -> tuple[int, float, str | None, float] | None:
    """Of a tensor's consumers with a path to the loss: the one sending it the largest r (its
    strongest path continues there) and that r, why any of the paths is of low confidence
    (the first reason met), and the log10 bound summed over the paths; None when no path
    reaches it."""
    best_r = NEG_INF
    c = -1
    bound_terms: list[float] = []
    low: str | None = None
    for cc, lc in cons:
        sc = states[cc]
        if sc is None:
            continue
        low = low or sc.low or why[cc]
        bound_terms.append(sc.bound + sup[cc])
        if c < 0 or lc > best_r:
            best_r, c = lc, cc
    if c < 0:
        return None
    if len(bound_terms) == 1:
        return c, best_r, low, bound_terms[0]
    mx = max(bound_terms)
    bound = mx if mx == NEG_INF else mx + math.log10(sum([10 ** (t - mx) for t in bound_terms]))
    return c, best_r, low, bound
