"""The estimate stage: forward moments, backward gradient signal, and per-layer numbers.

Two linear sweeps over the LayerGraph (docs/design.md): forward in topological order carries
moments (each op's entry in ``op_table``), backward in reverse order adds the mean squared
gradient r of every consumer (gradients are sums over paths, so their variances add). A layer's
per-entry weight gradient is then m * r_out * P_in, with m the output positions per example.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gradlint.core.gc_pause import collector_paused
from gradlint.core.graph import GraphNode, LayerGraph, ModuleInfo, ParamStats
from gradlint.core.op_kinds import AFFINE_KINDS, GATE_RMS, SOURCE_KINDS, WEIGHT_KINDS
from gradlint.core.values import LayerEstimate
from gradlint.estimate.activations import negative_second_moment
from gradlint.estimate.centred_logits import centred_gains
from gradlint.estimate.op_table import (
    OpEntry,
    entries_of,
    entry_of,
    graph_reads_shared,
    matmul_values,
)
from gradlint.estimate.position_profiles import ForwardProfiles, profile_corrections, uneven
from gradlint.estimate.rectified_streams import consecutive_masks, rectified_relus, relu_step
from gradlint.estimate.residual_coherence import CoherentSkip, coherent_skips, homogeneous_floor
from gradlint.estimate.scaled_away import scaled_away
from gradlint.estimate.strongest_path import (
    LN10,
    NEG_INF,
    STACKED_RECURRENT,
    PathState,
    analyse_paths,
    gated_cell,
)
from gradlint.estimate.tensor_state import Moments, logaddexp


@dataclass(frozen=True)
class GraphEstimate:
    """Per-node moments, gradient signal and path state, plus the per-layer summary."""

    graph: LayerGraph
    moments: tuple[Moments, ...]
    log_r: tuple[float, ...]  # natural log of the mean squared gradient per entry
    paths: tuple[PathState, ...]
    layers: tuple[LayerEstimate, ...]
    unknown_ops: tuple[GraphNode, ...]
    log_gains: tuple[tuple[float, ...], ...] = ()  # per node: natural log of r_in/r_out per input

    def log10_gain(self, consumer: int, producer: int) -> float:
        """log10 of the RMS gradient gain from ``consumer``'s output back to ``producer``."""
        node = self.graph.nodes[consumer]
        gains = self.log_gains[consumer]
        if len(node.inputs) == 1:  # the common case, without the search below
            return 0.5 * gains[0] / LN10 if gains and node.inputs[0] == producer else 0.0
        slots = [k for k, i in enumerate(node.inputs) if i == producer and k < len(gains)]
        if not slots:
            return 0.0
        return 0.5 * max(gains[k] for k in slots) / LN10


def _gate_name(node: GraphNode, gate: bool, graph: LayerGraph) -> str | None:
    if not gate:
        return None
    if node.op == "mul":
        for i in node.inputs[:2]:
            src = graph.nodes[i]
            if src.op == "param" and src.params:
                p = src.params[0]
                return p.name if p.requires_grad and math.sqrt(p.mean_sq) < GATE_RMS else None
        return None
    w = node.weight
    return w.name if w is not None and w.requires_grad else None


