"""Fast paths for ``activations.gaussian_moments`` that give the reference quadrature's numbers.

The reference sums f, f^2 and f'^2 over a 32,000-point grid (and f over a 160x150 product grid
for the batch-shared moment): 0.2-1.2 ms per activation, several times the cost of tracing the
model. Two exact shortcuts, each falling back to the reference when it cannot vouch for itself:

- piecewise-polynomial activations (ReLU family, hardtanh, hardsigmoid, hardswish): on every
  piece f is a polynomial in z, so the reference's sums over the nodes of a piece are sums of
  w_i z_i^k, read from prefix sums; the nodes where a piece starts are found with the reference's
  own float arithmetic, so every node lands on the same side of every kink;
- analytic activations (sigmoid, tanh, GELU, SiLU, Mish, softplus, log-sigmoid): the trapezoid
  rule converges exponentially for them, so a grid of ~160 nodes over the same range gives the
  same integral; it is accepted only when it agrees with the grid of half its nodes to 1e-10.
  The batch-shared moment comes from the same nodes by Mehler's formula (Hermite coefficients)
  instead of a product grid; it matches the reference's to ~1e-8, the reference's own error
  (its grid stops at +-6 sd, where the Gaussian weight is still ~6e-9).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from gradlint.activations import _W, _Z, ACTIVATIONS, _phi

TOL = 1e-10  # agreement demanded of the analytic path between two grid levels
CANCEL = 1e-7  # the piecewise path gives up when its terms cancel by more than this
_SMOOTH = frozenset({"sigmoid", "tanh", "gelu", "silu", "mish", "softplus", "logsigmoid"})

Poly = tuple[float, ...]  # coefficients in h, lowest degree first


@dataclass(frozen=True)
class _Pieces:
    """f and f' as polynomials on the intervals between ``kinks``; ``left[k]``: a node exactly
    at kink k belongs to the piece on its left (the reference's comparisons decide)."""

    kinks: tuple[float, ...]
    left: tuple[bool, ...]
    f: tuple[Poly, ...]
    df: tuple[Poly, ...]


def _pieces(name: str, a: dict[str, Any]) -> _Pieces | None:
    if name == "identity":
        return _Pieces((), (), ((0.0, 1.0),), ((1.0,),))
    if name == "relu":  # f' = (x > 0): 0 at the kink
        return _Pieces((0.0,), (True,), ((0.0,), (0.0, 1.0)), ((0.0,), (1.0,)))
    if name in ("leaky_relu", "prelu"):  # where(x > 0, x, s x)
        s = float(a["negative_slope"])
        return _Pieces((0.0,), (True,), ((0.0, s), (0.0, 1.0)), ((s,), (1.0,)))
    if name in ("relu6", "hardtanh", "hardsigmoid"):  # clamp: f' = (lo < x < hi)
        if name == "hardtanh":
            lo, hi = float(a["min_val"]), float(a["max_val"])
        else:
            lo, hi = (0.0, 6.0) if name == "relu6" else (-3.0, 3.0)
        if not lo < hi:
            return None
        if name == "hardsigmoid":
            return _Pieces((lo, hi), (True, False), ((0.0,), (0.5, 1 / 6), (1.0,)),
                           ((0.0,), (1 / 6,), (0.0,)))
        return _Pieces((lo, hi), (True, False), ((lo,), (0.0, 1.0), (hi,)),
                       ((0.0,), (1.0,), (0.0,)))
    if name == "hardswish":  # f' = 0 for x <= -3, 1 for x >= 3, (2x + 3)/6 between
        return _Pieces((-3.0, 3.0), (True, False), ((0.0,), (0.0, 0.5, 1 / 6), (0.0, 1.0)),
                       ((0.0,), (0.5, 1 / 3), (1.0,)))
    return None


# --------------------------------------------------------------------------------------------
# Piecewise polynomials: the reference grid's sums, from prefix sums
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prefix:
    z: list[float]  # the reference grid's nodes, as the reference's arithmetic sees them
    head: tuple[array, ...]  # head[k][i] = sum over nodes < i of w z^k
    tail: tuple[array, ...]  # tail[k][i] = sum over nodes >= i of w z^k
    mid: int


@lru_cache(maxsize=1)
def _prefix() -> _Prefix:
    """Built on first use (~10 ms, 2.5 MB); sums from the nearer end keep tail sums precise."""
    powers = torch.stack([_W * _Z ** k for k in range(5)])
    zero = torch.zeros(5, 1, dtype=torch.float64)
    head = torch.cat([zero, powers.cumsum(1)], 1)
    tail = torch.cat([powers.flip(1).cumsum(1).flip(1), zero], 1)
    return _Prefix(_Z.tolist(), tuple(array("d", row.tolist()) for row in head),
                   tuple(array("d", row.tolist()) for row in tail), len(_Z) // 2)


def _split(z: list[float], mean: float, sd: float, kink: float, left: bool) -> int:
    """How many nodes lie on the kink's left: those with mean + sd z < kink (<= when ``left``),
    as the reference computes ``mean + sd * _Z`` (h is nondecreasing in z)."""
    if sd == 0.0:
        return len(z) if (mean <= kink if left else mean < kink) else 0
    # a first guess from z alone; then exact, by the same float arithmetic as the reference
    guess = (bisect_right if left else bisect_left)(z, (kink - mean) / sd)
    i = max(min(guess, len(z)), 0)
    while i > 0 and not (mean + sd * z[i - 1] <= kink if left else mean + sd * z[i - 1] < kink):
        i -= 1
    while i < len(z) and (mean + sd * z[i] <= kink if left else mean + sd * z[i] < kink):
        i += 1
    return i


def _sums(p: _Prefix, i: int, j: int) -> list[float]:
    """sum over nodes i..j-1 of w z^k, k = 0..4."""
    if j <= p.mid:
        return [p.head[k][j] - p.head[k][i] for k in range(5)]
    if i >= p.mid:
        return [p.tail[k][i] - p.tail[k][j] for k in range(5)]
    m = p.mid
    return [(p.head[k][m] - p.head[k][i]) + (p.tail[k][m] - p.tail[k][j]) for k in range(5)]


def _in_z(poly: Poly, mean: float, sd: float) -> tuple[float, float, float]:
    """c0 + c1 h + c2 h^2 with h = mean + sd z, as a0 + a1 z + a2 z^2."""
    c0, c1, c2 = (*poly, 0.0, 0.0)[:3]
    return c0 + c1 * mean + c2 * mean * mean, (c1 + 2 * c2 * mean) * sd, c2 * sd * sd


def _piecewise(pieces: _Pieces, mean: float, sd: float) -> tuple[float, float, float] | None:
    """(E f, E f^2, E f'^2) over the reference grid, or None where cancellation would cost
    more than ~1e-9 of the result (far in a tail)."""
    p = _prefix()
    cuts = [0, *(_split(p.z, mean, sd, k, left) for k, left in
                 zip(pieces.kinks, pieces.left, strict=True)), len(p.z)]
    m1 = m2 = g2 = 0.0
    size1 = size2 = sizeg = 0.0
    for f, df, i, j in zip(pieces.f, pieces.df, cuts, cuts[1:], strict=False):
        if j <= i:
            continue
        s0, s1, s2, s3, s4 = _sums(p, i, j)
        a0, a1, a2 = _in_z(f, mean, sd)
        b0, b1, _ = _in_z(df, mean, sd)
        t1 = (a0 * s0, a1 * s1, a2 * s2)
        t2 = (a0 * a0 * s0, 2 * a0 * a1 * s1, (a1 * a1 + 2 * a0 * a2) * s2, 2 * a1 * a2 * s3,
              a2 * a2 * s4)
        tg = (b0 * b0 * s0, 2 * b0 * b1 * s1, b1 * b1 * s2)
        m1 += sum(t1)
        m2 += sum(t2)
        g2 += sum(tg)
        size1 += sum(map(abs, t1))
        size2 += sum(map(abs, t2))
        sizeg += sum(map(abs, tg))
    if (size2 * CANCEL > m2 or sizeg * CANCEL > g2 or size1 * CANCEL > math.sqrt(max(m2, 0.0))):
        return None
    return m1, m2, g2


# --------------------------------------------------------------------------------------------
# Analytic activations: coarse grids that agree with each other agree with the reference
# --------------------------------------------------------------------------------------------

MAX_LEVEL = 7  # 5,121 nodes; beyond that the reference grid is as cheap


def _start_level(base: int, *sds: float) -> int:
    """Finer grids for wider inputs: f(mean + sd z) varies sd times faster in z."""
    return base + max(0, math.ceil(math.log2(max(*sds, 1.0))))


def _agree(fine: list[float], coarse: list[float], scales: list[float], tol: float) -> bool:
    return all(abs(a - b) <= tol * s + 1e-300 for a, b, s in zip(fine, coarse, scales,
                                                                  strict=True))


HERMITE = 24  # terms of Mehler's series for S'


@lru_cache(maxsize=8)
def _rows(level: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nodes over [-10, 10] at spacing 0.5 / 2^level; the normalized Gaussian weights of this
    grid and of its even nodes (the grid one level coarser); and for each of the two, the
    weights times the orthonormal Hermite polynomials h_0..h_K."""
    z = torch.linspace(-10.0, 10.0, 40 * 2 ** level + 1, dtype=torch.float64)
    weights, hermite = [], []
    for nodes in (slice(None), slice(None, None, 2)):
        w = torch.zeros_like(z)
        w[nodes] = _phi(z[nodes])
        w = w / w.sum()
        weights.append(w)
        h_prev, h = torch.zeros_like(z), torch.ones_like(z)
        hermite.append(w)
        for k in range(HERMITE):  # h_{k+1} = (z h_k - sqrt(k) h_{k-1}) / sqrt(k + 1)
            h_prev, h = h, (z * h - math.sqrt(k) * h_prev) / math.sqrt(k + 1)
            hermite.append(w * h)
    return z, torch.stack(weights), torch.stack(hermite)


def _analytic(f: Callable[[torch.Tensor], torch.Tensor],
              df: Callable[[torch.Tensor], torch.Tensor], mean: float, sd: float, rho: float
              ) -> tuple[float, float, float, float | None] | None:
    """(E f, E f^2, E f'^2, S'); S' = E[f(h) f(h')] for h, h' sharing ``rho`` of their
    variance, by Mehler's formula sum_k c_k^2 rho^k over the Hermite coefficients c_k of
    f(mean + sd z) (None where that series converges too slowly)."""
    for level in range(_start_level(2, sd), MAX_LEVEL + 1):
        z, weights, hermite = _rows(level)
        h = mean + sd * z
        fx = f(h)
        dfx = df(h)
        # small matrix products only: elementwise ops on large tensors and large BLAS calls
        # go multi-threaded, and threads spin for milliseconds when the machine is busy
        (m1, m2, g2), coarse = (weights @ torch.stack([fx, fx * fx, dfx * dfx], 1)).tolist()
        if not _agree([m1, m2, g2], coarse, [math.sqrt(max(m2, 0.0)), m2, g2], TOL):
            continue
        if rho <= 0.0:
            return m1, m2, g2, m1 * m1
        coeffs = (hermite @ fx).tolist()
        fine = _mehler(coeffs[:HERMITE + 1], m2, rho)
        rough = _mehler(coeffs[HERMITE + 1:], coarse[1], rho)
        if fine is None or rough is None or not _agree([fine], [rough], [fine], TOL):
            return m1, m2, g2, None
        return m1, m2, g2, fine
    return None


def _mehler(coeffs: list[float], second: float, rho: float) -> float | None:
    """sum_k c_k^2 rho^k, or None unless the terms left out (at most rho^(K+1) times what
    Parseval leaves of E f^2) are below 1e-10 of it."""
    total = parseval = 0.0
    power = 1.0
    for c in coeffs:
        total += c * c * power
        parseval += c * c
        power *= rho
    rest = power * max(second - parseval, 0.0)
    return total if rest <= 1e-10 * total else None


def fast_moments(name: str, a: dict[str, Any], mean: float, var: float, shared_var: float
                 ) -> tuple[float, float, float, float | None] | None:
    """(E f, E f^2, E f'^2, S') as the reference computes them, S' None where the reference's
    product grid must compute it; None where no shortcut applies."""
    if not (math.isfinite(mean) and math.isfinite(var) and math.isfinite(shared_var)):
        return None
    act = ACTIVATIONS[name]
    sd = math.sqrt(max(var, 0.0))
    try:
        pieces = _pieces(name, a)
    except (KeyError, TypeError, ValueError):  # an attribute that is not a number
        return None
    sv = min(max(shared_var, 0.0), max(var, 0.0))
    nothing_shared = sv <= 1e-12 * max(var, 1e-30)  # beyond the mean: S' = (E f)^2
    if pieces is not None:
        main = _piecewise(pieces, mean, sd)
        if main is None:
            return None
        m1, m2, g2 = main
        return m1, m2, g2, m1 * m1 if nothing_shared else None
    if name not in _SMOOTH:
        return None
    return _analytic(lambda x: act.f(x, a), lambda x: act.df(x, a), mean, sd,
                     0.0 if nothing_shared else sv / max(var, 1e-300))
