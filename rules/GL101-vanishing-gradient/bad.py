"""A deep sigmoid MLP: the textbook vanishing gradient. Each of the 12 Linear + Sigmoid layers
scales the backward signal down (sigmoid' <= 1/4, default init gain ~1/sqrt(3)), so the first
layers receive many decades less gradient than the last. `gradlint` reports GL101 (and GL102 for
the chain of sigmoids)."""

import torch.nn as nn


class DeepSigmoidMLP(nn.Module):
    def __init__(self, width: int = 64, depth: int = 12, classes: int = 10) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *[nn.Sequential(nn.Linear(width, width), nn.Sigmoid()) for _ in range(depth)]
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.layers(x))
