"""A model file that fails at import: it imports a package that is not installed, so Python
raises ModuleNotFoundError before any model exists. `gradlint` reports GL901 with the exception
(no traceback) and exits with status 2."""

import torch.nn as nn

import gradlint_demo_package_that_does_not_exist  # noqa: F401


class Net(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))
