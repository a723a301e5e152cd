"""The op table: for every IR op kind, what it does to the gradient, in one entry.

An entry holds the op's forward moments and local backward gains (``forward``, in
gradlint.estimate.op_forward), the rule for the gradient of the weights it owns
(``weight_grad``), and how it treats the part of a gradient that is the same at every position
(``position_coherence``, ``pools_positions``, ``keeps_unit_share``, ``reads_shared``). The
sweeps (gradlint.estimate.sweeps) look entries up instead of branching on kinds.

Entries are keyed by kind (gradlint.core.op_kinds.KIND_OF maps each op key to one), with a few
op keys that share their kind's forward but differ elsewhere (``batch_norm``,
``adaptive_avg_pool``) keyed by op. Adding an op: docs/adding-an-op.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gradlint.core.graph import GraphNode, LayerGraph, ParamStats
from gradlint.core.op_kinds import HOMOGENEOUS
from gradlint.estimate import op_forward as fw
from gradlint.estimate.activations import gaussian_slope
from gradlint.estimate.recurrent import analyse_cell
from gradlint.estimate.tensor_state import NEG_INF, Moments, Step, logaddexp

# (node, its weight as the call sees it, out_proj of attention?, input moments, log r, log s)
# -> natural log of the mean squared per-entry weight gradient
WeightGrad = Callable[[GraphNode, ParamStats, bool, Moments, float, float], float]
# (node, the input it passes to, log r and log s reaching the input from it, the log gain,
# moments) -> log of the part of that gradient that is the same at every position
Coherence = Callable[[GraphNode, GraphNode, float, float, float, list[Moments]], float]
# (node, moments) -> is the node's output a positively 1-homogeneous function of its first input,
# f(a x) = a f(x) for a > 0, at these moments (gradlint.estimate.residual_coherence)
Homogeneity = Callable[[GraphNode, list[Moments]], bool]
# (node, one of its inputs, a dimension of the node's output) -> does the gradient at each
# position along that dimension reach only the same position of the input
KeepsPositions = Callable[[GraphNode, GraphNode, int], bool]

# ReLU-like activations are homogeneous only far from their bend: a pre-activation second
# moment this large puts all but a few percent of the inputs there
FAR_FROM_BEND = 1e4
RELU_LIKE = frozenset({"gelu", "silu", "elu", "celu", "selu", "mish", "softplus"})
BIAS_SHARE = 1e-3  # a bias whose energy is below this share of the output's is negligible


def per_position_grad(node: GraphNode, main: ParamStats, out_proj: bool, x: Moments,
                      lr: float, ls: float) -> float:
    """A weight applied at m positions: the sum over them of delta_p x_p has m r P, plus
    m(m-1) s M^2 where the gradient is the same at every position (s) and the inputs share a
    mean M (post-ReLU, post-sigmoid)."""
    width = main.shape[0] if main.shape else 1
    m = node.numel_per_example / max(width, 1)
    p_in = x.second
    if p_in <= 0 or m <= 0:
        return NEG_INF
    shared = fw.unit_mean_square(x)
    coherent = ls + math.log(m * (m - 1) * shared) if m > 1 and shared > 0 else NEG_INF
    return logaddexp(lr + math.log(m * p_in), coherent)


def _embedding_grad(node: GraphNode, main: ParamStats, out_proj: bool, x: Moments,
                    lr: float, ls: float) -> float:
    """Each row gets the gradients of the tokens that pick it: tokens / rows of them."""
    tokens = node.numel_per_example / max(main.shape[-1], 1)
    return lr + math.log(max(tokens, 1e-30) / max(main.shape[0], 1))


def _norm_grad(node: GraphNode, main: ParamStats, out_proj: bool, x: Moments,
               lr: float, ls: float) -> float:
    """γ sums delta x̂ over the m positions it is shared by (x̂'s mean square: var / (var +
    eps)), plus m(m-1) s S where the gradient is the same at every position (s: below a mean
    pool) and x̂ keeps a per-unit mean (S) they all share, as a weight applied at m positions
    does (``per_position_grad``)."""
    var, _, share = fw.norm_scale(node, x)
    m = node.numel_per_example / max(main.numel, 1)
    spread = lr + math.log(max(m * share, 1e-30))
    shared = fw.normalized_shared(node, x, var, share) if ls != NEG_INF and m > 1 else 0.0
    if not shared > 0:  # also NaN: nothing computed S
        return spread
    return logaddexp(spread, ls + math.log(m * (m - 1) * shared))


def _attention_grad(node: GraphNode, main: ParamStats, out_proj: bool, x: Moments,
                    lr: float, ls: float) -> float:
    gin, gout, avg, tokens = fw.attention_factors(node)
    if out_proj:  # out_proj: sees the averaged values
        return lr + math.log(max(tokens * gin * avg * x.second, 1e-300))
    return lr + math.log(max(tokens * gout * avg * x.second, 1e-300))


def _recurrent_grad(node: GraphNode, main: ParamStats, out_proj: bool, x: Moments,
                    lr: float, ls: float) -> float:
    """W_ih sums over T steps of (gate gradient x input)."""
    cell = analyse_cell(node, x.second)
    return lr + math.log(max(cell.steps * cell.pre_gain * x.second, 1e-300))


def _pooled(node: GraphNode, src: GraphNode, r: float, s: float, g: float,
            moments: list[Moments]) -> float:
    """Below a mean over positions all of the gradient is the same at every position."""
    shape = src.shape or ()
    pooled = node.numel_per_example
    channels = {shape[1], shape[-1]} if len(shape) >= 3 else set()
    return r if pooled in channels and src.numel_per_example > pooled else NEG_INF


def _same_everywhere(node: GraphNode, src: GraphNode, r: float, s: float, g: float,
                     moments: list[Moments]) -> float:
    """An op that acts alike at every position keeps the coherent part."""
    return NEG_INF if s == NEG_INF else s + g


def _per_group_mean(node: GraphNode, src: GraphNode, r: float, s: float, g: float,
                    moments: list[Moments]) -> float:
    """GroupNorm's backward subtracts each group's mean over its channels and positions: of a
    gradient alike at every position (one value per channel) it removes the group's mean over
    its channels, ~groups/channels of it; InstanceNorm (a group per channel) removes it all."""
    if s == NEG_INF or not node.shape or len(node.shape) < 3:
        return NEG_INF
    channels = node.shape[1]
    groups = channels if node.op == "instance_norm" else node.attrs.get("groups", 1)
    kept = 1.0 - groups / max(channels, 1)
    return s + g + math.log(kept) if kept > 0 else NEG_INF


def _sum_kept(node: GraphNode, src: GraphNode, r: float, s: float, g: float,
              moments: list[Moments]) -> float:
    """A local pool or a resize hands each output's gradient to its window's inputs (a max
    pool to one of them) and keeps the sum: what was alike at every output is, on average
    over the inputs, n_out / n_in of it at each."""
    if s == NEG_INF:
        return NEG_INF
    ratio = node.numel_per_example / max(src.numel_per_example, 1)
    return s + 2 * math.log(ratio) if ratio > 0 else NEG_INF


def _strided(node: GraphNode, src: GraphNode, r: float, s: float, g: float,
             moments: list[Moments]) -> float:
    """A conv with stride: an input position receives the taps of its residue class (mod the
    stride) only, so what was alike at every output differs between the prod(stride) classes,
    and only 1/prod(stride) of the gain stays alike (timm's TinyViT, a 3x3 stride-2 depthwise
    conv and its GELU: measured 0.51 -> 0.07 of the gradient alike at every position)."""
    if s == NEG_INF:
        return NEG_INF
    stride = node.attrs.get("stride", 1)
    step = math.prod(stride) if isinstance(stride, (tuple, list)) else stride
    return s + g - math.log(max(step, 1))


def _slope_weighted(node: GraphNode, src: GraphNode, r: float, s: float, g: float,
                    moments: list[Moments]) -> float:
    """An activation's slope varies by position: only its mean slope keeps the coherent part."""
    if s == NEG_INF:
        return NEG_INF
    mean, second, _ = moments[src.index]
    slope = abs(gaussian_slope(node.op, node.attrs, mean, max(second - mean * mean, 0.0)))
    return s + 2 * math.log(slope) if slope > 0 else NEG_INF


