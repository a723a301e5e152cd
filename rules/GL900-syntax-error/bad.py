"""A model file with a syntax error (a missing colon after `def forward(self, x)`). Python cannot
parse it, so gradlint cannot import it or check any model in it: `gradlint` reports GL900 at
the line where parsing failed and exits with status 2."""

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x)
        return self.fc2(self.act(self.fc1(x)))
