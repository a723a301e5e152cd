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
  (its grid stops at +-6 sd, where the Gaussian weight is still ~6e-9). When all of the
  variance is shared (as deep in a plain stack) h' = h, and it is E f^2 itself.

On a few hundred nodes torch's dispatch (~1 us per operation) costs more than the arithmetic,
so the analytic path runs on numpy arrays (~0.3 us per operation): the same nodes, weights,
acceptance test and Mehler series, with numpy twins of activations.py's f and f' (the same
formulas, to an ulp or two). Where f' cancels (1 - tanh^2 in saturation) the reference's E f'^2
carries the rounding of torch's own function, so the tanh twin uses torch's tanh there; exact
GELU uses torch's erf (numpy has none). What a twin cannot reproduce without overflow (softplus
with beta <= 0 or a threshold beyond e^x's range, |h| beyond 1e50) takes the same path on torch.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray

from gradlint.estimate.activation_functions import ACTIVATIONS
from gradlint.estimate.gaussian_piecewise import pieces_of, piecewise_moments
from gradlint.estimate.normal_grid import INV_SQRT_2PI, SQRT2, phi

_INF = math.inf
TOL = 1e-10  # agreement demanded of the analytic path between two grid levels
_SMOOTH = frozenset({"sigmoid", "tanh", "gelu", "silu", "mish", "softplus", "logsigmoid"})

