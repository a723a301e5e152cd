"""The lecture's three-layer network: x -> θ1 -> σ -> θ2 -> σ -> θ3 -> y.

Backpropagation multiplies one sigmoid derivative (≤ 1/4) per layer, so θ1 — furthest from the
loss — gets the least gradient (the chart shows it). With only two factors between θ1 and the
loss the attenuation does not compound far enough for GL101.
"""

import torch.nn as nn


class ThreeLayerNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.theta1 = nn.Linear(64, 64)
        self.theta2 = nn.Linear(64, 64)
        self.theta3 = nn.Linear(64, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        h1 = self.sigmoid(self.theta1(x))
        h2 = self.sigmoid(self.theta2(h1))
        return self.theta3(h2)
