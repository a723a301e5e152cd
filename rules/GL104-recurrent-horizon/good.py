"""The same classifier trained on chunks of 10 steps (truncated backpropagation through time):
within 10 steps the gradient keeps a usable size, so GL104 stays quiet."""

import torch
import torch.nn as nn


class SequenceClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.RNN(16, 64, batch_first=True)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def example_inputs():
    return (torch.randn(4, 10, 16),)
