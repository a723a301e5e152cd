"""Norms called as functions on a module's own parameters (timm's ``BatchNormAct2d`` calls
``F.batch_norm`` in its forward) are norms, not opaque calls: an opaque one passes the
un-normalized moments on, and every layer after it was estimated decades too low (timm's
Inception-v3: 2.4 decades mean error, 9.5 at worst)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlint.core.graph import LayerGraph
from gradlint.core.values import Target
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.trace.fx import trace_target


class FunctionalNorms(nn.Module):
    """Conv → F.batch_norm (eps 1e-3, as timm's) → ReLU → conv → F.group_norm (eps 0.1)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn_weight = nn.Parameter(torch.ones(16))
        self.bn_bias = nn.Parameter(torch.zeros(16))
        self.register_buffer("running_mean", torch.zeros(16))
        self.register_buffer("running_var", torch.ones(16))
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.gn_weight = nn.Parameter(torch.ones(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.batch_norm(self.conv1(x) * 1000.0, self.running_mean, self.running_var,
                         self.bn_weight, self.bn_bias, True, 0.1, 1e-3)
        h = self.conv2(torch.relu(h)) * 1000.0
        return F.group_norm(h, 4, self.gn_weight, eps=0.1).mean((2, 3))


def _norms(graph: LayerGraph) -> list[tuple[str, tuple[str, ...], dict[str, object]]]:
    return [(n.op, tuple(p.name for p in n.params), n.attrs) for n in graph.nodes
            if n.kind == "norm"]


def test_functional_norms_take_their_parameters_and_settings() -> None:
    torch.manual_seed(0)
    model = FunctionalNorms()
    graph = trace_target(Target("FunctionalNorms", model, __file__, 1,
                                (torch.randn(4, 3, 8, 8),)))
    assert _norms(graph) == [
        ("batch_norm", ("bn_weight#weight", "bn_bias#bias"), {"eps": 1e-3}),
        ("group_norm", ("gn_weight#weight",), {"groups": 4, "eps": 0.1}),
    ]
    assert not [n for n in graph.nodes if n.kind == "opaque"]


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_a_functional_norm_normalizes_the_moments(scale: float) -> None:
    """Whatever the scale going in, what comes out of the norm has unit mean square."""
    torch.manual_seed(0)
    model = FunctionalNorms()
    graph = trace_target(Target("FunctionalNorms", model, __file__, 1,
                                (torch.randn(4, 3, 8, 8) * scale,)))
    est = estimate_gradients(graph)
    for n in graph.nodes:
        if n.kind == "norm":
            assert math.isclose(est.moments[n.index].second, 1.0, rel_tol=0.02), n.op
