"""GL101's attenuation does not change with the example input's size.

Below a global average pool over m positions each position gets 1/m of the gradient and the
conv below sums m positions: its weight gradient is 1/sqrt(m) of the head's for the input's size
alone. Counted as a factor, that put timm's MobileViT-XXS over the threshold at 128 px and not
at 64. Across the average that part is left out; a steady per-layer decay still counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from gradlint.run.check_file import check_model


def _cnn(act: type[nn.Module], depth: int, norm: bool = True) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, padding=1), act()]
    for _ in range(depth - 1):
        layers += [nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16) if norm else nn.Identity(),
                   act()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def _attenuation(model: nn.Module, px: int) -> dict[str, float]:
    report = check_model(model, torch.randn(4, 3, px, px))
    return {le.module: le.log10_attenuation or 0.0 for le in report.layers}


def test_the_attenuation_below_a_global_pool_is_the_same_at_every_resolution() -> None:
    torch.manual_seed(0)
    model = _cnn(nn.ReLU, 6)
    small, large = _attenuation(model, 16), _attenuation(model, 128)
    for name in small:
        assert abs(small[name] - large[name]) < 0.05, (name, small[name], large[name])


@pytest.mark.parametrize("px", [16, 64, 128])
def test_a_sigmoid_cnn_without_norms_still_vanishes_at_every_resolution(px: int) -> None:
    torch.manual_seed(0)
    report = check_model(_cnn(nn.Sigmoid, 8, norm=False), torch.randn(4, 3, px, px))
    assert [d for d in report.diagnostics if d.code == "GL101"]
