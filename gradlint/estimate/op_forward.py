"""Forward moments and local backward gains of each op kind: the ``forward`` of the op table's
entries (gradlint.estimate.op_table), one function per kind (docs/design.md).

Each reads its inputs' per-tensor records (gradlint.estimate.tensor_state.Moments) and returns
its output's record and the local backward gain per input, log(r_in / r_out), with r the mean
squared gradient per entry. The gains do not depend on r, so the backward pass is a plain linear
sweep. All share one signature: (node, inputs' moments, the graph's nodes, need_shared).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch

from gradlint.core.graph import GraphNode, ParamStats, carried_from
from gradlint.core.op_kinds import NORM_GATE_RMS
from gradlint.estimate.activations import gaussian_moments
from gradlint.estimate.recurrent import analyse_cell
from gradlint.estimate.tensor_state import (
    NEG_INF,
    NO_INPUT,
    Moments,
    Step,
    log_or_neg_inf,
    make_moments,
    make_step,
    prod,
)

Forward = Callable[[GraphNode, list[Moments], Sequence[GraphNode], bool], Step]
_log = log_or_neg_inf
_NORM_GATE_SQ = NORM_GATE_RMS ** 2  # on the mean square of γ


def elementwise(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
                need_shared: bool) -> Step:
    """An activation: its Gaussian moments (the hot path of a deep stack: kept lean)."""
    mean, second, shared = ins[0] if ins else NO_INPUT  # unpacked: fields are slow attributes
    m2 = mean * mean
    f_mean, f_second, gs, f_shared = gaussian_moments(
        node.op, node.attrs, mean, max(second - m2, 0.0),
        max(shared - m2, 0.0) if need_shared else None)
    return make_step((make_moments((f_mean, f_second, f_shared)),
                      (math.log(gs) if gs > 0 else NEG_INF,), False))


def linear(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
           need_shared: bool) -> Step:
    """y = W x + b: P' = fan_in E[W^2] P + E[b^2]; r_in = fan_out E[W^2] r_out."""
    a = node.attrs
    return _weight_layer(node, ins[0] if ins else NO_INPUT, a["fan_in"], a["fan_out"])


