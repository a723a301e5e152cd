"""Where along a tensor the gradient is: positions a slice leaves out get less, or none.

The sweeps carry r, the mean square of the gradient per entry, as if it were spread evenly
over every position of a tensor. Where the loss reads a slice (``x[:, 0]``, a class token) of
a tensor built by concatenation (``cat([cls, patches])``) through ops that act on each position
alone (norms over features, Linear, activations, adds), the inputs of the concatenation do not
share the gradient evenly: the class token gets nearly all of it, the patch tokens only what
attention hands back. A class-attention model (CaiT, XCiT) scales that by its layer scale
(1e-5): five decades below what spreading it evenly said.

This pass runs backward over the graph once, before the gradient sweep. Per node it keeps a
profile along one dimension, the share of the gradient's mass in each range of positions (none:
even), merged over its consumers by their mass, and corrects the gains of ``cat``'s inputs by
the mass each one holds against its size (no mass: no gradient). Ops that keep positions are
the op table's ``keeps_positions``; anything else spreads the gradient evenly again, which is
what the sweeps assumed before. The masses come from a plain sum over consumers (no residual
or coherence terms): they only weigh the profiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradlint.core.graph import GraphNode, LayerGraph
from gradlint.estimate.op_table import OpEntry
from gradlint.estimate.tensor_state import NEG_INF, logaddexp

# the gradient's mass along one dimension: (dim, ((lo, hi, share), ...)) over the whole
# dimension, shares summing to 1; None: spread evenly
Profile = tuple[int, tuple[tuple[int, int, float], ...]] | None
_DROP = 1e-12  # a range holding less than this share of the mass holds none


def _even(node: GraphNode, dim: int) -> tuple[tuple[int, int, float], ...]:
    assert node.shape is not None
    return ((0, node.shape[dim], 1.0),)


def _tidy(node: GraphNode, dim: int, parts: Sequence[tuple[int, int, float]]) -> Profile:
    """A profile on ``node`` from ranges (in order, covering the dimension), with neighbours of
    equal density joined; None where it is even or the node's shape does not have ``dim``."""
    shape = node.shape
    if shape is None or not 0 < dim < len(shape):
        return None
    total = math.fsum(s for _, _, s in parts)
    if total <= 0:
        return None
    out: list[tuple[int, int, float]] = []
    for lo, hi, s in parts:
        if hi <= lo:
            continue
        share = s / total if s / total > _DROP else 0.0
        if out:
            plo, phi, ps = out[-1]
            if math.isclose(ps * (hi - lo), share * (phi - plo), rel_tol=1e-9, abs_tol=1e-300):
                out[-1] = (plo, hi, ps + share)
                continue
        out.append((lo, hi, share))
    if len(out) == 1 and out[0][:2] == (0, shape[dim]):
        return None
    return (dim, tuple(out))


def _window(parts: Sequence[tuple[int, int, float]], a: int, b: int
            ) -> list[tuple[int, int, float]]:
    """The ranges of a profile within [a, b), their shares cut in proportion, shifted to a."""
    out = []
    for lo, hi, s in parts:
        x, y = max(lo, a), min(hi, b)
        if x < y:
            out.append((x - a, y - a, s * (y - x) / (hi - lo)))
    return out


def _merge(node: GraphNode, found: list[tuple[float, Profile]]) -> Profile:
    """The profile of a node's gradient from its consumers' (log mass, profile) pairs."""
    if len(found) == 1:
        return found[0][1]
    dims = {p[0] for _, p in found if p is not None}
    if len(dims) != 1 or node.shape is None:
        return None
    dim = dims.pop()
    top = max(m for m, _ in found)
    cuts = sorted({0, node.shape[dim]} | {x for _, p in found if p is not None
                                           for lo, hi, _ in p[1] for x in (lo, hi)})
    parts = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        share = 0.0
        for m, p in found:
            w = math.exp(m - top)
            within = _window(p[1] if p else _even(node, dim), a, b)
            share += w * math.fsum(s for _, _, s in within)
        parts.append((a, b, share))
    return _tidy(node, dim, parts)