@collector_paused
def estimate_gradients(graph: LayerGraph) -> GraphEstimate:
    """Forward moments, backward gradient signal, path states and one row per layer."""
    nodes = graph.nodes
    n = len(nodes)
    moments: list[Moments] = []
    log_gains: list[tuple[float, ...]] = []
    gates: list[str | None] = []
    shared = graph_reads_shared(graph)
    entries = entries_of(nodes)  # looked up once per node
    profiles = ForwardProfiles(graph, entries) if uneven(graph) else None
    rectified = rectified_relus(graph)  # ReLUs after residual adds (rectified_streams)
    independent = _branch_normalized(graph)  # averages whose tokens are taken independent
    for node, entry in zip(nodes, entries, strict=True):
        inputs = node.inputs  # most nodes have one input (a comprehension is a call in 3.11)
        ins = [moments[inputs[0]]] if len(inputs) == 1 else [moments[i] for i in inputs]
        if independent and node.index in independent:
            node = node.without("coherence")
        out, gains, gate = entry.forward(node, ins, nodes, shared)  # a Step, unpacked in C
        if rectified and node.index in rectified:
            stream, branch = rectified[node.index]
            better = relu_step(moments[stream], moments[branch], out)
            if better is not None:
                out, gains = better[0], (better[1],)
        if profiles is not None:
            out = profiles.step(node, out, moments)
        moments.append(out)
        log_gains.append(gains)
        gates.append(_gate_name(node, gate, graph) if gate else None)

    attention = _attention_softmaxes(graph)
    if attention and "matmul" in graph.ops():  # the Jacobian centres over alike keys
        log_gains = centred_gains(graph, log_gains, attention)
    weight_fix: dict[int, float] = {}
    if profiles is not None:
        log_gains, weight_fix = profile_corrections(graph, log_gains, entries, moments,
                                                   profiles.prof)
    skips = coherent_skips(graph, moments)
    masks = consecutive_masks(graph, rectified, moments) if rectified else {}
    log_r, contrib, log_s = _backward(graph, log_gains, skips, moments, entries, masks=masks)
    # GL101's per-layer factors compare the weight gradients of consecutive weight layers
    centred = _batch_centred(graph)
    grads = _weight_grads(graph, moments, log_r, centred, entries, log_s, weight_fix)
    weight_grad = [g / LN10 for g in grads]  # log10, as the path factors use them
    paths = analyse_paths(graph, log_r, contrib, gates, weight_grad, attention)
    # a parameter read directly in forward reaches this many positions (broadcast)
    spread = {i: _reached(nodes, contrib, i) / max(nodes[i].numel_per_example, 1)
              for i in range(n) if nodes[i].op == "param"} if "param" in graph.ops() else {}
    # a norm's γ that a later norm divides out: its own gradient only, not the paths'
    owner_fix = dict(weight_fix)
    tails: set[int] = set()  # of those, the ones whose γ's gradient rests on a clip's tail
    for i, (f, tail) in scaled_away(graph, moments).items():
        owner_fix[i] = owner_fix.get(i, 0.0) + f
        if tail:
            tails.add(i)
    layers = _layer_estimates(graph, moments, log_r, paths, spread, grads, centred,
                              log_s, owner_fix, tails)
    if attention:
        layers = _token_coherence_range(graph, entries, moments, log_gains, skips, layers, paths,
                                        spread, centred, attention, owner_fix, masks)
    unknown = (tuple(node for node in nodes if node.kind == "opaque")
               if "opaque" in graph.kinds() else ())
    return GraphEstimate(graph, tuple(moments), tuple(log_r), tuple(paths), layers, unknown,
                         tuple(log_gains))


def _weight_grads(graph: LayerGraph, moments: list[Moments], log_r: list[float],
                  centred: set[int], entries: list[OpEntry],
                  log_s: list[float] | None = None,
                  fix: dict[int, float] | None = None) -> list[float]:
    """Natural log of each weight node's mean squared weight gradient (NEG_INF elsewhere), by
    its entry's rule (``_call_grad_sq`` with the entries already looked up)."""
    out = [NEG_INF] * len(graph.nodes)
    for node in graph.nodes:
        if node.kind in WEIGHT_KINDS and node.params and node.inputs:
            i, main, lr = node.index, node.main, log_r[node.index]
            if lr == NEG_INF or main is None:
                continue
            x = moments[node.inputs[0]]
            out[i] = entries[i].weight_grad(node, main, False, _centred(x) if i in centred
                                            else x, lr, log_s[i] if log_s else NEG_INF)
    for i, f in (fix or {}).items():  # where the gradient's mass and x's scale are uneven
        if out[i] != NEG_INF:
            out[i] += f
    return out


def _position_mixing(graph: LayerGraph) -> tuple[frozenset[int], dict[int, int]]:
    """Where what is alike at every position stops being alike: Linear layers that mix
    positions (an MLP-Mixer's token MLP, after a transpose: their last input dimension is not
    the channels), and space-to-depth views (a Swin patch merging: k neighbouring positions
    gathered into k times the channels, by a reshape or a concat of strided slices of one
    tensor), through
    which only 1/k stays alike (each residue class gets its own slice of the Linear after it,
    as below a strided conv).

    The channel count is followed forward: an input's (its last dimension for features and
    tokens, dim 1 for an image), a conv's output channels, a channel-mixing Linear's output
    features; a token-mixing Linear and every other op keep their input's count while their
    output still has a dimension (1 or last) of that size, else it is unknown (a flatten, a
    concat, attention's heads), and a Linear after an unknown count mixes channels."""
    if "linear" not in graph.kinds():
        return frozenset(), {}
    nodes = graph.nodes
    chan: list[int | None] = [None] * len(nodes)
    mixing: set[int] = set()
    merges: dict[int, int] = {}
    for node in nodes:
        shape = node.shape or ()
        i = node.index
        src = chan[node.inputs[0]] if node.inputs else None
        if node.kind == "input":
            chan[i] = (shape[1] if len(shape) >= 4 else shape[-1]) if len(shape) >= 2 else None
        elif node.kind in ("conv", "conv_transpose"):
            chan[i] = shape[1] if len(shape) >= 2 else None
        elif node.kind in ("linear", "embedding"):
            x_shape = nodes[node.inputs[0]].shape if node.inputs else None
            width = x_shape[-1] if node.kind == "linear" and x_shape else None
            if src is not None and width is not None and width != src and src in shape[1:]:
                mixing.add(i)  # across positions: the channels stay where they were
                chan[i] = src
            else:
                chan[i] = shape[-1] if shape else None
        elif src is not None and len(shape) >= 2 and src in (shape[1], shape[-1]):
            chan[i] = src
        elif (src is not None and len(shape) >= 3 and node.kind in ("passthrough", "cat")
              and shape[-1] % src == 0 and shape[-1] // src > 1
              and len(nodes[node.inputs[0]].shape or ()) >= 3
              and (node.kind == "passthrough" or _slices_of_one(nodes, node))):
            merges[i] = shape[-1] // src  # k positions' channels side by side
            chan[i] = shape[-1]
    return frozenset(mixing), merges


