"""The tanh MLP of bad.py, fixed: a LayerNorm before every tanh re-centres and re-scales the
pre-activations, so no run of saturating activations goes unnormalized and units cannot drift
into saturation together. `gradlint` reports nothing."""

import torch.nn as nn


class NormalizedTanhMLP(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.LayerNorm(width), nn.Tanh(),
            nn.Linear(width, width), nn.LayerNorm(width), nn.Tanh(),
            nn.Linear(width, width), nn.LayerNorm(width), nn.Tanh(),
            nn.Linear(width, classes),
        )
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("tanh"))
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.net(x)
