"""Both tracers record what a slice keeps of a tensor (``take``: dim, start, stop, keeps the
dim) and a concatenation's dim: the estimate needs them to know which inputs of a ``cat`` the
loss reads (gradlint.estimate.position_profiles)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from gradlint.core.graph import LayerGraph
from gradlint.core.values import Target
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.trace.example_inputs import input_specs
from gradlint.trace.export import export_target
from gradlint.trace.fx import trace_target
from gradlint.trace.ir_builder import take_of


class Slices(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), self.fc(x)], dim=1)
        y = torch.stack([x, x], dim=-1).sum(-1)
        return y[:, 0] + y[:, 1:].mean(1) + x.narrow(1, 2, 3).sum(1) + x[..., 0:1].sum(1)


def _ops(graph: LayerGraph) -> list[tuple[str, dict[str, object]]]:
    return [(n.op, n.attrs) for n in graph.nodes if n.op == "cat" or "take" in n.attrs]


def test_fx_and_export_record_the_same_takes() -> None:
    model, x = Slices(), torch.randn(2, 5, 8)
    target = Target("Slices", model, __file__, 1, (x,))
    exported = export_target(target, model, (x,), input_specs((x,)), (), {}, False)
    assert _ops(trace_target(target)) == _ops(exported) == [
        ("cat", {"dim": 1}), ("cat", {"dim": -1, "stack": True}),
        ("passthrough", {"take": (1, 0, 1, False)}), ("passthrough", {"take": (1, 1, 6, True)}),
        ("passthrough", {"take": (1, 2, 5, True)}), ("passthrough", {"take": (2, 0, 1, True)}),
    ]


@pytest.mark.parametrize("index, expected", [
    ((slice(None), 0), (1, 0, 1, False)),
    ((slice(None), -1), (1, 5, 6, False)),
    ((Ellipsis, slice(2, None)), (2, 2, 8, True)),
    ((slice(None), slice(None), slice(None, None, 2)), None),  # a stride: not one range
    ((slice(None), 0, 0), None),  # two dims narrowed
    ((0,), None),  # the batch
    ((slice(None), None), None),  # a new axis
    ((slice(None), [0, 1]), None),  # an index list
])
def test_take_of(index: object, expected: object) -> None:
    assert take_of(index, (4, 6, 8)) == expected


class BuildsATensor(nn.Module):
    """forward builds a tensor from Python values (timm's Swin: a relative-position index;
    torchvision's MaxViT): fx records it as a constant it sets on the model."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = torch.tensor([3, 2, 1, 0, 4, 5, 6, 7])
        return torch.relu(self.fc(x))[:, index]


def test_a_tensor_built_in_forward_is_a_constant_and_is_not_left_on_the_model() -> None:
    model, x = BuildsATensor(), torch.randn(2, 8)
    graph = trace_target(Target("BuildsATensor", model, __file__, 1, (x,)))  # was GL903
    assert [n.op for n in graph.nodes if n.module == "fc"] == ["linear"]
    assert not [k for k in vars(model) if k.startswith("_tensor_constant")]


class DropPath(nn.Module):
    """timm's drop_path as torch.export sees it inside a spliced block: a mask from
    ``new_empty(...).bernoulli_(keep)``, divided by keep, times x."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = 0.8
        mask = x.new_empty((x.shape[0], 1)).bernoulli_(keep).div_(keep)
        return self.fc(x) * mask


def test_a_drop_path_mask_is_a_constant_of_mean_one() -> None:
    """Before: new_empty, bernoulli_ and div_ were opaque (gain 1, with x's moments as the
    mask's): timm's NesT, whose drop paths export, was 1.9 decades off, all of it low."""
    model, x = DropPath(), torch.randn(4, 8)
    graph = export_target(Target("DropPath", model, __file__, 1, (x,)), model, (x,),
                          input_specs((x,)), (), {}, False)
    assert not [n for n in graph.nodes if n.kind == "opaque"]
    est = estimate_gradients(graph)
    mul = next(n for n in graph.nodes if n.op == "mul")
    fc = next(n for n in graph.nodes if n.op == "linear")
    # E[mask^2] = keep / keep^2 = 1.25: the gain to the layer's output is that, in r
    assert est.log10_gain(mul.index, fc.index) == pytest.approx(0.5 * math.log10(1.25), abs=1e-6)
