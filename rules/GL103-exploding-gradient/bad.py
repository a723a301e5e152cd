"""A deep ReLU MLP whose weights are initialized twice as large as Kaiming's: normal with
std = 2/sqrt(fan_in), so fan_in·E[W²] = 4 and every Linear + ReLU doubles the squared size of
the gradient on its way back. Over 20 layers the first one receives ~10^3 times the gradient at
the output. `gradlint` reports GL103 (and GL105 for the init's per-layer gain of 2)."""

import math

import torch.nn as nn


class OverscaledMLP(nn.Module):
    def __init__(self, width: int = 128, depth: int = 20, classes: int = 10) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *[nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth)]
        )
        self.head = nn.Linear(width, classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=2.0 / math.sqrt(m.in_features))
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.layers(x))
