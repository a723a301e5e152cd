"""Gaussian moments of the elementwise activations: what an activation does to the moments.

E f(h), E f(h)^2, E f'(h)^2 (and the batch-shared moment) for h ~ N(mean, var): by quadrature on
the fine grid of gradlint.estimate.normal_grid (the reference), or by the exact shortcuts of
gradlint.estimate.gaussian_fast. The functions themselves are in activation_functions, their
static facts in gradlint.core.op_kinds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from gradlint.core.op_kinds import HOMOGENEOUS, with_defaults
from gradlint.estimate.activation_functions import ACTIVATIONS, Activation
from gradlint.estimate.gaussian_fast import fast_moments
from gradlint.estimate.normal_grid import WI, WO, ZI, ZO, W, Z

__all__ = ["ACTIVATIONS", "HOMOGENEOUS", "Activation", "GaussianMoments", "gaussian_curvature",
           "gaussian_moments", "gaussian_slope", "negative_second_moment", "quadrature_moments",
           "scale_kept", "with_defaults"]


class GaussianMoments(NamedTuple):  # a tuple: one per activation call, cheap to build
    """E f, E f^2 and E f'^2 for h ~ N(mean, var), plus the batch-shared second moment."""

    mean: float
    second: float
    grad_sq: float
    shared: float


_MEMO: dict[tuple[Any, ...], GaussianMoments] = {}
# (name, *defaults) for each activation: the memo key's head when no attribute is given
# each activation's default attributes, shared by every call without attributes (read only)
_DEFAULT_ATTRS = {name: dict(act.defaults) for name, act in ACTIVATIONS.items()}
_DEFAULT_KEYS: dict[str, tuple[Any, ...]] = {
    name: (name, *act.defaults.items()) for name, act in ACTIVATIONS.items()}


def gaussian_moments(name: str, attrs: dict[str, Any], mean: float, var: float,
                     shared_var: float | None = 0.0) -> GaussianMoments:
    """Moments of f(h), h ~ N(mean, var); ``shared_var`` is the part of var shared across the
    batch (per-unit means), needed only for the batch-shared moment S' that BatchNorm uses;
    None where nothing will read S' (it is then NaN, and not computed: for a smooth activation
    that is half of the cost, for a piecewise one all but a few microseconds).

    The numbers of ``quadrature_moments``, but fast: remembered (the activations behind
    normalization layers all see the same input), and by the shortcuts of
    gradlint.estimate.gaussian_fast
    where one applies (at init a deep stack would otherwise spend most of its lint here)."""
    if attrs:
        a = with_defaults(name, attrs)
        key = (name, *a.items(), mean, var, shared_var)
    else:  # the same key as with_defaults would give, without building its dict on a hit
        a = None
        key = (*_DEFAULT_KEYS[name], mean, var, shared_var)
    try:
        found = _MEMO.get(key)
    except TypeError:  # an attribute that cannot be a key
        found = quadrature_moments(name, attrs, mean, var, shared_var or 0.0)
        return found if shared_var is not None else found._replace(shared=math.nan)
    if found is None:
        if a is None:
            a = _DEFAULT_ATTRS[name]
        sv = shared_var or 0.0  # nothing shared: the shortcut that skips S'
        fast = fast_moments(name, a, mean, var, sv)
        if fast is None:
            m1, m2, g2, shared = quadrature_moments(name, attrs, mean, var, sv)
        else:
            m1, m2, g2, fast_shared = fast
            if fast_shared is None:
                sv = min(max(sv, 0.0), max(var, 0.0))
                shared = _shared_moment(name, a, mean, sv, max(var - sv, 0.0))
            else:
                shared = fast_shared
        found = GaussianMoments(m1, m2, g2, shared if shared_var is not None else math.nan)
        if len(_MEMO) >= 4096:
            _MEMO.clear()
        _MEMO[key] = found
    return found


def _shared_moment(name: str, a: dict[str, Any], mean: float, sv: float,
                   inner_var: float) -> float:
    """S' = E_m[(E_z f(m + z))^2], m ~ N(mean, sv), z ~ N(0, inner_var), on the product grid."""
    m_nodes = mean + math.sqrt(sv) * ZO
    values = ACTIVATIONS[name].f(m_nodes[:, None] + math.sqrt(inner_var) * ZI[None, :], a)
    inner = (values * WI).sum(1)  # not a matmul: BLAS threads spin when the machine is busy
    return float((WO * inner * inner).sum())


