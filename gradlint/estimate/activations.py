"""Elementwise activations: value, derivative, sup|f'| and whether they saturate.

Derivatives are written out by hand (not taken from autograd) so the test suite can check the
catalogue against autograd independently. Evaluated on float64 tensors.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

Fn = Callable[[Tensor, dict[str, Any]], Tensor]
SQRT2 = math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Activation:
    """One elementwise op. ``saturating``: f' -> 0 on both sides (DESIGN §4); ``dead``: the side
    where f' -> 0 for one-sided activations (documentation only)."""

    name: str
    f: Fn
    df: Fn
    sup: Callable[[dict[str, Any]], float]
    saturating: bool
    defaults: dict[str, Any]


def _sig(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


def _phi(x: Tensor) -> Tensor:  # standard normal pdf
    return INV_SQRT_2PI * torch.exp(-0.5 * x * x)


def _Phi(x: Tensor) -> Tensor:  # standard normal cdf
    return 0.5 * (1.0 + torch.erf(x / SQRT2))


def _softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    bx = beta * x
    soft = torch.log1p(torch.exp(torch.clamp(bx, max=threshold))) / beta
    return torch.where(bx > threshold, x, soft)


def _gelu(x: Tensor, a: dict[str, Any]) -> Tensor:
    if a.get("approximate", "none") == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return x * _Phi(x)


def _dgelu(x: Tensor, a: dict[str, Any]) -> Tensor:
    if a.get("approximate", "none") == "tanh":
        c = math.sqrt(2 / math.pi)
        u = c * (x + 0.044715 * x**3)
        t = torch.tanh(u)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    return _Phi(x) + x * _phi(x)


def _mish(x: Tensor, a: dict[str, Any]) -> Tensor:
    return x * torch.tanh(_softplus(x))


def _dmish(x: Tensor, a: dict[str, Any]) -> Tensor:
    t = torch.tanh(_softplus(x))
    return t + x * (1 - t * t) * _sig(x)


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _hardtanh_sup(a: dict[str, Any]) -> float:
    return 1.0 if a["max_val"] > a["min_val"] else 0.0


# positively homogeneous, f(a h) = a f(h) for a > 0: a weight behind them keeps its scale
# invariance under a norm (GL103), a stack of them keeps Euler's identity (coherence.py)
HOMOGENEOUS = frozenset({"relu", "leaky_relu", "prelu"})

ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("identity", lambda x, a: x, lambda x, a: torch.ones_like(x), lambda a: 1.0,
                   False, {}),
        Activation("sigmoid", lambda x, a: _sig(x), lambda x, a: _sig(x) * (1 - _sig(x)),
                   lambda a: 0.25, True, {}),
        Activation("tanh", lambda x, a: torch.tanh(x), lambda x, a: 1 - torch.tanh(x) ** 2,
                   lambda a: 1.0, True, {}),
        Activation("hardtanh",
                   lambda x, a: torch.clamp(x, a["min_val"], a["max_val"]),
                   lambda x, a: ((x > a["min_val"]) & (x < a["max_val"])).to(x.dtype),
                   _hardtanh_sup, True, {"min_val": -1.0, "max_val": 1.0}),
        Activation("relu6", lambda x, a: torch.clamp(x, 0.0, 6.0),
                   lambda x, a: ((x > 0) & (x < 6)).to(x.dtype), lambda a: 1.0, False, {}),
        Activation("hardsigmoid", lambda x, a: torch.clamp(x / 6 + 0.5, 0.0, 1.0),
                   lambda x, a: ((x > -3) & (x < 3)).to(x.dtype) / 6, lambda a: 1 / 6, True, {}),
        Activation("softsign", lambda x, a: x / (1 + x.abs()), lambda x, a: 1 / (1 + x.abs()) ** 2,
                   lambda a: 1.0, True, {}),
        Activation("relu", lambda x, a: torch.clamp(x, min=0.0), lambda x, a: (x > 0).to(x.dtype),
                   lambda a: 1.0, False, {}),
        Activation("leaky_relu",
                   lambda x, a: torch.where(x > 0, x, a["negative_slope"] * x),
                   lambda x, a: torch.where(x > 0, torch.ones_like(x),
                                            torch.full_like(x, a["negative_slope"])),
                   lambda a: max(1.0, abs(a["negative_slope"])), False, {"negative_slope": 0.01}),
        Activation("prelu",
                   lambda x, a: torch.where(x > 0, x, a["negative_slope"] * x),
                   lambda x, a: torch.where(x > 0, torch.ones_like(x),
                                            torch.full_like(x, a["negative_slope"])),
                   lambda a: max(1.0, abs(a["negative_slope"])), False, {"negative_slope": 0.25}),
        Activation("elu",
                   lambda x, a: torch.where(x > 0, x, a["alpha"] * torch.expm1(x)),
                   lambda x, a: torch.where(x > 0, torch.ones_like(x), a["alpha"] * torch.exp(x)),
                   lambda a: max(1.0, a["alpha"]), False, {"alpha": 1.0}),
        Activation("celu",
                   lambda x, a: torch.where(x > 0, x, a["alpha"] * torch.expm1(x / a["alpha"])),
                   lambda x, a: torch.where(x > 0, torch.ones_like(x), torch.exp(x / a["alpha"])),
                   lambda a: 1.0, False, {"alpha": 1.0}),
        Activation("selu",
                   lambda x, a: _SELU_SCALE * torch.where(x > 0, x, _SELU_ALPHA * torch.expm1(x)),
                   lambda x, a: _SELU_SCALE * torch.where(x > 0, torch.ones_like(x),
                                                          _SELU_ALPHA * torch.exp(x)),
                   lambda a: _SELU_SCALE * _SELU_ALPHA, False, {}),
        Activation("gelu", _gelu, _dgelu,
                   lambda a: 1.12900 if a.get("approximate", "none") == "tanh" else 1.12891,
                   False, {"approximate": "none"}),
        Activation("silu", lambda x, a: x * _sig(x),
                   lambda x, a: _sig(x) * (1 + x * (1 - _sig(x))), lambda a: 1.09984, False, {}),
        Activation("mish", _mish, _dmish, lambda a: 1.08850, False, {}),
        Activation("softplus",
                   lambda x, a: _softplus(x, a["beta"], a["threshold"]),
                   lambda x, a: torch.where(a["beta"] * x > a["threshold"], torch.ones_like(x),
                                            _sig(a["beta"] * x)),
                   lambda a: 1.0, False, {"beta": 1.0, "threshold": 20.0}),
        Activation("logsigmoid", lambda x, a: -_softplus(-x), lambda x, a: _sig(-x),
                   lambda a: 1.0, False, {}),
        Activation("hardswish",
                   lambda x, a: x * torch.clamp(x + 3, 0.0, 6.0) / 6,
                   lambda x, a: torch.where(
                       x <= -3, torch.zeros_like(x),
                       torch.where(x >= 3, torch.ones_like(x), (2 * x + 3) / 6)),
                   lambda a: 1.5, False, {}),
    ]
}