def _broadcast_inputs(graph: LayerGraph) -> dict[tuple[int, int], float]:
    """(node, slot) -> k for an add's or a product's input broadcast over k of its output's
    entries per example (a time embedding added at every position, a squeeze-excitation's
    gate): its gradient is the sum of theirs. Inputs of the example's own, not parameters
    (their sum is the owner's, _owner_gradients) or constants."""
    nodes = graph.nodes
    found: dict[tuple[int, int], float] = {}
    for node in nodes:
        if node.kind not in ("add", "mul") or not node.shape or len(node.inputs) < 2:
            continue
        for slot, p in enumerate(node.inputs):
            src = nodes[p]
            shape = src.shape
            if (not shape or len(shape) != len(node.shape) or shape[0] != node.shape[0]
                    or src.numel_per_example >= node.numel_per_example
                    or _view_root(nodes, p).kind in SOURCE_KINDS - {"input"}):
                continue
            found[(node.index, slot)] = node.numel_per_example / max(src.numel_per_example, 1)
    return found


# views, pools and resizes: each input entry's gradient is the sum of its copies' (an expand,
# a resize) or of its window's, so each channel's sum is kept (a BatchNorm behind them still
# centres), and a parameter read through them is not summed over their size again (a position
# table resized to the input, DINO's interpolate_pos_encoding, came out 0.3 high)
_SUM_KEEPING = frozenset({"passthrough", "pool", "upsample"})


def _reached(nodes: Sequence[GraphNode], contrib: list[list[tuple[int, float]]], i: int,
             size: int | None = None) -> int:
    """The most entries per example a parameter's value reaches in one read: its consumers'
    size, and through views of it (of its ``size``) the size of a
    sum or product it is broadcast in (``self.bias.view(1, 1, 1, -1)`` or ``w[:, None, None]``
    added at every position; not a class token's expand concatenated in front of the patches,
    which reaches one position)."""
    through_view = size is not None
    size = size if size is not None else nodes[i].numel_per_example
    most = 1
    for c, _ in contrib[i]:
        node = nodes[c]
        if node.kind == "passthrough" and node.numel_per_example == size and contrib[c]:
            most = max(most, _reached(nodes, contrib, c, size))
        elif node.kind in _SUM_KEEPING or (through_view and node.kind not in ("add", "mul")):
            most = max(most, size)  # summed by the op's own backward, or read once
        else:
            most = max(most, node.numel_per_example)
    return most


def _view_root(nodes: Sequence[GraphNode], i: int) -> GraphNode:
    """The tensor a chain of views starts from."""
    while nodes[i].kind == "passthrough" and nodes[i].inputs:
        i = nodes[i].inputs[0]
    return nodes[i]


def _slices_of_one(nodes: Sequence[GraphNode], cat: GraphNode) -> bool:
    """A concat whose inputs are all views of one tensor (strided slices: space-to-depth), not
    of different tensors whose channels it puts side by side (a U-Net's skip and stream)."""
    return len({_view_root(nodes, i).index for i in cat.inputs}) == 1