Arr = NDArray[np.float64]


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
        w[nodes] = phi(z[nodes])
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
    f(mean + sd z) (None where that series converges too slowly). On torch tensors: the path
    of activations without a numpy twin (``_analytic_np`` computes the same on numpy arrays)."""
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
        if rho >= 1.0:  # all of the variance shared: h' = h, S' = E f^2
            return m1, m2, g2, m2
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


# --------------------------------------------------------------------------------------------
# The analytic path on numpy arrays: the same sums, without torch's ~1 us per operation
# --------------------------------------------------------------------------------------------

# Beyond this |h| the twins' powers (x^3) could overflow: such inputs take the torch path.
_NP_RANGE = 1e50
_SIG_SAFE = 700.0  # e^x overflows beyond ~709.78


class _Unfit(Exception):
    """A twin that cannot reproduce its torch activation for these attributes."""


def _np_sig(x: Arr, lo: float) -> Arr:
    """torch.sigmoid's 1 / (1 + e^-x), bit for bit but in ~1e-5 of the points x > 5 (where
    1 - sigmoid cancels; numpy's e^x is torch's); where some x < -700 (e^-x would overflow,
    with a warning), the equal e^x / (1 + e^x) for the negative ones. ``lo``: the smallest x."""
    if lo > -_SIG_SAFE:
        return 1.0 / (1.0 + np.exp(-x))
    e = np.exp(-np.abs(x))
    r = 1.0 / (1.0 + e)
    return np.where(x >= 0.0, r, e * r)


def _via_torch(fn: Callable[[torch.Tensor], torch.Tensor], x: Arr) -> Arr:
    """One torch function on x's memory: erf, which numpy lacks, and torch's own tanh."""
    return fn(torch.from_numpy(x)).numpy()


# Each twin: (f(x), f'(x)) for the activation's attributes ``a``, on x whose smallest and
# largest values are ``lo`` and ``hi`` (the grid's ends: the cheaper form where no clamp can
# act). Same formulas as activations.py's torch versions, to a few ulp.

def _tw_sigmoid(x: Arr, a: dict[str, Any], lo: float, hi: float) -> tuple[Arr, Arr]:
    s = _np_sig(x, lo)
    return s, s * (1.0 - s)


def _tanh_saturated(lo: float, hi: float) -> bool:
    """f' = 1 - tanh^2 cancels where tanh saturates: there the reference's E f'^2 carries the
    rounding of torch's tanh (~1e-16 / f' relative), and numpy's tanh, which rounds 9% of its
    values the other way, would miss it by up to ~1e-7. So torch's tanh where the bulk of
    E f'^2 (near |mean| - 4 var) has f' < 1e-5, |h| > 6 (mean = (lo + hi) / 2, sd =
    (hi - lo) / 20)."""
    return 0.5 * abs(lo + hi) - 0.01 * (hi - lo) ** 2 > 6.0


def _tw_tanh(x: Arr, a: dict[str, Any], lo: float, hi: float) -> tuple[Arr, Arr]:
    t = _via_torch(torch.tanh, x) if _tanh_saturated(lo, hi) else np.tanh(x)
    return t, 1.0 - t * t


def _tw_silu(x: Arr, a: dict[str, Any], lo: float, hi: float) -> tuple[Arr, Arr]:
    s = _np_sig(x, lo)
    return x * s, s * (1.0 + x * (1.0 - s))


_GELU_C = math.sqrt(2 / math.pi)
_GELU_C1 = _GELU_C * 0.044715  # u = c (x + 0.044715 x^3) = x (c + c1 x^2)
_GELU_C3 = _GELU_C * 3 * 0.044715  # du/dx = c + c3 x^2


def _tw_gelu(x: Arr, a: dict[str, Any], lo: float, hi: float) -> tuple[Arr, Arr]:
    xx = x * x
    if a.get("approximate", "none") == "tanh":
        t = np.tanh(x * (_GELU_C + _GELU_C1 * xx))
        half_x = 0.5 * x
        one_t = 1.0 + t
        return half_x * one_t, 0.5 * one_t + half_x * (1.0 - t * t) * (_GELU_C + _GELU_C3 * xx)
    p = 0.5 * (1.0 + _via_torch(torch.erf, x / SQRT2))
    return x * p, p + x * (INV_SQRT_2PI * np.exp(-0.5 * xx))


def _tw_mish(x: Arr, a: dict[str, Any], lo: float, hi: float) -> tuple[Arr, Arr]:
    if hi <= 20.0:  # softplus's threshold: log1p(e^x) throughout
        e = np.exp(x)
        t = np.tanh(np.log1p(e))
        s = e / (1.0 + e)
    else:
        t = np.tanh(np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0)))))
        s = _np_sig(x, lo)
    return x * t, t + x * (1.0 - t * t) * s


def _tw_softplus(x: Arr, a: dict[str, Any], lo: float, hi: float) -> tuple[Arr, Arr]:
    try:
        beta, threshold = float(a["beta"]), float(a["threshold"])
    except (KeyError, TypeError, ValueError):
        raise _Unfit from None
    if not beta > 0.0:  # torch divides by 0 (or flips the clamp)
        raise _Unfit
    bx = x if beta == 1.0 else beta * x  # x * 1.0 is x: torch's numbers either way
    top = beta * hi  # the largest beta x (rounding is monotonic)
    if top <= threshold and top <= 700.0:  # no clamp acts, e^(beta x) is finite
        e = np.exp(bx)
        soft = np.log1p(e)
        return soft if beta == 1.0 else soft / beta, e / (1.0 + e)
    if not threshold <= 700.0:  # torch's e^(beta x) overflows to inf below the threshold
        raise _Unfit
    above = bx > threshold
    soft = np.log1p(np.exp(np.minimum(bx, threshold))) / beta
    return np.where(above, x, soft), np.where(above, 1.0, _np_sig(bx, beta * lo))


def _tw_logsigmoid(x: Arr, a: dict[str, Any], lo: float, hi: float) -> tuple[Arr, Arr]:
    """-softplus(-x) (threshold 20), f' = sigmoid(-x)."""
    if lo >= -20.0:
        e = np.exp(-x)
        return -np.log1p(e), e / (1.0 + e)
    nx = -x
    soft = np.where(nx > 20.0, nx, np.log1p(np.exp(np.minimum(nx, 20.0))))
    return -soft, _np_sig(nx, -hi)


