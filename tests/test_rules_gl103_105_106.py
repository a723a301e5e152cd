"""GL103 exploding-gradient, GL105 init-gain and GL106 gated-branch on purpose-built models:
each fires where it should, stays quiet on healthy architectures (the zoo in tests/models and
Hugging Face configs), and reports at the user's line with the numbers in its message."""

from __future__ import annotations

import math
import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn
from models.convnext import ConvNeXtish
from models.mlp import ResidualMLP, SmallBNCNN, ZeroHeadMLP, plain_mlp
from models.resnet import BasicBlock, ResNet
from models.transformer import Transformer, token_inputs

import gradlint
from gradlint.core.options import Options
from gradlint.core.values import Diagnostic, ModelReport
from gradlint.run.pipeline import check_paths, selected

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


def check(model: nn.Module, *inputs: torch.Tensor, threshold: float = 1e-2) -> ModelReport:
    torch.manual_seed(0)
    return gradlint.check(model, inputs or None, threshold=threshold)


def x128() -> torch.Tensor:
    return torch.randn(8, 128)


# --- GL103 exploding-gradient -------------------------------------------------------------------

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


@pytest.mark.parametrize("name", ["resnet", "bn-cnn", "convnext", "transformer", "mha"])
def test_healthy_zoo_is_quiet_for_the_new_rules(name: str) -> None:
    torch.manual_seed(0)
    model, inputs = {
        "resnet": lambda: (ResNet(), (torch.randn(8, 3, 32, 32),)),
        "bn-cnn": lambda: (SmallBNCNN(), (torch.randn(8, 3, 32, 32),)),
        "convnext": lambda: (ConvNeXtish(), (torch.randn(4, 3, 32, 32),)),
        "transformer": lambda: (Transformer(explicit=True), token_inputs()),
        "mha": lambda: (Transformer(explicit=False), token_inputs()),
    }[name]()
    report = check(model, *inputs)
    assert not codes(report) & {"GL101", "GL103", "GL105"}, explain(report)
    assert ("GL106" in codes(report)) == (name == "convnext"), explain(report)


# --- Hugging Face configs (export tracer) ------------------------------------------------------

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _hf(name: str) -> nn.Module:
    transformers = pytest.importorskip("transformers")
    if name == "bert":
        return transformers.BertModel(transformers.BertConfig(
            hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
            vocab_size=1000))
    if name == "gpt2":
        return transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_embd=64, n_layer=4, n_head=4, vocab_size=1000, use_cache=False, bos_token_id=0,
            eos_token_id=0))
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=1000, use_cache=False))


@pytest.mark.parametrize("name", ["bert", "gpt2", "llama"])
def test_hugging_face_models_are_quiet_for_the_new_rules(name: str) -> None:
    torch.manual_seed(0)
    report = check(_hf(name), torch.randint(0, 1000, (2, 16)))
    assert report.tracer == "export"
    assert not codes(report) & set(NEW), explain(report)


# --- GL105 init-gain ----------------------------------------------------------------------------

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


# --- GL106 gated-branch -------------------------------------------------------------------------

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


# --- locations: the user's line, through the file pipeline ---------------------------------------

MODELS = '''\
import math

import torch
import torch.nn as nn


class Overscaled(nn.Module):
    def __init__(self, width=64, depth=20):
        super().__init__()
        self.layers = nn.Sequential(
            *[nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth)]
        )
        self.head = nn.Linear(width, 10)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=2.0 / math.sqrt(m.in_features))

    def forward(self, x):
        return self.head(self.layers(x))


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)
        self.gamma = nn.Parameter(1e-6 * torch.ones(width))

    def forward(self, x):
        return x + self.gamma * torch.relu(self.fc(self.norm(x)))


class Scaled(nn.Module):
    def __init__(self, width=64, depth=4):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        return self.head(self.blocks(x))
'''


@pytest.fixture(scope="module")
def file_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Diagnostic]]:
    path = tmp_path_factory.mktemp("gl10x") / "models.py"
    path.write_text(textwrap.dedent(MODELS), encoding="utf-8")
    options = Options()
    report, missing = check_paths([str(path)], options)
    assert not missing
    return path, list(selected(report, options))


def _line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    (line,) = [i for i, t in enumerate(lines, start=1) if text in t]
    return line


def test_locations_are_the_lines_that_build_the_layers(
        file_report: tuple[Path, list[Diagnostic]]) -> None:
    path, diags = file_report
    by_code = {d.code: d for d in diags if d.code in NEW}
    assert set(by_code) == set(NEW), [(d.code, d.message) for d in diags]
    linear = _line_of(path, "nn.Sequential(nn.Linear(width, width), nn.ReLU())")
    for code in ("GL103", "GL105"):
        d = by_code[code]
        assert d.target.endswith("::Overscaled")
        assert os.path.samefile(d.location.file, path) and d.location.line == linear, d
        text = path.read_text(encoding="utf-8").splitlines()[linear - 1]
        assert d.location.col == text.index("nn.Linear(") + 1, d
    gl106 = by_code["GL106"]
    assert gl106.target.endswith("::Scaled") and gl106.module == "blocks.0"
    assert gl106.location.line == _line_of(path, "[Block(width) for _ in range(depth)]")
    assert "4 learnable scales built here" in gl106.message


def test_rules_are_listed_and_explained(run_gradlint: Any, repo_root: Path) -> None:
    listed = run_gradlint("rules")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    for code, name, severity in (("GL103", "exploding-gradient", "error"),
                                 ("GL105", "init-gain", "warning"),
                                 ("GL106", "gated-branch", "info")):
        assert name in lines[code] and severity in lines[code]
        page = run_gradlint("explain", code)
        assert page.returncode == 0, page.stderr
        (folder,) = (repo_root / "rules").glob(f"{code}-*")
        assert page.stdout.strip() == (folder / "README.md").read_text(encoding="utf-8").strip()
