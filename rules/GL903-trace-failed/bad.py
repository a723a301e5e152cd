"""A model whose forward branches on the value of a tensor (`if h.sum() > 0:`). torch.fx traces
with symbolic tensors, which have no value, so tracing fails, and so does every fallback tracer.
`gradlint` reports GL903 at the line where tracing broke and exits with status 2."""

import torch.nn as nn


class Net(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x):
        h = self.fc1(x)
        if h.sum() > 0:
            h = self.act(h)
        return self.fc2(h)