def _backward(graph: LayerGraph, log_gains: list[tuple[float, ...]],
              skips: dict[int, CoherentSkip],
              moments: list[Moments], entries: list[OpEntry], coherent_tokens: float = 0.0,
              attention: frozenset[int] = frozenset(),
              masks: dict[int, tuple[int, float]] | None = None,
              ) -> tuple[list[float], list[list[tuple[int, float]]], list[float]]:
    """Reverse sweep: log r per node (natural log of the mean squared gradient per entry),
    per node its consumers' contributions, and log s, the part of r that is the same at every
    position (a global average pool hands every position the same gradient; a weight layer
    then sums it coherently against its inputs' mean, see _call_grad_sq).
    ``coherent_tokens`` c scales what attention's Q/K receive through the softmax Jacobian by
    1 - c (see _token_coherence_range). ``masks``: ReLUs whose gradient from one consumer
    (the next block's identity) keeps ρ, not P (rectified_streams.consecutive_masks)."""
    nodes = graph.nodes
    n = len(nodes)
    log_r = [NEG_INF] * n
    log_r[graph.output] = 0.0  # loss <g, y> with g ~ N(0, I): r = 1 at the primary output
    # log_q: the part of r shared by all units (the gradient's mean across units, squared):
    # random-level (r / units) except where a residual stream makes it coherent (coherence.py)
    log_q = [NEG_INF] * n
    log_q[graph.output] = -math.log(max(nodes[graph.output].numel_per_example, 1))
    log_s = [NEG_INF] * n
    shrink = math.log(max(1.0 - coherent_tokens, 1e-30))
    contrib: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    floor = homogeneous_floor(graph, moments)
    mixing, merges = _position_mixing(graph)
    values = _value_matmuls(graph)
    broadcast = _broadcast_inputs(graph)
    log = math.log
    for c in range(n - 1, -1, -1):
        rc = log_r[c]
        if rc == NEG_INF:
            continue
        if c in floor and floor[c][0] > rc:  # Euler: the part along the tensor itself
            rc = log_r[c] = floor[c][0]
            log_q[c] = min(max(log_q[c], floor[c][1]), rc)
        node = nodes[c]
        entry = entries[c]
        keeps_q = entry.keeps_unit_share
        skip = skips.get(c)
        through_softmax = _softmax_slots(node) if c in attention else ()
        gains = log_gains[c]
        if masks and c in masks:
            gains = _kept_along_identity(gains, masks[c], contrib[c], rc)
        qc, sc = log_q[c], log_s[c]
        pools = entry.pools_positions
        coherence = entry.position_coherence  # what of log s passes (op_table)
        if values and c in values:  # probabilities @ values: an average over the keys
            coherence, pools = matmul_values, True
        if c in mixing:
            coherence = None
        merged = merges.get(c)
        for slot, p in enumerate(node.inputs):
            g = gains[slot] if slot < len(gains) else 0.0
            if g == NEG_INF:
                continue
            if slot in through_softmax:
                g += shrink
            r = rc + g
            if coherence is None or sc == NEG_INF and not pools:
                alike = NEG_INF  # nothing position-coherent arrives
            else:
                alike = coherence(node, nodes[p], r, sc, g, moments)
                if merged and alike != NEG_INF:
                    alike -= log(merged)
                if alike > r:  # a mean over positions (attention's values) whose gain
                    r = alike  # holds only the part that differs by position
            spread = broadcast.get((c, slot)) if broadcast else None
            if spread is not None:  # summed over the k entries it reaches: k (r - a) + k² a
                r = logaddexp(r + log(spread), alike + log(spread * (spread - 1.0)))
                alike = alike + 2 * log(spread) if alike != NEG_INF else NEG_INF
            q = qc + g if keeps_q else r - log(nodes[p].numel_per_example)  # >= 1
            if skip is not None and p == skip.skip:
                extra = qc + g + log(skip.gain)
                r, q = logaddexp(r, extra), logaddexp(q, extra)
            contrib[p].append((c, r))
            rp = log_r[p] = r if log_r[p] == NEG_INF else logaddexp(log_r[p], r)
            if log_q[p] != NEG_INF:
                q = logaddexp(log_q[p], q)
            log_q[p] = rp if rp < q else q  # min(q, rp), without the call
            if alike == NEG_INF:
                continue  # (log_s[p] <= log_r[p] already)
            same = logaddexp(log_s[p], alike)
            log_s[p] = rp if rp < same else same
    return log_r, contrib, log_s


def _kept_along_identity(gains: tuple[float, ...], mask: tuple[int, float],
                         arrived: list[tuple[int, float]], rc: float) -> tuple[float, ...]:
    """A ReLU's gain when the share of its gradient that came from ``mask``'s consumer keeps
    exp(log ratio) times more than the rest."""
    consumer, log_ratio = mask
    part = NEG_INF
    for c, r in arrived:
        if c == consumer:
            part = logaddexp(part, r)
    if part == NEG_INF or not gains or gains[0] == NEG_INF:
        return gains
    share = min(math.exp(part - rc), 1.0)
    return (gains[0] + math.log1p(math.expm1(log_ratio) * share), *gains[1:])


