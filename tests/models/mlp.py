"""Plain and residual MLPs and a small BatchNorm CNN for the ground-truth and model tests."""

from __future__ import annotations

import torch
import torch.nn as nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU,
}


def plain_mlp(act: str, depth: int, width: int = 128, classes: int = 10,
              init: str = "default") -> nn.Sequential:
    """input -> depth x [Linear(width, width) + act] -> Linear(width, classes).

    Inside the Sequential the hidden Linears are "0", "2", ..., and the head is str(2 * depth).
    ``init``: "default" (PyTorch's) or "xavier" (xavier_uniform_ weights, zero biases).
    """
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), ACTIVATIONS[act]()]
    layers.append(nn.Linear(width, classes))
    model = nn.Sequential(*layers)
    if init == "xavier":
        for mod in model.modules():
            if isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)
    elif init != "default":
        raise ValueError(f"unknown init {init!r}")
    return model


class ResidualBlock(nn.Module):
    """x + fc2(relu(fc1(LayerNorm(x))))."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class ResidualMLP(nn.Module):
    """A pre-LayerNorm residual ReLU MLP: stem Linear, ``depth`` blocks, final norm and head."""

    def __init__(self, width: int = 128, depth: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Linear(width, width)
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.stem(x))))


class SmallBNCNN(nn.Module):
    """4 x [Conv2d(3x3) + BatchNorm2d + ReLU], global average pool, Linear head."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 32, 64),
                 classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class ZeroHeadMLP(nn.Module):
    """A 6-layer ReLU MLP whose last Linear is zero-initialized (a gate, not vanishing)."""

    def __init__(self, width: int = 128, depth: int = 6, classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