def conv(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
         need_shared: bool) -> Step:
    """Each input entry feeds C_out/groups * k / stride outputs."""
    a = node.attrs
    ksize, stride, groups = prod(a["kernel"]), prod(a["stride"]), a.get("groups", 1)
    return _conv_layer(node, ins, a["in"] // groups * ksize, a["out"] // groups * ksize / stride)


def conv_transpose(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
                   need_shared: bool) -> Step:
    """The transpose of conv: the stride divides the forward fan instead."""
    a = node.attrs
    ksize, stride, groups = prod(a["kernel"]), prod(a["stride"]), a.get("groups", 1)
    return _conv_layer(node, ins, a["in"] // groups * ksize / stride, a["out"] // groups * ksize)


def _conv_layer(node: GraphNode, ins: list[Moments], fan_in: float, back: float) -> Step:
    """A parameter weight's layer, or, for a weight computed in forward (weight
    standardization, a weight norm; its second input), the same with E[W²] from that input's
    moments, and to the weight the gradient each entry sums over the output's positions
    (m r P of the input, as a weight's own gradient)."""
    x = ins[0] if ins else NO_INPUT
    if len(ins) < 2 or node.weight is not None:
        return _weight_layer(node, x, fan_in, back)
    ew2 = ins[1].second
    positions = node.numel_per_example / max(node.attrs["out"], 1)
    seen = x
    if node.attrs.get("centred"):  # rows summing to zero: the input's common mean cancels
        common = x.mean * x.mean
        seen = Moments(0.0, max(x.second - common, 0.0), max(x.shared - common, 0.0))
    return make_step((_affine(seen, fan_in * ew2, None, node.bias),
                      (_log(back * ew2), _log(positions * x.second)), False))


def graph_input(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
                need_shared: bool) -> Step:
    return Step(Moments(0.0, 1.0, 0.0), ())


def param(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
          need_shared: bool) -> Step:
    """A parameter or constant read in forward: its own statistics (a number's square)."""
    p = node.params[0] if node.params else None
    if p is None:
        v = float(node.attrs.get("value", 0.0))
        return Step(Moments(v, v * v, v * v), ())
    return Step(Moments(p.mean, p.mean_sq, p.mean_sq), ())


def constant(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
             need_shared: bool) -> Step:
    """Comparisons, masks (with inputs): no gradient flows back; else a value, as ``param``."""
    if ins:
        return Step(Moments(0.5, 0.5, 0.5), (NEG_INF,) * len(ins))
    return param(node, ins, nodes, need_shared)


def bernoulli(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
              need_shared: bool) -> Step:
    """A 0/1 mask kept with probability p (drop path's ``new_empty(..).bernoulli_(keep)``,
    divided by keep after): mean and mean square p; no gradient flows back."""
    p = float(node.attrs.get("p", 0.5))
    return Step(Moments(p, p, p * p), (NEG_INF,) * len(ins))


def where(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
          need_shared: bool) -> Step:
    """where(cond, a, b): each branch receives the gradient where chosen."""
    n_in = len(ins)
    a = ins[1] if n_in > 1 else Moments(0.0, 1.0, 0.0)
    b = ins[2] if n_in > 2 else a
    out = Moments((a.mean + b.mean) / 2, (a.second + b.second) / 2, (a.shared + b.shared) / 2)
    return Step(out, (NEG_INF,) + (_log(0.5),) * (n_in - 1))


def embedding(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
              need_shared: bool) -> Step:
    """A table lookup: the rows' statistics; no gradient to the indices."""
    w = node.main
    ew2 = w.mean_sq if w else 1.0
    mw = w.mean if w else 0.0
    return Step(Moments(mw, ew2, mw * mw), (NEG_INF,) * len(ins))


def norm(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
         need_shared: bool) -> Step:
    return _norm(node, ins[0] if ins else NO_INPUT)


def add(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
        need_shared: bool) -> Step:
    """sum_i a_i x_i (``node.scales``: a - b is add with scales (1, -1)). Sums over lists, not
    generators: a residual stream has one per block."""
    n_in = len(ins)
    scales = node.scales or (1.0,) * n_in
    terms = [(a, a * a, m) for a, m in zip(scales, ins, strict=False)]
    mean = sum([a * m.mean for a, _, m in terms])
    cross = sum([scales[i] * scales[j] * ins[i].mean * ins[j].mean
                 for i in range(n_in) for j in range(i + 1, n_in)])
    second = sum([a2 * m.second for _, a2, m in terms]) + 2 * cross
    shared = sum([a2 * m.shared for _, a2, m in terms]) + 2 * cross
    return make_step((make_moments((mean, max(second, 0.0), max(shared, 0.0))),
                      tuple([_log(a * a) for a in scales]), False))


def mul(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
        need_shared: bool) -> Step:
    """a * b of independent factors; a parameter factor is a gate (GL106)."""
    n_in = len(ins)
    if n_in < 2:
        return Step(ins[0] if ins else NO_INPUT, (0.0,))
    a, b = ins[0], ins[1]
    gate = any(nodes[i].kind == "param" for i in node.inputs[:2])
    return Step(Moments(a.mean * b.mean, a.second * b.second, a.shared * b.shared),
                (_log(b.second), _log(a.second)) + (NEG_INF,) * (n_in - 2), gate)


def div(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
        need_shared: bool) -> Step:
    """x / d for a nearly constant d (a norm's scale): the gradient to d is neglected."""
    x = ins[0] if ins else NO_INPUT
    if len(ins) < 2:
        return Step(x, (0.0,))
    d = max(ins[1].second, 1e-30)
    return Step(Moments(x.mean / math.sqrt(d), x.second / d, x.shared / d),
                (_log(1.0 / d), NEG_INF) + (NEG_INF,) * (len(ins) - 2))


def scale(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
          need_shared: bool) -> Step:
    x = ins[0] if ins else NO_INPUT
    c = float(node.attrs.get("factor", 1.0))
    return Step(Moments(c * x.mean, c * c * x.second, c * c * x.shared), (_log(c * c),))


def cat(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
        need_shared: bool) -> Step:
    """Concatenation: the entries' moments, weighted by each input's size (one pass over the
    inputs, then a sum per column: a DenseNet concatenates dozens, at every layer)."""
    sizes = [max(nodes[i].numel_per_example, 1) for i in node.inputs]
    tot = float(sum(sizes))
    rows = [(s * mean, s * second, s * shared)
            for s, (mean, second, shared) in zip(sizes, ins, strict=True)]
    means, seconds, shareds = zip(*rows, strict=True)  # columns, summed in order
    return make_step((make_moments((sum(means) / tot, sum(seconds) / tot, sum(shareds) / tot)),
                      (0.0,) * len(ins), False))


def pool(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
         need_shared: bool) -> Step:
    return _pool(node, ins[0] if ins else NO_INPUT,
                 nodes[node.inputs[0]] if node.inputs else None)


def reduce(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
           need_shared: bool) -> Step:
    """A mean or sum over k entries: S survives, the fluctuations average out."""
    x = ins[0] if ins else NO_INPUT
    k = (max(nodes[node.inputs[0]].numel_per_example / node.numel_per_example, 1.0)
         if node.inputs else 1.0)
    fluct = max(x.second - x.shared, 0.0)
    if node.op == "sum":
        return Step(Moments(k * x.mean, k * k * x.shared + k * fluct, k * k * x.shared), (0.0,))
    return Step(Moments(x.mean, x.shared + fluct / k, x.shared), (_log(1.0 / (k * k)),))


def l2_normalize(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
                 need_shared: bool) -> Step:
    """x / ||x|| over k entries (F.normalize): ||x||² is k·P, so each entry has mean square
    1/k; the Jacobian (I - x̂ x̂ᵀ) / ||x|| scales the gradient by 1/||x||."""
    x = ins[0] if ins else NO_INPUT
    k = float(_dim_size(node) or 1)
    norm_sq = max(k * x.second, 1e-30)
    return Step(Moments(x.mean / math.sqrt(norm_sq), x.second / norm_sq, x.shared / norm_sq),
                (_log(1.0 / norm_sq),))


def softmax(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
            need_shared: bool) -> Step:
    return _softmax(node, ins[0] if ins else NO_INPUT)


def log_softmax(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
                need_shared: bool) -> Step:
    x = ins[0] if ins else NO_INPUT
    n = float(_dim_size(node) or 1)
    m = -math.log(n) - x.var / 2
    return Step(Moments(m, m * m + x.var, m * m), (0.0,))


def matmul(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
           need_shared: bool) -> Step:
    in_nodes = [nodes[i] for i in node.inputs]
    step = _matmul(node, ins, in_nodes)
    if (node.attrs.get("coherence") is not None and len(ins) >= 2 and in_nodes[0].shape
            and nodes[carried_from(nodes, node.inputs[0])].op == "softmax"):
        return _averaged(node, ins, in_nodes[0].shape[-1], step)
    return step


def _averaged(node: GraphNode, ins: list[Moments], k: int, step: Step) -> Step:
    """Probabilities @ values where the values share ρ of their energy over the keys (the
    trace's measure, gradlint/trace/token_coherence.py): each row averages them, which keeps
    the shared part whole and Σp² of the rest, P_out = P_v (ρ + (1 − ρ) Σp²)."""
    p, v = ins[0], ins[1]
    # measured over the keys, whatever they are: the batch-shared part S is alike over the
    # tokens where the keys are tokens, not where they are channels (DaViT's channel
    # attention averages over the channels, whose per-channel biases differ)
    rho = float(node.attrs["coherence"][0])
    spread = min(k * p.second, 1.0)
    second = v.second * (rho + (1.0 - rho) * spread)
    shared = step.out.shared
    if v.shared == v.shared:  # of what every example shares, the part alike over the keys
        alike = min(v.shared, rho * v.second)  # passes whole, the rest is averaged
        shared = min(alike + spread * (v.shared - alike), second)
    return Step(Moments(v.mean, second, shared), step.log_gains)


def attention(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
              need_shared: bool) -> Step:
    return _attention(node, ins[0] if ins else NO_INPUT, len(ins))


def smooth(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
           need_shared: bool) -> Step:
    return _smooth(node, ins[0] if ins else NO_INPUT)


def sdpa(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
         need_shared: bool) -> Step:
    return _sdpa(node, ins, [nodes[i] for i in node.inputs])


def upsample(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
             need_shared: bool) -> Step:
    """Each input entry is copied to k outputs and gets all their gradients."""
    x = ins[0] if ins else NO_INPUT
    k = (node.numel_per_example / max(nodes[node.inputs[0]].numel_per_example, 1)
         if node.inputs else 1.0)
    return Step(x, (_log(max(k, 1e-30)),) + (NEG_INF,) * (len(ins) - 1))


def recurrent(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
              need_shared: bool) -> Step:
    return _recurrent(node, ins[0] if ins else NO_INPUT)


def opaque(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
           need_shared: bool) -> Step:
    """Unknown: gain 1 to every input (flagged GL904 by the caller)."""
    return Step(ins[0] if ins else NO_INPUT, (0.0,) * len(ins))


def passthrough(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
                need_shared: bool) -> Step:
    """Views, slices, expand, dropout at p=0, padding, masking: the first input. r is per
    entry: a slice keeping 1/k of the entries passes 1/k of them a gradient, an expand by k
    sums k gradients into each entry; both are numel_out / numel_in."""
    if not ins:
        return Step(NO_INPUT, ())
    ratio = node.numel_per_example / max(nodes[node.inputs[0]].numel_per_example, 1)
    gains = (_log(ratio),) if len(ins) == 1 else (_log(ratio),) + (NEG_INF,) * (len(ins) - 1)
    return make_step((ins[0], gains, False))


def _affine(inp: Moments, gain: float, w: ParamStats | None, b: ParamStats | None) -> Moments:
    """y = Wx + b with zero-mean weights: P' = k E[W^2] P + E[b^2] (gain = k E[W^2])."""
    eb2 = b.mean_sq if b else 0.0
    mb = b.mean if b else 0.0
    return make_moments((mb, gain * inp.second + eb2, gain * inp.shared + eb2))


def _weight_layer(node: GraphNode, x: Moments, fan_in: float, back: float) -> Step:
    w, b = node.main, node.bias
    ew2 = w.mean_sq if w else 0.0
    return make_step((_affine(x, fan_in * ew2, w, b), (_log(back * ew2),), False))


# eps below this share of the variance moves x̂'s mean square by < 0.0005 decades: it is left out
# of the forward moments, which then stay exactly what they were without it (the activation
# memo keys on them: ResNet-50's estimate took 4x as long when every BN output was 1 - 1e-5)
_EPS_NEGLIGIBLE = 1e-3


def norm_scale(node: GraphNode, x: Moments) -> tuple[float, float, float]:
    """What a normalization divides by and what comes out: (variance, variance + eps, x̂'s
    mean square). LayerNorm's variance is P - M^2, RMSNorm's P, BatchNorm's P - S (across the
    batch). x̂'s mean square is var / (var + eps): with GAN code's ``BatchNorm2d(c, 0.8)`` (0.8
    lands in eps) well below 1."""
    mean, second, x_shared = x
    op = node.op
    if op == "batch_norm":
        var = second - x_shared
        if var <= 1e-9 * second:  # alike across the batch: a weight, standardized over its
            var = second - mean * mean  # fan-in (F.batch_norm on (1, C, fan): timm's StdConv)
    elif op == "rms_norm":
        var = second
    else:
        var = second - mean * mean
    var = max(var, 0.0)
    eps = float(node.attrs.get("eps", 1e-5))
    s2 = var + eps
    return var, s2, (var / s2 if eps > _EPS_NEGLIGIBLE * var else 1.0)


def normalized_shared(node: GraphNode, x: Moments, var: float, share: float) -> float:
    """S of a norm's normalized input x̂ (before its gain and bias; ``var`` and ``share`` from
    ``norm_scale``): a per-unit mean that every position shares survives a layer or RMS norm
    (which normalize each position) and not a batch norm (which removes it)."""
    if node.op == "batch_norm":
        return 0.0
    if node.op == "rms_norm":
        return share * x.shared / max(var, 1e-30)
    return share * max(x.shared - x.mean ** 2, 0.0) / max(var, 1e-30)


def _norm(node: GraphNode, x: Moments) -> Step:
    """Normalization rescales by 1/s, s^2 = variance + eps (``norm_scale``)."""
    g, b = node.weight, node.bias
    eg2 = g.mean_sq if g else 1.0
    eb2 = b.mean_sq if b else 0.0
    mb = b.mean if b else 0.0
    var, s2, share = norm_scale(node, x)
    shared = eg2 * normalized_shared(node, x, var, share) + eb2
    second = eg2 * share + eb2
    gate = g is not None and eg2 < _NORM_GATE_SQ
    return make_step((make_moments((mb, second, min(shared, second))), (_log(eg2 / s2),),
                      gate))


def _spatial(node: GraphNode | None) -> int:
    if node is None or not node.shape or len(node.shape) < 3:
        return 1
    return prod(list(node.shape[2:]))


def _pool(node: GraphNode, x: Moments, src: GraphNode | None) -> Step:
    k_in = _spatial(src)
    k_out = max(_spatial(node), 1)
    if node.op in ("adaptive_avg_pool", "adaptive_max_pool") and k_out > k_in > 0:
        # to a larger size: each input is copied to k_out / k_in outputs and gets all their
        # gradients (AlexNet's 6x6 pool after features of 1x1 at 64x64, its convs estimated a
        # decade low), as an upsample
        return Step(x, (_log(k_out / k_in),))
    ratio = max(k_in / k_out, 1.0)  # input entries per output entry
    if node.op in ("adaptive_avg_pool", "adaptive_max_pool"):
        window = ratio
    else:
        kern = node.attrs.get("kernel", 2)
        window = float(prod(kern) if isinstance(kern, (tuple, list)) else
                       kern ** max(len(node.shape or (0, 0, 0, 0)) - 2, 1))
    if node.op.endswith("avg_pool"):
        # r_in = r_out * (window / ratio) / window^2: each input sits in window/ratio windows
        gain = 1.0 / (window * ratio)
        # the fluctuations around the batch-shared part average out, as if independent: what
        # reaches an average pool has passed a conv after a norm, whose neighbouring outputs
        # are nearly uncorrelated (DenseNet's transition pools, 2x2: mean square measured
        # 1.055 -> 0.549, this 0.54; keeping it whole estimated every dense block's input
        # gradient 0.2 decades low per block, through the BatchNorms that read it)
        fluct = max(x.second - x.shared, 0.0)
        return Step(Moments(x.mean, x.shared + fluct / window, x.shared), (_log(gain),))
    return Step(x, (_log(1.0 / ratio),))  # max pool: one input per output gets the gradient


def _dim_size(node: GraphNode) -> int | None:
    if not node.shape:
        return None
    dim = node.attrs.get("dim", -1)
    if dim is None:
        dim = -1
    try:
        return int(node.shape[dim])
    except (IndexError, TypeError):
        return None


def keys_per_query(node: GraphNode, n_k: int) -> tuple[float, float]:
    """(mean 1/n_i, mean 1/n_i^2) over the query rows, n_i the keys row i can see: read from
    the attention's mask by the trace (gradlint.trace.attention_keys), else all n_k."""
    keys = node.attrs.get("keys")
    if keys is not None:
        return float(keys[0]), float(keys[1])
    n = float(max(n_k, 1))
    return 1.0 / n, 1.0 / (n * n)


def _near_uniform(logit_var: float, n_k: int, keys: tuple[float, float]) -> tuple[float, float]:
    """(E p^2 over all n_k entries, the share of it the softmax Jacobian passes).

    Row i spreads over its n_i keys: sum_j p_ij^2 ~ e^v / n_i, at most 1 (one-hot); each row's
    Jacobian subtracts its own mean, which keeps 1 - 1/n_i: over the rows, 1 - h2 / h1."""
    h1, h2 = keys
    if logit_var < _NEAR_UNIFORM or h1 <= 0:
        spread = min(math.exp(logit_var) * h1, 1.0)
    else:
        spread = concentration(min(logit_var, 50.0), max(round(1.0 / h1), 1))
    return spread / max(n_k, 1), (1.0 - h2 / h1 if h1 > 0 else 0.0)


_NEAR_UNIFORM = 0.05  # below this logit variance e^v / n is within 0.5% of the exact sum


@functools.lru_cache(maxsize=4096)
def _concentration(v: float, n: int) -> float:
    s = math.sqrt(v)
    z = torch.linspace(-8.0, 8.0, 241, dtype=torch.float64)
    w = torch.exp(-0.5 * z * z)
    w = w / w.sum()
    ez = torch.exp(s * z)
    # 1/D² = ∫ t e^{-tD} dt, over t = e^u: D lies between e^{-8s} and n e^{8s}
    u = torch.linspace(-8.0 * s - math.log(n) - 6.0, 8.0 * s + 4.0, 500, dtype=torch.float64)
    t = torch.exp(u)
    decay = torch.exp(-t[:, None] * ez[None, :])
    own = (w * ez * ez * decay).sum(1)
    rest = torch.log((w * decay).sum(1).clamp_min(1e-300)) * (n - 1)
    found = n * float((t * t * own * torch.exp(rest)).sum()) * float(u[1] - u[0])
    return min(max(found, 1.0 / n), 1.0)


def concentration(logit_var: float, n: int) -> float:
    """E sum_j p_j^2 for the softmax of n iid N(0, v) logits, exactly (to ~1%): n E[e^{2 z_1}
    / D^2], D = sum_j e^{z_j}, with 1/D^2 = ∫ t e^{-t D} dt making the n logits independent
    integrals. e^v / n, its near-uniform limit, is 2.3x too large at v = 3, n = 64 (Swin V2's
    cosine attention: 0.31 where 0.12 is sampled). Remembered per (v to 3 digits, n)."""
    return _concentration(round(logit_var, 3), n)


def _softmax(node: GraphNode, x: Moments) -> Step:
    """Near-uniform softmax over n entries with logit variance v: E p^2 ~ e^v / n^2 (1/n_i per
    row where a mask leaves n_i), and the Jacobian's mean squared entry per input is ~ E p^2
    (~1/n^2 near uniform)."""
    n = _dim_size(node) or 1
    var = x.var
    if (alike := node.attrs.get("row_coherence")) is not None:  # a row's common shift
        var = min(var, x.second * (1.0 - float(alike)))  # is no spread (trace measure)
    p2, centred = _near_uniform(var, n, keys_per_query(node, n))
    return Step(Moments(1.0 / n, p2, p2), (_log(p2 * centred) if n > 1 else 0.0,))


def _matmul(node: GraphNode, ins: list[Moments], in_nodes: list[GraphNode]) -> Step:
    """Y = A @ B with inner size k: P_Y = k P_A P_B; r_A = m P_B r_Y, r_B = n P_A r_Y."""
    if len(ins) < 2 or not in_nodes[0].shape or not in_nodes[1].shape:
        return Step(ins[0] if ins else Moments(0, 1, 0), (0.0,) * len(ins))
    a, b = ins[0], ins[1]
    sa, sb = in_nodes[0].shape, in_nodes[1].shape
    k = sa[-1]
    n = sa[-2] if len(sa) >= 2 else 1
    m = sb[-1] if len(sb) >= 2 else 1
    # independent entries: the k products add in variance, their means add coherently
    coherent = k * (k - 1) * a.mean ** 2 * b.mean ** 2
    out = Moments(k * a.mean * b.mean, k * a.second * b.second + coherent,
                  k * a.shared * b.shared + coherent)
    return Step(out, (_log(m * b.second), _log(n * a.second)) + (NEG_INF,) * (len(ins) - 2))


def attention_factors(node: GraphNode) -> tuple[float, float, float, int]:
    """(E*E[W_in^2], E*E[W_out^2], 1/n averaging, n tokens) for nn.MultiheadAttention at init.

    Near-uniform attention averages the values over n tokens: P_out ~ P_v / n for independent
    tokens, and r_v ~ r_out / n. Q/K take the softmax Jacobian and are negligible here.
    """
    e = int(node.attrs.get("embed_dim", 1))
    w_in = node.param("in_proj_weight") or node.param("v_proj_weight")
    w_out = node.param("out_proj.weight") or node.weight
    shape = node.shape or ()
    n = 1
    if len(shape) == 3:
        n = shape[1] if node.attrs.get("batch_first") else shape[0]
    return (e * (w_in.mean_sq if w_in else 1.0 / (3 * e)),
            e * (w_out.mean_sq if w_out else 1.0 / (3 * e)), keys_per_query(node, n)[0], n)


def _attention(node: GraphNode, x: Moments, n_in: int) -> Step:
    gin, gout, avg, _ = attention_factors(node)
    p = gout * avg * gin * x.second
    gains = [NEG_INF] * n_in
    gains[min(2, n_in - 1)] = _log(gout * avg * gin)  # the value input carries the gradient
    return Step(Moments(0.0, p, 0.0), tuple(gains))


def _recurrent(node: GraphNode, x: Moments) -> Step:
    """The cell at its stationary state (gradlint.estimate.recurrent); the output tuple's first
    tensor."""
    cell = analyse_cell(node, x.second)
    return Step(Moments(0.0, cell.out_second, 0.0), (_log(cell.input_gain),))


_SMOOTH = {  # f and f' for the delta method around the mean
    "rsqrt": (lambda m: m ** -0.5, lambda m: -0.5 * m ** -1.5),
    "sqrt": (lambda m: m ** 0.5, lambda m: 0.5 * m ** -0.5),
    "reciprocal": (lambda m: 1.0 / m, lambda m: -1.0 / (m * m)),
    "exp": (math.exp, math.exp),
}


def _smooth(node: GraphNode, x: Moments) -> Step:
    """pow/rsqrt/sqrt/reciprocal/exp, as in hand-written RMSNorm (x * rsqrt(mean(x^2) + eps)).

    x^2 uses the exact Gaussian moments; the others the delta method around the mean, which is
    right for what they act on in practice: a positive, nearly constant scale."""
    v = x.var
    if node.op == "pow" and float(node.attrs.get("exponent", 2.0)) == 2.0:
        m4 = x.mean ** 4 + 6 * x.mean ** 2 * v + 3 * v * v  # E x^4, x ~ N(M, v)
        return Step(Moments(x.second, m4, x.second ** 2), (_log(4 * x.second),))
    if node.op == "pow" and (k := float(node.attrs.get("exponent", 1.0))).is_integer() and (
            1 <= k <= 8):  # x^3 in GELU's tanh form: odd powers keep a zero mean
        n = int(k)
        mean = _gaussian_power(x.mean, v, n)
        grad = n * _gaussian_power(x.mean, v, n - 1)
        second = _gaussian_power(x.mean, v, 2 * n)
        shared = min(mean * mean + grad * grad * max(x.shared - x.mean ** 2, 0.0), second)
        return Step(Moments(mean, second, shared),
                    (_log(n * n * _gaussian_power(x.mean, v, 2 * n - 2)),))
    if node.op == "pow":
        e = float(node.attrs.get("exponent", 1.0))
        f, df = (lambda m: abs(m) ** e), (lambda m: e * abs(m) ** (e - 1) if m else 0.0)
    else:
        f, df = _SMOOTH[node.op]
    m = x.mean if x.mean > 0 or node.op == "exp" else max(x.second, 1e-30) ** 0.5
    try:
        fm, dfm = f(min(m, 50.0) if node.op == "exp" else m), df(min(m, 50.0)
                                                               if node.op == "exp" else m)
    except (ValueError, ZeroDivisionError, OverflowError):
        return Step(x, (0.0,))
    shared = fm * fm + dfm * dfm * max(x.shared - x.mean ** 2, 0.0)
    return Step(Moments(fm, fm * fm + dfm * dfm * v, shared), (_log(dfm * dfm),))


def unit_mean_square(x: Moments) -> float:
    """The mean square of a tensor's per-unit means (S, at least M^2; M^2 where S is not
    computed): the part every position and example shares."""
    shared = x.shared
    return max(shared, x.mean * x.mean) if shared == shared else x.mean * x.mean


def _gaussian_power(mean: float, var: float, n: int) -> float:
    """E x^n for x ~ N(mean, var): sum over j of C(n, 2j) mean^(n-2j) var^j (2j-1)!!."""
    total, double_fact = 0.0, 1.0
    for j in range(n // 2 + 1):
        if j:
            double_fact *= 2 * j - 1
        total += math.comb(n, 2 * j) * mean ** (n - 2 * j) * var ** j * double_fact
    return total


def _sdpa(node: GraphNode, ins: list[Moments], in_nodes: list[GraphNode]) -> Step:
    """softmax(q k^T * scale) v near uniform attention over n keys (n_i where a mask leaves
    query i fewer): values are averaged (P_out ~ sum_j p_j^2 P_v); q and k take the softmax
    Jacobian."""
    if len(ins) < 3 or not all(n.shape for n in in_nodes[:3]):
        return Step(ins[0] if ins else Moments(0, 1, 0), (0.0,) * len(ins))
    q, k, v = ins[:3]
    sq, sk, sv = (n.shape or () for n in in_nodes[:3])
    d, n_k, n_q, d_v = sq[-1], sk[-2], sq[-2], sv[-1]
    scale = float(node.attrs.get("scale") or d ** -0.5)
    # what every key shares (the batch-shared per-unit mean, S; the part the trace measured
    # alike over the keys, gradlint/trace/token_coherence.py) passes the average whole, and
    # adds the same to every logit of a row: no spread
    base = unit_mean_square(v)
    measured = node.attrs.get("coherence")
    rho_k = 0.0
    if measured is not None:
        base = max(base, float(measured[0]) * v.second)
        rho_k = float(measured[1])
    logit_var = d * q.second * k.second * (1.0 - rho_k) * scale * scale
    p2, centred = _near_uniform(logit_var, n_k, keys_per_query(node, n_k))
    out = Moments(v.mean, base + n_k * p2 * max(v.second - base, 0.0),
                  v.shared if v.shared != v.shared else unit_mean_square(v))
    # per unit r at the output, the logits' mean squared gradient: the softmax Jacobian
    # centres each row over its keys, so only the values' part that differs by key counts
    ds2 = p2 * centred * d_v * (v.second - base if measured is not None else v.second)
    # the queries' gradient sums the logits' over the keys, which sum to 0 per row: only the
    # keys' centred part counts
    gains: tuple[float, ...] = (_log(n_k * k.second * (1.0 - rho_k) * scale * scale * ds2),
                                _log(n_q * q.second * scale * scale * ds2), _log(n_q * p2))
    if len(ins) > 3:  # a float attn_mask adds to the logits (T5's learned position bias)
        gains += (_log(ds2),) + (NEG_INF,) * (len(ins) - 4)
    return Step(out, gains)
