"""Shared by the GL103, GL105 and GL106 tests: plain stacks with a chosen init, and reading
a model report's diagnostics."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

import gradlint
from gradlint.core.values import Diagnostic, ModelReport

NEW = ("GL103", "GL105", "GL106")


def found(report: ModelReport, code: str) -> list[Diagnostic]:
    assert report.status == "ok", report.diagnostics
    return [d for d in report.diagnostics if d.code == code]


def codes(report: ModelReport) -> set[str]:
    assert report.status == "ok", report.diagnostics
    return {d.code for d in report.diagnostics}


def explain(report: ModelReport) -> str:
    return "; ".join(f"{d.code} {d.module}: {d.message}" for d in report.diagnostics)


def init_linear(model: nn.Module, how: str, std: float = 1.0) -> nn.Module:
    """``how``: "normal" (std / sqrt(fan_in)), "kaiming", "xavier-tanh", "lecun"; zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            if how == "normal":
                nn.init.normal_(m.weight, std=std / math.sqrt(fan_in))
            elif how == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif how == "leaky":
                nn.init.kaiming_normal_(m.weight, a=0.01, nonlinearity="leaky_relu")
            elif how == "xavier-tanh":
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("tanh"))
            elif how == "lecun":
                nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def stack(act: type[nn.Module], depth: int, width: int = 128, norm: bool = False,
          final_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width)] + ([nn.LayerNorm(width)] if norm else []) + [act()]
    if final_norm:
        layers.append(nn.LayerNorm(width))
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def check(model: nn.Module, *inputs: torch.Tensor, threshold: float = 1e-2) -> ModelReport:
    torch.manual_seed(0)
    return gradlint.check(model, inputs or None, threshold=threshold)


def x128() -> torch.Tensor:
    return torch.randn(8, 128)
