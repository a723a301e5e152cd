"""Attention written out (softmax(q kᵀ) @ v, as torchvision's Swin does), a peaked softmax's
concentration and F.normalize."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from layer_errors import layer_errors

from gradlint.core.values import Target
from gradlint.estimate.op_forward import concentration
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.trace.fx import trace_target


class _Block(nn.Module):
    """Pre-norm attention written out, then an MLP, over 49 tokens."""

    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        x = x + self.proj(out)
        return x + self.mlp(self.norm2(x))


class _Tokens(nn.Module):
    def __init__(self, depth: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(16, 64)
        self.blocks = nn.Sequential(*[_Block() for _ in range(depth)])
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.embed(x)).mean(1))


def test_values_below_a_mean_pool_get_the_alike_gradient() -> None:
    """Below the mean over tokens, the gradient is alike at every query and reaches every
    value whole: the first blocks' norm1 and qkv were 0.6-0.8 decades too low (torchvision's
    Swin-S), now within 0.3 of autograd."""
    torch.manual_seed(0)
    errors = layer_errors(_Tokens(), (1, 49, 16), seeds=(0,))
    for i in range(4):
        for name in (f"blocks.{i}.norm1", f"blocks.{i}.qkv"):
            assert abs(errors[name]) < 0.3, (name, errors)


@pytest.mark.parametrize(("v", "n"), [(0.5, 49), (3.0, 64), (3.0, 197), (8.0, 49)])
def test_concentration_matches_sampling(v: float, n: int) -> None:
    """E sum p² of a softmax of n N(0, v) logits: e^v / n is 2.3x too large at v = 3."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(20_000, n, generator=gen, dtype=torch.float64) * math.sqrt(v)
    sampled = (torch.softmax(z, -1) ** 2).sum(-1).mean().item()
    assert concentration(v, n) == pytest.approx(sampled, rel=0.03)


class _Cosine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc(x), dim=-1) * 3.0


def test_f_normalize_gives_unit_vectors() -> None:
    """x / ||x|| over 32 entries: each entry's mean square is 1/32 (as a LayerNorm, 1)."""
    torch.manual_seed(0)
    model = _Cosine()
    graph = trace_target(Target("_Cosine", model, __file__, 1, (torch.randn(4, 10, 32),)))
    est = estimate_gradients(graph)
    node = next(n for n in graph.nodes if n.op == "l2_normalize")
    assert est.moments[node.index].second == pytest.approx(1 / 32, rel=0.01)
