"""The models ``bench/speed.py`` times, one no-argument factory each, so that gradlint's own load
stage (and the ``gradlint`` command, as ``bench/speed_models.py::ResNet50``) can build them.

Sizes are those of the real architectures (ResNet-50, DenseNet-201, a 24-block transformer, the
Llama-3 70B config) so the tracing and forward/backward baselines are the ones a user would see.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:  # the tests/models zoo is imported as ``models``
    sys.path.insert(0, str(ROOT / "tests"))

from models.resnet import Bottleneck  # noqa: E402
from models.transformer import Transformer  # noqa: E402

MLP_WIDTH = 256


def _mlp(depth: int) -> nn.Sequential:
    """``depth`` Linear+Tanh layers then a head: deep enough that GL101/GL102 fire."""
    layers: list[nn.Module] = []
    for _ in range(depth - 1):
        layers += [nn.Linear(MLP_WIDTH, MLP_WIDTH), nn.Tanh()]
    layers.append(nn.Linear(MLP_WIDTH, 10))
    return nn.Sequential(*layers)


def MLP10() -> nn.Module:  # noqa: N802 - a factory named like the class it stands for
    return _mlp(10)


def MLP100() -> nn.Module:  # noqa: N802
    return _mlp(100)


def MLP1000() -> nn.Module:  # noqa: N802
    return _mlp(1000)


# ---------------------------------------------------------------------------------------------
# ResNet-50: Bottleneck blocks [3, 4, 6, 3], torchvision's layout (53 conv/fc layers), full
# width at 224x224 with the 7x7 stem and max-pool (the zoo's ResNet50ish is 1/4 width at 32x32)
# ---------------------------------------------------------------------------------------------


class ResNet50(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        blocks: list[nn.Module] = []
        cin = 64
        for stage, (count, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512),
                                                   strict=True)):
            for i in range(count):
                blocks.append(Bottleneck(cin, width, stride=2 if i == 0 and stage else 1))
                cin = width * 4
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


# ---------------------------------------------------------------------------------------------
# DenseNet-201: dense blocks [6, 12, 48, 32], growth 32, bottleneck 4 (201 conv/fc layers)
# ---------------------------------------------------------------------------------------------


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(feats, 1)
        return self.conv2(torch.relu(self.norm2(self.conv1(torch.relu(self.norm1(x))))))


class DenseBlock(nn.Module):
    def __init__(self, count: int, cin: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(cin + i * growth, growth) for i in range(count))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(feats))
        return torch.cat(feats, 1)


class DenseNet201(nn.Module):
    def __init__(self, growth: int = 32, classes: int = 1000) -> None:
        super().__init__()
        c = 2 * growth
        parts: list[nn.Module] = [nn.Conv2d(3, c, 7, stride=2, padding=3, bias=False),
                                  nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, stride=2, padding=1)]
        for i, count in enumerate((6, 12, 48, 32)):
            parts.append(DenseBlock(count, c, growth))
            c += count * growth
            if i < 3:
                parts += [nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                          nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)]
                c //= 2
        parts += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                  nn.Flatten()]
        self.features = nn.Sequential(*parts)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def Transformer24() -> nn.Module:  # noqa: N802
    """tests/models' hand-written pre-LN transformer (explicit attention), 24 blocks."""
    return Transformer(vocab=8000, dim=256, depth=24, heads=8, hidden=1024, max_len=64)


def Llama70B() -> nn.Module:  # noqa: N802
    """The Llama-3 70B config (bench/big_model.py); gradlint builds it on ``meta``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(
        hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
        num_attention_heads=64, num_key_value_heads=8, vocab_size=128256, use_cache=False))


def WrappedLlama70B() -> nn.Module:  # noqa: N802
    """The same config held in a wrapper module (bench/speed_llama70b_wrapped.py)."""
    from bench.speed_llama70b_wrapped import WrappedLlama70B as Wrapped

    return Wrapped()
