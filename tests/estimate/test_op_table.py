"""The op table (gradlint/estimate/op_table.py) and the one op vocabulary of both tracers.

A toy op registered through the internal tables goes through the whole pipeline
(``gradlint.check``), following docs/adding-an-op.md; pow/sqrt/rsqrt/exp written as torch
functions, tensor methods or ``**`` are known to the fx path as they are to torch.export.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator, Sequence

import pytest
import torch
import torch.fx
import torch.nn as nn

import gradlint
from gradlint.core import op_kinds
from gradlint.core.graph import GraphNode
from gradlint.core.values import Target
from gradlint.estimate import op_table
from gradlint.estimate.tensor_state import Moments, Step
from gradlint.trace import op_lookup
from gradlint.trace.fx import trace_target


def toy_halve(x: torch.Tensor) -> torch.Tensor:
    """The toy op: y = x / 2, one call for fx (wrapped below), not traced into."""
    return x * 0.5


torch.fx.wrap("toy_halve")


class ToyNet(nn.Module):
    def __init__(self, halve: bool = True) -> None:
        super().__init__()
        self.halve = halve
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.fc1(x))
        return self.fc2(toy_halve(h) if self.halve else h * 0.5)


def _toy_forward(node: GraphNode, ins: list[Moments], nodes: Sequence[GraphNode],
                 need_shared: bool) -> Step:
    x = ins[0]
    return Step(Moments(0.5 * x.mean, 0.25 * x.second, 0.25 * x.shared), (math.log(0.25),))


@pytest.fixture
def toy_op(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The recipe: torch spelling -> op key (trace), op key -> kind (core), kind -> entry
    (estimate)."""
    monkeypatch.setitem(op_lookup._FUNCTIONS, toy_halve, "toy_halve")
    monkeypatch.setitem(op_kinds.KIND_OF, "toy_halve", "toy_scale")
    monkeypatch.setitem(op_table.KIND_ENTRIES, "toy_scale", op_table.OpEntry(_toy_forward))
    op_kinds.kind_of.cache_clear()
    yield
    monkeypatch.undo()
    op_kinds.kind_of.cache_clear()


def _model() -> ToyNet:
    torch.manual_seed(0)
    return ToyNet()


class ErfNet(nn.Module):
    """torch.erf: in neither tracer's catalogue."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.erf(self.fc1(x)))


def test_an_unregistered_op_is_opaque() -> None:
    torch.manual_seed(0)
    report = gradlint.check(ErfNet(), torch.randn(8, 16))
    assert report.status == "ok"
    assert any(d.code == "GL904" for d in report.diagnostics)


def test_an_unregistered_wrapped_function_is_traced_through() -> None:
    """toy_halve without its registration: exported and spliced (x * 0.5, a scale)."""
    graph = trace_target(Target("ToyNet", _model(), __file__, 1, (torch.randn(8, 16),)))
    assert [n.op for n in graph.nodes if n.kind not in ("input", "param")] == [
        "linear", "tanh", "scale", "linear"]


def test_a_registered_toy_op_goes_through_the_pipeline(toy_op: None) -> None:
    report = gradlint.check(_model(), torch.randn(8, 16))
    assert report.status == "ok" and report.tracer == "fx"
    assert not any(d.code == "GL904" for d in report.diagnostics)
    torch.manual_seed(0)
    same = ToyNet(halve=False)  # the same maths through the built-in scale entry
    reference = gradlint.check(same, torch.randn(8, 16))
    got = {le.module: le.log10_grad for le in report.layers}
    want = {le.module: le.log10_grad for le in reference.layers}
    assert got.keys() == want.keys() == {"fc1", "fc2"}
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


class HandWrittenRMSNorm(nn.Module):
    """The smooth ops as models write them: methods, torch functions and ``**``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        h = h / ((h ** 2).mean(-1, keepdim=True) + 1e-6).sqrt()
        h = h + 0.01 * torch.pow(h, 3) + 0.01 * torch.exp(-h) + 0.01 * torch.sqrt(h * h + 1.0)
        return self.out(h + 0.01 * (-h).exp())


def test_fx_knows_pow_sqrt_rsqrt_exp() -> None:
    torch.manual_seed(0)
    model = HandWrittenRMSNorm()
    graph = trace_target(Target("m.py::M", model, "m.py", 1, (torch.randn(4, 16),)))
    assert graph.tracer == "fx"
    ops = graph.ops()
    assert {"pow", "rsqrt", "sqrt", "exp"} <= ops
    # torch.export's spellings of the same ops map to the same keys
    assert {op_lookup.aten_op(f"aten.{k}.default") for k in ("pow", "rsqrt", "sqrt", "exp")} \
        == {"pow", "rsqrt", "sqrt", "exp"}
    assert all(n.kind != "opaque" for n in graph.nodes), [n.label for n in graph.nodes
                                                           if n.kind == "opaque"]
    exponents = sorted(n.attrs.get("exponent") for n in graph.nodes if n.op == "pow")
    assert exponents == [2, 2, 3]
    report = gradlint.check(model, torch.randn(4, 16))
    assert not any(d.code == "GL904" for d in report.diagnostics)


def test_every_kind_has_an_entry() -> None:
    kinds = set(op_kinds.KIND_OF.values()) | {"elementwise", "opaque"}
    assert kinds <= set(op_table.KIND_ENTRIES)
    assert set(op_table.OP_ENTRIES) <= set(op_kinds.KIND_OF)


def test_the_ir_and_its_kind_facts_import_no_torch() -> None:
    """core owns the IR and each kind's static facts; the rules read them at `gradlint rules`,
    where torch must not load."""
    code = ("import sys, gradlint.core.graph, gradlint.core.op_kinds; "
            "sys.exit('torch' in sys.modules or 'numpy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
