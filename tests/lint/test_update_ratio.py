"""GL101 compares update ratios (weight-gradient RMS / weight RMS), so fan-in is not
attenuation: a standard UNet's 1024-channel bottleneck (10^-2.4 below the output conv in
gradient RMS at 128 px) is quiet, and every classic failure still fires."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from gradlint.run.check_file import check_model


def _double(i: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o),
                         nn.ReLU(inplace=True), nn.Conv2d(o, o, 3, padding=1, bias=False),
                         nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """The usual UNet: Conv-BN-ReLU x2 per level, max-pool down, transposed conv up, skip
    concat, 1x1 output conv; 64 -> 1024 channels."""

    def __init__(self, c: int = 64) -> None:
        super().__init__()
        widths = [c, 2 * c, 4 * c, 8 * c, 16 * c]
        self.inc = _double(3, widths[0])
        self.downs = nn.ModuleList(_double(a, b) for a, b in zip(widths, widths[1:], strict=False))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2)
                                 for a, b in zip(widths[::-1][1:], widths[::-1], strict=False))
        self.convs = nn.ModuleList(_double(2 * a, a) for a in widths[::-1][1:])
        self.outc = nn.Conv2d(c, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(nn.functional.max_pool2d(skips[-1], 2)))
        h = skips.pop()
        for up, conv in zip(self.ups, self.convs, strict=True):
            h = conv(torch.cat([skips.pop(), up(h)], 1))
        return self.outc(h)


def test_a_standard_unet_is_quiet() -> None:
    torch.manual_seed(0)
    report = check_model(UNet(), torch.randn(2, 3, 64, 64))
    assert report.status == "ok"
    assert [d.code for d in report.diagnostics if d.severity == "error"] == []
    layers = {le.module: le for le in report.layers}
    deep, out = layers["downs.3.3"], layers["outc"]
    assert deep.log10_relative is not None and deep.log10_relative < -1.5  # small per entry...
    assert deep.log10_update is not None and out.log10_update is not None
    # ...but its weights are as small: the update ratio is within ~1.5 decades of the output's
    assert deep.log10_update - out.log10_update > -1.6
    assert deep.log10_attenuation is not None and deep.log10_attenuation > -2.0


def test_update_ratio_is_gradient_over_weight_rms() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    report = check_model(model, torch.randn(4, 64))
    for le in report.layers:
        w = dict(model.named_parameters())[f"{le.module}.weight"]
        assert le.log10_grad is not None and le.log10_update is not None
        rms = math.log10(w.detach().pow(2).mean().sqrt().item())
        assert abs(le.log10_update - (le.log10_grad - rms)) < 1e-6


def test_classic_failures_still_fire() -> None:
    torch.manual_seed(0)
    sigmoid = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(64, 64), nn.Sigmoid())],
                            nn.Linear(64, 10))
    tanh = nn.Sequential(*[m for _ in range(30) for m in (nn.Linear(128, 128), nn.Tanh())],
                         nn.Linear(128, 10))
    for model, width in ((sigmoid, 64), (tanh, 128)):
        report = check_model(model, torch.randn(4, width))
        assert any(d.code == "GL101" for d in report.diagnostics), type(model)