def quadrature_moments(name: str, attrs: dict[str, Any], mean: float, var: float,
                       shared_var: float = 0.0) -> GaussianMoments:
    """The reference: ``gaussian_moments`` by quadrature on the fine grid, for every
    activation."""
    act = ACTIVATIONS[name]
    a = with_defaults(name, attrs)
    sd = math.sqrt(max(var, 0.0))
    h = mean + sd * Z
    fx = act.f(h, a)
    dfx = act.df(h, a)
    m1 = float((W * fx).sum())
    m2 = float((W * fx * fx).sum())
    g2 = float((W * dfx * dfx).sum())
    # S' = E_m[(E_z f(m + z))^2], m ~ N(mean, shared_var), z ~ N(0, var - shared_var)
    sv = min(max(shared_var, 0.0), max(var, 0.0))
    if sv <= 1e-12 * max(var, 1e-30):  # nothing shared beyond the mean: S' = (E f)^2
        return GaussianMoments(m1, m2, g2, m1 * m1)
    return GaussianMoments(m1, m2, g2, _shared_moment(name, a, mean, sv, max(var - sv, 0.0)))


Quadrature = Callable[[str, dict[str, Any], float, float], float]


def _remembered(fn: Quadrature) -> Quadrature:
    """Each fine-grid quadrature below costs ~0.2 ms; the layers behind normalization all ask
    with the same input, so results are kept (exact: same arguments, same number)."""
    memo: dict[tuple[Any, ...], float] = {}

    @functools.wraps(fn)
    def remembered(name: str, attrs: dict[str, Any], mean: float, var: float) -> float:
        try:  # without attributes, with_defaults's key without building its dict
            key = ((name, *with_defaults(name, attrs).items(), mean, var) if attrs
                   else (*_DEFAULT_KEYS[name], mean, var))
            found = memo.get(key)
        except TypeError:  # an attribute that cannot be a key
            return fn(name, attrs, mean, var)
        if found is None:
            if len(memo) >= 4096:
                memo.clear()
            found = memo[key] = fn(name, attrs, mean, var)
        return found

    return remembered


@_remembered
def negative_second_moment(name: str, attrs: dict[str, Any], mean: float, var: float) -> float:
    """E[f(h)^2; f(h) < 0] for h ~ N(mean, var): the input PReLU's slope learns from (it gets
    no gradient where its input is positive); 0 behind ReLU, sigmoid or softplus."""
    act = ACTIVATIONS[name]
    fx = act.f(mean + math.sqrt(max(var, 0.0)) * Z, with_defaults(name, attrs))
    return float((W * torch.where(fx < 0, fx * fx, torch.zeros_like(fx))).sum())


@_remembered
def gaussian_curvature(name: str, attrs: dict[str, Any], mean: float, var: float) -> float:
    """E f''(h) for h ~ N(mean, var), by Gaussian integration by parts: E[f'(h) z] / sd. It
    measures how a unit's slope rises with its input: 1/sqrt(2 pi var) for ReLU at mean 0, ~0
    for odd-curved sigmoid/tanh there."""
    sd = math.sqrt(max(var, 0.0))
    if sd <= 0.0:
        return 0.0
    act = ACTIVATIONS[name]
    dfx = act.df(mean + sd * Z, with_defaults(name, attrs))
    return float((W * dfx * Z).sum()) / sd


@_remembered
def gaussian_slope(name: str, attrs: dict[str, Any], mean: float, var: float) -> float:
    """E f'(h) for h ~ N(mean, var): the part of a gradient that an activation passes on
    unchanged at every position (1/2 for ReLU at mean 0); E f'(h)^2 is the whole."""
    act = ACTIVATIONS[name]
    dfx = act.df(mean + math.sqrt(max(var, 0.0)) * Z, with_defaults(name, attrs))
    return float((W * dfx).sum())


@_remembered
def scale_kept(name: str, attrs: dict[str, Any], mean: float, var: float) -> float:
    """What a later per-channel norm leaves of a rescaling of f's input around its mean, h ~
    N(mean, var): the mean-square share of (h - mean) f'(h) that is not a multiple of f(h) plus
    a constant (the norm divides out that part). 0 for ReLU at mean 0 (homogeneous), ~0.03 for
    GELU, more for a sigmoid."""
    sd = math.sqrt(max(var, 0.0))
    if sd <= 0.0:
        return 0.0
    act = ACTIVATIONS[name]
    a = with_defaults(name, attrs)
    h = mean + sd * Z
    u = (h - mean) * act.df(h, a)  # how f(h) moves as h - mean is rescaled
    uu = float((W * u * u).sum())
    if uu <= 0.0:
        return 0.0
    f = act.f(h, a)
    u = u - (W * u).sum()  # less the constant's part
    f = f - (W * f).sum()
    ff = float((W * f * f).sum())
    along = float((W * u * f).sum()) ** 2 / ff if ff > 0.0 else 0.0
    return max(float((W * u * u).sum()) - along, 0.0) / uu
