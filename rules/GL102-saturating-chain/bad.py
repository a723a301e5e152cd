"""A 4-layer tanh MLP with Xavier init: three tanh activations follow each other on one path
with no normalization and no skip connection between them. The init keeps the per-layer gain
near 1, so the estimate is not (yet) vanishing, but any unit pushed into saturation during
training passes almost no gradient. `gradlint` reports GL102 (warning)."""

import torch.nn as nn


class TanhMLP(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.Tanh(),
            nn.Linear(width, width), nn.Tanh(),
            nn.Linear(width, width), nn.Tanh(),
            nn.Linear(width, classes),
        )
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("tanh"))
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.net(x)
