"""GL103 exploding-gradient on purpose-built models: it fires on over-scaled stacks, residual
stacks and RNNs whose gradient grows, and stays quiet on healthy or scale-invariant ones."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn as nn
from models.mlp import ResidualMLP, ZeroHeadMLP, plain_mlp
from rule_helpers import check, codes, explain, found, init_linear, stack, x128


class ResidualStack(nn.Module):
    """x + relu(fc(x)) per block, no normalization anywhere."""

    def __init__(self, depth: int, width: int = 128) -> None:
        super().__init__()
        self.fc = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        self.head = nn.Linear(width, 10)
        init_linear(self, "kaiming")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for f in self.fc:
            x = x + torch.relu(f(x))
        return self.head(x)


class ConvBNStack(nn.Module):
    """Over-scaled convs, each followed by BatchNorm: scale-invariant weights."""

    def __init__(self, depth: int = 20, c: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1)]
        for _ in range(depth):
            layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1)]
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU())
        self.fc = nn.Linear(c, 10)
        init_linear(self, "normal", std=2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def test_gl103_fires_on_an_overscaled_relu_stack() -> None:
    torch.manual_seed(0)
    model = init_linear(stack(nn.ReLU, 20), "normal", std=2.0)
    report = check(model, x128())
    (d,) = found(report, "GL103")
    assert d.severity == "error" and d.module == "0"  # the deepest, furthest from the loss
    assert "exploding gradient" in d.message and "gets a backward signal 10^3.0" in d.message
    assert "20 of the layers between it and the loss each amplify it" in d.message
    assert "fan_in·E[W²] ≈ 4" in d.message
    assert d.fix is not None and "kaiming_normal_" in d.fix.message
    assert "GL101" not in codes(report)
    assert {le.module for le in report.layers if le.log10_grad is not None} >= {"0", "40"}


def test_gl103_fires_on_an_unnormalized_residual_stack_with_the_low_confidence_margin() -> None:
    torch.manual_seed(0)
    report = check(ResidualStack(30), x128())
    (d,) = found(report, "GL103")
    assert d.module == "fc.0"
    layer = next(le for le in report.layers if le.module == "fc.0")
    assert layer.confidence == "low"  # fires anyway: growth beyond threshold + margin
    assert "residual joins without normalization" in d.message
    assert d.fix is not None and "Fixup" in d.fix.message
    # at depth 15 the estimate (~2.3 decades) is inside the low-confidence margin: quiet
    torch.manual_seed(0)
    assert not found(check(ResidualStack(15), x128()), "GL103")


def test_gl103_fires_on_a_chaotic_tanh_stack_even_with_a_final_norm() -> None:
    """tanh with std 3/sqrt(fan_in): the forward stays bounded, the backward grows (chaotic
    phase), and a final LayerNorm cannot divide that growth out."""
    torch.manual_seed(0)
    model = init_linear(stack(nn.Tanh, 28, final_norm=True), "normal", std=3.0)
    assert found(check(model, x128()), "GL103")


def test_gl103_a_final_norm_cancels_forward_and_backward_growth() -> None:
    """An over-scaled ReLU stack whose output is normalized: the norm divides the grown forward
    scale back out, the weight gradients are level: GL105 (the init), not GL103."""
    torch.manual_seed(0)
    model = init_linear(stack(nn.ReLU, 20, final_norm=True), "normal", std=2.0)
    report = check(model, x128())
    assert "GL103" not in codes(report), explain(report)
    assert "GL105" in codes(report)


class Recurrent(nn.Module):
    def __init__(self, mode: str = "relu", std: float | None = 2.0) -> None:
        super().__init__()
        cell = nn.LSTM if mode == "lstm" else nn.RNN
        kwargs = {} if mode == "lstm" else {"nonlinearity": mode}
        self.rnn = cell(32, 64, batch_first=True, **kwargs)
        if std is not None:
            nn.init.normal_(self.rnn.weight_hh_l0, std=std / math.sqrt(64))
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def test_gl103_fires_along_time_in_an_rnn_with_per_step_gain_above_one() -> None:
    """ρ² = H·E[W_hh²]·E[relu′²] = 64·(4/64)·1/2 = 2 per step: 10^7.3 over 50 steps."""
    torch.manual_seed(0)
    report = check(Recurrent("relu", 2.0), torch.randn(4, 50, 32))
    (d,) = found(report, "GL103")
    assert d.module == "rnn" and "RNN (relu) 'rnn'" in d.message
    assert "ρ = 1.41 per step" in d.message and "T = 50 steps" in d.message
    assert d.fix is not None and "orthogonal_" in d.fix.message


@pytest.mark.parametrize("mode,std", [("relu", 1.0), ("tanh", None), ("lstm", None)])
def test_gl103_quiet_on_rnns_whose_gradient_does_not_grow_in_time(mode: str,
                                                                  std: float | None) -> None:
    torch.manual_seed(0)
    report = check(Recurrent(mode, std), torch.randn(4, 50, 32))
    assert "GL103" not in codes(report), explain(report)


def test_gl103_threshold_and_depth() -> None:
    torch.manual_seed(0)
    model = init_linear(stack(nn.ReLU, 20), "normal", std=2.0)
    assert not found(check(model, x128(), threshold=1e-4), "GL103")  # needs 10^4
    torch.manual_seed(0)
    short = init_linear(stack(nn.ReLU, 10), "normal", std=2.0)  # 10^1.5: below 10^2
    assert not found(check(short, x128()), "GL103")


@pytest.mark.parametrize("build", [
    lambda: init_linear(stack(nn.ReLU, 20), "kaiming"),
    lambda: plain_mlp("relu", 20),
    lambda: plain_mlp("tanh", 20, init="xavier"),
    lambda: init_linear(stack(nn.ReLU, 20, norm=True), "normal", std=2.0),  # LayerNorm MLP
    lambda: ResidualMLP(depth=8),
    lambda: ZeroHeadMLP(),
], ids=["kaiming-relu", "default-relu", "xavier-tanh", "layernorm-overscaled", "residual-ln",
        "zero-head"])
def test_gl103_quiet_on_healthy_mlps(build: Any) -> None:
    torch.manual_seed(0)
    report = check(build(), x128())
    assert "GL103" not in codes(report), explain(report)


@pytest.mark.parametrize("build", [
    lambda: init_linear(stack(nn.ReLU, 20), "normal", std=2.0),  # fires
    lambda: init_linear(stack(nn.Tanh, 28, final_norm=True), "normal", std=3.0),  # fires
    lambda: ResidualStack(30),  # fires
    lambda: init_linear(stack(nn.ReLU, 20, final_norm=True), "normal", std=2.0),
    lambda: init_linear(stack(nn.ReLU, 20, norm=True), "normal", std=2.0),
    lambda: stack(nn.Tanh, 12),  # vanishing
    lambda: ResidualMLP(depth=8),
], ids=["overscaled-relu", "chaotic-tanh", "residual", "final-norm", "layernorm", "tanh",
        "residual-ln"])
def test_gl103_growth_is_at_most_the_signal_ratio(build: Any) -> None:
    """may_grow_beyond's bound, which lets GL103 skip its sweep: a layer's growth is at most
    log10 of its signal over the output's (its factors telescope to that ratio and the growth
    drops only some of the growing ones)."""
    from gradlint.core.values import Target
    from gradlint.estimate.sweeps import estimate_gradients
    from gradlint.lint.rule_api import ModelAnalysis
    from gradlint.lint.signal_growth import may_grow_beyond, signal, signal_growth
    from gradlint.trace.fx import trace_target

    torch.manual_seed(0)
    target = Target("m.py::M", build(), "m.py", 1, (x128(),))
    analysis = ModelAnalysis(target.name, estimate_gradients(trace_target(target)), 1e-2)
    s = signal(analysis)
    ref = s[analysis.estimate.graph.output]
    growth = signal_growth(analysis)
    assert growth
    for g in growth:
        assert g.log10_growth <= s[g.site] - ref + 1e-9, g
    top = max(g.log10_growth for g in growth)
    assert may_grow_beyond(analysis, top - 1e-6)
    highest = max(s[i] - ref for i in analysis.layer_sites().values())
    assert not may_grow_beyond(analysis, highest + 1e-9)  # (its own arithmetic: natural logs)


def test_gl103_quiet_on_scale_invariant_batchnorm_layers() -> None:
    """Convs feeding BatchNorm are scale-invariant; BatchNorm's own train-mode growth is not
    counted: no GL103 however the convs are scaled."""
    torch.manual_seed(0)
    report = check(ConvBNStack(), torch.randn(4, 3, 16, 16))
    assert "GL103" not in codes(report), explain(report)
