"""An input of an add or a product broadcast over k entries of its output (a diffusion U-Net's
time embedding added at every position, a squeeze-excitation's gate, one token added to a
table of positions) receives the sum of their gradients: k (r - a) + k² a per entry, a the
part alike at all of them. Taking one entry's gradient left such layers log10(k) decades
low, less what is alike (0.3-0.75 decades for MobileNetV3's gates, 1.6 for a patch embedding
broadcast over 64 positions)."""

from __future__ import annotations

import torch
import torch.nn as nn
from layer_errors import layer_errors


class _TimeConditioned(nn.Module):
    """Conv blocks with a per-example embedding projected and added at every position."""

    def __init__(self, c: int = 32) -> None:
        super().__init__()
        self.time = nn.Sequential(nn.Linear(16, c), nn.SiLU(), nn.Linear(c, c))
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.proj = nn.ModuleList(nn.Linear(c, c) for _ in range(3))
        self.convs = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for _ in range(3))
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time(t)
        h = self.stem(x)
        for proj, conv in zip(self.proj, self.convs, strict=True):
            h = h + torch.relu(conv(h + proj(emb)[:, :, None, None]))
        return self.head(h.mean((2, 3)))


class _Gated(nn.Module):
    """Convs with a squeeze-excitation gate (a global mean, two 1x1 convs, a sigmoid)."""

    def __init__(self, c: int = 32) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for _ in range(3))
        self.fc1 = nn.ModuleList(nn.Conv2d(c, c // 4, 1) for _ in range(3))
        self.fc2 = nn.ModuleList(nn.Conv2d(c // 4, c, 1) for _ in range(3))
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for conv, fc1, fc2 in zip(self.convs, self.fc1, self.fc2, strict=True):
            a = torch.relu(conv(h))
            gate = torch.sigmoid(fc2(torch.relu(fc1(a.mean((2, 3), keepdim=True)))))
            h = h + a * gate
        return self.head(h.mean((2, 3)))


class _OneToken(nn.Module):
    """One embedded token per example added to a fixed table of 32 positions."""

    def __init__(self, d: int = 64) -> None:
        super().__init__()
        self.embed = nn.Linear(48, d)
        self.register_buffer("positions", torch.randn(32, d))
        self.mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.positions
        return self.head((h + self.mlp(h)).mean(1))


def test_a_time_embedding_added_at_every_position_against_autograd() -> None:
    torch.manual_seed(0)
    model = _TimeConditioned()
    errors = layer_errors(model, (1, 3, 16, 16), seeds=(0,), extra=((1, 16),))
    for name in ("time.0", "time.2", "proj.0", "proj.1", "proj.2"):
        assert abs(errors[name]) < 0.3, errors


def test_squeeze_excitation_gates_against_autograd() -> None:
    torch.manual_seed(0)
    errors = layer_errors(_Gated(), (1, 3, 16, 16), seeds=(0,))
    for i in range(3):
        assert abs(errors[f"fc1.{i}"]) < 0.3, errors
        assert abs(errors[f"fc2.{i}"]) < 0.3, errors


def test_one_token_broadcast_over_positions_against_autograd() -> None:
    torch.manual_seed(0)
    errors = layer_errors(_OneToken(), (1, 1, 48), seeds=(0,))
    assert abs(errors["embed"]) < 0.3, errors


class _ChannelsFirstNorm(nn.Module):
    """ConvNeXt's hand-written channels-first LayerNorm: its γ and β are broadcast over every
    position through a view, written ``w[:, None, None]`` or ``w.view(1, -1, 1, 1)``."""

    def __init__(self, c: int, indexed: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.indexed = indexed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        x = (x - u) / torch.sqrt((x - u).pow(2).mean(1, keepdim=True) + 1e-6)
        if self.indexed:
            return self.weight[:, None, None] * x + self.bias[:, None, None]
        return self.weight.view(1, -1, 1, 1) * x + self.bias.view(1, -1, 1, 1)


class _NormedStem(nn.Module):
    def __init__(self, indexed: bool, c: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 4, stride=4)
        self.norm = _ChannelsFirstNorm(c, indexed)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
                                                  nn.Conv2d(c, c, 1)) for _ in range(2))
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.stem(x))
        for block in self.blocks:
            x = x + block(x)
        return self.head(x.mean((2, 3)))


def test_a_parameter_broadcast_through_its_view_against_autograd() -> None:
    """Either spelling sums γ's and β's gradient over the 256 positions (``sweeps._reached``),
    and ``w[:, None, None]`` is one example's (1, C, 1, 1), not C examples of one entry each
    (``IRBuilder.add``). Before, the norm was 2.22 decades low through the index and 1.62
    through ``.view``."""
    for indexed in (True, False):
        torch.manual_seed(0)
        errors = layer_errors(_NormedStem(indexed), (1, 3, 64, 64), seeds=(0,))
        assert abs(errors["norm"]) < 0.3, (indexed, errors)