def _times_the_other(node: GraphNode, src: GraphNode, r: float, s: float, g: float,
                     moments: list[Moments]) -> float:
    """x * y passes to x the part of the gradient alike everywhere times y's part alike
    everywhere (its per-unit means: a gain, a gate, a norm's per-position scale keep it; a
    zero-mean signal, as SwiGLU's other half, drops it)."""
    if s == NEG_INF or len(node.inputs) != 2:
        return NEG_INF
    other = node.inputs[1] if src.index == node.inputs[0] else node.inputs[0]
    shared = fw.unit_mean_square(moments[other])
    return s + math.log(shared) if shared > 0 else NEG_INF


def _averaged_values(node: GraphNode, src: GraphNode, r: float, s: float, g: float,
                     moments: list[Moments]) -> float:
    """Attention's values: key j receives sum_i p_ij g_i, whose mean over the keys is
    (1/n_k) sum_i g_i whatever the weights (each row sums to 1): n_q / n_k^2 of r_out is alike
    at every key, and (n_q / n_k)^2 of what was alike at every query. The values' gain holds
    only the first, so the second may exceed it: the sweep then raises r to it (a gradient
    alike at every query, below a mean pool, reaches every key whole: measured on timm's
    NesT, whose qkv weights it made 0.8 decades too low)."""
    if len(node.inputs) < 3 or src.index != node.inputs[2]:
        return NEG_INF
    return _values_alike(node, src, r, s, g)


