"""The model of bad.py, written with ops the catalogue knows: the running sum over the features
is a matrix product with a fixed upper-triangular matrix of ones (a buffer), which computes
exactly what `torch.cumsum(h, dim=-1)` does. gradlint models a matrix product, so nothing is
treated as unknown. `gradlint` reports nothing."""

import torch
import torch.nn as nn


class RunningSumNet(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)
        self.register_buffer("running", torch.ones(width, width).triu())

    def forward(self, x):
        h = self.act(self.fc1(x))
        h = h @ self.running  # == torch.cumsum(h, dim=-1)
        return self.fc2(h)
