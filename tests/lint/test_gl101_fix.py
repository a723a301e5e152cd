"""GL101's help fits the model: it never offers to replace the output activation, never offers
normalization to a path that has it, and blames PyTorch's default init only where the weights
have its gain (fan_in·E[W²] ≈ 1/3)."""

from __future__ import annotations

import torch
import torch.nn as nn

from gradlint.core.values import Diagnostic
from gradlint.run.check_file import check_model


def _gl101(model: nn.Module) -> Diagnostic:
    torch.manual_seed(0)
    report = check_model(model, torch.randn(4, 64))
    found = [d for d in report.diagnostics if d.code == "GL101"]
    assert found, report.diagnostics
    return found[0]


def _text(d: Diagnostic) -> str:
    assert d.fix is not None
    return " | ".join((d.fix.message, *d.fix.suggestions))


def _stack(n: int, *per_layer: type[nn.Module]) -> list[nn.Module]:
    return [m for _ in range(n) for m in (nn.Linear(64, 64), *(k(64) if k is nn.LayerNorm
                                                              else k() for k in per_layer))]


def test_the_output_tanh_is_never_the_culprit() -> None:
    # a GAN generator: a deep default-init ReLU stack, then Linear + Tanh as the output
    model = nn.Sequential(*_stack(30, nn.ReLU), nn.Linear(64, 64), nn.Tanh())
    text = _text(_gl101(model))
    assert "Tanh" not in text
    assert "PyTorch's default init" in text


def test_a_normalized_path_is_not_told_to_add_normalization() -> None:
    model = nn.Sequential(*_stack(20, nn.LayerNorm, nn.Sigmoid), nn.Linear(64, 2))
    text = _text(_gl101(model))
    assert "replace nn.Sigmoid" in text
    assert "normalization" not in text.lower() and "LayerNorm" not in text
    bare = _text(_gl101(nn.Sequential(*_stack(20, nn.Sigmoid), nn.Linear(64, 2))))
    assert "nn.LayerNorm / nn.BatchNorm" in bare  # without norms it is offered


def test_a_custom_init_is_not_blamed_on_pytorch() -> None:
    model = nn.Sequential(*_stack(12, nn.ReLU), nn.Linear(64, 2))
    for m in list(model)[:-1]:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.05)  # fan_in·E[W²] = 64 · 0.0025 = 0.16
    text = _text(_gl101(model))
    assert "PyTorch" not in text
    assert "fan_in·E[W²] ≈ 0.16" in text
