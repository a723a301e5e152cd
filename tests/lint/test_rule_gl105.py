"""GL105 init-gain on purpose-built models: once per plain stack whose init shrinks or grows
the signal, with the init that fits its activation; quiet on well-initialized stacks."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
import torch.nn as nn
from models.mlp import ResidualMLP, plain_mlp
from rule_helpers import check, codes, explain, found, init_linear, stack, x128


def test_gl105_fires_once_per_default_init_relu_stack() -> None:
    torch.manual_seed(0)
    report = check(plain_mlp("relu", 6), x128())
    (d,) = found(report, "GL105")
    assert d.severity == "warning" and d.module == "0"  # the stack's first layer
    assert "7 Linear layers in a plain stack (0, 2, 4, … 12)" in d.message
    assert "fan_in·E[W²]·E[φ′²] = 0.17" in d.message and "fan_in·E[W²] = 0.33" in d.message
    assert "E[φ′²] = 0.50 for nn.ReLU" in d.message and "shrinks" in d.message
    assert d.fix is not None
    assert 'kaiming_normal_(m.weight, nonlinearity="relu")' in d.fix.message
    assert "fan_in·E[W²] = 2 here" in d.fix.message
    assert "GL101" not in codes(report)  # too short to vanish past the threshold yet


def test_gl105_fires_on_default_init_tanh_and_names_the_tanh_init() -> None:
    torch.manual_seed(0)
    (d,) = found(check(plain_mlp("tanh", 8), x128()), "GL105")
    assert "nn.Tanh" in d.message
    assert d.fix is not None and 'calculate_gain("tanh")' in d.fix.message


def test_gl105_an_output_sigmoid_does_not_hide_the_hidden_layers_init() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(128, 128), nn.ReLU())],
                          nn.Linear(128, 1), nn.Sigmoid())
    (d,) = found(check(model, x128()), "GL105")
    assert "= 0.17 under their init" in d.message and "over these 6 layers" in d.message


def test_gl105_fires_above_the_bound_on_an_overscaled_stack() -> None:
    torch.manual_seed(0)
    model = init_linear(stack(nn.ReLU, 6), "normal", std=2.0)
    (d,) = found(check(model, x128()), "GL105")
    assert re.search(r"= 2\.0\d under their init", d.message) and "grows" in d.message


def test_gl105_sees_a_conv_stack_through_pooling() -> None:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    c = 3
    for i in range(6):
        layers += [nn.Conv2d(c, 16, 3, padding=1), nn.ReLU()]
        if i % 2:
            layers.append(nn.MaxPool2d(2))
        c = 16
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
    (d,) = found(check(model, torch.randn(4, 3, 32, 32)), "GL105")
    assert "7 weight layers in a plain stack" in d.message  # 6 Conv2d + the Linear head


def test_gl105_one_diagnostic_per_stack() -> None:
    """A LayerNorm splits the MLP into two plain stacks of 6 layers."""
    torch.manual_seed(0)
    first = [m for _ in range(6) for m in (nn.Linear(128, 128), nn.ReLU())]
    second = [m for _ in range(5) for m in (nn.Linear(128, 128), nn.ReLU())]
    model = nn.Sequential(*first, nn.LayerNorm(128), *second, nn.Linear(128, 10))
    diags = found(check(model, x128()), "GL105")
    assert sorted(d.module for d in diags) == ["0", "13"]


@pytest.mark.parametrize("build", [
    lambda: init_linear(stack(nn.ReLU, 20), "kaiming"),
    lambda: init_linear(stack(nn.LeakyReLU, 12), "leaky"),
    lambda: init_linear(stack(nn.SELU, 12), "lecun"),
    lambda: init_linear(stack(nn.Tanh, 12), "xavier-tanh"),
    lambda: plain_mlp("sigmoid", 12),  # the activation caps the gain: GL101/GL102, not GL105
    lambda: plain_mlp("relu", 3),  # 4 weight layers: not a stack of 5
    lambda: stack(nn.ReLU, 8, norm=True),  # LayerNorm between the layers
    lambda: ResidualMLP(depth=8),
], ids=["kaiming-relu", "kaiming-leaky", "lecun-selu", "xavier-tanh-gain", "sigmoid",
        "short", "layernorm", "residual"])
def test_gl105_quiet(build: Any) -> None:
    torch.manual_seed(0)
    report = check(build(), x128())
    assert "GL105" not in codes(report), explain(report)