def matmul_values(node: GraphNode, src: GraphNode, r: float, s: float, g: float,
                  moments: list[Moments]) -> float:
    """``_averaged_values`` for attention written out: probabilities (a softmax's output, the
    left factor) @ values (the right factor), e.g. torchvision's Swin."""
    if len(node.inputs) < 2 or src.index != node.inputs[1]:
        return NEG_INF
    return _values_alike(node, src, r, s, g)


def _values_alike(node: GraphNode, src: GraphNode, r: float, s: float, g: float) -> float:
    if not node.shape:
        return NEG_INF
    shape = src.shape or node.shape
    n_q, n_k = node.shape[-2], shape[-2] if len(shape) >= 2 else node.shape[-2]
    r_out = r - g
    found = r_out + math.log(n_q / (n_k * n_k))
    if s != NEG_INF:
        found = logaddexp(found, s + 2 * math.log(n_q / n_k))
    return found


def _always(node: GraphNode, moments: list[Moments]) -> bool:
    return True


def _without_bias(node: GraphNode, moments: list[Moments]) -> bool:
    """W x + b is homogeneous where b is negligible against the output."""
    b = node.bias
    return b is None or b.mean_sq <= BIAS_SHARE * moments[node.index].second


def _homogeneous_activation(node: GraphNode, moments: list[Moments]) -> bool:
    if not node.inputs:
        return False
    if node.op in HOMOGENEOUS:
        return True
    return node.op in RELU_LIKE and moments[node.inputs[0]].second >= FAR_FROM_BEND


# views that move entries to other positions while keeping the shape (the rest keep positions)
_MOVES = frozenset({"transpose", "permute", "flip", "roll", "movedim", "swapaxes", "swapdims",
                    "t", "rot90", "adjoint", "mT"})


def _same_shape(node: GraphNode, src: GraphNode, dim: int) -> bool:
    """Elementwise: position k of the output reads position k of each same-shaped input."""
    return node.shape is not None and node.shape == src.shape


def _along_leading(node: GraphNode, src: GraphNode, dim: int) -> bool:
    """A layer acting on the last dimension (Linear, LayerNorm, RMSNorm) keeps the others."""
    return (node.shape is not None and src.shape is not None
            and len(node.shape) == len(src.shape) and dim < len(node.shape) - 1
            and node.shape[:-1] == src.shape[:-1])