_TWINS: dict[str, Callable[[Arr, dict[str, Any], float, float], tuple[Arr, Arr]]] = {
    "sigmoid": _tw_sigmoid, "tanh": _tw_tanh, "silu": _tw_silu, "gelu": _tw_gelu,
    "mish": _tw_mish, "softplus": _tw_softplus, "logsigmoid": _tw_logsigmoid,
}


class _Level(NamedTuple):
    """One level's read-only grid (``_rows(level)`` on numpy: nodes z, the weights transposed,
    nodes x 2 for the fine and the coarse grid, the Hermite rows) and the scratch arrays a call
    fills in place: h, and the rows f, f^2, f'^2 that one product with the weights sums (no
    array per operation, no stacking copy: 7.5 -> 6.3 us per tanh call). Scratch is per
    thread, so that two threads linting at once never share it."""

    z: Arr
    weights: Arr
    hermite: Arr
    h: Arr
    rows: Arr  # 3 x nodes: f, f^2, f'^2
    f: Arr  # rows[0]
    f_sq: Arr  # rows[1]
    df_sq: Arr  # rows[2]


_NP_GRIDS: dict[int, tuple[Arr, Arr, Arr]] = {}
_MEHLER_POWERS = np.array([(k, 0.0) for k in range(HERMITE + 1)])  # rho ** this: [rho^k, 1]


class _Scratch(threading.local):
    """This thread's levels, built on first use (and freed with the thread)."""

    def __init__(self) -> None:
        self.levels: list[_Level | None] = [None] * (MAX_LEVEL + 1)


_SCRATCH = _Scratch()


def _np_level(level: int) -> _Level:
    grid = _NP_GRIDS.get(level)
    if grid is None:
        z, weights, hermite = _rows(level)
        # weights in Fortran order: the one product per call takes BLAS's cheaper path
        grid = z.numpy(), np.asfortranarray(weights.numpy().T), hermite.numpy()
        for r in grid:
            r.setflags(write=False)
        _NP_GRIDS[level] = grid
    rows = np.zeros((3, len(grid[0])))
    found = _Level(*grid, np.zeros(len(grid[0])), rows, rows[0], rows[1], rows[2])
    _SCRATCH.levels[level] = found
    return found


def _fill_tanh(h: Arr, lo: float, hi: float, at: _Level) -> None:
    """_tw_tanh's numbers straight into the rows: f^2 is t^2 and f' = 1 - t^2 reuses it."""
    if _tanh_saturated(lo, hi):
        torch.tanh(torch.from_numpy(h), out=torch.from_numpy(at.f))
    else:
        np.tanh(h, out=at.f)
    np.multiply(at.f, at.f, out=at.f_sq)
    np.subtract(1.0, at.f_sq, out=at.df_sq)
    np.multiply(at.df_sq, at.df_sq, out=at.df_sq)


def _fill_sigmoid(h: Arr, lo: float, hi: float, at: _Level) -> None:
    """_tw_sigmoid's numbers straight into the rows (f' = s (1 - s), computed in df_sq)."""
    s, ds = at.f, at.df_sq
    if lo > -_SIG_SAFE:
        np.negative(h, out=s)
        np.exp(s, out=s)
        s += 1.0
        np.divide(1.0, s, out=s)
    else:
        s[:] = _np_sig(h, lo)
    np.subtract(1.0, s, out=ds)
    ds *= s
    np.multiply(s, s, out=at.f_sq)
    np.multiply(ds, ds, out=ds)


# Activations whose twin has an in-place form (the saturating ones a deep stack repeats).
_FILLS: dict[str, Callable[[Arr, float, float, _Level], None]] = {
    "tanh": _fill_tanh, "sigmoid": _fill_sigmoid,
}


