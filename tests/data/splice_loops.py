import torch
import torch.nn as nn


class StepMixer(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.mix = nn.Linear(width, width)

    def forward(self, x):
        outs = []
        for t in range(x.size(1)):  # fx: range() of a Proxy
            outs.append(torch.tanh(self.mix(x[:, t])))
        return torch.stack(outs, dim=1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 32)
        self.mixers = nn.ModuleList([StepMixer(32) for _ in range(2)])
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        h = self.embed(x)
        for m in self.mixers:
            h = h + m(h)
        return self.head(h)


def example_inputs():
    return (torch.randn(4, 5, 8),)
