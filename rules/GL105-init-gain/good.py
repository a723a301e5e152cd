"""The MLP of bad.py with Kaiming init for ReLU: fan_in·E[W²] = 2 and E[φ′²] = 1/2, a
per-layer gain of exactly 1. `gradlint` reports nothing."""

import torch.nn as nn


class KaimingMLP(nn.Module):
    def __init__(self, width: int = 128, depth: int = 6, classes: int = 10) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *[nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth)]
        )
        self.head = nn.Linear(width, classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.layers(x))
