"""The model file of bad.py, fixed: the import of the missing package is gone (install it, or
guard an optional dependency with try/except ImportError), the file imports cleanly and gradlint
checks the model. `gradlint` reports nothing."""

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))
