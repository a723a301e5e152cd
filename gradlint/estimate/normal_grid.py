"""The standard normal's quadrature grids and densities, shared by every Gaussian integral.

The reference quadrature (gradlint.estimate.activations) and its exact shortcuts
(gradlint.estimate.gaussian_fast, gaussian_piecewise) must sum over the very same nodes and
weights to give the same numbers, so the grids live here, once, and both import them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SQRT2 = math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def phi(x: Tensor) -> Tensor:
    """The standard normal pdf."""
    return INV_SQRT_2PI * torch.exp(-0.5 * x * x)


def Phi(x: Tensor) -> Tensor:
    """The standard normal cdf."""
    return 0.5 * (1.0 + torch.erf(x / SQRT2))


# A fine grid in standard units: step-shaped derivatives (relu, hardtanh) integrate to ~1e-4.
Z = torch.linspace(-10.0, 10.0, 32000, dtype=torch.float64)  # even: no node at 0; < torch grain
W = phi(Z)
W = W / W.sum()
# A coarser product grid for the nested integral of the batch-shared moment (kept under torch's
# parallel grain size: threads cost more than they save on tensors this small).
ZO = torch.linspace(-6.0, 6.0, 160, dtype=torch.float64)
WO = phi(ZO) / phi(ZO).sum()
ZI = torch.linspace(-6.0, 6.0, 150, dtype=torch.float64)
WI = phi(ZI) / phi(ZI).sum()
