"""Residual blocks with layer scale, as in ConvNeXt and CaiT: each branch is multiplied by a
learnable per-channel γ that starts at 1e-6, so the branch's weights start with gradients
~10^-6 of the trunk's. That is by design, not vanishing: `gradlint` reports GL106 (info) at
the line that builds the blocks, and no GL101."""

import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width: int, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * width, width)
        self.gamma = nn.Parameter(layer_scale * torch.ones(width))

    def forward(self, x):
        return x + self.gamma * self.fc2(self.act(self.fc1(self.norm(x))))


class LayerScaleMLP(nn.Module):
    def __init__(self, width: int = 64, depth: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Linear(width, width)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.norm(self.blocks(self.stem(x))))
