"""GL106 gated-branch on purpose-built models: layer scales, zero heads, zero BatchNorm γs
and ReZero are one grouped info each; a small but random layer is not a gate."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn as nn
from models.convnext import ConvNeXtish
from models.mlp import ResidualMLP, ZeroHeadMLP, plain_mlp
from models.resnet import BasicBlock, ResNet
from rule_helpers import check, codes, explain, found, x128


class ReZero(nn.Module):
    def __init__(self, depth: int = 6, width: int = 64) -> None:
        super().__init__()
        self.fc = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.alpha = nn.ParameterList([nn.Parameter(torch.zeros(1)) for _ in range(depth)])
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for f, a in zip(self.fc, self.alpha, strict=True):
            x = x + a * torch.relu(f(x))
        return self.head(x)


def test_gl106_layer_scale_is_one_grouped_info() -> None:
    torch.manual_seed(0)
    report = check(ConvNeXtish(dim=32, depth=8), torch.randn(4, 3, 32, 32))
    (d,) = found(report, "GL106")
    assert d.severity == "info"
    assert "8 learnable scales built here (blocks.0.gamma, blocks.1.gamma" in d.message
    assert "start at RMS 1e-06" in d.message and "32 layers behind them" in d.message
    assert "by design" in d.message and "not a vanishing gradient" in d.message
    assert "GL101" not in codes(report)


def test_gl106_zero_initialized_head() -> None:
    torch.manual_seed(0)
    report = check(ZeroHeadMLP(depth=6), x128())
    (d,) = found(report, "GL106")
    assert d.module == "head"
    assert "the layer 'head' is initialized at zero" in d.message
    assert "5 layers behind it (body.0, body.2, body.4, … body.8)" in d.message
    assert "zero gradients by design" in d.message
    assert "GL101" not in codes(report)


def test_gl106_zero_initialized_batchnorm_gamma_per_block() -> None:
    torch.manual_seed(0)
    model = ResNet()
    for m in model.modules():
        if isinstance(m, BasicBlock):
            nn.init.zeros_(m.bn2.weight)
    report = check(model, torch.randn(8, 3, 32, 32))
    (d,) = found(report, "GL106")
    assert "8 normalization γs built here (blocks.0.bn2, blocks.1.bn2" in d.message
    assert "start at zero" in d.message and "24 layers behind them" in d.message
    assert not codes(report) & {"GL101", "GL103"}, explain(report)


def test_gl106_rezero() -> None:
    torch.manual_seed(0)
    report = check(ReZero(), torch.randn(8, 64))
    (d,) = found(report, "GL106")
    assert "6 learnable scales built here (alpha.0, alpha.1" in d.message
    assert "6 layers behind them (fc.0, fc.1, fc.2, … fc.5)" in d.message


@pytest.mark.parametrize("build", [
    lambda: ResNet(),
    lambda: ResidualMLP(depth=4),
    lambda: plain_mlp("relu", 4),
], ids=["resnet", "residual-mlp", "mlp"])
def test_gl106_quiet_without_gates(build: Any) -> None:
    torch.manual_seed(0)
    model = build()
    inputs = torch.randn(8, 3, 32, 32) if isinstance(model, ResNet) else x128()
    assert "GL106" not in codes(check(model, inputs))


def test_gl106_a_small_but_random_head_is_not_a_gate() -> None:
    torch.manual_seed(0)
    model = ZeroHeadMLP(depth=6)
    nn.init.normal_(model.head.weight, std=0.01)  # fan_in·E[W²] = 0.013: small, not closed
    assert "GL106" not in codes(check(model, x128()))
