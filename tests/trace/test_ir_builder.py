"""Both converters build on one IR builder: the same model traced by torch.fx and by
torch.export gives the same layers, parameter names and arithmetic lowerings."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlint.core.graph import LayerGraph
from gradlint.core.values import Target
from gradlint.trace.example_inputs import input_specs
from gradlint.trace.export import export_target
from gradlint.trace.fx import trace_target
from gradlint.trace.weight_stats import owners_of, parameter_stats


class Functional(nn.Module):
    """Layers as functional calls on bare parameters, and x - y, x * c, -x."""

    def __init__(self) -> None:
        super().__init__()
        self.proj_weight = nn.Parameter(torch.randn(8, 8) / 8)
        self.proj_bias = nn.Parameter(torch.zeros(8))
        self.norm = nn.Parameter(torch.ones(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.linear(x, self.proj_weight, self.proj_bias)
        h = F.layer_norm(h, (8,), self.norm)
        return (h - x) * 2.0 + (-h)


def _layers(graph: LayerGraph) -> list[tuple[object, ...]]:
    return [(n.op, tuple(p.name for p in n.params), n.scales or (1.0,) * len(n.inputs),
             n.attrs.get("factor"), n.module) for n in graph.nodes
            if n.op in ("linear", "layer_norm", "add", "scale")]


def test_fx_and_export_build_the_same_graph() -> None:
    torch.manual_seed(0)
    model, x = Functional(), torch.randn(4, 8)
    target = Target("Functional", model, __file__, 1, (x,))
    stats, default_init = parameter_stats(model)
    traced = trace_target(target)
    exported = export_target(target, model, (x,), input_specs((x,)),
                             owners_of(model, {}, stats), stats, default_init)
    assert (traced.tracer, exported.tracer) == ("fx", "export")
    assert _layers(traced) == _layers(exported) == [
        # a bare tensor used as a weight is named for its role, so LayerGraph finds the weight
        ("linear", ("proj_weight#weight", "proj_bias#bias"), (1.0,), None, ""),
        ("layer_norm", ("norm#weight",), (1.0,), None, ""),
        ("add", (), (1.0, -1.0), None, None),
        ("scale", (), (1.0,), 2.0, None),
        ("scale", (), (1.0,), -1.0, None),
        ("add", (), (1.0, 1.0), None, None),
    ]
    linear = next(n for n in traced.nodes if n.op == "linear")
    assert linear.weight is not None and linear.weight.shape == (8, 8)


class Settings(nn.Module):
    """Activations called with non-default settings, positionally and by keyword."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.elu(F.leaky_relu(x, 0.2), alpha=0.5)
        x = F.softplus(F.hardtanh(x, -2.0, 2.0), beta=2.0)
        return F.softmax(F.gelu(x, approximate="tanh") ** 2, 1)


def test_fx_and_export_read_the_same_settings() -> None:
    model, x = Settings(), torch.randn(4, 8)
    target = Target("Settings", model, __file__, 1, (x,))
    exported = export_target(target, model, (x,), input_specs((x,)), (), {}, False)

    def settings(graph: LayerGraph) -> list[tuple[str, dict[str, object]]]:
        return [(n.op, {k: v for k, v in n.attrs.items() if k != "row_coherence"})
                for n in graph.nodes if n.op not in ("input", "passthrough")]

    traced = trace_target(target)
    # the softmax's input, alike along the row: read on the same values by both
    assert traced.nodes[-1].attrs["row_coherence"] == exported.nodes[-1].attrs["row_coherence"]
    assert settings(traced) == settings(exported) == [
        ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.5}),
        ("hardtanh", {"min_val": -2.0, "max_val": 2.0}), ("softplus", {"beta": 2.0}),
        ("gelu", {"approximate": "tanh"}), ("pow", {"exponent": 2}), ("softmax", {"dim": 1}),
    ]
