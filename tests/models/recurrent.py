"""Sequence classifiers over ``nn.RNN`` (tanh), ``nn.LSTM`` and ``nn.GRU`` (PyTorch's default
init, batch_first), each with its own sequence length T in a Hugging Face style ``dummy_inputs``
property: T = 10 is within every cell's horizon, T = 200 is not (docs/design.md)."""

from __future__ import annotations

import torch
import torch.nn as nn


class SequenceClassifier(nn.Module):
    """``mode`` cell (16 -> 64) over ``steps`` steps, Linear head on the last step's output."""

    def __init__(self, mode: str, steps: int, features: int = 16, hidden: int = 64,
                 classes: int = 10) -> None:
        super().__init__()
        self.steps, self.features = steps, features
        self.rnn = getattr(nn, mode)(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    @property
    def dummy_inputs(self) -> torch.Tensor:
        return torch.randn(4, self.steps, self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


lstm_10 = SequenceClassifier("LSTM", 10)
lstm_200 = SequenceClassifier("LSTM", 200)
gru_10 = SequenceClassifier("GRU", 10)
gru_200 = SequenceClassifier("GRU", 200)
rnn_10 = SequenceClassifier("RNN", 10)
rnn_200 = SequenceClassifier("RNN", 200)  # the classic failure: tanh RNN through 200 steps
