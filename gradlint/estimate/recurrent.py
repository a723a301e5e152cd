"""Recurrent cells (nn.RNN tanh/relu, nn.LSTM, nn.GRU) at init.

Stationary moments come from iterating the cell's moment map to its fixed point. The per-step
ratio rho of the RMS gradient along time comes from the cell's Jacobian statistics: the vanilla
RNN's rho^2 = H E[W_hh^2] E[phi'^2]; for LSTM and GRU a mean diagonal (forget / update gate), a
mean path through the same W_hh every step, and a zero-mean part fresh each step, combined by
``renewal_rate``. The mean-field picture with fresh weights per step (rho^2 = E[f^2] for the
LSTM's cell path) decays ~0.1 decades per step too fast: a fixed W_hh adds its mean path
coherently step after step. Against autograd over H in 16..256, 8..64 input features, input
RMS 1 and 2, default init and gate bias 1: mean error 0.005 decades per step, all but three H = 16
cells within 0.02 (rules/GL104-recurrent-horizon/README.md). The horizon is xi = -1/ln rho
steps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from gradlint.core.graph import GraphNode, ParamStats
from gradlint.estimate.activations import ACTIVATIONS, GaussianMoments, gaussian_moments
from gradlint.estimate.normal_grid import W, Z


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


def slope(name: str, mean: float, var: float) -> float:
    """E f'(h), h ~ N(mean, var): the mean gain of a gate, the part a fixed W_hh carries
    coherently from step to step."""
    return _slope(name, round(mean, 12), round(max(var, 0.0), 12))


@functools.lru_cache(maxsize=1024)
def _slope(name: str, mean: float, var: float) -> float:
    act = ACTIVATIONS[name]
    return float((W * act.df(mean + math.sqrt(var) * Z, {})).sum())


def renewal_rate(a: float, b: float, noise: float) -> float:
    """rho^2 of the mean-square gradient carried back by A_t = a I + b U + N_t per step.

    a is the mean diagonal (forget or update gate), b U the mean path through the FIXED
    recurrent matrix (U with the circular spectrum of radius 1, the same every step), N_t the
    zero-mean part, fresh each step (gates' fluctuations, paths whose coefficient has mean 0),
    of mean square ``noise``. A stretch of l steps without noise multiplies the mean square by
    P(l) = tau((a + b c)^l (a + b c*)^l) = sum_j C(l, j)^2 a^(2(l-j)) b^(2j) for a circular c
    (tau(c^j c*^k) = delta_jk: free probability); each noise step restarts from an isotropic
    vector. The renewal equation noise * y * sum_l P(l) y^l = 1 with
    sum_l P(l) y^l = 1 / sqrt((1 - (a^2 + b^2) y)^2 - 4 a^2 b^2 y^2) gives y = 1 / rho^2,
    below the coherent limit 1 / (a + b)^2. With b = 0 it is a^2 + noise (mean field with
    fresh weights); with a = 0, b^2 + noise (the vanilla RNN's H E[W^2] E[phi'^2])."""
    a, b, noise = abs(a), abs(b), max(noise, 0.0)
    coherent = (a + b) ** 2
    if noise <= 0.0:
        return coherent
    if coherent <= 0.0:
        return noise

    def excess(y: float) -> float:
        d = (1.0 - (a * a + b * b) * y) ** 2 - 4.0 * a * a * b * b * y * y
        return noise * y / math.sqrt(max(d, 1e-300)) - 1.0

    lo, hi = 0.0, 1.0 / coherent
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if excess(mid) > 0.0:
            hi = mid
        else:
            lo = mid
    return 1.0 / (0.5 * (lo + hi))


def _lstm_rate(i: GaussianMoments, f: GaussianMoments, g: GaussianMoments,
               o: GaussianMoments, tc: GaussianMoments, sig_i: float, sig_f: float,
               sig_o: float, c2: float, hw2: float, slope_g: float, slope_c: float) -> float:
    """rho^2 of an LSTM. With w = dL/dc (the total, through h included):
    w_{t-1} = f_t w_t + q_{t-1} dh_{t-1}, q = o tanh'(c), and
    dh_{t-1} = W_hi^T(g s'_i w) + W_hf^T(c_{t-1} s'_f w) + W_hg^T(i tanh'_g w) + W_ho^T(...dh_t).
    Mean parts: f-bar on the diagonal, q-bar E[i tanh'_g] W_hg^T through the fixed matrix (the
    input and forget paths have mean ~0: g and c are centred). The rest is noise."""
    qbar = o.mean * slope_c
    q2 = o.second * tc.grad_sq
    sbar = i.mean * slope_g
    s2 = i.second * g.grad_sq
    paths = g.second * sig_i + c2 * sig_f + s2  # E[(dh/w)^2] per unit of H E[W^2]
    b = abs(qbar * sbar) * math.sqrt(hw2)
    noise = (f.second - f.mean ** 2) + hw2 * (q2 * paths - qbar ** 2 * sbar ** 2)
    # the output gate's path feeds dh_t back into dh_{t-1}: dh_t^2 ~ H E[W^2] paths w^2 / rho^2
    noise += hw2 * q2 * tc.second * sig_o * hw2 * paths / max(f.second, 1e-6)
    return renewal_rate(f.mean, b, noise)


def _gru_rate(r: GaussianMoments, z: GaussianMoments, n: GaussianMoments, h2: float,
              hw2: float, bhn2: float, sig_r: float, sig_z: float, slope_n: float) -> float:
    """rho^2 of a GRU. dh_{t-1} = z dh + W_hz^T((h - n) s'_z dh) + W_hn^T(r (1-z) tanh'_n dh)
    + W_hr^T((W_hn h + b_hn)(1-z) tanh'_n s'_r dh). Mean parts: z-bar on the diagonal and
    r-bar (1 - z-bar) E[tanh'_n] through the fixed W_hn; the rest is noise."""
    one_minus_z2 = 1.0 - 2.0 * z.mean + z.second
    sbar = r.mean * (1.0 - z.mean) * slope_n
    s2 = r.second * one_minus_z2 * n.grad_sq
    m2 = hw2 * h2 + bhn2
    b = abs(sbar) * math.sqrt(hw2)
    noise = (z.second - z.mean ** 2) + hw2 * (s2 - sbar ** 2 + (h2 + n.second) * sig_z
                                              + one_minus_z2 * n.grad_sq * m2 * sig_r)
    return renewal_rate(z.mean, b, noise)


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
        rho2 = hidden * ehh * g2  # renewal_rate(0, b, noise) with b^2 + noise = H E[W^2] E[phi'^2]
        pre = g2 * _series(rho2, steps)
    elif mode == "LSTM":
        c2 = 0.0
        for _ in range(50):
            i, f, g, o = (gaussian_moments("tanh" if k == 2 else "sigmoid", {}, *pre_var(h2, k))
                          for k in range(4))
            c2 = i.second * g.second / max(1.0 - f.second, 1e-6)
            h2 = o.second * gaussian_moments("tanh", {}, 0.0, c2).second
        tc = gaussian_moments("tanh", {}, 0.0, c2)
        # gate pre-activation gradients: i <- g, f <- c_{t-1}, g <- i, o <- tanh(c)
        sig_i = gaussian_moments("sigmoid", {}, *pre_var(h2, 0)).grad_sq
        sig_f = gaussian_moments("sigmoid", {}, *pre_var(h2, 1)).grad_sq
        sig_o = gaussian_moments("sigmoid", {}, *pre_var(h2, 3)).grad_sq
        rho2 = _lstm_rate(i, f, g, o, tc, sig_i, sig_f, sig_o, c2, hidden * ehh,
                          slope("tanh", *pre_var(h2, 2)), slope("tanh", 0.0, c2))
        rc = o.second * tc.grad_sq * _series(rho2, steps)  # r at the cell per unit r at h
        pre = (rc * sig_i * g.second + rc * sig_f * c2 + rc * g.grad_sq * i.second
               + sig_o * tc.second) / 4.0
    else:  # GRU: h = (1 - z) n + z h_prev, n = tanh(W_in x + r (W_hn h + b_hn))
        b_hh = _p(node, "bias_hh_l0")
        bhn2 = b_hh.mean_sq if b_hh else 0.0
        for _ in range(50):
            r, z = (gaussian_moments("sigmoid", {}, *pre_var(h2, k)) for k in range(2))
            m_n, _v = pre_var(h2, 2)
            v_n = (in_size * eih * x_second + r.second * (hidden * ehh * h2 + bhn2)
                   + max(bias[2][1] - m_n * m_n, 0.0))
            n = gaussian_moments("tanh", {}, m_n, v_n)
            one_minus_z2 = 1.0 - 2.0 * z.mean + z.second
            h2 = one_minus_z2 * n.second / max(1.0 - z.second, 1e-6)
        rho2 = _gru_rate(r, z, n, h2, hidden * ehh, bhn2,
                         gaussian_moments("sigmoid", {}, *pre_var(h2, 0)).grad_sq,
                         gaussian_moments("sigmoid", {}, *pre_var(h2, 1)).grad_sq,
                         slope("tanh", m_n, v_n))
        carried = _series(rho2, steps)
        pre = carried * (one_minus_z2 * n.grad_sq + r.grad_sq * n.grad_sq * hidden * ehh * h2
                         + z.grad_sq * h2) / 3.0
    input_gain = gates * hidden * eih * pre  # dx = W_ih^T d(pre-activations)
    return CellStats(mode, steps, math.sqrt(max(rho2, 0.0)), h2, pre, input_gain, hidden,
                     x_second)
