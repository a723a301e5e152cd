"""The estimate, the rules and the report are linear in the graph's size (issue 7).

Counted, never timed, so it cannot flake: the graph's node tuple is swapped for one that counts
every node handed out (indexing and iteration), so a stage that loops over all nodes per node, or
walks paths one by one, shows up as superlinear growth whatever its functions are called. The
op-catalogue lookups (``spec``: nodes resolve their kind when the trace builds them, so the
estimate and rules should hardly ask) and the report's per-layer rows are counted too.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, SupportsIndex

import pytest
import torch
import torch.nn as nn

import gradlint.estimate.op_table
import gradlint.estimate.strongest_path
import gradlint.estimate.sweeps
import gradlint.report.json
import gradlint.report.text
import gradlint.trace.op_lookup
from gradlint.core.graph import GraphNode, LayerGraph
from gradlint.core.values import ModelReport, Report, Target
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.lint.registry import run_rules
from gradlint.lint.rule_api import ModelAnalysis
from gradlint.trace.fx import trace_target

WIDTH = 8  # small layers: the graph's size is what matters, not the arithmetic


class CountingNodes(tuple[GraphNode, ...]):
    """A node tuple that counts the nodes it hands out."""

    visits: Counter[str]

    def __new__(cls, nodes: tuple[GraphNode, ...], visits: Counter[str]) -> CountingNodes:
        self = super().__new__(cls, nodes)
        self.visits = visits
        return self

    def __getitem__(self, key: SupportsIndex | slice) -> Any:  # type: ignore[override]
        if isinstance(key, slice):
            items = super().__getitem__(key)
            self.visits["nodes"] += len(items)
            return items
        self.visits["nodes"] += 1
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[GraphNode]:
        for node in super().__iter__():
            self.visits["nodes"] += 1
            yield node


def _mlp(depth: int) -> nn.Module:
    """Linear+Tanh blocks: deep enough that GL101 and GL102 fire and the report has rows."""
    layers: list[nn.Module] = []
    for _ in range(depth - 1):
        layers += [nn.Linear(WIDTH, WIDTH), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(WIDTH, 2))


class _DenseMLP(nn.Module):
    """Every layer reads the concatenation of all earlier outputs (DenseNet's connectivity):
    exponentially many paths to the loss, quadratically many edges."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(WIDTH * (i + 1), WIDTH) for i in range(depth))
        self.act = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(self.act(layer(torch.cat(feats, 1))))
        return feats[-1]


def _count(model: nn.Module, monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], LayerGraph]:
    """Visits made by estimate + rules + report on one traced model."""
    torch.manual_seed(0)
    target = Target("m.py::M", model, "m.py", 1, (torch.randn(4, WIDTH),))
    traced = trace_target(target)
    visits: Counter[str] = Counter()
    graph = dataclasses.replace(traced, nodes=CountingNodes(traced.nodes, visits))

    def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            visits[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    spec = counted("spec", gradlint.trace.op_lookup.spec)
    for module in (gradlint.trace.op_lookup, gradlint.estimate.sweeps, gradlint.estimate.op_table,
                   gradlint.estimate.strongest_path):
        if hasattr(module, "spec"):  # most stages read the kind the node resolved when built
            monkeypatch.setattr(module, "spec", spec)  # rules import it from the catalogue
    monkeypatch.setattr(gradlint.report.json, "layer_json",
                        counted("rows", gradlint.report.json.layer_json))
    estimate = estimate_gradients(graph)
    diags = run_rules(ModelAnalysis(target.name, estimate, 1e-2))
    report = Report((ModelReport(target.name, "M", "m.py", 1, "ok", "fx", "actual",
                                 layers=estimate.layers, diagnostics=tuple(diags)),), ())
    gradlint.report.json.to_json(report, diags)
    gradlint.report.text.to_text(report, diags, 1e-2)
    monkeypatch.undo()
    return visits, traced


def _size(graph: LayerGraph) -> int:
    return len(graph.nodes) + sum(len(n.inputs) for n in graph.nodes)


def test_mlp_visits_grow_linearly(monkeypatch: pytest.MonkeyPatch) -> None:
    small, g_small = _count(_mlp(100), monkeypatch)
    large, g_large = _count(_mlp(1000), monkeypatch)
    assert len(g_large.nodes) / len(g_small.nodes) == pytest.approx(10, rel=0.02)
    for kind in ("nodes", "spec", "rows"):
        if kind == "spec" and not small[kind] and not large[kind]:
            continue  # nodes carry their catalogue kind from the trace; lookups are rare now
        assert small[kind] > 0, kind
        ratio = large[kind] / small[kind]
        assert ratio <= 12, f"{kind}: {small[kind]} -> {large[kind]} visits ({ratio:.1f}x)"


def test_dense_connectivity_is_not_enumerated(monkeypatch: pytest.MonkeyPatch) -> None:
    """DenseNet-style wiring has exponentially many paths: the visits stay proportional to
    nodes + edges (the graph's size), the same per element at depth 8 and 32."""
    small, g_small = _count(_DenseMLP(8), monkeypatch)
    large, g_large = _count(_DenseMLP(32), monkeypatch)
    for kind in ("nodes", "spec"):
        per_small = small[kind] / _size(g_small)
        per_large = large[kind] / _size(g_large)
        assert per_large <= 1.5 * per_small, (kind, per_small, per_large)


def test_layer_rows_built_in_one_step_equal_the_dataclass() -> None:
    """``LayerEstimate.row`` (the estimate's fast constructor) makes the same frozen object,
    and a missing or unknown field still raises as the dataclass would."""
    from gradlint.core.values import LayerEstimate

    values: dict[str, Any] = {f: None for f in LayerEstimate.__dataclass_fields__}
    values.update(module="fc", type="Linear", numel=10, saturating=0, depth=1, factors=0,
                  frozen=False, aliases=(), zero=False, confidence="high", largest_factor=0.0)
    row = LayerEstimate.row(values)
    assert row == LayerEstimate(**values) and hash(row) == hash(LayerEstimate(**values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.module = "other"  # type: ignore[misc]
    del values["numel"]
    with pytest.raises(TypeError):
        LayerEstimate.row(values)
    with pytest.raises(TypeError):
        LayerEstimate.row({**values, "numell": 10})


def test_tuples_built_in_c_have_every_field() -> None:
    """The estimate builds its hottest tuples with ``tuple.__new__`` (moments.py, paths.py),
    which checks nothing: a field added to Moments, Step or PathState and not to those call
    sites would give short tuples. Every one the sweeps return has all its fields, and its
    fields are the types they are declared as."""
    from gradlint.estimate.op_table import propagate
    from gradlint.estimate.strongest_path import PathState
    from gradlint.estimate.tensor_state import Moments, Step

    model = _mlp(4)
    target = Target("m.py::MLP", model, "m.py", 1, inputs=(torch.randn(1, WIDTH),))
    graph = trace_target(target)
    est = estimate_gradients(graph)
    assert est.paths and all(type(p) is PathState and len(p) == len(PathState._fields)
                             and isinstance(p.attenuation, float) for p in est.paths)
    assert all(type(m) is Moments and len(m) == len(Moments._fields) for m in est.moments)
    moments: list[Moments] = []
    for node in graph.nodes:  # the Step of every kind the MLP has (input, linear, tanh)
        step = propagate(node, [moments[i] for i in node.inputs], graph.nodes, False)
        assert type(step) is Step and len(step) == len(Step._fields)
        assert type(step.out) is Moments and isinstance(step.gate, bool)
        moments.append(step.out)


class _EveryHotKind(nn.Module):
    """Conv, BatchNorm, ReLU, concatenation, a residual add, a view, LayerNorm and a global
    pool: the kinds whose op-table entries build their Step and Moments in C."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x)))
        h = torch.cat([h, h * 0.5], 1)
        h = nn.functional.adaptive_avg_pool2d(h, 1).flatten(1)
        return self.fc(self.ln(h)) + h


def test_hot_kinds_build_whole_tuples() -> None:
    """Each hot kind's Step and Moments have every field (see the test above), here through
    the whole estimate."""
    from gradlint.estimate.op_table import propagate
    from gradlint.estimate.tensor_state import Moments, Step

    torch.manual_seed(0)
    graph = trace_target(Target("m.py::Hot", _EveryHotKind(), "m.py", 1,
                                inputs=(torch.randn(2, 3, 4, 4),)))
    assert {"conv", "norm", "elementwise", "cat", "add", "passthrough", "pool"} <= graph.kinds()
    est = estimate_gradients(graph)
    assert all(type(m) is Moments and len(m) == len(Moments._fields) for m in est.moments)
    moments: list[Moments] = []
    for node in graph.nodes:
        step = propagate(node, [moments[i] for i in node.inputs], graph.nodes, True)
        assert type(step) is Step and len(step) == len(Step._fields)
        assert type(step.out) is Moments and len(step.out) == len(Moments._fields)
        moments.append(step.out)
