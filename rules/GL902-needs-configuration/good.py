"""The model file of bad.py, made checkable: the constructor keeps its arguments but a
module-level instance `model = Net(64, 10)` tells gradlint which configuration to check
(default values for the arguments, or a target in `[tool.gradlint.targets]`, work too).
`gradlint` checks the instance and reports nothing."""

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width, classes):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


model = Net(64, 10)
