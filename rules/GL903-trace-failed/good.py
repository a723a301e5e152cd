"""The model of bad.py, made traceable: whether the activation is applied is decided by a
constructor argument (a plain Python bool, fixed when the model is built) instead of by the
value of a tensor, so torch.fx sees one static graph. (Where the choice must depend on the
data, `torch.where(cond, a, b)` computes both branches and selects per element.) `gradlint`
traces the model and reports nothing."""

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10, activate: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)
        self.activate = activate

    def forward(self, x):
        h = self.fc1(x)
        if self.activate:
            h = self.act(h)
        return self.fc2(h)
