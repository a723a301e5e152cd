"""Where along a tensor the gradient and the activations are: uneven positions.

The sweeps carry one mean square per tensor (moments forward, r backward), as if every
position along a dimension were alike. Two common structures make them unlike:

- **a slice the loss reads**: where the loss reads ``x[:, 0]`` (a class token) of a tensor
  built by ``cat([cls, patches])`` through ops that keep positions (norms over features,
  Linear, activations, adds), the class token gets nearly all of the gradient and the patch
  tokens only what attention hands back. Class-attention models (CaiT, XCiT) scale that by
  their layer scale (1e-5): five decades below an even spread.
- **a concatenation of unlike scales**: a class token drawn at std 1e-6 beside patch
  embeddings of std 0.6 keeps its small scale along the residual stream (every block adds only
  a little to it), and the norm that reads it multiplies its gradient by 1/σ of *that*
  position, not of the average (timm ViTs: 1.4 decades at the head). DenseNet concatenates
  channels of unlike scales, and BatchNorm divides each channel by its own σ.

This pass keeps, per node, a profile along one dimension: forward, the mean square of each
range of positions (through ``cat``, adds, and ops that keep positions); backward, the share of
the gradient's mass in each range, merged over consumers by their mass. It corrects two gains:
``cat``'s inputs by the mass each holds against its size (none: no gradient), and a per-position
norm's input by the mass-weighted mean of 1/σ² over its ranges against 1/σ² of the average.
Ops that keep positions are the op table's ``keeps_positions``; anything else evens the profile
out, which is what the sweeps assumed everywhere before. The masses come from a plain sum over
consumers (no residual or coherence terms): they only weigh the profiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradlint.core.graph import GraphNode, LayerGraph
from gradlint.core.op_kinds import WEIGHT_KINDS
from gradlint.estimate.op_forward import norm_scale
from gradlint.estimate.op_table import OpEntry
from gradlint.estimate.tensor_state import NEG_INF, Moments, logaddexp

Parts = tuple[tuple[int, int, float], ...]
# along one dimension: (dim, ((lo, hi, value), ...)) covering it in order; backward the values
# are shares of the gradient's mass (summing to 1), forward mean squares; None: even
Profile = tuple[int, Parts] | None
_UNEVEN = 1.5  # forward: ranges whose mean squares differ less than this are alike


def _dim_of(node: GraphNode, dim: object) -> int | None:
    """``dim`` as a non-negative, non-batch dimension of ``node``'s shape, else None."""
    shape = node.shape
    if shape is None or not isinstance(dim, int) or not -len(shape) <= dim < len(shape):
        return None
    d = dim % len(shape)
    return d if d > 0 else None


def _joined(parts: Sequence[tuple[int, int, float]], density: bool) -> list[tuple[int, int, float]]:
    """Neighbouring ranges of equal value (mean square; or, for shares, density) joined."""
    out: list[tuple[int, int, float]] = []
    for lo, hi, v in parts:
        if hi <= lo:
            continue
        if out:
            plo, phi, pv = out[-1]
            same = (math.isclose(pv * (hi - lo), v * (phi - plo), rel_tol=1e-9, abs_tol=1e-300)
                    if density else math.isclose(pv, v, rel_tol=1e-9))
            if same:
                out[-1] = (plo, hi, pv + v if density else v)
                continue
        out.append((lo, hi, v))
    return out


def _shares(node: GraphNode, dim: int, parts: Sequence[tuple[int, int, float]]) -> Profile:
    """A backward profile on ``node``: shares normalized, None where even."""
    if node.shape is None or not 0 < dim < len(node.shape):
        return None
    total = math.fsum(s for _, _, s in parts)
    if total <= 0:
        return None
    out = _joined([(lo, hi, s / total) for lo, hi, s in parts],
                  True)
    if len(out) == 1 and out[0][:2] == (0, node.shape[dim]):
        return None
    return (dim, tuple(out))


