"""A model class whose no-argument constructor raises: the bottleneck width is computed as
`width - 96`, which is negative for the default width of 64, so `nn.Linear` refuses to create
the weight. The file imports fine, but building the model raises RuntimeError. `gradlint`
reports GL906 at the line that raised and exits with status 2."""

import torch.nn as nn


class Bottleneck(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        hidden = width - 96  # bug: meant width // 2
        self.down = nn.Linear(width, hidden)
        self.act = nn.ReLU()
        self.up = nn.Linear(hidden, width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(x + self.up(self.act(self.down(x))))
