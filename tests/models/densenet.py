"""A DenseNet-BC-style CNN: dense blocks whose layers (BN-ReLU-1x1 conv-BN-ReLU-3x3 conv) see the
concatenation of all earlier feature maps, and BN-ReLU-1x1 conv-avgpool transitions."""

from __future__ import annotations

import torch
import torch.nn as nn


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bottleneck: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bottleneck * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bottleneck * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bottleneck * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    def __init__(self, layers: int, cin: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([DenseLayer(cin + i * growth, growth) for i in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.AvgPool2d(2))


class DenseNetish(nn.Module):
    """Stem conv, three dense blocks of 6 layers (growth 12) with halving transitions, BN-ReLU,
    global pool, Linear head."""

    def __init__(self, growth: int = 12, layers: tuple[int, ...] = (6, 6, 6),
                 classes: int = 10) -> None:
        super().__init__()
        c = 2 * growth
        parts: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1, bias=False)]
        for i, n in enumerate(layers):
            parts.append(DenseBlock(n, c, growth))
            c += n * growth
            if i < len(layers) - 1:
                parts.append(Transition(c, c // 2))
                c //= 2
        parts += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*parts)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