def _squares(node: GraphNode, dim: int, parts: Sequence[tuple[int, int, float]]) -> Profile:
    """A forward profile on ``node``: None where every range is within _UNEVEN of the rest."""
    if node.shape is None or not 0 < dim < len(node.shape):
        return None
    out = _joined(parts, False)
    values = [v for _, _, v in out]
    if not values or min(values) * _UNEVEN >= max(values):
        return None
    return (dim, tuple(out))


def _window(parts: Sequence[tuple[int, int, float]], a: int, b: int, share: bool = True
            ) -> list[tuple[int, int, float]]:
    """The ranges of a profile within [a, b), shifted to a (shares cut in proportion)."""
    out = []
    for lo, hi, v in parts:
        x, y = max(lo, a), min(hi, b)
        if x < y:
            out.append((x - a, y - a, v * (y - x) / (hi - lo) if share else v))
    return out


def _cuts(size: int, profiles: Sequence[Parts]) -> list[int]:
    return sorted({0, size} | {x for parts in profiles for lo, hi, _ in parts for x in (lo, hi)})


def _on_cuts(parts: Sequence[tuple[int, int, float]], cuts: Sequence[int], share: bool = True
             ) -> list[float]:
    """``_window``'s one value for every [a, b) between neighbouring ``cuts``, in one sweep
    (``cuts`` include every bound of ``parts``, so each piece lies within one part; 0 where
    no part covers it). A window per piece was quadratic: DenseNet's concatenations have
    dozens of inputs, and their norms as many ranges."""
    out = []
    j, n = 0, len(parts)
    for a, b in zip(cuts, cuts[1:], strict=False):
        while j < n and parts[j][1] <= a:
            j += 1
        if j < n and parts[j][0] <= a and b <= parts[j][1] and a < b:
            lo, hi, v = parts[j]
            out.append(v * (b - a) / (hi - lo) if share else v)
        else:
            out.append(0.0)
    return out


# --- forward: mean square per range ---------------------------------------------------------

class ForwardProfiles:
    """The forward profiles, built node by node inside the forward sweep: a slice of an uneven
    tensor (``x[:, 0]``, the class token) gets the mean square of what it takes, not of the
    whole tensor, before anything downstream reads its moments."""

    def __init__(self, graph: LayerGraph, entries: Sequence[OpEntry]) -> None:
        self.nodes = graph.nodes
        self.entries = entries
        self.prof: list[Profile] = [None] * len(graph.nodes)

    def step(self, node: GraphNode, out: Moments, moments: Sequence[Moments]) -> Moments:
        """Record ``node``'s profile (its inputs' moments are in ``moments``, its own are
        ``out``); returns ``out``, rescaled where the node takes a slice of an uneven tensor."""
        nodes, prof, i = self.nodes, self.prof, node.index
        if node.kind == "cat":
            prof[i] = _cat_forward(node, nodes, moments, prof)
        elif node.kind == "add":
            prof[i] = _add_forward(node, nodes, moments, prof)
        elif not node.inputs or prof[node.inputs[0]] is None:
            return out
        elif node.kind == "norm":
            prof[i] = _norm_forward(node, nodes, moments, prof, self.entries)
        elif "take" in node.attrs and node.kind == "passthrough":
            return self._take(node, out, moments)
        else:
            src = prof[node.inputs[0]]
            keeps = self.entries[i].keeps_positions
            if src is not None and keeps is not None and keeps(node, nodes[node.inputs[0]],
                                                               src[0]):
                ratio = out.second / max(moments[node.inputs[0]].second, 1e-300)
                prof[i] = _squares(node, src[0], [(lo, hi, v * ratio) for lo, hi, v in src[1]])
        return out

    def _take(self, node: GraphNode, out: Moments, moments: Sequence[Moments]) -> Moments:
        src = self.prof[node.inputs[0]]
        d, lo, hi, keeps_dim = node.attrs["take"]
        if src is None or src[0] != d:
            return out
        mine = _window(src[1], lo, hi, share=False)
        size = max(hi - lo, 1)
        second = math.fsum(v * (b - a) for a, b, v in mine) / size
        if keeps_dim:
            self.prof[node.index] = _squares(node, d, mine)
        ratio = second / max(moments[node.inputs[0]].second, 1e-300)
        root = math.sqrt(ratio)
        return Moments(out.mean * root, out.second * ratio, out.shared * ratio)


