"""A vanilla tanh RNN classifier over 200 time steps: the gradient from the loss (on the last
step) falls by ~0.25 decades per step, so the first steps of the sequence get ~10^-50 of it.
GL104 fires on the nn.RNN line."""

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
    return (torch.randn(4, 200, 16),)
