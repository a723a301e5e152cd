"""A concatenation hands each input its slice of the gradient, so the part alike at every
position (below a global or token mean pool) reaches the inputs whole; dropping it there left
the layers before a skip concat (U-ViT, DenseNet without BatchNorm) 0.6-1.0 decades low.
BatchNorm behind a concatenation of channels still centres the weight gradient of the layers
before it (each channel reaches one norm channel), and GroupNorm removes only each group's
mean over its channels of that part (InstanceNorm: all of it)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from layer_errors import layer_errors

from gradlint.core.graph import GraphNode
from gradlint.estimate.op_table import entry_for


class _Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


class _TokenSkip(nn.Module):
    """U-ViT's long skip: early tokens concatenated with late ones, a Linear to combine, a
    token mean pool."""

    def __init__(self, d: int = 64) -> None:
        super().__init__()
        self.embed = nn.Linear(16, d)
        self.b1, self.b2, self.b3 = _Block(d), _Block(d), _Block(d)
        self.combine = nn.Linear(2 * d, d)
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.embed(x)
        h = self.b2(self.b1(skip))
        h = self.b3(self.combine(torch.cat((skip, h), dim=-1)))
        return self.head(self.norm(h).mean(1))


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(c)
    if kind == "group1":
        return nn.GroupNorm(1, c)
    return nn.Identity()


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, kind: str) -> None:
        super().__init__()
        self.norm = _norm(kind, cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.relu(self.norm(x)))


class _Dense(nn.Module):
    """A dense block: every layer sees the channel concatenation of all earlier outputs."""

    def __init__(self, kind: str, layers: int = 5, c: int = 16, growth: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.layers = nn.ModuleList(_DenseLayer(c + i * growth, growth, kind)
                                    for i in range(layers))
        self.norm = _norm(kind, c + layers * growth)
        self.head = nn.Linear(c + layers * growth, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.stem(x)]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        return self.head(torch.relu(self.norm(torch.cat(feats, 1))).mean((2, 3)))


def test_layers_before_a_token_skip_concat_against_autograd() -> None:
    torch.manual_seed(0)
    errors = layer_errors(_TokenSkip(), (1, 49, 16), seeds=(0,))
    for name in ("b1.fc1", "b1.fc2", "b2.fc1", "b2.fc2"):  # were 0.26-0.64 decades low
        assert abs(errors[name]) < 0.3, errors


@pytest.mark.parametrize("kind", ["none", "group1", "batch"])
def test_dense_block_convs_against_autograd(kind: str) -> None:
    """Without a norm and with GroupNorm(1, C) the convs were 0.7-1.0 decades low; with
    BatchNorm they stay within 0.1 (the concatenation must not add an uncentred part)."""
    torch.manual_seed(0)
    errors = layer_errors(_Dense(kind), (1, 3, 16, 16), seeds=(0,))
    for i in range(5):
        assert abs(errors[f"layers.{i}.conv"]) < 0.3, errors


def _norm_node(op: str, channels: int, groups: int | None = None) -> GraphNode:
    attrs = {} if groups is None else {"groups": groups}
    return GraphNode(index=1, op=op, inputs=(0,), attrs=attrs, shape=(1, channels, 8, 8))


@pytest.mark.parametrize(("op", "groups", "kept"), [
    ("group_norm", 1, 1 - 1 / 32), ("group_norm", 8, 1 - 8 / 32),
    ("group_norm", 32, 0.0), ("instance_norm", None, 0.0), ("layer_norm", None, 1.0),
    ("batch_norm", None, 1.0)])
def test_what_each_norm_keeps_of_a_gradient_alike_everywhere(op: str, groups: int | None,
                                                             kept: float) -> None:
    node = _norm_node(op, 32, groups)
    src = GraphNode(index=0, op="input", shape=(1, 32, 8, 8))
    coherence = entry_for(op, "norm").position_coherence
    s, g = math.log(0.5), math.log(2.0)
    found = -math.inf if coherence is None else coherence(node, src, 0.0, s, g, [])
    assert math.exp(found) == pytest.approx(kept * 0.5 * 2.0)


def test_a_concatenation_keeps_what_is_alike_everywhere() -> None:
    node = GraphNode(index=2, op="cat", inputs=(0, 1), attrs={"dim": 1}, shape=(1, 64, 8, 8))
    src = GraphNode(index=0, op="input", shape=(1, 32, 8, 8))
    coherence = entry_for("cat", "cat").position_coherence
    assert coherence is not None
    assert coherence(node, src, 0.0, math.log(0.25), 0.0, []) == pytest.approx(math.log(0.25))