def uneven(graph: LayerGraph) -> bool:
    """Can positions be unlike: a concatenation along a non-batch dimension, or a slice?"""
    kinds = graph.kinds()
    return ("cat" in kinds and any(n.kind == "cat" and not n.attrs.get("stack")
                                   and _dim_of(n, n.attrs.get("dim", 0)) for n in graph.nodes)
            ) or ("passthrough" in kinds and any("take" in n.attrs for n in graph.nodes
                                                 if n.kind == "passthrough"))


def _cat_forward(node: GraphNode, nodes: Sequence[GraphNode], moments: Sequence[Moments],
                 prof: list[Profile]) -> Profile:
    d = _dim_of(node, node.attrs.get("dim", 0))
    if d is None or node.attrs.get("stack") or node.shape is None:
        return None
    parts: list[tuple[int, int, float]] = []
    offset = 0
    for i in node.inputs:
        shape = nodes[i].shape
        if shape is None or len(shape) != len(node.shape):
            return None
        p = prof[i]
        mine = p[1] if p is not None and p[0] == d else ((0, shape[d], moments[i].second),)
        parts += [(lo + offset, hi + offset, v) for lo, hi, v in mine]
        offset += shape[d]
    return _squares(node, d, parts)


def _norm_forward(node: GraphNode, nodes: Sequence[GraphNode], moments: Sequence[Moments],
                  prof: list[Profile], entries: Sequence[OpEntry]) -> Profile:
    """A per-position norm evens its ranges out, except where eps outweighs a range's
    variance: x̂'s mean square there is var / (var + eps) (a class token drawn at std 1e-6
    leaves LayerNorm's output at ~1e-3)."""
    src = nodes[node.inputs[0]]
    p = prof[src.index]
    keeps = entries[node.index].keeps_positions
    if p is None or keeps is None or not keeps(node, src, p[0]):
        return None
    x = moments[src.index]
    var, s2, _ = norm_scale(node, x)
    eps, mean_square = s2 - var, max(x.second, 1e-300)
    g, b = node.weight, node.bias
    eg2, eb2 = (g.mean_sq if g else 1.0), (b.mean_sq if b else 0.0)
    parts = []
    for lo, hi, v in p[1]:
        here = var * v / mean_square
        parts.append((lo, hi, eg2 * here / max(here + eps, 1e-300) + eb2))
    return _squares(node, p[0], parts)


def _add_forward(node: GraphNode, nodes: Sequence[GraphNode], moments: Sequence[Moments],
                 prof: list[Profile]) -> Profile:
    """A sum of independent terms: mean squares add, range by range (a broadcast term, as a
    position embedding, adds its own mean square everywhere)."""
    found = [p for i in node.inputs if (p := prof[i]) is not None
             and nodes[i].shape == node.shape]
    dims = {p[0] for p in found}
    if len(dims) != 1 or node.shape is None:
        return None
    d = dims.pop()
    scales = node.scales or (1.0,) * len(node.inputs)
    cuts = _cuts(node.shape[d], [p[1] for p in found])
    totals = [0.0] * (len(cuts) - 1)
    for i, c in zip(node.inputs, scales, strict=False):
        p = prof[i]
        if p is not None and p[0] == d and nodes[i].shape == node.shape:
            values = _on_cuts(p[1], cuts, share=False)
        else:
            values = [moments[i].second] * len(totals)
        totals = [t + c * c * v for t, v in zip(totals, values, strict=True)]
    return _squares(node, d, [(a, b, t) for a, b, t in zip(cuts, cuts[1:], totals,
                                                           strict=False)])


# --- backward: the gradient's mass per range ------------------------------------------------