# Token coherence c: how alike the tokens' values are (their shared part's share of P_v). The
# softmax Jacobian subtracts the mean over keys, so Q and K only see the (1 - c) that differs
# between tokens; c is not known statically (near-uniform attention at init makes later layers'
# tokens alike), so Q/K layers report the range over c in [0, TOKEN_COHERENCE]: 0.99 spans the
# ~1.3 decades measured on attention-only stacks, whose tokens become nearly identical.
TOKEN_COHERENCE = 0.99


def _attention_softmaxes(graph: LayerGraph) -> frozenset[int]:
    """sdpa nodes, and softmax nodes whose probabilities weight values (feed a matmul, maybe
    through dropout/views): not a classifier's output softmax."""
    if graph.ops().isdisjoint(("sdpa", "softmax")):
        return frozenset()
    users = graph.consumers()
    found = set()
    for node in graph.nodes:
        if node.op == "sdpa":
            found.add(node.index)
        elif node.op == "softmax":
            stack = list(users[node.index])
            while stack:
                c = graph.nodes[stack.pop()]
                if c.op == "matmul":
                    found.add(node.index)
                    break
                if c.kind == "passthrough":
                    stack.extend(users[c.index])
    return frozenset(found)


def _value_matmuls(graph: LayerGraph) -> frozenset[int]:
    """Matmuls whose left factor is a softmax's output (through dropout and views): attention
    written out, probabilities @ values. Not where the attention's output is normalized
    before it joins the stream (post-norm, Swin V2): the estimate's forward takes the tokens
    as independent, which makes that output too small where they are alike (0.04 where 0.11
    is measured) and the norm's gain too large, and the part of the gradient alike at every
    query would carry that error down the stack, compounding per block."""
    if "softmax" not in graph.ops() or "matmul" not in graph.ops():
        return frozenset()
    nodes = graph.nodes
    users = graph.consumers()
    found = set()
    for node in nodes:
        if node.op != "matmul" or len(node.inputs) < 2:
            continue
        if (nodes[graph.carried_from(node.inputs[0])].op == "softmax"
                and not _normalized_after(nodes, users, node.index)):
            found.add(node.index)
    return frozenset(found)


def _branch_normalized(graph: LayerGraph) -> frozenset[int]:
    """Attention averages (sdpa, probabilities @ values) with a measured token coherence
    whose output is normalized before it joins the stream (Swin V2's res-post-norm): their
    forward takes the tokens as independent. With the measured coherence the output's mean
    square is right (0.11, where 0.04 is estimated without), but the norm then divides the
    branch's backward gain by it while the backward, which does not carry how alike the
    gradient is across queries, passes only Σp² of it through the average: on Swin V2 the
    gradient then grows 0.05 decades per block too slowly towards the input (and without the
    coherence, 0.05 too fast, where the two errors cancel over a stage)."""
    if graph.ops().isdisjoint(("sdpa", "matmul")):
        return frozenset()
    nodes = graph.nodes
    users = graph.consumers()
    return frozenset(n.index for n in nodes
                     if n.op in ("sdpa", "matmul") and n.attrs.get("coherence") is not None
                     and _normalized_after(nodes, users, n.index))


def _normalized_after(nodes: Sequence[GraphNode], users: Any, i: int) -> bool:
    """A norm on the way from node ``i`` (through views, scales and Linears) before any
    other op: the attention's output projection, then its post-norm."""
    for _ in range(16):
        after = users[i]
        if len(after) != 1:
            return False
        i = after[0]
        kind = nodes[i].kind
        if kind == "norm":
            return True
        if kind not in ("passthrough", "scale", "linear"):
            return False
    return False


def _softmax_slots(node: GraphNode) -> tuple[int, ...]:
    """The inputs of a node whose gradient passes through an attention softmax's Jacobian."""
    if node.op == "softmax":
        return (0,)
    if node.op == "sdpa":
        return (0, 1)
    return ()


