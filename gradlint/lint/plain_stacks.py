"""GL105's quantity: plain stacks of weight layers and their per-layer gain under the real init.

A plain stack is a chain of Linear/Conv layers where each one's output goes only to the next
one, through elementwise activations, views, dropout or pooling: no normalization, no skip or
branch, no gate between them. Its per-layer gain is what one layer does to the size of the
gradient (and of the activations): g = fan_in·E[W²]·E[φ′²], the weights' part from their real
statistics and the activations' part at the pre-activation moments the estimate computed. A
gain g per layer compounds to g^(n/2) in RMS over n layers, so a good init keeps it at 1
(Kaiming for ReLU: fan_in·E[W²] = 2 and E[φ′²] = 1/2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from gradlint.core.op_kinds import AFFINE_KINDS
from gradlint.estimate.strongest_path import LN10, NEG_INF
from gradlint.lint.rule_api import ModelAnalysis

CHAIN_KINDS = AFFINE_KINDS  # the layers whose fans set a plain stack's gain
_THROUGH = frozenset({"passthrough", "pool"})
# an activation whose derivative never reaches this caps the gain whatever the init
# (sigmoid: f' <= 1/4): the activation is the problem there (GL101/GL102), not the init
CAPPED_BELOW = 0.8
# fan_in·E[W²] below this: a (nearly) zero-initialized layer, a gate (GL106), not a stack layer
ZERO_GAIN = 1e-4


class StackLayer(NamedTuple):
    node: int
    module: str
    log10_weight: float  # log10 fan_in·E[W²]
    activations: tuple[int, ...]  # the elementwise nodes between it and the next layer
    log10_activation: float  # log10 of the product of their E[φ′²]

    @property
    def log10_gain(self) -> float:
        return self.log10_weight + self.log10_activation


@dataclass(frozen=True)
class Stack:
    layers: tuple[StackLayer, ...]


def mean_log10_gain(units: tuple[StackLayer, ...]) -> float:
    """Geometric mean of the layers' gains (log10): what compounds per layer."""
    return sum(la.log10_gain for la in units) / max(len(units), 1)


def log10_fan_gain(analysis: ModelAnalysis, i: int) -> float:
    """log10 fan_in·E[W²] of weight layer ``i``: its forward gain on the second moment, from
    the weight's real mean square (the estimate's ``_weight_layer`` view of fan_in)."""
    return analysis.derived(fan_gains)[i]


def fan_gains(analysis: ModelAnalysis) -> list[float]:
    """``log10_fan_gain`` of every node (-inf for all but Linear/Conv), in one pass."""
    out = [NEG_INF] * len(analysis.nodes)
    for node in analysis.nodes:
        kind = node.kind
        if kind not in CHAIN_KINDS:
            continue
        w = node.main
        if w is None or w.mean_sq <= 0:
            continue
        a = node.attrs
        try:
            if kind == "linear":
                fan_in = float(a["fan_in"])
            else:
                ksize = math.prod(int(k) for k in a["kernel"])
                fan_in = a["in"] // a.get("groups", 1) * ksize
                if kind == "conv_transpose":
                    fan_in /= math.prod(int(s) for s in a["stride"])
        except (KeyError, TypeError):
            continue
        out[node.index] = math.log10(max(fan_in, 1e-30) * w.mean_sq)
    return out


def _log10_act(log_gains: tuple[tuple[float, ...], ...], i: int) -> float:
    """log10 E[φ′²] of activation ``i`` (its backward gain; the estimate's log_gains)."""
    gains = log_gains[i] if i < len(log_gains) else ()
    return gains[0] / LN10 if gains and gains[0] > NEG_INF else NEG_INF


def _trainable_weights(analysis: ModelAnalysis) -> list[bool]:
    """Linear/Conv layers that learn and are not gates (a zero-initialized layer, GL106)."""
    fan = analysis.derived(fan_gains)
    least = math.log10(ZERO_GAIN)
    nodes = analysis.nodes
    out = [False] * len(nodes)
    for i, gain in enumerate(fan):
        if gain >= least:  # a Linear/Conv with a weight (fan gains are -inf elsewhere)
            node = nodes[i]
            w = node.main
            out[i] = (w is not None and w.requires_grad and node.module is not None
                      and bool(node.inputs))
    return out


def _follow(analysis: ModelAnalysis, start: int, users: list[list[int]],
            trainable: list[bool]) -> tuple[int | None, tuple[int, ...]]:
    """From a weight layer's output along single-consumer links to the next weight layer:
    (that layer or None, the activations passed)."""
    nodes = analysis.nodes
    acts: list[int] = []
    p = start
    while True:
        us = users[p]
        if len(us) != 1:
            return None, tuple(acts)
        c = us[0]
        node = nodes[c]
        if not node.inputs or node.inputs[0] != p or p in node.inputs[1:]:
            return None, tuple(acts)
        kind = node.kind
        if kind == "elementwise":
            acts.append(c)
        elif trainable[c]:
            return c, tuple(acts)
        elif kind not in _THROUGH:
            return None, tuple(acts)
        p = c


def plain_stacks(analysis: ModelAnalysis, min_layers: int = 5) -> list[Stack]:
    """The model's plain stacks of at least ``min_layers`` weight layers, input side first."""
    users = analysis.users
    trainable = analysis.derived(_trainable_weights)
    fan = analysis.derived(fan_gains)
    succ: dict[int, tuple[int | None, tuple[int, ...]]] = {}
    for start, ok in enumerate(trainable):
        if ok:
            succ[start] = _follow(analysis, start, users, trainable)
    has_pred = {nxt for nxt, _ in succ.values() if nxt is not None}
    log_gains = analysis.estimate.log_gains
    act_gain = {a: _log10_act(log_gains, a) for _, acts in succ.values() for a in acts}
    out = []
    for head in sorted(succ):
        if head in has_pred:
            continue
        layers = []
        i: int | None = head
        while i is not None:
            nxt, acts = succ[i]
            gain = 0.0
            for a in acts:
                gain += act_gain[a]
            layers.append(StackLayer(i, analysis.nodes[i].module or "", fan[i], acts, gain))
            i = nxt
        if len(layers) >= min_layers:
            out.append(Stack(tuple(layers)))
    return out


def judged_units(analysis: ModelAnalysis, stack: Stack) -> tuple[StackLayer, ...]:
    """The layers whose gain the init sets: followed by an activation (an output head or a
    linear bottleneck has no E[φ′²] of its own), none of which caps the gain below 1 whatever
    the init (sigmoid: the activation is the problem there, GL101/GL102, not the init; an
    output sigmoid is left out the same way)."""
    nodes = analysis.nodes
    capped = math.log10(CAPPED_BELOW)
    units = []
    for la in stack.layers:
        acts = la.activations
        if len(acts) == 1:  # the common case, without a generator per layer
            if nodes[acts[0]].log10_sup_derivative() >= capped:
                units.append(la)
        elif acts and all(nodes[a].log10_sup_derivative() >= capped for a in acts):
            units.append(la)
    return tuple(units)


def main_activation(analysis: ModelAnalysis, units: tuple[StackLayer, ...]) -> str | None:
    """The most common activation of these layers (catalogue key; the first seen on a tie)."""
    counts: dict[str, int] = {}
    for la in units:
        for a in la.activations:
            op = analysis.nodes[a].op
            counts[op] = counts.get(op, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None
