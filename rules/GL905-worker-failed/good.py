"""The same model without the crash: built, traced and checked in its worker."""

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x)