def _merge(node: GraphNode, found: list[tuple[float, Profile]]) -> Profile:
    """The profile of a node's gradient from its consumers' (log mass, profile) pairs."""
    if len(found) == 1:
        return found[0][1]
    dims = {p[0] for _, p in found if p is not None}
    if len(dims) != 1 or node.shape is None:
        return None
    dim = dims.pop()
    top = max(m for m, _ in found)
    cuts = _cuts(node.shape[dim], [p[1] for _, p in found if p is not None])
    even = ((0, node.shape[dim], 1.0),)
    shares = [0.0] * (len(cuts) - 1)
    for m, p in found:
        weight = math.exp(m - top)
        shares = [t + weight * v
                  for t, v in zip(shares, _on_cuts(p[1] if p else even, cuts), strict=True)]
    return _shares(node, dim, [(a, b, t) for a, b, t in zip(cuts, cuts[1:], shares,
                                                            strict=False)])


def _cat_inputs(node: GraphNode, nodes: Sequence[GraphNode], profile: Profile
                ) -> list[tuple[Profile, float] | None]:
    """Per input of a concatenation: the profile it is handed and the log factor of its r
    against an even spread; None where the input gets no gradient. All inputs in one sweep
    over the profile (DenseNet concatenates dozens)."""
    srcs = [nodes[i] for i in node.inputs]
    even: list[tuple[Profile, float] | None] = [(None, 0.0)] * len(srcs)
    if profile is None or node.attrs.get("stack") or node.shape is None:
        return even
    dim = _dim_of(node, node.attrs.get("dim", 0))
    if dim is None or any(s.shape is None or len(s.shape) != len(node.shape) for s in srcs):
        return even
    d, parts = profile
    if d != dim:  # a profile along another dimension: the same in every input
        return [(_shares(src, d, parts), 0.0) for src in srcs]
    out: list[tuple[Profile, float] | None] = []
    offset = first = 0
    for src in srcs:
        size = src.shape[dim] if src.shape is not None else 0
        while first < len(parts) and parts[first][1] <= offset:
            first += 1
        last = first
        while last < len(parts) and parts[last][0] < offset + size:
            last += 1
        mine = _window(parts[first:last], offset, offset + size)
        offset += size
        mass = math.fsum(s for _, _, s in mine)
        if size <= 0 or mass <= 0:
            out.append(None)
        else:
            out.append((_shares(src, d, mine), math.log(mass * node.shape[dim] / size)))
    return out


def _norm_input(node: GraphNode, src: GraphNode, x: Moments, forward: Profile,
                profile: Profile) -> tuple[Profile, float]:
    """A per-position norm divides each range by its own σ²: the gradient's mass moves to the
    small ranges, and r grows by the mass-weighted mean of (σ̄² + eps) / (σ² + eps)."""
    assert forward is not None and src.shape is not None
    d, squares = forward
    var, s2, _ = norm_scale(node, x)
    eps = s2 - var
    mean_square = max(x.second, 1e-300)
    parts = profile[1] if profile is not None and profile[0] == d else (
        (0, src.shape[d], 1.0),)
    cuts = _cuts(src.shape[d], [parts, squares])
    moved = [(a, b, share * s2 / max(var * here / mean_square + eps, 1e-300))
             for a, b, share, here in zip(cuts, cuts[1:], _on_cuts(parts, cuts),
                                          _on_cuts(squares, cuts, share=False), strict=False)]
    factor = math.fsum(s for _, _, s in moved)
    return (_shares(src, d, moved), math.log(factor) if factor > 0 else NEG_INF)


