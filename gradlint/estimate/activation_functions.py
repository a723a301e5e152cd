"""Elementwise activations as functions: f and f' on float64 tensors, for the Gaussian integrals.

Derivatives are written out by hand (not taken from autograd) so the test suite can check them
against autograd independently. An activation's static facts (saturating, sup|f'|, default
attributes) are the IR's, in gradlint.core.op_kinds; ``Activation`` reads them from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gradlint.core.op_kinds import ELEMENTWISE, SELU_ALPHA, SELU_SCALE
from gradlint.estimate.normal_grid import Phi, phi

Fn = Callable[[Tensor, dict[str, Any]], Tensor]


@dataclass(frozen=True)
class Activation:
    """One elementwise op: f and f' here, its static facts from gradlint.core.op_kinds."""

    name: str
    f: Fn
    df: Fn

    @property
    def saturating(self) -> bool:
        return ELEMENTWISE[self.name].saturating

    @property
    def sup(self) -> Callable[[dict[str, Any]], float]:
        return ELEMENTWISE[self.name].sup

    @property
    def defaults(self) -> dict[str, Any]:
        return ELEMENTWISE[self.name].defaults


def _sig(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


def _softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    bx = beta * x
    soft = torch.log1p(torch.exp(torch.clamp(bx, max=threshold))) / beta
    return torch.where(bx > threshold, x, soft)


def _gelu(x: Tensor, a: dict[str, Any]) -> Tensor:
    if a.get("approximate", "none") == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return x * Phi(x)


def _dgelu(x: Tensor, a: dict[str, Any]) -> Tensor:
    if a.get("approximate", "none") == "tanh":
        c = math.sqrt(2 / math.pi)
        u = c * (x + 0.044715 * x**3)
        t = torch.tanh(u)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    return Phi(x) + x * phi(x)


def _mish(x: Tensor, a: dict[str, Any]) -> Tensor:
    return x * torch.tanh(_softplus(x))


def _dmish(x: Tensor, a: dict[str, Any]) -> Tensor:
    t = torch.tanh(_softplus(x))
    return t + x * (1 - t * t) * _sig(x)


def _leaky(x: Tensor, a: dict[str, Any]) -> Tensor:
    return torch.where(x > 0, x, a["negative_slope"] * x)


def _dleaky(x: Tensor, a: dict[str, Any]) -> Tensor:
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, a["negative_slope"]))


_FUNCTIONS: dict[str, tuple[Fn, Fn]] = {
    "identity": (lambda x, a: x, lambda x, a: torch.ones_like(x)),
    "sigmoid": (lambda x, a: _sig(x), lambda x, a: _sig(x) * (1 - _sig(x))),
    "tanh": (lambda x, a: torch.tanh(x), lambda x, a: 1 - torch.tanh(x) ** 2),
    "hardtanh": (lambda x, a: torch.clamp(x, a["min_val"], a["max_val"]),
                 lambda x, a: ((x > a["min_val"]) & (x < a["max_val"])).to(x.dtype)),
    "relu6": (lambda x, a: torch.clamp(x, 0.0, 6.0),
              lambda x, a: ((x > 0) & (x < 6)).to(x.dtype)),
    "hardsigmoid": (lambda x, a: torch.clamp(x / 6 + 0.5, 0.0, 1.0),
                    lambda x, a: ((x > -3) & (x < 3)).to(x.dtype) / 6),
    "softsign": (lambda x, a: x / (1 + x.abs()), lambda x, a: 1 / (1 + x.abs()) ** 2),
    "relu": (lambda x, a: torch.clamp(x, min=0.0), lambda x, a: (x > 0).to(x.dtype)),
    "leaky_relu": (_leaky, _dleaky),
    "prelu": (_leaky, _dleaky),
    "elu": (lambda x, a: torch.where(x > 0, x, a["alpha"] * torch.expm1(x)),
            lambda x, a: torch.where(x > 0, torch.ones_like(x), a["alpha"] * torch.exp(x))),
    "celu": (lambda x, a: torch.where(x > 0, x, a["alpha"] * torch.expm1(x / a["alpha"])),
             lambda x, a: torch.where(x > 0, torch.ones_like(x), torch.exp(x / a["alpha"]))),
    "selu": (lambda x, a: SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * torch.expm1(x)),
             lambda x, a: SELU_SCALE * torch.where(x > 0, torch.ones_like(x),
                                                    SELU_ALPHA * torch.exp(x))),
    "gelu": (_gelu, _dgelu),
    "silu": (lambda x, a: x * _sig(x), lambda x, a: _sig(x) * (1 + x * (1 - _sig(x)))),
    "mish": (_mish, _dmish),
    "softplus": (lambda x, a: _softplus(x, a["beta"], a["threshold"]),
                 lambda x, a: torch.where(a["beta"] * x > a["threshold"], torch.ones_like(x),
                                          _sig(a["beta"] * x))),
    "logsigmoid": (lambda x, a: -_softplus(-x), lambda x, a: _sig(-x)),
    "hardswish": (lambda x, a: x * torch.clamp(x + 3, 0.0, 6.0) / 6,
                  lambda x, a: torch.where(
                      x <= -3, torch.zeros_like(x),
                      torch.where(x >= 3, torch.ones_like(x), (2 * x + 3) / 6))),
}

# every elementwise op key of the IR, with its functions (a missing pair fails at import)
ACTIVATIONS: dict[str, Activation] = {
    name: Activation(name, *_FUNCTIONS[name]) for name in ELEMENTWISE}
