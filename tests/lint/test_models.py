"""Acceptance on whole models: quiet on healthy architectures, GL101 on the sick ones
(docs/design.md, "What vanishing is not"), and the diagnostic points at the user's line."""

from __future__ import annotations

import importlib.util
import os
import types
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from models.convnext import ConvNeXtish
from models.mlp import ZeroHeadMLP, plain_mlp
from models.resnet import ResNet
from models.transformer import Transformer, token_inputs

import gradlint
from gradlint.core.options import Options
from gradlint.core.values import ModelReport
from gradlint.run.pipeline import check_paths

EXAMPLES = str(Path(__file__).resolve().parents[2] / "examples")
VANISHING = {"GL101", "GL102"}


def codes(report: ModelReport) -> set[str]:
    return {d.code for d in report.diagnostics}


def load_example(name: str) -> types.ModuleType:
    path = os.path.join(EXAMPLES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"gradlint_test_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _explain(report: ModelReport) -> str:
    return "; ".join(f"{d.code} {d.module}: {d.message}" for d in report.diagnostics)


# (a) ResNet with BatchNorm -----------------------------------------------------------------------

def test_resnet_with_batchnorm_is_healthy() -> None:
    torch.manual_seed(0)
    model = ResNet()
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) >= 16
    report = gradlint.check(model, torch.randn(8, 3, 32, 32))
    assert report.status == "ok", _explain(report)
    assert not codes(report) & VANISHING, _explain(report)
    convs = [le for le in report.layers if le.type == "Conv2d"]
    assert len(convs) == 1 + 2 * 8 + 3  # stem, two per block, three projection shortcuts
    assert all(le.log10_grad is not None for le in convs)


# (b) pre-LayerNorm transformers ----------------------------------------------------------------

@pytest.mark.parametrize("explicit", [True, False], ids=["explicit-attention", "nn-mha"])
def test_pre_layernorm_transformer_is_healthy(explicit: bool) -> None:
    torch.manual_seed(0)
    model = Transformer(explicit=explicit)
    report = gradlint.check(model, token_inputs())
    assert report.status == "ok", _explain(report)
    assert not codes(report) & VANISHING, _explain(report)
    layers = {le.module: le for le in report.layers}
    # the trace saw every block: each one's projections have a (non-zero) gradient estimate
    for i in range(6):
        names = [f"blocks.{i}.mlp.fc1", f"blocks.{i}.mlp.fc2"]
        names += ([f"blocks.{i}.attn.{p}" for p in ("q", "k", "v", "out")] if explicit
                  else [f"blocks.{i}.attn.mha", f"blocks.{i}.attn.mha.out_proj"])
        for name in names:
            assert name in layers, name
            assert layers[name].log10_grad is not None and not layers[name].zero, name
    assert layers["embed"].log10_grad is not None


# (c) sick models: GL101 at the early layers -----------------------------------------------------

def _gl101(report: ModelReport) -> list:
    return [d for d in report.diagnostics if d.code == "GL101"]


def test_deep_sigmoid_example_fires_gl101_at_early_layers() -> None:
    module = load_example("deep_sigmoid")
    torch.manual_seed(0)
    model = module.DeepSigmoidMLP()
    report = gradlint.check(model)
    assert report.status == "ok", _explain(report)
    found = _gl101(report)
    assert found, _explain(report)
    early = {f"layers.{i}.0" for i in range(3)}
    assert all(d.module in early for d in found), [d.module for d in found]
    assert "GL102" in codes(report)


def test_deep_sigmoid_example_gl101_points_at_the_linear_line() -> None:
    path = os.path.join(EXAMPLES, "deep_sigmoid.py")
    with open(path, encoding="utf-8") as f:
        lines = [i for i, text in enumerate(f, start=1) if "nn.Linear(width, width)" in text]
    assert len(lines) == 1
    report, missing = check_paths([path], Options())
    assert not missing
    (model,) = [m for m in report.models if m.name == "DeepSigmoidMLP"]
    assert model.status == "ok", _explain(model)
    found = _gl101(model)
    assert found, _explain(model)
    for d in found:
        assert os.path.abspath(d.location.file) == os.path.abspath(path)
        assert d.location.line == lines[0]
        assert d.module in {f"layers.{i}.0" for i in range(3)}


def test_deep_tanh_mlp_default_init_fires_gl101_at_early_layers() -> None:
    torch.manual_seed(0)
    model = plain_mlp("tanh", 30, width=128)
    report = gradlint.check(model)
    assert report.status == "ok", _explain(report)
    found = _gl101(report)
    assert found, _explain(report)
    assert all(d.module in {"0", "2", "4"} for d in found), [d.module for d in found]


# (d) the lecture's three-layer net ------------------------------------------------------------

def test_three_layer_sigmoid_net() -> None:
    module = load_example("three_layer_sigmoid")
    torch.manual_seed(0)
    report = gradlint.check(module.ThreeLayerNet())
    assert report.status == "ok", _explain(report)
    assert "GL101" not in codes(report), _explain(report)
    grads = {le.module: le.log10_grad for le in report.layers}
    assert set(grads) == {"theta1", "theta2", "theta3"}
    assert all(g is not None for g in grads.values())
    assert min(grads, key=lambda k: grads[k]) == "theta1"  # type: ignore[arg-type,return-value]


# (e) zero-initialized head -------------------------------------------------------------------

def test_zero_initialized_head_is_a_gate_not_vanishing() -> None:
    torch.manual_seed(0)
    model = ZeroHeadMLP(depth=6)
    report = gradlint.check(model)
    assert report.status == "ok", _explain(report)
    layers = {le.module: le for le in report.layers}
    upstream = [f"body.{2 * i}" for i in range(5)]
    assert set(layers) == {*upstream, "head"}
    for name in upstream:
        assert layers[name].zero is True, name
        assert layers[name].log10_grad is None, name
    assert layers["head"].zero is False
    assert "GL101" not in codes(report), _explain(report)


# (f) layer scale ------------------------------------------------------------------------------

def test_convnext_layer_scale_is_not_vanishing() -> None:
    torch.manual_seed(0)
    model = ConvNeXtish(dim=32, depth=8)
    report = gradlint.check(model, torch.randn(4, 3, 32, 32))
    assert report.status == "ok", _explain(report)
    assert "GL101" not in codes(report), _explain(report)
    layers = {le.module: le for le in report.layers}
    # the branch weights are ~1e-6 down by design (the gate), and gradlint knows it is a gate
    for i in range(8):
        le = layers[f"blocks.{i}.pwconv1"]
        assert le.log10_relative is not None and le.log10_relative < -4
        assert le.gate == f"blocks.{i}.gamma"