def _token_coherence_range(graph: LayerGraph, entries: list[OpEntry], moments: list[Moments],
                           log_gains: list[tuple[float, ...]], skips: dict[int, CoherentSkip],
                           layers: tuple[LayerEstimate, ...], paths: list[PathState],
                           spread: dict[int, float], centred: set[int], attention: frozenset[int],
                           weight_fix: dict[int, float], masks: dict[int, tuple[int, float]]
                           ) -> tuple[LayerEstimate, ...]:
    """Add ``range`` (log10 relative at c = TOKEN_COHERENCE .. at c = 0) to the layers whose
    estimate depends on token coherence; the point estimate stays the c = 0 one."""
    log_r, _, log_s = _backward(graph, log_gains, skips, moments, entries, TOKEN_COHERENCE,
                                attention, masks)
    grads = _weight_grads(graph, moments, log_r, centred, entries, log_s, weight_fix)
    calls, uses = _call_sites(graph)
    raw = _owner_gradients(graph, moments, log_r, spread, grads, centred, log_s, calls, uses,
                           weight_fix)
    top = _top_gradient(raw)  # log10_relative as _layer_estimates has it, without the rows
    coherent = {owner.name: None if g == NEG_INF else 0.5 * (g - top) / LN10
                for owner, g, _ in raw}
    out = []
    for le in layers:
        other = coherent.get(le.module)
        if (other is not None and le.log10_relative is not None
                and abs(other - le.log10_relative) > 0.05):
            lo, hi = sorted((other, le.log10_relative))
            # dataclasses.replace, without its per-field __init__
            le = LayerEstimate.row({**vars(le), "range": (round(lo, 3), round(hi, 3))})
        out.append(le)
    return tuple(out)


def _grad_sq(node: GraphNode, owner: ModuleInfo, x: Moments, lr: float,
             ls: float = NEG_INF) -> float:
    """Natural log of the mean squared per-entry weight gradient contributed by one call."""
    out_proj = node.kind == "attention" and owner.name != node.module
    # the call's own view of the weight first: GPT-2's Conv1D stores W as (in, out)
    main = (None if out_proj else node.weight) or owner.main
    return _call_grad_sq(node, main, out_proj, x, lr, ls)


def _call_grad_sq(node: GraphNode, main: ParamStats | None, out_proj: bool, x: Moments,
                  lr: float, ls: float = NEG_INF) -> float:
    """The node's entry's weight-gradient rule (op_table), where a gradient and a weight are."""
    if lr == NEG_INF or main is None:
        return NEG_INF
    return entry_of(node).weight_grad(node, main, out_proj, x, lr, ls)


# Positions a global pool must average before the missing spatial correlation shows: measured
# errors for a BatchNorm γ right before one, 2x2: 0.01 decades, 8x8: 0.66, 32x32: 1.24.
POOLED_POSITIONS = 16


NORM_BEFORE_POOL = "norm-before-pool"  # a norm's γ summed over a global pool's positions
CLIPPED_TAIL = "clipped-tail"  # a γ a later norm divides out, but for what a clip keeps


def _norms_before_global_pool(graph: LayerGraph) -> set[int]:
    """Normalizations whose whole output goes to a global average pool (of at least
    POOLED_POSITIONS positions) through activations and views only. Their γ's gradient sums
    δ_p x̂_p over the positions of one example, and below a global pool δ is alike at every
    position while x̂ is correlated between neighbouring positions (overlapping receptive
    fields); the moments carry no spatial correlation, so the estimate runs up to ~1.3 decades
    low there (bench/results/accuracy.md): confidence low. Only the norm's own parameters:
    what reaches the layers before it passes the norm's backward, which removes that part."""
    if "norm" not in graph.kinds():
        return set()
    nodes = graph.nodes
    users = graph.consumers()
    out: set[int] = set()
    for node in nodes:
        if node.kind != "norm" or not node.shape or len(node.shape) < 3:
            continue
        channels = node.shape[1]
        stack, seen, pooled = list(users[node.index]), set(), False
        while stack:
            c = nodes[stack.pop()]
            if c.index in seen:
                continue
            seen.add(c.index)
            if (c.numel_per_example == channels  # the entry last: it is a call
                    and node.numel_per_example >= POOLED_POSITIONS * channels
                    and entry_of(c).pools_positions):
                pooled = True
            elif c.kind in ("elementwise", "passthrough"):
                stack.extend(users[c.index])
            else:  # another use: its gradient is not the pool's alone
                pooled = False
                break
        if pooled:
            out.add(node.index)
    return out


def _batch_centred(graph: LayerGraph) -> set[int]:
    """Weight layers whose output feeds only BatchNorm (through views, pools and resizes, which
    keep each channel's sum of the gradient, and concatenations of channels, DenseNet's: each
    channel still reaches one norm's channel). In training,
    BatchNorm's input gradient sums to zero over the batch, so the weight gradient
    sum_b delta_b x_b^T sees only the input's spread around its batch mean (P - S), not P:
    behind a sigmoid (mean 0.5) that is ~7x less in mean square."""
    if "batch_norm" not in graph.ops():
        return set()
    nodes = graph.nodes
    users = graph.consumers()
    out: set[int] = set()
    for node in nodes:
        if node.kind not in AFFINE_KINDS:
            continue
        stack, ok = [node.index], True
        while stack and ok:
            us = users[stack.pop()]
            ok = bool(us)
            for c in us:
                if nodes[c].kind in _SUM_KEEPING or _channel_cat(nodes[c]):
                    stack.append(c)
                elif nodes[c].op != "batch_norm":
                    ok = False
        if ok:
            out.add(node.index)
    return out


