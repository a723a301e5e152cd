"""GL106's quantity: learnable gates that start (nearly) closed, and the layers behind them.

A gate is a trainable factor that scales a branch and starts at or near zero: a learnable
multiplier (layer scale γ = 1e-6, ReZero α = 0), a normalization whose γ starts at ~0 (the last
BatchNorm of each ResNet block, zero-initialized), or a weight layer initialized at ~0 (a
zero-initialized classifier head, Fixup's last layer per branch). Every layer upstream whose
gradient passes only through the gate starts with a tiny or exactly zero gradient, by design:
under a real loss the gate itself gets a full gradient and opens in the first steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gradlint.core.graph import ParamStats
from gradlint.core.op_kinds import AFFINE_KINDS, GATE_RMS, NORM_GATE_RMS
from gradlint.lint.plain_stacks import ZERO_GAIN, fan_gains
from gradlint.lint.rule_api import ModelAnalysis

WEIGHT_GATE_GAIN = ZERO_GAIN  # fan_in·E[W²] below this: the layer passes ~no gradient back
_WEIGHTS = AFFINE_KINDS
_GATE_KINDS = _WEIGHTS | {"mul", "norm"}  # the kinds _gate_of can find a gate at


@dataclass(frozen=True)
class Gate:
    node: int
    param: ParamStats  # the gating parameter (its name is the gate's name)
    kind: str  # "scale" (learnable multiplier), "norm" (γ ~ 0) or "weight" (layer ~ 0)
    owner: str  # the module that owns the parameter ("" for the root)
    behind: tuple[str, ...]  # the layers whose gradient it holds back, in model order

    @property
    def rms(self) -> float:
        return math.sqrt(max(self.param.mean_sq, 0.0))


def _scale_param(analysis: ModelAnalysis, i: int) -> ParamStats | None:
    """A learnable multiplier feeding mul node ``i`` (through views)."""
    nodes = analysis.nodes
    for j in nodes[i].inputs[:2]:
        src = nodes[j]
        while src.kind == "passthrough" and src.inputs:
            src = nodes[src.inputs[0]]
        if src.op == "param" and src.params:
            return src.params[0]
    return None


def _gate_of(analysis: ModelAnalysis, i: int, fan: list[float]
             ) -> tuple[ParamStats, str] | None:
    """``fan``: log10 fan_in·E[W²] per node (stacks.fan_gains)."""
    node = analysis.nodes[i]
    kind = node.kind
    if kind == "mul" and len(node.inputs) >= 2:
        p = _scale_param(analysis, i)
        if p is not None and p.requires_grad and math.sqrt(p.mean_sq) < GATE_RMS:
            return p, "scale"
    elif kind == "norm":
        g = node.weight
        if g is not None and g.requires_grad and math.sqrt(g.mean_sq) < NORM_GATE_RMS:
            return g, "norm"
    elif kind in _WEIGHTS and node.module is not None:
        w = node.weight
        gain = fan[i]  # -inf also where fan_in is unknown
        if w is not None and w.requires_grad and (
                w.mean_sq == 0 or -math.inf < gain < math.log10(WEIGHT_GATE_GAIN)):
            return w, "weight"
    return None


def find_gates(analysis: ModelAnalysis) -> list[Gate]:
    """Every gate with at least one layer behind it. A layer belongs to the nearest gate
    downstream (one reverse sweep) when its own gradient is held back: exactly zero, or its
    strongest path crosses a gate (``LayerEstimate.gate``)."""
    nodes = analysis.nodes
    found: dict[int, tuple[ParamStats, str]] = {}
    fan = analysis.derived(fan_gains)
    for node in nodes:
        if node.kind in _GATE_KINDS:
            gate = _gate_of(analysis, node.index, fan)
            if gate is not None:
                found[node.index] = gate
    if not found:
        return []
    users = analysis.estimate.graph.consumers()
    nearest: list[int | None] = [None] * len(nodes)  # first gate reached going downstream
    for p in range(len(nodes) - 1, -1, -1):
        best = None
        for c in users[p]:
            cand = c if c in found else nearest[c]
            if cand is not None and (best is None or cand < best):
                best = cand
        nearest[p] = best
    sites: dict[str, int] = {}
    for node in nodes:  # the layer's first call (its own gate, if it is one, is not behind)
        if node.module is not None and node.params and node.kind != "param":
            sites.setdefault(node.module, node.index)
    behind: dict[int, list[str]] = {}
    for le in analysis.layers:
        site = sites.get(le.module)
        if site is None or le.frozen or not (le.zero or le.gate is not None):
            continue
        at = nearest[site]
        if at is not None:
            behind.setdefault(at, []).append(le.module)
    out = []
    for i, (param, kind) in sorted(found.items()):
        if i in behind:
            owner = param.name.rpartition(".")[0] if kind == "scale" else nodes[i].module or ""
            out.append(Gate(i, param, kind, owner, tuple(behind[i])))
    return out