def _passes(node: GraphNode, slot: int, nodes: Sequence[GraphNode], entry: OpEntry,
            profile: Profile, forward: list[Profile], moments: Sequence[Moments]
            ) -> tuple[Profile, float] | None:
    """(profile on input ``slot``, log gain correction), None where nothing reaches it
    (a concatenation's inputs: ``_cat_inputs``)."""
    src = nodes[node.inputs[slot]]
    take = node.attrs.get("take") if node.kind == "passthrough" and slot == 0 else None
    if take is not None:
        d, lo, hi, keeps_dim = take
        inner = (list(profile[1]) if profile is not None and keeps_dim and profile[0] == d
                 else [(0, hi - lo, 1.0)])
        size = src.shape[d] if src.shape is not None and d < len(src.shape) else hi
        parts = [(0, lo, 0.0)] + [(a + lo, b + lo, s) for a, b, s in inner] + [(hi, size, 0.0)]
        return (_shares(src, d, parts), 0.0)
    keeps = entry.keeps_positions
    if node.kind == "mul" and len(node.inputs) == 2:  # the gain to one factor: the other's P
        other = node.inputs[1 - slot]
        fix = _weighted(forward[other], profile, moments[other].second, nodes[other])
        passed = (_shares(src, profile[0], profile[1]) if profile is not None and keeps
                  is not None and keeps(node, src, profile[0]) else None)
        return (passed, fix)
    fw = forward[src.index] if node.kind == "norm" and slot == 0 else None
    if fw is not None and keeps is not None and keeps(node, src, fw[0]) and (
            profile is None or profile[0] == fw[0]):
        return _norm_input(node, src, moments[src.index], fw, profile)
    if profile is None:
        return (None, 0.0)
    if keeps is not None and keeps(node, src, profile[0]):
        return (_shares(src, profile[0], profile[1]), 0.0)
    return (None, 0.0)


def _weighted(forward: Profile, profile: Profile, mean_square: float, node: GraphNode
              ) -> float:
    """log of the mean square of a tensor where the gradient's mass is, against its plain
    mean square: what a weight's gradient, the sum of δ x over positions, sees of x."""
    if forward is None or profile is None or profile[0] != forward[0] or node.shape is None:
        return 0.0  # an even spread of the mass sees the plain mean square
    d, squares = forward
    parts = profile[1]
    cuts = _cuts(node.shape[d], [parts, squares])
    total = 0.0
    for share, here in zip(_on_cuts(parts, cuts), _on_cuts(squares, cuts, share=False),
                           strict=True):
        total += share * here
    return math.log(total / mean_square) if total > 0 and mean_square > 0 else 0.0


def profile_corrections(graph: LayerGraph, log_gains: list[tuple[float, ...]],
                       entries: Sequence[OpEntry], moments: Sequence[Moments],
                       forward: list[Profile]
                       ) -> tuple[list[tuple[float, ...]], dict[int, float]]:
    """``log_gains`` corrected for uneven positions (a new list), and per weight layer the
    log correction of its weight gradient (``_weighted``). ``forward``: the forward sweep's
    ``ForwardProfiles.prof``."""
    nodes = graph.nodes
    found: list[list[tuple[float, Profile]]] = [[] for _ in nodes]  # (log r, profile) in
    found[graph.output].append((0.0, None))
    out = list(log_gains)
    weight_fix: dict[int, float] = {}
    for c in range(len(nodes) - 1, -1, -1):
        if not found[c]:
            continue
        node = nodes[c]
        rc = found[c][0][0]
        for m, _ in found[c][1:]:
            rc = logaddexp(rc, m)
        profile = _merge(node, found[c])
        if (node.kind in WEIGHT_KINDS or node.kind == "norm") and node.params and node.inputs:
            x = c if node.kind == "norm" else node.inputs[0]  # a norm's γ sees x̂
            fix = _weighted(forward[x], profile, moments[x].second, nodes[x])
            if fix:
                weight_fix[c] = fix
        gains = log_gains[c]
        changed = list(gains)
        cat = _cat_inputs(node, nodes, profile) if node.kind == "cat" else None
        for slot, p in enumerate(node.inputs):
            if slot >= len(gains) or gains[slot] == NEG_INF:
                continue
            passed = (cat[slot] if cat is not None
                      else _passes(node, slot, nodes, entries[c], profile, forward, moments))
            if passed is None:
                changed[slot] = NEG_INF
                continue
            changed[slot] += passed[1]
            found[p].append((rc + changed[slot], passed[0]))
        if changed != list(gains):
            out[c] = tuple(changed)
    return out, weight_fix
