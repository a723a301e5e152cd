"""Recurrent cells (nn.RNN tanh/relu, nn.LSTM, nn.GRU) at init, in the mean-field picture.

Stationary moments come from iterating the cell's moment map to its fixed point; the per-step
ratio rho of the RMS gradient along time comes from the cell's Jacobian (vanilla RNN:
rho^2 = H E[W_hh^2] E[phi'^2]; LSTM: the cell path, rho^2 = E[f^2]; GRU: the update gate and
the candidate path). The horizon is xi = -1/ln rho steps. Gated cells are known to decay ~25%
slower than this predicts (docs/design.md, "Confidence"), so their layers are marked
``confidence: low``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gradlint.core.graph import GraphNode, ParamStats
from gradlint.estimate.activations import gaussian_moments


@dataclass(frozen=True)
class CellStats:
    mode: str  # RNN_TANH, RNN_RELU, LSTM, GRU
    steps: int  # T, the sequence length
    rho: float  # per-step ratio of the RMS gradient along time
    out_second: float  # stationary E[h^2]
    # mean squared gradient at the gate pre-activations per unit of r at the output, averaged
    # over steps (gradients arriving at every step, carried back with rho^2 per step)
    pre_gain: float
    input_gain: float  # r at the input per unit of r at the output
    hidden: int
    in_second: float  # E[x^2] of the input, for the W_ih gradient

    @property
    def horizon(self) -> float:
        """Steps over which the gradient falls by 1/e."""
        if self.rho <= 0:
            return 0.0
        if self.rho >= 1:
            return math.inf
        return -1.0 / math.log(self.rho)

    @property
    def log10_span(self) -> float:
        """log10 of the gradient ratio across the whole sequence, rho^(T-1)."""
        return (self.steps - 1) * math.log10(self.rho) if self.rho > 0 else -math.inf


def _p(node: GraphNode, name: str) -> ParamStats | None:
    return node.param(name)


def _gate_stats(node: GraphNode, gates: int) -> list[tuple[float, float]]:
    """(mean, mean square) of the summed biases b_ih + b_hh of each gate, from the attrs the
    catalogue recorded (the slices matter: a forget-gate bias of 1 is the classic fix)."""
    stats = node.attrs.get("gate_bias")
    if stats:
        return [(float(m), float(s)) for m, s in stats]
    return [(0.0, 0.0)] * gates


def _series(rho2: float, steps: int) -> float:
    """Average over steps of sum_k rho^(2k) for gradients arriving at every step."""
    if rho2 >= 1.0:
        return float(steps)
    return (1.0 - rho2 ** steps) / (1.0 - rho2)


def analyse_cell(node: GraphNode, x_second: float) -> CellStats:
    a: dict[str, Any] = node.attrs
    mode = str(a.get("mode", "RNN_TANH"))
    hidden = int(a.get("hidden", 1))
    shape = node.shape or (1, 1, hidden)
    steps = int(shape[1] if a.get("batch_first") else shape[0]) if len(shape) == 3 else 1
    w_ih, w_hh = _p(node, "weight_ih_l0"), _p(node, "weight_hh_l0")
    in_size = w_ih.shape[1] if w_ih else hidden
    eih = w_ih.mean_sq if w_ih else 1.0 / (3 * hidden)
    ehh = w_hh.mean_sq if w_hh else 1.0 / (3 * hidden)
    gates = {"LSTM": 4, "GRU": 3}.get(mode, 1)
    bias = _gate_stats(node, gates)

    def pre_var(h2: float, g: int) -> tuple[float, float]:
        m, s = bias[g]
        return m, in_size * eih * x_second + hidden * ehh * h2 + max(s - m * m, 0.0)

    h2 = 0.0
    if mode in ("RNN_TANH", "RNN_RELU"):
        act = "tanh" if mode == "RNN_TANH" else "relu"
        for _ in range(50):
            m, v = pre_var(h2, 0)
            h2 = gaussian_moments(act, {}, m, v).second
        m, v = pre_var(h2, 0)
        g2 = gaussian_moments(act, {}, m, v).grad_sq
        rho2 = hidden * ehh * g2
        pre = g2 * _series(rho2, steps)
    elif mode == "LSTM":
        c2 = 0.0
        for _ in range(50):
            i, f, g, o = (gaussian_moments("tanh" if k == 2 else "sigmoid", {}, *pre_var(h2, k))
                          for k in range(4))
            c2 = i.second * g.second / max(1.0 - f.second, 1e-6)
            h2 = o.second * gaussian_moments("tanh", {}, 0.0, c2).second
        tc = gaussian_moments("tanh", {}, 0.0, c2)
        rho2 = f.second
        rc = o.second * tc.grad_sq * _series(rho2, steps)  # r at the cell per unit r at h
        # gate pre-activation gradients: i <- g, f <- c_{t-1}, g <- i, o <- tanh(c)
        sig_i = gaussian_moments("sigmoid", {}, *pre_var(h2, 0)).grad_sq
        sig_f = gaussian_moments("sigmoid", {}, *pre_var(h2, 1)).grad_sq
        sig_o = gaussian_moments("sigmoid", {}, *pre_var(h2, 3)).grad_sq
        pre = (rc * sig_i * g.second + rc * sig_f * c2 + rc * g.grad_sq * i.second
               + sig_o * tc.second) / 4.0
    else:  # GRU: h = (1 - z) n + z h_prev, n = tanh(W_in x + r (W_hn h + b_hn))
        for _ in range(50):
            r, z, n = (gaussian_moments("tanh" if k == 2 else "sigmoid", {}, *pre_var(h2, k))
                       for k in range(3))
            one_minus_z2 = 1.0 - 2.0 * z.mean + z.second
            h2 = one_minus_z2 * n.second / max(1.0 - z.second, 1e-6)
        rho2 = z.second + one_minus_z2 * n.grad_sq * r.second * hidden * ehh
        carried = _series(rho2, steps)
        pre = carried * (one_minus_z2 * n.grad_sq + r.grad_sq * n.grad_sq * hidden * ehh * h2
                         + z.grad_sq * h2) / 3.0
    input_gain = gates * hidden * eih * pre  # dx = W_ih^T d(pre-activations)
    return CellStats(mode, steps, math.sqrt(max(rho2, 0.0)), h2, pre, input_gain, hidden,
                     x_second)
