"""Every low confidence says why, with a short code (docs/design.md, "Confidence")."""

from __future__ import annotations

import torch
import torch.nn as nn

from gradlint.run.check_file import check_model


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.fc(x))


class Stacked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(8, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0])


def _reasons(model: nn.Module, x: torch.Tensor) -> dict[str, str | None]:
    report = check_model(model, x)
    for le in report.layers:  # the code is there exactly where confidence is low
        assert (le.low_reason is None) == (le.confidence == "high"), le
    return {le.module: le.low_reason for le in report.layers}


def test_reason_codes() -> None:
    torch.manual_seed(0)
    stacked = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Sigmoid(), nn.Linear(32, 2))
    assert _reasons(stacked, torch.randn(4, 32)) == {"0": "stacked-activations", "3": None}
    residual = nn.Sequential(nn.Linear(32, 32), *[Residual() for _ in range(4)],
                             nn.Linear(32, 2))
    got = _reasons(residual, torch.randn(4, 32))
    assert got["0"] == "collapsing-residual" and got["5"] is None
    assert _reasons(Stacked(), torch.randn(2, 5, 8)) == {"rnn": "stacked-recurrent", "head": None}
    pooled = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                           nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    got = _reasons(pooled, torch.randn(4, 3, 16, 16))
    assert got["1"] == "norm-before-pool" and got["5"] is None
