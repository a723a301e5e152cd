"""What a forward returns packed, and ops a program keeps in place, are not unknown ops.

A named tuple built in forward (torchvision's GoogLeNet returns ``GoogLeNetOutputs(logits,
aux2, aux1)`` in training) is a container: the loss is taken on its first field, and nothing
behind it is of low confidence. An ATen in-place op a program keeps (``aten.silu_``, where a
block writes into its input) does what its out-of-place op does."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from gradlint.run.check_file import check_model
from gradlint.trace.op_lookup import aten_op


class Outputs(NamedTuple):
    logits: torch.Tensor
    aux: torch.Tensor


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        self.head = nn.Linear(32, 10)
        self.aux = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> Outputs:
        h = self.body(x)
        return Outputs(self.head(h), self.aux(h))


def test_a_named_tuple_output_is_a_container_and_its_first_field_the_loss() -> None:
    torch.manual_seed(0)
    report = check_model(TwoHeads(), torch.randn(4, 16))
    assert report.status == "ok"
    assert not [d for d in report.diagnostics if d.code == "GL904"]
    rows = {le.module: le for le in report.layers}
    assert all(le.confidence == "high" for le in report.layers)
    assert rows["head"].log10_grad is not None
    assert rows["aux"].zero  # no gradient from the loss on the first field


def test_an_in_place_aten_op_is_its_out_of_place_op() -> None:
    assert aten_op(torch.ops.aten.silu_.default) == aten_op(torch.ops.aten.silu.default) == "silu"
    assert aten_op(torch.ops.aten.relu_.default) == "relu"
    assert aten_op(torch.ops.aten.hardtanh_.default) == aten_op(torch.ops.aten.hardtanh.default)
