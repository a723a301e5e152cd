"""A 6-layer ReLU MLP with PyTorch's default init: U(±1/sqrt(fan_in)) gives fan_in·E[W²] = 1/3,
and ReLU passes E[φ′²] = 1/2, so every layer shrinks the squared gradient by a factor of 6.
The stack is not deep enough for GL101 yet, but the init is wrong for ReLU: `gradlint`
reports GL105 at the Linear line."""

import torch.nn as nn


class DefaultInitMLP(nn.Module):
    def __init__(self, width: int = 128, depth: int = 6, classes: int = 10) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *[nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth)]
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.layers(x))
