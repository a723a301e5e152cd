"""The exact shortcut for piecewise-polynomial activations (ReLU family, hardtanh, hardsigmoid,
hardswish): the reference quadrature's sums, read from prefix sums.

On every piece f is a polynomial in z, so the reference's sums over the nodes of a piece are
sums of w_i z_i^k; the nodes where a piece starts are found with the reference's own float
arithmetic, so every node lands on the same side of every kink (gradlint.estimate.gaussian_fast
tries this path for those activations).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from gradlint.estimate.normal_grid import W, Z

CANCEL = 1e-7  # the piecewise path gives up when its terms cancel by more than this
Poly = tuple[float, ...]  # coefficients in h, lowest degree first


@dataclass(frozen=True)
class Pieces:
    """f and f' as polynomials on the intervals between ``kinks``; ``left[k]``: a node exactly
    at kink k belongs to the piece on its left (the reference's comparisons decide)."""

    kinks: tuple[float, ...]
    left: tuple[bool, ...]
    f: tuple[Poly, ...]
    df: tuple[Poly, ...]


def pieces_of(name: str, a: dict[str, Any]) -> Pieces | None:
    if name == "identity":
        return Pieces((), (), ((0.0, 1.0),), ((1.0,),))
    if name == "relu":  # f' = (x > 0): 0 at the kink
        return Pieces((0.0,), (True,), ((0.0,), (0.0, 1.0)), ((0.0,), (1.0,)))
    if name in ("leaky_relu", "prelu"):  # where(x > 0, x, s x)
        s = float(a["negative_slope"])
        return Pieces((0.0,), (True,), ((0.0, s), (0.0, 1.0)), ((s,), (1.0,)))
    if name in ("relu6", "hardtanh", "hardsigmoid"):  # clamp: f' = (lo < x < hi)
        if name == "hardtanh":
            lo, hi = float(a["min_val"]), float(a["max_val"])
        else:
            lo, hi = (0.0, 6.0) if name == "relu6" else (-3.0, 3.0)
        if not lo < hi:
            return None
        if name == "hardsigmoid":
            return Pieces((lo, hi), (True, False), ((0.0,), (0.5, 1 / 6), (1.0,)),
                           ((0.0,), (1 / 6,), (0.0,)))
        return Pieces((lo, hi), (True, False), ((lo,), (0.0, 1.0), (hi,)),
                       ((0.0,), (1.0,), (0.0,)))
    if name == "hardswish":  # f' = 0 for x <= -3, 1 for x >= 3, (2x + 3)/6 between
        return Pieces((-3.0, 3.0), (True, False), ((0.0,), (0.0, 0.5, 1 / 6), (0.0, 1.0)),
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
    powers = torch.stack([W * Z ** k for k in range(5)])
    zero = torch.zeros(5, 1, dtype=torch.float64)
    head = torch.cat([zero, powers.cumsum(1)], 1)
    tail = torch.cat([powers.flip(1).cumsum(1).flip(1), zero], 1)
    return _Prefix(Z.tolist(), tuple(array("d", row.tolist()) for row in head),
                   tuple(array("d", row.tolist()) for row in tail), len(Z) // 2)


def _split(z: list[float], mean: float, sd: float, kink: float, left: bool) -> int:
    """How many nodes lie on the kink's left: those with mean + sd z < kink (<= when ``left``),
    as the reference computes ``mean + sd * Z`` (h is nondecreasing in z)."""
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


def piecewise_moments(pieces: Pieces, mean: float, sd: float) -> tuple[float, float, float] | None:
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
