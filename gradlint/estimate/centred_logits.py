"""What the softmax Jacobian of attention written out passes when the tokens are alike.

The Jacobian centres each row of the logits' gradient over its keys: dZ_ij = p_ij (dP_ij −
Σ_l p_il dP_il), with dP_ij = g_i · v_j. Where the values share ρ_V of their energy over the
keys (the trace measures it, gradlint/trace/token_coherence.py), that shared part cancels and
the logits get 1 − ρ_V of what independent values would give them. The rows of dZ then sum to
zero, so the queries' gradient dQ = dZ K sees only the keys' centred part: 1 − ρ_K.
``_sdpa`` (op_forward) applies both inside the fused call; this module does it for softmax and
matmul nodes: the softmax that feeds a probabilities @ values matmul, and the matmul whose
logits reach that softmax (through views, scales, masks and position biases)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradlint.core.graph import GraphNode, LayerGraph

# the logit path from Q @ Kᵀ to the softmax: views, a scale, a bias or mask added, a learned
# temperature multiplied (Swin V2); further than this the matmul is not the logits'
_LOGIT_PATH = ("passthrough", "scale", "add", "mul")
_LOGIT_STEPS = 8
_FLOOR = 1e-6  # 1 − ρ: one part in a million still passes (ρ = 1 is measured noise)


def centred_gains(graph: LayerGraph, log_gains: list[tuple[float, ...]],
                  softmaxes: frozenset[int]) -> list[tuple[float, ...]]:
    """``log_gains`` with the softmax's slot shrunk by 1 − ρ_V and the logits matmul's left
    slot by 1 − ρ_K, where the trace measured them; unchanged elsewhere."""
    nodes = graph.nodes
    out = log_gains
    users = graph.consumers()
    for s in softmaxes:
        if nodes[s].op != "softmax":
            continue
        rho_v = _values_coherence(graph, users, s)
        if rho_v is None:
            continue
        out = out if out is not log_gains else list(log_gains)
        out[s] = _shrunk(out[s], 0, rho_v)
        for m in _logit_matmuls(nodes, nodes[s]):
            rho_k = nodes[m].attrs["coherence"][1]
            out[m] = _shrunk(out[m], 0, float(rho_k))
    return out


def _values_coherence(graph: LayerGraph, users: Sequence[Sequence[int]], s: int
                      ) -> float | None:
    """ρ_V of the matmul that averages values with softmax ``s``'s probabilities."""
    nodes = graph.nodes
    stack, seen = list(users[s]), set()
    while stack:
        c = stack.pop()
        if c in seen:
            continue
        seen.add(c)
        node = nodes[c]
        if node.kind == "passthrough":
            stack.extend(users[c])
        elif (node.op == "matmul" and node.attrs.get("coherence") is not None
              and graph.carried_from(node.inputs[0]) == s):
            return float(node.attrs["coherence"][0])
    return None


def _logit_matmuls(nodes: Sequence[GraphNode], softmax: GraphNode) -> list[int]:
    """The matmuls whose output reaches ``softmax`` along the logit path, with a measure."""
    found: list[int] = []
    stack = [(i, 0) for i in softmax.inputs[:1]]
    seen: set[int] = set()
    while stack:
        i, depth = stack.pop()
        if i in seen or depth > _LOGIT_STEPS:
            continue
        seen.add(i)
        node = nodes[i]
        if node.op == "matmul":
            if node.attrs.get("coherence") is not None:
                found.append(i)
        elif node.kind in _LOGIT_PATH:
            stack.extend((p, depth + 1) for p in node.inputs)
    return found


def _shrunk(gains: tuple[float, ...], slot: int, rho: float) -> tuple[float, ...]:
    if slot >= len(gains) or gains[slot] == -math.inf:
        return gains
    keep = math.log(max(1.0 - rho, _FLOOR))
    return (*gains[:slot], gains[slot] + keep, *gains[slot + 1:])