def _channel_cat(node: GraphNode) -> bool:
    """A concatenation along dim 1 (not a stack): each input channel is an output channel."""
    rank = len(node.shape or ())
    return (node.kind == "cat" and rank >= 3 and not node.attrs.get("stack")
            and node.attrs.get("dim") in (1, 1 - rank))


def _centred(x: Moments) -> Moments:
    return Moments(0.0, max(x.second - x.shared, 0.0), 0.0)


def _negative_part(graph: LayerGraph, i: int, moments: list[Moments]) -> Moments:
    """PReLU's slope sees only its negative inputs: E[x^2; x < 0] as the second moment, taken
    through the activation that produced x when there is one (exactly 0 behind ReLU, sigmoid,
    softplus, whose Gaussian moments alone would not say so)."""
    node = graph.nodes[i]
    while node.kind == "passthrough" and node.inputs:
        node = graph.nodes[node.inputs[0]]
    x = moments[node.index]
    name, attrs = "identity", {}
    if node.kind == "elementwise" and node.inputs:
        name, attrs, x = node.op, node.attrs, moments[node.inputs[0]]
    return Moments(x.mean, negative_second_moment(name, attrs, x.mean, x.var), x.shared)


def _call_sites(graph: LayerGraph) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Per parameter owner, the nodes that call it (a module call, a functional call with its
    tensors) and, per parameter name, the nodes that read it directly in forward (get_attr)."""
    nodes = graph.nodes
    calls: dict[str, list[int]] = {}
    uses: dict[str, list[int]] = {}  # parameters read directly in forward (get_attr)
    # a tracer may name a tied weight after any module sharing it (export: "lm_head")
    canonical = {alias: o.name for o in graph.owners for alias in o.aliases}
    for node in nodes:
        if not node.params:
            continue
        if node.op == "param":
            module, _, leaf = node.params[0].name.rpartition(".")
            name = f"{canonical.get(module, module)}.{leaf}" if module else leaf
            uses.setdefault(name, []).append(node.index)
        elif node.module is not None:
            name = canonical.get(node.module, node.module)
            found = calls.get(name)
            if found is None:
                calls[name] = [node.index]
            else:
                found.append(node.index)
            if node.kind == "attention":
                calls.setdefault(name + ".out_proj", []).append(node.index)
    return calls, uses


def _owner_gradients(graph: LayerGraph, moments: list[Moments], log_r: list[float],
                     spread: dict[int, float], grads: list[float], centred: set[int],
                     log_s: list[float] | None, calls: dict[str, list[int]],
                     uses: dict[str, list[int]], fix: dict[int, float] | None = None
                     ) -> list[tuple[ModuleInfo, float, int | None]]:
    """Per owner: the natural log of its mean squared weight gradient summed over its calls
    and direct reads, and the site nearest the loss (the one with the largest r)."""
    nodes = graph.nodes
    raw: list[tuple[ModuleInfo, float, int | None]] = []
    for owner in graph.owners:
        sites = calls.get(owner.name, [])
        total = NEG_INF
        site = None
        for i in sites:
            node = nodes[i]
            if grads[i] > NEG_INF and node.kind != "attention" and node.weight:
                total = logaddexp(total, grads[i])  # _grad_sq's value, as _weight_grads has it
                if site is None or log_r[i] > log_r[site]:
                    site = i
                continue
            x = moments[node.inputs[0]] if node.inputs else Moments(0.0, 1.0, 0.0)
            if node.kind == "elementwise" and node.inputs:  # PReLU's slope
                x = _negative_part(graph, node.inputs[0], moments)
            elif i in centred:
                x = _centred(x)
            total = logaddexp(total, _grad_sq(node, owner, x, log_r[i],
                                               log_s[i] if log_s else NEG_INF)
                              + (fix.get(i, 0.0) if fix else 0.0))
            if site is None or log_r[i] > log_r[site]:
                site = i
        main = owner.main
        if main is not None and main.name in uses:
            for i in uses[main.name]:  # each entry sums the gradient over the k positions
                k = max(spread[i], 1.0)  # it reaches: k (r - s) + k² s, s alike at all of them
                total = logaddexp(total, log_r[i] + math.log(k))
                if log_s and k > 1.0 and log_s[i] > NEG_INF:
                    total = logaddexp(total, log_s[i] + math.log(k * (k - 1.0)))
                if site is None or log_r[i] > log_r[site]:
                    site = i
        raw.append((owner, total, site))

    return raw


# the row of an owner no call site of which is in the graph: no bound, nothing on its path
_NO_PATH = PathState(0.0, 0, None, 0, 0, None, None, NEG_INF)


def _top_gradient(raw: list[tuple[ModuleInfo, float, int | None]]) -> float:
    """The largest trainable owner's gradient (natural log): what log10_relative is relative
    to."""
    return max((g for o, g, _ in raw if g > NEG_INF and not o.frozen), default=0.0)


def _why_low(low: str | None, nodes: Sequence[GraphNode], site: int | None,
             pooled: set[int], tails: frozenset[int] | set[int] = frozenset()) -> str | None:
    """The reason code of a low confidence: from the path to the loss, or the layer's own."""
    if low or site is None:
        return low
    if gated_cell(nodes[site]):
        return STACKED_RECURRENT
    if site in tails:
        return CLIPPED_TAIL
    return NORM_BEFORE_POOL if site in pooled else None


