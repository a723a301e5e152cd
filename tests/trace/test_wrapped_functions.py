"""Functions fx keeps whole (``torch.fx.wrap``: torchvision's ``shifted_window_attention``,
``_get_relative_position_bias``, ``_patch_merging_pad``) are exported on the inputs they were
called with and spliced in, their layers reported under the modules whose parameters they
take; before, each was one opaque node (GL904, every layer of torchvision's Swin low
confidence, Spearman -0.02 against autograd on swin_t)."""

from __future__ import annotations

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from gradlint.core.graph import InputSpec
from gradlint.core.values import Target
from gradlint.run.check_file import check_model
from gradlint.trace.fx import trace_target
from gradlint.verify.compare import verify_model


def gated_mlp(x: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor, gain: float
              ) -> torch.Tensor:
    if x.shape[-1] != w_in.shape[1]:  # control flow on a size: why libraries wrap functions
        raise ValueError("width")
    return F.linear(torch.tanh(F.linear(x, w_in)) * gain, w_out)


torch.fx.wrap("gated_mlp")


class Block(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.fc_in = nn.Linear(width, width, bias=False)
        self.fc_out = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + gated_mlp(x, self.fc_in.weight, self.fc_out.weight, 0.5)


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


def test_a_wrapped_function_is_spliced_under_its_parameters_modules() -> None:
    torch.manual_seed(0)
    graph = trace_target(Target("Model", Model(), __file__, 1, (torch.randn(4, 16),)))
    assert not [n for n in graph.nodes if n.kind == "opaque"]
    linears = [(n.module, tuple(p.name for p in n.params)) for n in graph.nodes
               if n.op == "linear"]
    assert linears == [
        ("blocks.0.fc_in", ("blocks.0.fc_in.weight",)),
        ("blocks.0.fc_out", ("blocks.0.fc_out.weight",)),
        ("blocks.1.fc_in", ("blocks.1.fc_in.weight",)),
        ("blocks.1.fc_out", ("blocks.1.fc_out.weight",)),
        ("head", ("head.weight", "head.bias")),
    ]


def test_torchvision_swin_is_traced_through_and_measured_right() -> None:
    torch.manual_seed(0)
    model = torchvision.models.swin_t()
    shape = (2, 3, 64, 64)
    report = check_model(model, torch.randn(*shape))
    assert report.status == "ok"
    # nothing stays opaque: stochastic depth is a view (gradlint.trace.op_lookup._WRAPPED)
    assert not [d.message for d in report.diagnostics if d.code == "GL904"]
    assert all(le.confidence == "high" for le in report.layers)
    v = verify_model(model, (InputSpec(shape, "float32"),), report.layers, batch=2, seeds=(0,))
    assert v.error is None and v.spearman is not None and v.mean_error is not None
    assert v.spearman > 0.8 and v.mean_error < 0.45, v
