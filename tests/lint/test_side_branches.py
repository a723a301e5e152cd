"""GL101 judges attenuation that compounds along the main path: a squeeze-excitation branch
(x * gate(fc2(act(fc1(pool(x)))))) is one structural drop, judged by the main path where it
joins. Before, torchvision's mobilenet_v3_small got GL101 at 64 px and regnet_y_400mf at 128 px
on their SE fc1 layers (and not at 224 px): a verdict that flipped with the input size."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torchvision

from gradlint.run.check_file import check_model


@pytest.mark.parametrize("name, px", [
    ("mobilenet_v3_small", 64), ("mobilenet_v3_small", 128), ("mobilenet_v3_small", 224),
    ("regnet_y_400mf", 64), ("regnet_y_400mf", 128),
])
def test_stock_se_networks_are_quiet_at_every_resolution(name: str, px: int) -> None:
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None)
    report = check_model(model, torch.randn(2, 3, px, px))
    assert report.status == "ok"
    assert [d for d in report.diagnostics if d.code in ("GL101", "GL103")] == []
    se = [le for le in report.layers if le.side_branch is not None]
    # every SE layer is marked, with the SE module it belongs to; nothing else is
    assert se and all(le.module.rpartition(".")[0] == le.side_branch for le in se)
    assert all(le.module.endswith((".fc1", ".fc2")) for le in se)


class Gated(nn.Module):
    """A main path of plain sigmoid layers, each scaled by an SE-style gate whose own branch
    is ``branch`` layers deep."""

    def __init__(self, depth: int, branch: int, width: int = 32) -> None:
        super().__init__()
        self.main = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.gates = nn.ModuleList(
            nn.Sequential(*[m for _ in range(branch) for m in (nn.Linear(width, width),
                                                               nn.Sigmoid())])
            for _ in range(depth))
        self.head = nn.Linear(width * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, gate in zip(self.main, self.gates, strict=True):
            h = torch.sigmoid(layer(x))  # (B, 4, width): the gate is per channel
            x = h * gate(h.mean(1, keepdim=True))
        return self.head(x.flatten(1))


def test_the_main_path_still_fires_through_gates() -> None:
    torch.manual_seed(0)
    report = check_model(Gated(depth=12, branch=1), torch.randn(4, 4, 32))
    fired = [d for d in report.diagnostics if d.code == "GL101"]
    assert fired and any("main.0" in d.message for d in fired)


def test_a_deep_sick_branch_still_fires() -> None:
    torch.manual_seed(0)
    report = check_model(Gated(depth=1, branch=10), torch.randn(4, 4, 32))
    layers = {le.module: le for le in report.layers}
    first = layers["gates.0.0"]
    assert first.side_branch is not None
    assert any(d.code == "GL101" and "gates.0" in d.message for d in report.diagnostics)
