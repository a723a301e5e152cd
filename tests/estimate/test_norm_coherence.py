"""What is alike at every position stays alike through a LayerNorm, and not through a Linear
that mixes positions.

Below a mean over tokens the gradient is the same at every token. A LayerNorm normalizes each
token alike, so it hands that part on (timm's NesT, Twins, PVT, DaViT: their early levels'
weights were 0.1-0.8 decades too low while it stopped at every norm). An MLP-Mixer's token MLP
is a Linear across the tokens, after a transpose: there the alike part is one direction of its
input among many, and it does not stay alike. A norm written out (``(x - mean) / sqrt(var +
eps)``, vit-pytorch's ChanLayerNorm) divides by a nearly constant scale, which hands it on too:
ScalableViT's stages before the last were 0.9-1.1 decades low while the division stopped it."""

from __future__ import annotations

import torch
import torch.nn as nn
from layer_errors import layer_errors

from gradlint.core.values import Target
from gradlint.estimate.sweeps import _position_mixing
from gradlint.trace.fx import trace_target


class Block(nn.Module):
    def __init__(self, width: int, tokens: int, mix_tokens: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mix_tokens = mix_tokens
        self.fc = nn.Linear(tokens, tokens) if mix_tokens else nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)  # no skip: what reaches the layers below crosses every norm
        if self.mix_tokens:
            return torch.nn.functional.gelu(self.fc(h.transpose(1, 2)).transpose(1, 2))
        return torch.nn.functional.gelu(self.fc(h))


class Tokens(nn.Module):
    """A token embedding, four blocks (LayerNorm, Linear, GELU), a mean over tokens, a head."""

    def __init__(self, mix_tokens: bool, width: int = 32, tokens: int = 24) -> None:
        super().__init__()
        self.embed = nn.Linear(8, width)
        self.blocks = nn.Sequential(*[Block(width, tokens, mix_tokens and k % 2 == 0)
                                      for k in range(4)])
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.embed(x)).mean(1))


def test_the_alike_part_crosses_every_norm() -> None:
    torch.manual_seed(0)
    errors = layer_errors(Tokens(False), (8, 24, 8))
    worst = max(errors, key=lambda k: abs(errors[k]))
    assert abs(errors[worst]) < 0.3, (worst, errors)  # -0.41 while norms stopped it


def test_a_channel_layer_after_a_token_mix_is_no_token_mix() -> None:
    torch.manual_seed(0)
    errors = layer_errors(Tokens(True), (8, 24, 8))
    assert abs(errors["blocks.3.norm"]) < 0.15, errors


class PatchMerging(nn.Module):
    """Swin's patch merging: 2x2 neighbouring tokens side by side in the channels, a Linear."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.embed = nn.Linear(8, width)
        self.mid = nn.Linear(width, width)  # its input keeps GELU's per-unit mean
        self.reduction = nn.Linear(4 * width, 2 * width)
        self.head = nn.Linear(2 * width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, H, W, 8)
        h = self.mid(torch.nn.functional.gelu(self.embed(x)))
        b, hh, ww, c = h.shape
        h = h.reshape(b, hh // 2, 2, ww // 2, 2, c).permute(0, 1, 3, 4, 2, 5).flatten(3)
        return self.head(self.reduction(h).mean((1, 2)))


def test_token_mixing_linears_and_space_to_depth_views_are_found() -> None:
    torch.manual_seed(0)
    mixer = Tokens(True)
    graph = trace_target(Target("M", mixer, __file__, 1, (torch.randn(2, 24, 8),)))
    mixing, merges = _position_mixing(graph)
    assert sorted(graph.nodes[i].module for i in mixing) == ["blocks.0.fc", "blocks.2.fc"]
    assert not merges
    graph = trace_target(Target("P", PatchMerging(), __file__, 1, (torch.randn(2, 8, 8, 8),)))
    mixing, merges = _position_mixing(graph)
    assert not mixing and list(merges.values()) == [4]


def test_a_patch_merging_hands_on_a_quarter_of_the_alike_part() -> None:
    torch.manual_seed(0)
    errors = layer_errors(PatchMerging(), (8, 8, 8, 8))
    assert abs(errors["mid"]) < 0.12, errors  # +0.20 with the alike part kept whole


class _ChanNorm(nn.Module):
    """vit-pytorch's ChanLayerNorm: a LayerNorm over channels, written out."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = torch.var(x, dim=1, unbiased=False, keepdim=True)
        mean = torch.mean(x, dim=1, keepdim=True)
        return (x - mean) / (var + 1e-5).sqrt() * self.g


class _WrittenNorms(nn.Module):
    """Residual conv blocks, each stage ending in a written-out norm, a global mean, a head."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 3, padding=1)
        self.convs = nn.ModuleList(nn.Conv2d(dim, dim, 3, padding=1) for _ in range(3))
        self.norms = nn.ModuleList(_ChanNorm(dim) for _ in range(3))
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = norm(h + torch.relu(conv(h)))
        return self.head(h.mean((2, 3)))


def test_the_alike_part_crosses_a_norm_written_out() -> None:
    torch.manual_seed(0)
    errors = layer_errors(_WrittenNorms(), (1, 3, 16, 16), seeds=(0,))
    for name in ("stem", "convs.0", "convs.1", "convs.2", "norms.0", "norms.1"):
        assert abs(errors[name]) < 0.4, errors  # -0.47 to -0.86 while the division stopped it