def _update_ratio(g: float, site: GraphNode | None) -> float | None:
    """log10 weight-gradient RMS / weight RMS (``g``: the owner's mean square gradient, ln)."""
    w = site.main if site is not None else None
    if g == NEG_INF or w is None or w.mean_sq <= 0:
        return None
    return 0.5 * (g - math.log(w.mean_sq)) / LN10


def _branch_name(nodes: Sequence[GraphNode], mul: GraphNode) -> str:
    """Where a side branch joins the main path: the module holding the branch's last layer
    (torchvision's ``SqueezeExcitation``; for attention's scores, the query's), else the line
    that multiplies (or the softmax)."""
    small = (mul.inputs[0] if mul.op == "sdpa" and mul.inputs else
             min(mul.inputs, key=lambda i: nodes[i].numel_per_example, default=None))
    for _ in range(8):
        if small is None:
            break
        node = nodes[small]
        if node.module and node.params:
            return node.module.rpartition(".")[0] or node.module
        small = node.inputs[0] if len(node.inputs) == 1 else None
    loc = mul.anchor or mul.location
    return f"{mul.label} at {loc.file}:{loc.line}" if loc else mul.label


def _layer_estimates(graph: LayerGraph, moments: list[Moments], log_r: list[float],
                     paths: list[PathState], spread: dict[int, float], grads: list[float],
                     centred: set[int], log_s: list[float] | None = None,
                     fix: dict[int, float] | None = None,
                     tails: frozenset[int] | set[int] = frozenset()) -> tuple[LayerEstimate, ...]:
    """One LayerEstimate per parameter owner; ``grads``: _weight_grads (natural log); ``fix``:
    position_profiles' corrections of the other calls' weight gradients; ``tails``: norms
    whose γ's gradient rests on a clip's tail (scaled_away)."""
    nodes = graph.nodes
    calls, uses = _call_sites(graph)
    nearest = max((i for ids in calls.values() for i in ids if log_r[i] > NEG_INF), default=None)
    ref_signal = log_r[nearest] if nearest is not None else 0.0

    raw = _owner_gradients(graph, moments, log_r, spread, grads, centred, log_s, calls, uses,
                           fix)
    top = _top_gradient(raw)
    pooled_norms = _norms_before_global_pool(graph)
    out: list[LayerEstimate] = []
    for owner, g, site in raw:
        zero = g == NEG_INF
        st = paths[site] if site is not None else _NO_PATH
        _, _, _, saturating, depth, gate, low, bound, _, _, branch = st  # slow attributes, at once
        att = fac = None
        largest = 0.0
        if site is not None and not zero:
            att, fac, largest = st.close(grads[site] / LN10)  # a non-weight layer closes none
        out.append(LayerEstimate.row({
            "module": owner.name, "type": owner.type, "numel": owner.numel,
            "location": owner.location,
            "log10_grad": None if zero else 0.5 * g / LN10,
            "log10_relative": None if zero else 0.5 * (g - top) / LN10,
            "log10_signal": None if zero or site is None
            else 0.5 * (log_r[site] - ref_signal) / LN10,
            "log10_attenuation": att,
            "log10_bound": None if bound == NEG_INF else bound,
            "saturating": saturating,
            "depth": depth,
            "factors": fac or 0,
            "gate": gate,
            "frozen": owner.frozen,
            "aliases": owner.aliases,
            "zero": zero,
            "confidence": "low" if (why := _why_low(low, nodes, site, pooled_norms, tails))
            else "high",
            "low_reason": why,
            "anchor": owner.anchor, "range": None, "largest_factor": largest,
            "side_branch": None if branch is None else _branch_name(nodes, nodes[branch]),
            "log10_update": _update_ratio(g, nodes[site] if site is not None else None),
        }))
    return tuple(out)
