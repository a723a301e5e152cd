"""The model of bad.py, fixed: the bottleneck width is `width // 2`, a valid size, so the model
builds and gradlint checks it. `gradlint` reports nothing."""

import torch.nn as nn


class Bottleneck(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        hidden = width // 2
        self.down = nn.Linear(width, hidden)
        self.act = nn.ReLU()
        self.up = nn.Linear(hidden, width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(x + self.up(self.act(self.down(x))))
