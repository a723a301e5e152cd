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


class SqueezeExcite(nn.Module):
    """conv, then x * sigmoid(fc2(relu(fc1(mean over positions of x)))), then a head."""

    def __init__(self, px: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1 = nn.Conv2d(16, 4, 1)
        self.fc2 = nn.Conv2d(4, 16, 1)
        self.head = nn.Linear(16 * px * px, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(h.mean((2, 3), keepdim=True)))))
        return self.head((h * gate).flatten(1))


def test_a_squeeze_over_many_positions_keeps_its_gate_high() -> None:
    """The gate's gradient is the sum over the positions it scales, which the estimate now
    takes (tests/estimate/test_broadcast_inputs.py): no longer a reason for low confidence
    (it was 0.9-1.3 decades low on EfficientNet-B0's gates; within 0.5 now)."""
    torch.manual_seed(0)
    got = _reasons(SqueezeExcite(8), torch.randn(4, 3, 8, 8))
    assert got == {"conv": None, "fc1": None, "fc2": None, "head": None}