def _cat_input(node: GraphNode, slot: int, nodes: Sequence[GraphNode], profile: Profile
               ) -> tuple[Profile, float] | None:
    """The profile a concatenation hands input ``slot`` and the log factor of that input's r
    against an even spread; None where the input gets no gradient."""
    src = nodes[node.inputs[slot]]
    if profile is None or node.attrs.get("stack") or node.shape is None:
        return (None, 0.0)
    rank = len(node.shape)
    shapes = [nodes[i].shape for i in node.inputs]
    dim = node.attrs.get("dim", 0)
    if not isinstance(dim, int) or any(s is None or len(s) != rank for s in shapes):
        return (None, 0.0)
    dim %= rank
    d, parts = profile
    if d != dim:  # a profile along another dimension: the same in every input
        return (_tidy(src, d, parts), 0.0)
    sizes = [s[dim] if s is not None else 0 for s in shapes]
    offset, size = sum(sizes[:slot]), sizes[slot]
    mine = _window(parts, offset, offset + size)
    mass = math.fsum(s for _, _, s in mine)
    if size <= 0 or mass <= _DROP:
        return None
    return (_tidy(src, d, mine), math.log(mass * node.shape[dim] / size))


def _passes(node: GraphNode, slot: int, nodes: Sequence[GraphNode], entry: OpEntry,
            profile: Profile) -> tuple[Profile, float] | None:
    """(profile on input ``slot``, log gain correction), None where nothing reaches it."""
    src = nodes[node.inputs[slot]]
    take = node.attrs.get("take") if node.kind == "passthrough" and slot == 0 else None
    if take is not None:
        d, lo, hi, keeps_dim = take
        inner = (list(profile[1]) if profile is not None and keeps_dim and profile[0] == d
                 else [(0, hi - lo, 1.0)])
        size = src.shape[d] if src.shape is not None and d < len(src.shape) else hi
        parts = [(0, lo, 0.0)] + [(a + lo, b + lo, s) for a, b, s in inner] + [(hi, size, 0.0)]
        return (_tidy(src, d, parts), 0.0)
    if profile is None:
        return (None, 0.0)
    if node.kind == "cat":
        return _cat_input(node, slot, nodes, profile)
    keeps = entry.keeps_positions
    if keeps is not None and keeps(node, src, profile[0]):
        return (_tidy(src, profile[0], profile[1]), 0.0)
    return (None, 0.0)


def confine_to_support(graph: LayerGraph, log_gains: list[tuple[float, ...]],
                       entries: Sequence[OpEntry]) -> list[tuple[float, ...]]:
    """``log_gains`` with each concatenation's inputs weighted by the gradient they hold (a
    new list; the same one where no node takes a slice of positions)."""
    nodes = graph.nodes
    if "passthrough" not in graph.kinds() or not any(
            "take" in n.attrs for n in nodes if n.kind == "passthrough"):
        return log_gains
    found: list[list[tuple[float, Profile]]] = [[] for _ in nodes]  # (log r, profile) in
    found[graph.output].append((0.0, None))
    out = list(log_gains)
    for c in range(len(nodes) - 1, -1, -1):
        if not found[c]:
            continue
        node = nodes[c]
        rc = found[c][0][0]
        for m, _ in found[c][1:]:
            rc = logaddexp(rc, m)
        profile = _merge(node, found[c])
        gains = log_gains[c]
        changed = list(gains)
        for slot, p in enumerate(node.inputs):
            if slot >= len(gains) or gains[slot] == NEG_INF:
                continue
            passed = _passes(node, slot, nodes, entries[c], profile)
            if passed is None:
                changed[slot] = NEG_INF
                continue
            changed[slot] += passed[1]
            found[p].append((rc + changed[slot], passed[0]))
        if changed != list(gains):
            out[c] = tuple(changed)
    return out
