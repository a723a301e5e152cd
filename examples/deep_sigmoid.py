"""A deep sigmoid MLP: the classic vanishing-gradient failure.

Each sigmoid scales the backward signal by at most 1/4 and each default-initialized Linear by
about 1/sqrt(3), so the first layers get ~10^-17 of the gradient the last one gets.
`gradlint examples/deep_sigmoid.py` flags GL101 and GL102.
"""

import torch.nn as nn


class DeepSigmoidMLP(nn.Module):
    def __init__(self, width: int = 256, depth: int = 20, classes: int = 10) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *[nn.Sequential(nn.Linear(width, width), nn.Sigmoid()) for _ in range(depth)]
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.layers(x))
