"""The classic vanishing-gradient failures (docs/design.md): a deep sigmoid CNN without
normalization and a deep tanh MLP with PyTorch's default init. (The vanilla RNN over 200 steps is
``recurrent.rnn_200``.)"""

from __future__ import annotations

import torch
import torch.nn as nn


class DeepSigmoidCNN(nn.Module):
    """VGG-style: 10 3x3 conv + sigmoid layers in 3 stages (max-pool between), no BatchNorm."""

    def __init__(self, widths: tuple[int, ...] = (16, 16, 16, 32, 32, 32, 64, 64, 64, 64),
                 classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.Sigmoid()]
            if i in (2, 5):
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


class DeepTanhMLP(nn.Module):
    """30 x [Linear(128, 128) + tanh] with PyTorch's default init, then a Linear head."""

    def __init__(self, width: int = 128, depth: int = 30, classes: int = 10) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.Tanh())
                                      for _ in range(depth)])
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))