def _per_position_norm(node: GraphNode, src: GraphNode, dim: int) -> bool:
    """LayerNorm and RMSNorm normalize each position over the last dimension; BatchNorm and
    InstanceNorm each channel (dim 1) over the others."""
    if node.op in ("layer_norm", "rms_norm"):
        return _along_leading(node, src, dim)
    return node.op in ("batch_norm", "instance_norm") and dim == 1 and _same_shape(node, src, dim)


def _identity_view(node: GraphNode, src: GraphNode, dim: int) -> bool:
    """Dropout, identity, casts, masking: the same shape and no move of entries."""
    name = node.label.removeprefix("aten::").removeprefix("torch.").strip(".()")
    return "take" not in node.attrs and name not in _MOVES and _same_shape(node, src, dim)


@dataclass(frozen=True)
class OpEntry:
    """What one op kind does to the gradient.

    ``forward``: output moments and log gains per input; ``weight_grad``: the mean squared
    gradient of a weight the node owns; ``position_coherence``: the part of the gradient that
    is alike at every position, as it reaches an input (None: none survives);
    ``pools_positions``: a mean over positions, which makes all of it alike;
    ``keeps_unit_share``: hands on the gradient's part shared by all units (adds and views;
    elsewhere it drops to random level); ``reads_shared``: turns the batch-shared moment S
    into something else than S (else S is not computed at all); ``homogeneous``: whether the
    output is positively 1-homogeneous in the first input (None: never); ``keeps_positions``:
    whether the gradient at position k along a dimension reaches only position k of an input
    (gradlint.estimate.position_profiles; None: never)."""

    forward: fw.Forward
    weight_grad: WeightGrad = per_position_grad
    position_coherence: Coherence | None = None
    pools_positions: bool = False
    keeps_unit_share: bool = False
    reads_shared: bool = False
    homogeneous: Homogeneity | None = None
    keeps_positions: KeepsPositions | None = None


_NORM = OpEntry(fw.norm, weight_grad=_norm_grad, keeps_positions=_per_position_norm)
# LayerNorm and RMSNorm act alike at every position: what was alike stays alike
_POSITION_NORM = dataclasses.replace(_NORM, position_coherence=_same_everywhere)
_POOL = OpEntry(fw.pool, position_coherence=_sum_kept, homogeneous=_always)

