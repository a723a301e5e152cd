"""A parameter read directly in forward and broadcast over positions (a layer-scale γ, a
bias added to every token, a hand-written norm's gain) sums the gradient over the k positions
it reaches: k (r - s) + k² s per entry, s the part alike at all of them (a global or token
mean pool hands every position the same gradient). Taking only k r left ConvNeXt's layer
scales 0.6 decades low."""

from __future__ import annotations

import torch
import torch.nn as nn
from layer_errors import layer_errors


class _LayerScale(nn.Module):
    """ConvNeXt-like blocks: depthwise conv, pointwise MLP, a per-channel γ on the branch."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.dw(x).permute(0, 2, 3, 1))
        h = self.gamma * self.fc2(torch.relu(self.fc1(h)))
        return x + h.permute(0, 3, 1, 2)


class _ScaledNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 4, stride=4)
        self.blocks = nn.Sequential(*[_LayerScale() for _ in range(3)])
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class _TokenBias(nn.Module):
    """A learned bias added to every token, then a mean over the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 64)
        self.shared = nn.Parameter(torch.randn(64))
        self.mlp = nn.Sequential(nn.LayerNorm(64), nn.Linear(64, 64), nn.GELU())
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.mlp(self.embed(x) + self.shared).mean(1))


def test_a_layer_scale_against_autograd() -> None:
    torch.manual_seed(0)
    errors = layer_errors(_ScaledNet(), (1, 3, 32, 32), seeds=(0,))
    for i in range(3):
        assert abs(errors[f"blocks.{i}"]) < 0.2, errors  # the block's own γ


def test_a_bias_on_every_token_against_autograd() -> None:
    torch.manual_seed(0)
    errors = layer_errors(_TokenBias(), (1, 49, 16), seeds=(0,))
    assert abs(errors[""]) < 0.2, errors  # the root's own parameter, ``shared``
