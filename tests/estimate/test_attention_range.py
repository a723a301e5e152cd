"""Issue 3 (3): attention's Q/K gradients depend on how alike the tokens are (the softmax
Jacobian removes what all keys share), which is unknown statically: those layers carry a
``range`` over token coherence, and the measured gradient falls inside it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn as nn

import gradlint
from gradlint.verify.measure import measure_gradients

DATA = Path(__file__).resolve().parents[1] / "data"


def attention_only() -> nn.Module:
    spec = importlib.util.spec_from_file_location("gradlint_test_attention_only",
                                                  DATA / "attention_only.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.Net()  # type: ignore[no-any-return]


def test_query_and_key_layers_carry_a_range_that_holds_the_measurement() -> None:
    model = attention_only()
    report = gradlint.check(model, torch.randn(4, 10, 8))
    layers = {le.module: le for le in report.layers}
    measured = measure_gradients(model, lambda b: (torch.randn(b, 10, 8),), batch=16,
                                 seeds=(0, 1, 2)).log10_grad
    top = max(v for v in measured.values() if v is not None)
    for name in ("attn.0.q", "attn.0.k", "attn.1.q", "attn.1.k"):
        le = layers[name]
        assert le.range is not None, name
        low, high = le.range
        assert high - low > 0.8 and abs(le.log10_relative - high) < 1e-3  # the c = 0 end
        value = measured[name]
        assert value is not None and low - 0.25 <= value - top <= high, (name, le.range)


def test_no_range_without_attention() -> None:
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4), nn.Softmax(-1))
    report = gradlint.check(classifier, torch.randn(4, 8))
    assert all(le.range is None for le in report.layers)
