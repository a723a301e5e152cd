"""Where along a tensor the gradient and the activations are (gradlint.estimate.
position_profiles): a slice the loss reads of a concatenation hands the gradient to the inputs
it falls in, and a per-position norm divides each position by its own scale. Class-attention
models (timm's CaiT and XCiT) read the class token of ``cat([cls, patches])``: spreading the
gradient evenly gave their patch blocks five decades too much (CaiT: mean error 4.1 decades);
ViTs draw the class token at std 1e-6, and the final norm's 1/σ at that position is what the
head's gradient passes (ViT-tiny: 0.64 decades mean error, DeiT-3: 1.9)."""

from __future__ import annotations

import math

import pytest
import timm
import torch
import torch.nn as nn

from gradlint.core.graph import InputSpec
from gradlint.core.values import Target
from gradlint.estimate.sweeps import estimate_gradients
from gradlint.run.check_file import check_model
from gradlint.trace.fx import trace_target
from gradlint.verify.compare import verify_model


class ClassTokenHead(nn.Module):
    """Patch tokens through a Linear, a class token concatenated in front, a LayerNorm, and the
    loss on ``x[:, 0]``: only the class token gets a gradient; the patch Linear gets none."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.patch = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), self.patch(x)], dim=1)
        return self.head(self.norm(x)[:, 0])


class SmallClassToken(nn.Module):
    """A class token at std 1e-3 beside patches at ~0.6, a per-token LayerNorm, the loss on
    the class token: the norm divides its gradient by the class token's σ, not the mean σ."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 1e-3)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(self.norm(x)[:, 0])


def test_a_norm_divides_each_position_by_its_own_scale() -> None:
    torch.manual_seed(0)
    model = SmallClassToken()
    est = estimate_gradients(trace_target(Target("M", model, __file__, 1,
                                                 (torch.randn(4, 9, 16) * 0.6,))))
    g = est.graph
    norm = next(n for n in g.nodes if n.op == "layer_norm")
    # the class token's mean square, 1e-6, against the average over ten positions (~0.32):
    # the gradient into the norm is ~sqrt(0.32 / 1e-6) ~ 10^2.75 larger than the mean says
    assert est.log10_gain(norm.index, norm.inputs[0]) > 2.3
    # and what reads the class token sees its small scale: LayerNorm's eps (1e-5) outweighs
    # its variance (1e-6), x̂ there has mean square ~0.09 (the head and γ: -0.5 decades)
    shape = (4, 9, 16)
    report = check_model(model, torch.randn(*shape) * 0.6)
    v = verify_model(model, (InputSpec(shape, "float32"),), report.layers)
    assert v.error is None and v.max_error is not None
    assert v.max_error < 0.1, v  # 2.53 decades when positions were alike; 0.58 before eps


class SliceOfTokens(ClassTokenHead):
    """The same, with the loss on ``x[:, 2:]``: the patch Linear gets all of the gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), self.patch(x)], dim=1)
        return self.head(self.norm(x)[:, 2:])


def _gain_into(graph_est: object, consumer_op: str, producer_op: str) -> float:
    est = graph_est
    g = est.graph  # type: ignore[attr-defined]
    c = next(n for n in g.nodes if n.op == consumer_op)
    p = next(i for i in c.inputs if g.nodes[i].op == producer_op)
    return est.log10_gain(c.index, p)  # type: ignore[attr-defined]


def test_a_class_token_slice_leaves_the_other_inputs_without_gradient() -> None:
    torch.manual_seed(0)
    model = ClassTokenHead()
    est = estimate_gradients(trace_target(Target("M", model, __file__, 1,
                                                 (torch.randn(4, 9, 16),))))
    assert _gain_into(est, "cat", "linear") == -math.inf
    # the class token's one position holds the mass spread over ten: r x 10
    assert _gain_into(est, "cat", "passthrough") == pytest.approx(0.5, abs=1e-9)
    patch = next(la for la in est.layers if la.module == "patch")
    assert patch.log10_relative is None or patch.log10_relative == -math.inf


def test_a_slice_of_patches_gives_them_all_of_it() -> None:
    torch.manual_seed(0)
    model = SliceOfTokens()
    est = estimate_gradients(trace_target(Target("M", model, __file__, 1,
                                                 (torch.randn(4, 9, 16),))))
    # positions 2..9 of 10: patches (1..9) hold all of it over 9 positions (8 of them live)
    assert _gain_into(est, "cat", "linear") == pytest.approx(0.5 * math.log10(10 / 9), abs=1e-9)
    assert _gain_into(est, "cat", "passthrough") == -math.inf


@pytest.mark.parametrize("name, max_mean_error", [
    ("cait_xxs24_224", 0.45),  # 4.09 decades when the gradient was spread evenly
    ("xcit_nano_12_p16_224", 1.0),  # 1.43 before
    ("vit_tiny_patch16_224", 0.15),  # 0.64 before the forward profile
    ("deit3_small_patch16_224", 0.7),  # 1.89 before; layer scale 1e-6 beside eps 1e-6
])
def test_class_token_models_measured_right(name: str, max_mean_error: float) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, img_size=32, depth=4, patch_size=8)
    shape = (4, 3, 32, 32)
    report = check_model(model, torch.randn(*shape))
    assert report.status == "ok"
    v = verify_model(model, (InputSpec(shape, "float32"),), report.layers, batch=4, seeds=(0,))
    assert v.error is None and v.mean_error is not None
    assert v.mean_error < max_mean_error, v


class DenseBlock(nn.Module):
    """DenseNet's shape: every layer reads the concatenation of all earlier features (the
    stem's at 10x the scale of the rest, so the profiles are uneven)."""

    def __init__(self, layers: int, growth: int = 2) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(4 + i * growth), nn.ReLU(),
                          nn.Conv2d(4 + i * growth, growth, 1)) for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [self.stem(x) * 10.0]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1).mean((2, 3))


def _profile_work(layers: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(ranges the backward's windows and sweeps walked, concatenation inputs in the graph)."""
    from gradlint.estimate import position_profiles as pp

    walked = [0]

    def counted(fn):  # type: ignore[no-untyped-def]
        def wrapper(parts, *args, **kwargs):  # type: ignore[no-untyped-def]
            walked[0] += len(parts)
            return fn(parts, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(pp, "_window", counted(pp._window))
    monkeypatch.setattr(pp, "_on_cuts", counted(pp._on_cuts))
    torch.manual_seed(0)
    est = estimate_gradients(trace_target(Target("M", DenseBlock(layers), __file__, 1,
                                                 (torch.randn(2, 3, 4, 4),))))
    edges = sum(len(n.inputs) for n in est.graph.nodes if n.kind == "cat")
    return walked[0], edges


def test_dense_concatenations_cost_linear_in_their_inputs(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    # each input of each concatenation used to walk the whole profile (as many ranges as
    # inputs): DenseNet-201's estimate spent 55 of its 77 ms there
    small, small_edges = _profile_work(12, monkeypatch)
    large, large_edges = _profile_work(36, monkeypatch)
    assert small > 0
    assert large / small < 1.3 * large_edges / small_edges, (small, large)
