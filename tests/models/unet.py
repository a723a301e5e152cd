"""A UNet-style segmenter: double 3x3 conv-BN-ReLU stages, max-pool down, ConvTranspose2d up
(bilinear upsampling + conv at the last level), skip connections by concatenation."""

from __future__ import annotations

import torch
import torch.nn as nn


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Up(nn.Module):
    def __init__(self, cin: int, cout: int, bilinear: bool = False) -> None:
        super().__init__()
        self.up: nn.Module
        if bilinear:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"),
                                    nn.Conv2d(cin, cin // 2, 1))
        else:
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNetish(nn.Module):
    """Four levels (16-32-64-128 channels) around a 256-channel bottleneck, 2-class output."""

    def __init__(self, cin: int = 3, classes: int = 2, base: int = 16) -> None:
        super().__init__()
        w = [base * 2 ** i for i in range(5)]
        self.inc = DoubleConv(cin, w[0])
        self.downs = nn.ModuleList([nn.Sequential(nn.MaxPool2d(2), DoubleConv(w[i], w[i + 1]))
                                    for i in range(4)])
        self.ups = nn.ModuleList([Up(w[i + 1], w[i], bilinear=i == 0) for i in reversed(range(4))])
        self.outc = nn.Conv2d(w[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)
