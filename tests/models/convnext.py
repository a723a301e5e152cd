"""A ConvNeXt-ish stack: depthwise 7x7 conv, LayerNorm over channels, inverted-bottleneck MLP with
GELU, and layer scale (gamma = 1e-6 per channel) on the branch before the residual add."""

from __future__ import annotations

import torch
import torch.nn as nn


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).permute(0, 2, 3, 1)  # N, H, W, C
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        h = self.gamma * h
        return x + h.permute(0, 3, 1, 2)


class ConvNeXtish(nn.Module):
    """Patchify stem, ``depth`` ConvNeXt blocks, global pool, LayerNorm, head."""

    def __init__(self, dim: int = 32, depth: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(self.norm(x.mean(dim=(2, 3))))
