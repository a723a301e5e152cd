import math

import torch
import torch.nn as nn


class Attn(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        scale = 1.0 / math.sqrt(q.shape[-1])  # fx: a Proxy is not a number
        return torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 32)
        self.attn = nn.ModuleList([Attn(32) for _ in range(2)])
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        h = self.embed(x)
        for a in self.attn:
            h = h + a(self.norm(h))
        return self.head(h)


def example_inputs():
    return (torch.randn(4, 10, 8),)
