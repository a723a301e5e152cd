"""Issue 17 (item 9): GL904 only for ops the estimate cannot express. ``einsum`` is lowered
onto the matmuls and sums it computes, ``var``/``std`` onto mean((x - mean x)²),
``pow``/``sqrt``/``rsqrt``/``exp`` have entries on the fx path as on the export path, and
dtype casts are identity, ATen's resizes (``upsample_linear1d``, ``upsample_bicubic2d``...) are
upsamples; each estimate agrees with autograd (``--verify``) within the usual
tolerance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gradlint.trace.einsum_layout import einsum_terms

TOLERANCE = 0.3  # decades, as the splice and verify tests

MODELS = '''
import torch
import torch.nn as nn


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)
        self.c = nn.Linear(16, 8)

    def forward(self, x):
        return self.c(torch.einsum("bsi,bsj->bsij", self.a(x), self.b(x)).sum(-1))


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(16, 16)
        self.k = nn.Linear(16, 16)
        self.v = nn.Linear(16, 16)
        self.o = nn.Linear(16, 16)

    def forward(self, x):
        s = torch.einsum("bqd,bkd->bqk", self.q(x), self.k(x)) / 4.0
        return self.o(torch.einsum("bqk,bkd->bqd", s.softmax(-1), self.v(x)))


class Mixer(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 16) / 4)
        self.a = nn.Linear(16, 16)
        self.c = nn.Linear(16, 4)

    def forward(self, x):
        return self.c(torch.einsum("...i,ij->...j", torch.tanh(self.a(x)), self.w))


class ExportedEinsum(nn.Module):
    """fx cannot branch on a size: torch.export's aten.einsum takes the same lowering."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)
        self.c = nn.Linear(16, 8)

    def forward(self, x):
        if x.size(-1) == 16:
            x = x * 1.0
        return self.c(torch.einsum("bsi,bsi->bsi", self.a(x), self.b(x)))


class Smooth(nn.Module):
    """A hand-written RMSNorm (pow, rsqrt), sqrt and exp."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)
        self.c = nn.Linear(16, 8)

    def forward(self, x):
        h = self.a(x)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        h = torch.sqrt(self.b(h).pow(2) + 1.0)
        return self.c(torch.exp(h * 0.25))


class Casts(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.c = nn.Linear(16, 8)

    def forward(self, x):
        h = self.a(x).type(torch.float64).float().to(torch.float32).double().type_as(x)
        return self.c(torch.tanh(h))


class Variance(Smooth):
    """Smooth's layers with a hand-written LayerNorm (torch.var), then a division by x.std()."""

    def forward(self, x):
        h = self.a(x)
        var = torch.var(h, dim=-1, unbiased=False, keepdim=True)
        h = torch.tanh((h - h.mean(-1, keepdim=True)) / (var + 1e-5).sqrt())
        h = self.b(h)
        return self.c(h / (h.std(-1, keepdim=True) + 1e-5))


class ExportedVariance(Variance):
    """The same through torch.export's aten.var."""

    def forward(self, x):
        if x.size(-1) == 16:
            x = x * 1.0
        return super().forward(x)


class ExportedResize(nn.Module):
    """A position table resized to the input's length (DINO's interpolate_pos_encoding, in 1-D)
    and a nearest-neighbour upsampling, through torch.export's upsample ops."""

    def __init__(self):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, 8, 4) * 0.5)
        self.a = nn.Conv1d(8, 8, 3, padding=1)
        self.c = nn.Linear(32, 4)

    def forward(self, x):
        if x.size(-1) == 16:
            x = x * 1.0
        pos = nn.functional.interpolate(self.pos, size=x.shape[-1], mode="linear")
        h = self.a(x + pos)
        return self.c(nn.functional.interpolate(h, scale_factor=2, mode="nearest"))


def example_inputs():
    return (torch.randn(4, 8, 16),)
'''


@pytest.mark.parametrize(("equation", "ndims", "expected"), [
    ("bi,bj->bij", [2, 2], (["bi", "bj"], "bij")),
    ("...i,ij->...j", [3, 2], (["ABi", "ij"], "ABj")),
    ("bqd,bkd", [3, 3], (["bqd", "bkd"], "kq")),  # implicit output: once-used, sorted
    ("b i , b i -> b", [2, 2], (["bi", "bi"], "b")),
    ("ii->i", [2], None),  # a diagonal: not lowered (opaque)
    ("bi,bj->bij", [2], None),  # operands do not match the equation
])
def test_einsum_terms(equation: str, ndims: list[int], expected: Any) -> None:
    assert einsum_terms(equation, ndims) == expected


def test_lowered_ops_are_estimated_as_autograd_measures(run_gradlint: Any,
                                                        tmp_path: Path) -> None:
    (tmp_path / "op_lowering.py").write_text(MODELS)
    proc = run_gradlint("op_lowering.py", "--format", "json", "--verify", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert not doc["diagnostics"]  # no GL904: every op has an entry
    models = {m["name"]: m for m in doc["models"]}
    assert set(models) == {"Outer", "Attention", "Mixer", "ExportedEinsum", "Smooth", "Casts",
                           "Variance", "ExportedVariance", "ExportedResize"}
    assert models["ExportedEinsum"]["tracer"] == "export"
    assert models["ExportedVariance"]["tracer"] == "export"
    assert models["ExportedResize"]["tracer"] == "export"
    for name, model in models.items():
        assert model["status"] == "ok", name
        for layer in model["layers"]:
            assert layer["confidence"] == "high", (name, layer)
            error = abs(layer["log10_relative"] - layer["measured_log10_relative"])
            assert error < TOLERANCE, (name, layer["module"], error)
