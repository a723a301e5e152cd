import torch
import torch.nn as nn


class Router(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.a = nn.Linear(width, width)
        self.b = nn.Linear(width, width)

    def forward(self, x):
        if x.mean() > 0:  # data-dependent: fx cannot trace this block
            return torch.tanh(self.a(x))
        return torch.tanh(self.b(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(16, 32)
        self.blocks = nn.ModuleList([Router(32) for _ in range(3)])
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        h = torch.relu(self.inp(x))
        for b in self.blocks:
            h = h + b(h)
        return self.head(h)