# A fine grid in standard units: step-shaped derivatives (relu, hardtanh) integrate to ~1e-4.
_Z = torch.linspace(-10.0, 10.0, 32000, dtype=torch.float64)  # even: no node at 0; < torch grain
_W = _phi(_Z)
_W = _W / _W.sum()
# A coarser product grid for the nested integral of the batch-shared moment (kept under torch's
# parallel grain size: threads cost more than they save on tensors this small).
_ZO = torch.linspace(-6.0, 6.0, 160, dtype=torch.float64)
_WO = _phi(_ZO) / _phi(_ZO).sum()
_ZI = torch.linspace(-6.0, 6.0, 150, dtype=torch.float64)
_WI = _phi(_ZI) / _phi(_ZI).sum()


def with_defaults(name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    merged = dict(ACTIVATIONS[name].defaults)
    merged.update({k: v for k, v in attrs.items() if k in merged})
    return merged


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
_FAST: list[Callable[..., Any]] = []  # gradlint.estimate.gaussian_fast.fast_moments, once imported


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
        if not _FAST:
            from gradlint.estimate.gaussian_fast import fast_moments  # it reads this module's grids

            _FAST.append(fast_moments)
        sv = shared_var or 0.0  # nothing shared: the shortcut that skips S'
        fast = _FAST[0](name, a, mean, var, sv)
        if fast is None:
            m1, m2, g2, shared = quadrature_moments(name, attrs, mean, var, sv)
        else:
            m1, m2, g2, shared = fast
            if shared is None:
                sv = min(max(sv, 0.0), max(var, 0.0))
                shared = _shared_moment(name, a, mean, sv, max(var - sv, 0.0))
        found = GaussianMoments(m1, m2, g2, shared if shared_var is not None else math.nan)
        if len(_MEMO) >= 4096:
            _MEMO.clear()
        _MEMO[key] = found
    return found


def _shared_moment(name: str, a: dict[str, Any], mean: float, sv: float,
                   inner_var: float) -> float:
    """S' = E_m[(E_z f(m + z))^2], m ~ N(mean, sv), z ~ N(0, inner_var), on the product grid."""
    m_nodes = mean + math.sqrt(sv) * _ZO
    values = ACTIVATIONS[name].f(m_nodes[:, None] + math.sqrt(inner_var) * _ZI[None, :], a)
    inner = (values * _WI).sum(1)  # not a matmul: BLAS threads spin when the machine is busy
    return float((_WO * inner * inner).sum())


def quadrature_moments(name: str, attrs: dict[str, Any], mean: float, var: float,
                       shared_var: float = 0.0) -> GaussianMoments:
    """The reference: ``gaussian_moments`` by quadrature on the fine grid, for every
    activation."""
    act = ACTIVATIONS[name]
    a = with_defaults(name, attrs)
    sd = math.sqrt(max(var, 0.0))
    h = mean + sd * _Z
    fx = act.f(h, a)
    dfx = act.df(h, a)
    m1 = float((_W * fx).sum())
    m2 = float((_W * fx * fx).sum())
    g2 = float((_W * dfx * dfx).sum())
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
        try:
            key = (name, *with_defaults(name, attrs).items(), mean, var)
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
    fx = act.f(mean + math.sqrt(max(var, 0.0)) * _Z, with_defaults(name, attrs))
    return float((_W * torch.where(fx < 0, fx * fx, torch.zeros_like(fx))).sum())


@_remembered
def gaussian_curvature(name: str, attrs: dict[str, Any], mean: float, var: float) -> float:
    """E f''(h) for h ~ N(mean, var), by Gaussian integration by parts: E[f'(h) z] / sd. It
    measures how a unit's slope rises with its input: 1/sqrt(2 pi var) for ReLU at mean 0, ~0
    for odd-curved sigmoid/tanh there."""
    sd = math.sqrt(max(var, 0.0))
    if sd <= 0.0:
        return 0.0
    act = ACTIVATIONS[name]
    dfx = act.df(mean + sd * _Z, with_defaults(name, attrs))
    return float((_W * dfx * _Z).sum()) / sd


@_remembered
def gaussian_slope(name: str, attrs: dict[str, Any], mean: float, var: float) -> float:
    """E f'(h) for h ~ N(mean, var): the part of a gradient that an activation passes on
    unchanged at every position (1/2 for ReLU at mean 0); E f'(h)^2 is the whole."""
    act = ACTIVATIONS[name]
    dfx = act.df(mean + math.sqrt(max(var, 0.0)) * _Z, with_defaults(name, attrs))
    return float((_W * dfx).sum())