def _analytic_np(twin: Callable[[Arr, dict[str, Any], float, float], tuple[Arr, Arr]],
                 a: dict[str, Any], mean: float, sd: float, rho: float,
                 fill: Callable[[Arr, float, float, _Level], None] | None = None
                 ) -> tuple[float, float, float, float | None] | None:
    """``_analytic`` on numpy arrays: the same levels, nodes, weights, acceptance test and
    Mehler series, ~0.3 us per array operation instead of torch's ~1 us; ``fill``, where given,
    computes the twin's rows in place. Raises _Unfit where the twin cannot reproduce its
    activation."""
    lo = mean - 10.0 * sd  # the ends of h = z sd + mean, z in [-10, 10], as numpy rounds them
    hi = mean + 10.0 * sd
    level = 2 if sd <= 1.0 else 2 + math.ceil(math.log2(sd))  # _start_level(2, sd)
    levels = _SCRATCH.levels
    while level <= MAX_LEVEL:
        at = levels[level] or _np_level(level)
        level += 1
        h = np.multiply(at.z, sd, out=at.h)
        h += mean
        if fill is not None:
            fill(h, lo, hi, at)
        else:
            fx, dfx = twin(h, a, lo, hi)
            at.f[:] = fx
            np.multiply(fx, fx, out=at.f_sq)
            np.multiply(dfx, dfx, out=at.df_sq)
        (m1, c1), (m2, c2), (g2, cg) = at.rows.dot(at.weights).tolist()
        if not (abs(m1 - c1) <= TOL * math.sqrt(max(m2, 0.0)) + 1e-300
                and abs(m2 - c2) <= TOL * m2 + 1e-300 and abs(g2 - cg) <= TOL * g2 + 1e-300):
            continue
        if rho <= 0.0:
            return m1, m2, g2, m1 * m1
        if rho >= 1.0:  # all of the variance shared: h' = h, S' = E f^2
            return m1, m2, g2, m2
        # _mehler for both grids at once: Mehler's sum_k c_k^2 rho^k and Parseval's sum_k c_k^2
        coeffs = at.hermite.dot(at.f)
        coeffs *= coeffs
        (fine, parseval), (rough, parseval_c) = coeffs.reshape(2, HERMITE + 1).dot(
            rho ** _MEHLER_POWERS).tolist()
        left = rho ** (HERMITE + 1)  # times what Parseval leaves of E f^2: the terms left out
        if (left * max(m2 - parseval, 0.0) <= 1e-10 * fine
                and left * max(c2 - parseval_c, 0.0) <= 1e-10 * rough
                and abs(fine - rough) <= TOL * fine + 1e-300):
            return m1, m2, g2, fine
        return m1, m2, g2, None
    return None


def fast_moments(name: str, a: dict[str, Any], mean: float, var: float, shared_var: float
                 ) -> tuple[float, float, float, float | None] | None:
    """(E f, E f^2, E f'^2, S') as the reference computes them, S' None where the reference's
    product grid must compute it; None where no shortcut applies."""
    if not (-_INF < mean < _INF and -_INF < var < _INF and -_INF < shared_var < _INF):
        return None  # not finite (NaN fails every comparison)
    sd = math.sqrt(var) if var > 0.0 else 0.0
    if shared_var <= 0.0:  # the common case, where nothing reads S' (estimate: shared_var None)
        nothing_shared, rho = True, 0.0
    else:
        sv = min(shared_var, max(var, 0.0))
        nothing_shared = sv <= 1e-12 * max(var, 1e-30)  # beyond the mean: S' = (E f)^2
        rho = 0.0 if nothing_shared else sv / max(var, 1e-300)
    twin = _TWINS.get(name)
    if twin is not None and abs(mean) + 10.0 * sd <= _NP_RANGE:
        try:
            return _analytic_np(twin, a, mean, sd, rho, _FILLS.get(name))
        except _Unfit:
            pass
    act = ACTIVATIONS[name]
    try:
        pieces = pieces_of(name, a)
    except (KeyError, TypeError, ValueError):  # an attribute that is not a number
        return None
    if pieces is not None:
        main = piecewise_moments(pieces, mean, sd)
        if main is None:
            return None
        m1, m2, g2 = main
        return m1, m2, g2, m1 * m1 if nothing_shared else None
    if name not in _SMOOTH:
        return None
    return _analytic(lambda x: act.f(x, a), lambda x: act.df(x, a), mean, sd, rho)
