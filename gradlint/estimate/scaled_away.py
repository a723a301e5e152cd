"""Norm gains that a later per-channel norm divides out again.

A BatchNorm's γ_c scales channel c. When everything downstream of it keeps channels apart and
is positively homogeneous (ReLU, a depthwise conv, a pool, a channel concat or slice) until
another norm that normalizes each channel on its own (BatchNorm in training, InstanceNorm,
GroupNorm with one channel per group), that norm divides the scale out again: the loss does not
depend on γ_c except through the second norm's eps. Its backward removes the input's own
direction up to eps, so γ's gradient keeps only ``eps / (var + eps)`` in RMS of what mean field
gives, var being the second norm's input variance. MobileNetV2's expansion norms, ShuffleNet's
and GhostNet's first norms and DenseNet's stem norm sit there: measured 2-5 decades below their
neighbours, as that factor says (bench/results/zoo_accuracy.md).

A curved activation right after the first norm (GELU, SiLU) is not homogeneous: rescaling its
input moves its output partly along itself, which the second norm removes, and partly not
(``activations.scale_kept``: 2-4% of the mean square for GELU and SiLU at init).

The loss of gradient is a symmetry, not attenuation: such a γ is redundant, and nothing it
does reaches the loss. GL101 judges the path and leaves these factors out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradlint.core.graph import GraphNode, LayerGraph
from gradlint.core.op_kinds import HOMOGENEOUS
from gradlint.estimate.activations import ACTIVATIONS, scale_kept
from gradlint.estimate.op_forward import norm_scale
from gradlint.estimate.tensor_state import Moments

# positively homogeneous at init: ReLU6 clips at 6 standard deviations of a normalized input
# (where a sample's heavy tail reaches 6, a few clipped entries keep 1-2 decades more than eps:
# timm's MobileNetV2 measured 2.2 decades below its neighbours where eps says 4.8)
_SCALE_KEEPING = HOMOGENEOUS | {"relu6", "identity"}
_PER_CHANNEL_NORMS = frozenset({"batch_norm", "instance_norm", "group_norm"})


# below this share of its mean-field mean square, a γ whose scale passes a clip (ReLU6) before
# the norm that divides it out is what a few clipped entries keep: a sample's tail, not the
# Gaussian moments (MobileNetV3-like blocks: -4.9 and -5.1 decades in two seeds, -2.3 in a
# third; the mean square over the three is the third's)
TAIL_SHARE = 1e-2


def scaled_away(graph: LayerGraph, moments: list[Moments]) -> dict[int, tuple[float, bool]]:
    """Per norm node whose γ a later per-channel norm divides out: the natural-log change of
    its γ's mean squared gradient (``_kept``), and whether what is left rests on a clip's
    tail (a ReLU6 on the way, less than TAIL_SHARE left: confidence low)."""
    if "norm" not in graph.kinds() or not graph.ops() & _PER_CHANNEL_NORMS:
        return {}
    nodes = graph.nodes
    users = graph.consumers()
    out: dict[int, tuple[float, bool]] = {}
    for node in nodes:
        if node.op not in _PER_CHANNEL_NORMS or not _channel_gain(node):
            continue
        found = _kept(node, nodes, users, moments)
        if found is not None:
            kept, clips = found
            out[node.index] = (math.log(max(kept, 1e-300)), clips and kept < TAIL_SHARE)
    return out


def _channel_gain(node: GraphNode) -> bool:
    """A trainable γ on the channel axis (dim 1)."""
    w = node.weight
    if w is None or not w.requires_grad or not node.shape or len(node.shape) < 2:
        return False
    return len(w.shape) == 1 and w.shape[0] == node.shape[1]


def _kept(start: GraphNode, nodes: Sequence[GraphNode], users: list[list[int]],
          moments: list[Moments]) -> tuple[float, bool] | None:
    """If every use of ``start``'s output reaches a per-channel norm through channel-keeping
    ops, all positively homogeneous but for one activation right after ``start``: the share of
    γ's mean squared gradient left, the activation's ``scale_kept`` plus what the reached
    norms' eps keep of the rest, (eps / (var + eps))^2 of the norm that keeps most, and
    whether a clip (ReLU6) is on the way; else None."""
    stack = [(start.index, True)]  # (node, nothing but views since start)
    seen = {start.index}
    eps_kept, curved, clips = 0.0, 0.0, False
    while stack:
        at, fresh = stack.pop()
        us = users[at]
        if not us:  # an output of the model: the scale reaches the loss
            return None
        for c in us:
            user = nodes[c]
            if _divides_out(user):
                _, s2, _ = norm_scale(user, moments[user.inputs[0]])
                eps = float(user.attrs.get("eps", 1e-5))
                eps_kept = max(eps_kept, (eps / s2) ** 2 if s2 > 0 else 1.0)
                continue
            if user.kind == "elementwise" and user.op not in _SCALE_KEEPING:
                if not fresh or user.op not in ACTIVATIONS:
                    return None  # a curved activation behind another op: not modelled
                x = moments[user.inputs[0]]  # the activation right after the norm
                curved = max(curved, scale_kept(user.op, user.attrs, x.mean,
                                                max(x.second - x.mean * x.mean, 0.0)))
            elif not _keeps_channels_and_scale(user, nodes):
                return None
            clips = clips or user.op == "relu6"
            if c not in seen:
                seen.add(c)
                stack.append((c, fresh and user.kind in ("passthrough", "scale")))
    return curved + (1.0 - curved) * eps_kept, clips


def _divides_out(node: GraphNode) -> bool:
    """A norm over each channel of dim 1 on its own, with batch statistics."""
    if node.op not in _PER_CHANNEL_NORMS or not node.shape or len(node.shape) < 3:
        return False
    return node.op != "group_norm" or node.attrs.get("groups") == node.shape[1]


def _keeps_channels_and_scale(node: GraphNode, nodes: Sequence[GraphNode]) -> bool:
    """Scaling one input channel scales whole output channels (channels stay on dim 1), and
    nothing else: homogeneous activations, depthwise convs, pools, resizes, channel concat
    and slices, shape-keeping views."""
    kind = node.kind
    if kind == "elementwise":
        return node.op in _SCALE_KEEPING
    if kind == "scale":
        return True
    if kind in ("pool", "upsample"):
        return _same_channels(node, nodes)
    if kind == "conv":
        groups, cin = node.attrs.get("groups", 1), node.attrs.get("in")
        return cin is not None and groups == cin
    if kind == "cat":
        rank = len(node.shape or ())
        return rank >= 2 and node.attrs.get("dim") in (1, 1 - rank)
    if kind == "passthrough" and node.inputs:
        src = nodes[node.inputs[0]].shape
        out = node.shape
        if not src or not out or len(src) != len(out) or len(out) < 2:
            return False
        return out[1] == src[1] or out[2:] == src[2:]
    return False


def _same_channels(node: GraphNode, nodes: Sequence[GraphNode]) -> bool:
    src = nodes[node.inputs[0]].shape if node.inputs else None
    return bool(src and node.shape and len(src) == len(node.shape) >= 3
                and src[1] == node.shape[1])