KIND_ENTRIES: dict[str, OpEntry] = {
    "elementwise": OpEntry(fw.elementwise, position_coherence=_slope_weighted,
                           homogeneous=_homogeneous_activation, keeps_positions=_same_shape),
    "linear": OpEntry(fw.linear, position_coherence=_same_everywhere, homogeneous=_without_bias,
                      keeps_positions=_along_leading),
    "conv": OpEntry(fw.conv, position_coherence=_strided, homogeneous=_without_bias),
    "conv_transpose": OpEntry(fw.conv_transpose, homogeneous=_without_bias),
    "input": OpEntry(fw.graph_input),
    "param": OpEntry(fw.param),
    "constant": OpEntry(fw.constant),
    "where": OpEntry(fw.where, keeps_positions=_same_shape),
    "embedding": OpEntry(fw.embedding, weight_grad=_embedding_grad),
    "norm": _NORM,
    "add": OpEntry(fw.add, position_coherence=_same_everywhere, keeps_unit_share=True,
                   keeps_positions=_same_shape),
    "mul": OpEntry(fw.mul, position_coherence=_times_the_other, keeps_positions=_same_shape),
    # x / d for a nearly constant d (a hand-written norm's scale): as a scale by 1 / d
    "div": OpEntry(fw.div, position_coherence=_same_everywhere, keeps_positions=_same_shape),
    "scale": OpEntry(fw.scale, position_coherence=_same_everywhere, homogeneous=_always,
                     keeps_positions=_same_shape),
    # each input receives its slice of the gradient: what is alike at every position stays so
    "cat": OpEntry(fw.cat, position_coherence=_same_everywhere),
    "pool": _POOL,
    "reduce": OpEntry(fw.reduce, position_coherence=_pooled, pools_positions=True,
                      reads_shared=True),
    "softmax": OpEntry(fw.softmax),
    "log_softmax": OpEntry(fw.log_softmax),
    "matmul": OpEntry(fw.matmul),
    "attention": OpEntry(fw.attention, weight_grad=_attention_grad),
    "smooth": OpEntry(fw.smooth),
    "sdpa": OpEntry(fw.sdpa, position_coherence=_averaged_values, pools_positions=True),
    "upsample": OpEntry(fw.upsample, position_coherence=_sum_kept),
    "recurrent": OpEntry(fw.recurrent, weight_grad=_recurrent_grad),
    "opaque": OpEntry(fw.opaque),
    "passthrough": OpEntry(fw.passthrough, position_coherence=_same_everywhere,
                           keeps_unit_share=True, homogeneous=_always,
                           keeps_positions=_identity_view),
}
# op keys that share their kind's forward but not the rest
OP_ENTRIES: dict[str, OpEntry] = {
    # BatchNorm removes S, and acts alike at every position
    "batch_norm": dataclasses.replace(_NORM, position_coherence=_same_everywhere,
                                      reads_shared=True),
    "layer_norm": _POSITION_NORM,
    "group_norm": dataclasses.replace(_NORM, position_coherence=_per_group_mean),
    "instance_norm": _NORM,  # removes each channel's mean over positions: all of it
    "rms_norm": _POSITION_NORM,
    # x / ||x|| (F.normalize, cosine attention): not a norm over positions
    "l2_normalize": OpEntry(fw.l2_normalize, position_coherence=_same_everywhere),
    # a random 0/1 mask: its own moments, no gradient (as any constant)
    "bernoulli": OpEntry(fw.bernoulli),
    # a local average pool averages the fluctuations around S (op_forward._pool): it reads S
    "avg_pool": dataclasses.replace(_POOL, reads_shared=True),
    # a global average pool: a mean over positions
    "adaptive_avg_pool": dataclasses.replace(_POOL, position_coherence=_pooled,
                                             pools_positions=True, reads_shared=True),
}
_PASSTHROUGH = KIND_ENTRIES["passthrough"]


def entry_for(op: str, kind: str) -> OpEntry:
    """The entry of an op key of this kind (a kind without one: passthrough)."""
    found = OP_ENTRIES.get(op)
    if found is None:
        found = KIND_ENTRIES.get(kind, _PASSTHROUGH)
    return found


def entry_of(node: GraphNode) -> OpEntry:
    return entry_for(node.op, node.kind)


def entries_of(nodes: Sequence[GraphNode]) -> list[OpEntry]:
    """Each node's entry, in node order (``entry_for`` inlined: the sweeps ask once per node
    and estimate, and a call per node costs more than the lookups)."""
    by_op, by_kind = OP_ENTRIES.get, KIND_ENTRIES.get
    return [by_op(node.op) or by_kind(node.kind, _PASSTHROUGH) for node in nodes]


def propagate(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
              need_shared: bool = True) -> Step:
    """Moments out of ``node`` and its backward gains, from its inputs' moments (``nodes``:
    the graph's nodes, to read the inputs' shapes); ``need_shared``: whether S is needed (False:
    the activations leave it NaN)."""
    found = OP_ENTRIES.get(node.op)
    if found is None:
        found = KIND_ENTRIES.get(node.kind, _PASSTHROUGH)
    return found.forward(node, ins, nodes, need_shared)


def graph_reads_shared(graph: LayerGraph) -> bool:
    """Does anything read S: a weight applied at many positions (it sums their shared part,
    ``per_position_grad``), or a node that turns S into something else than S (a mean or sum
    over positions, BatchNorm, which removes S, a global average pool)? Everywhere else S only
    flows into S."""
    kinds = graph.kinds()
    if "conv" in kinds or any(
            n.kind == "linear" and n.numel_per_example > int(n.attrs.get("fan_out", 0) or 0)
            for n in graph.nodes):
        return True
    return (any(e.reads_shared for k, e in KIND_ENTRIES.items() if k in kinds)
            or any(OP_ENTRIES[op].reads_shared for op in graph.ops() if op in OP_ENTRIES))
