"""``F.conv2d`` called in forward: with a parameter weight it is its module's conv; with a
weight computed in forward (timm's StdConv2d and NFNet's ScaledStdConv2d standardize it over
each output's fan-in on every call, then scale it by a gain) it is a conv whose weight is an
input, E[W²] from that input's moments, and whose rows sum to zero, so the input's common mean
cancels. Before, both were an unknown op of gain 1 (GL904): timm's NF-Nets came out 0.8-1.9
decades off on average and dm_nfnet_f0 got a GL103 false alarm; now 0.04-0.18."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from layer_errors import layer_errors

from gradlint.core.values import Target
from gradlint.trace.fx import trace_target


class _Functional(nn.Conv2d):
    """A conv module whose forward calls F.conv2d on its own parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class _ScaledStd(nn.Conv2d):
    """NFNet's ScaledStdConv2d: the weight standardized per output channel, times gain/√fan."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))
        self.scale = self.weight[0].numel() ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                         weight=(self.gain * self.scale).view(-1), training=True,
                         momentum=0.0, eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class _Net(nn.Module):
    def __init__(self, conv: type[nn.Conv2d], exported: bool = False, c: int = 16) -> None:
        super().__init__()
        self.exported = exported
        self.convs = nn.ModuleList([conv(3, c, 3, padding=1)] +
                                   [conv(c, c, 3, padding=1) for _ in range(3)])
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.exported and x.shape[0] > 0:  # fx cannot branch on a size: the export path
            x = x * 1.0
        for conv in self.convs:
            x = torch.relu(conv(x))
        return self.head(x.mean((2, 3)))


def test_a_functional_conv_of_a_parameter_is_its_modules_conv() -> None:
    graph = trace_target(Target("m.py::M", _Net(_Functional), "m.py", 1))
    convs = [n for n in graph.nodes if n.op == "conv"]
    assert [n.module for n in convs] == [f"convs.{i}" for i in range(4)]
    assert all(n.weight is not None and len(n.inputs) == 1 for n in convs)
    assert not [n for n in graph.nodes if n.kind == "opaque"]


def test_a_standardized_weight_is_an_input_of_its_conv() -> None:
    graph = trace_target(Target("m.py::M", _Net(_ScaledStd), "m.py", 1))
    convs = [n for n in graph.nodes if n.op == "conv"]
    assert len(convs) == 4 and all(len(n.inputs) == 2 and n.attrs.get("centred")
                                   for n in convs)
    assert not [n for n in graph.nodes if n.kind == "opaque"]


def test_functional_convs_against_autograd() -> None:
    torch.manual_seed(0)
    errors = layer_errors(_Net(_Functional), (1, 3, 16, 16), seeds=(0,))
    assert max(abs(e) for e in errors.values()) < 0.3, errors


def test_scaled_standardized_convs_against_autograd() -> None:
    """fx and the export fallback alike."""
    for exported in (False, True):
        torch.manual_seed(0)
        model = _Net(_ScaledStd, exported)
        graph = trace_target(Target("m.py::M", model, "m.py", 1))
        assert graph.tracer == ("export" if exported else "fx")
        errors = layer_errors(model, (1, 3, 16, 16), seeds=(0,))
        assert max(abs(e) for e in errors.values()) < 0.3, (exported, errors)
