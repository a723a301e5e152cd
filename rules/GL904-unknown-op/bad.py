"""A model whose forward calls `torch.cumsum` (a running sum over the features), an op gradlint's
op catalogue does not model. gradlint treats it as gain 1 and marks the layers before it
`confidence: low`. `gradlint` reports GL904 (info, exit status 0) at the call."""

import torch
import torch.nn as nn


class RunningSumNet(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x):
        h = self.act(self.fc1(x))
        h = torch.cumsum(h, dim=-1)
        return self.fc2(h)
