"""A MobileNetV3-style CNN: inverted residual blocks (1x1 expand, depthwise 3x3, sigmoid
squeeze-excitation gate, 1x1 linear projection), BatchNorm, hardswish and ReLU6."""

from __future__ import annotations

import torch
import torch.nn as nn


class SqueezeExcite(nn.Module):
    """x * sigmoid(fc2(relu(fc1(mean over space))))."""

    def __init__(self, channels: int, reduce: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduce, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduce, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            act: type[nn.Module] | None = nn.Hardswish) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, expand: int, cout: int, stride: int, se: bool,
                 act: type[nn.Module]) -> None:
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != cin:
            layers.append(conv_bn(cin, expand, 1, act=act))
        layers.append(conv_bn(expand, expand, 3, stride, groups=expand, act=act))
        if se:
            layers.append(SqueezeExcite(expand))
        layers.append(conv_bn(expand, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_res else out


class MobileNetish(nn.Module):
    """Stem, 11 inverted residual blocks (MobileNetV3-Small's layout at half width), 1x1 conv,
    pool, hardswish classifier."""

    # cin, expand, cout, stride, squeeze-excite, activation
    CONFIG = ((8, 8, 8, 2, True, nn.ReLU6), (8, 36, 12, 2, False, nn.ReLU6),
              (12, 44, 12, 1, False, nn.ReLU6), (12, 48, 20, 2, True, nn.Hardswish),
              (20, 120, 20, 1, True, nn.Hardswish), (20, 120, 20, 1, True, nn.Hardswish),
              (20, 60, 24, 1, True, nn.Hardswish), (24, 72, 24, 1, True, nn.Hardswish),
              (24, 144, 48, 2, True, nn.Hardswish), (48, 288, 48, 1, True, nn.Hardswish),
              (48, 288, 48, 1, True, nn.Hardswish))

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8, 3, stride=2)
        self.blocks = nn.Sequential(*[InvertedResidual(*cfg) for cfg in self.CONFIG])
        self.last = conv_bn(48, 288, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(288, 512), nn.Hardswish(),
                                        nn.Linear(512, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.last(self.blocks(self.stem(x))))
        return self.classifier(torch.flatten(x, 1))


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randn(4, 3, 64, 64),)
