"""Model builders for ``bench/accuracy.py``: the MLP grid and the held-out architectures.

The grid is what the estimator may be tuned on; the held-out set (CNNs, LeNet, VGG, RNN/LSTM/GRU,
BERT/GPT-2-like encoders and the ``tests/models`` zoo) is not. Every builder returns a fresh model
under the current torch RNG state; callers seed with ``torch.manual_seed`` first.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:  # the tests/models zoo is imported as ``models``
    sys.path.insert(0, str(ROOT / "tests"))

from models.transformer import MLP as FeedForward  # noqa: E402 - Linear, GELU, Linear

Inputs = Callable[[int], tuple[torch.Tensor, ...]]

# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------

WIDTH = 128
CLASSES = 10
GRID_BATCH = 32

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "hardtanh": nn.Hardtanh, "softsign": nn.Softsign,
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU, "selu": nn.SELU,
}
FAMILIES = ("plain", "residual", "layernorm", "batchnorm")
INITS = ("default", "xavier", "kaiming")
DEPTHS = (5, 10, 20, 40)


class ResBlock(nn.Module):
    """x + act(Linear(x))."""

    def __init__(self, width: int, act: str) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = ACTIVATIONS[act]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.fc(x))


def apply_init(model: nn.Module, init: str) -> nn.Module:
    """default: PyTorch's; xavier: xavier_uniform_ (gain 1) and zero bias; kaiming:
    kaiming_normal_ (fan_in, ReLU gain) and zero bias. Applies to every Linear/Conv."""
    if init == "default":
        return model
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if init == "xavier":
                nn.init.xavier_uniform_(mod.weight, gain=1.0)
            elif init == "kaiming":
                nn.init.kaiming_normal_(mod.weight, mode="fan_in", nonlinearity="relu")
            else:
                raise ValueError(f"unknown init {init!r}")
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
    return model


def grid_mlp(family: str, act: str, init: str, depth: int, width: int = WIDTH,
             classes: int = CLASSES) -> nn.Module:
    """``depth`` hidden blocks of the family, then Linear(width, classes)."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        if family == "plain":
            layers += [nn.Linear(width, width), ACTIVATIONS[act]()]
        elif family == "residual":
            layers.append(ResBlock(width, act))
        elif family == "layernorm":
            layers += [nn.Linear(width, width), nn.LayerNorm(width), ACTIVATIONS[act]()]
        elif family == "batchnorm":
            layers += [nn.Linear(width, width), nn.BatchNorm1d(width), ACTIVATIONS[act]()]
        else:
            raise ValueError(f"unknown family {family!r}")
    layers.append(nn.Linear(width, classes))
    return apply_init(nn.Sequential(*layers), init)


def vector_inputs(features: int = WIDTH) -> Inputs:
    return lambda b: (torch.randn(b, features),)


def image_inputs(channels: int, size: int) -> Inputs:
    return lambda b: (torch.randn(b, channels, size, size),)


def sequence_inputs(steps: int, features: int = 16) -> Inputs:
    return lambda b: (torch.randn(b, steps, features),)


def token_inputs(length: int = 16, vocab: int = 1000) -> Inputs:
    return lambda b: (torch.randint(0, vocab, (b, length)),)


# --------------------------------------------------------------------------------------------
# Held-out architectures
# --------------------------------------------------------------------------------------------


class PlainCNN(nn.Module):
    """``depth`` 3x3 convs (+ BatchNorm) + ReLU, stride 2 where the width doubles; GAP; Linear."""

    def __init__(self, depth: int = 8, bn: bool = False, classes: int = CLASSES) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for i in range(depth):
            w = 16 * 2 ** min(i * 3 // depth, 2)  # three stages: 16, 32, 64
            stride = 2 if (w != c and i > 0) else 1
            layers.append(nn.Conv2d(c, w, 3, stride=stride, padding=1, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.ReLU())
            c = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


class LeNetSigmoid(nn.Module):
    """LeNet-5 with sigmoids: conv-sigmoid-avgpool x2, then a sigmoid MLP head (1x28x28 input)."""

    def __init__(self, classes: int = CLASSES) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
            nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


VGG13 = (16, 16, "M", 32, 32, "M", 64, 64, "M", 128, 128, "M", 128, 128, "M")  # VGG-13 / 4 widths


class VGG(nn.Module):
    """VGG-13 layout (10 convs, 3 Linears) at a quarter of the width, no BatchNorm (32x32 input)."""

    def __init__(self, act: str = "sigmoid", classes: int = CLASSES) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG13:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                assert isinstance(v, int)
                layers += [nn.Conv2d(c, v, 3, padding=1), ACTIVATIONS[act]()]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c, 128), ACTIVATIONS[act](), nn.Linear(128, 128),
            ACTIVATIONS[act](), nn.Linear(128, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class RecurrentClassifier(nn.Module):
    """RNN/LSTM/GRU over the sequence; a Linear head on the last time step's output."""

    def __init__(self, cell: str, features: int = 16, hidden: int = 64,
                 classes: int = CLASSES) -> None:
        super().__init__()
        kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = kind(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class SelfAttention(nn.Module):
    """Explicit multi-head attention: q/k/v Linears, scaled dot product, softmax, @ v, out."""

    def __init__(self, dim: int, heads: int, causal: bool, max_len: int = 64) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.causal = causal
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.register_buffer("mask", torch.tril(torch.ones(max_len, max_len)).bool(),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q = self.q(x).reshape(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k(x).reshape(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.v(x).reshape(b, t, self.heads, self.head_dim).transpose(1, 2)
        att = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        if self.causal:
            att = att.masked_fill(~self.mask[:t, :t], float("-inf"))
        att = att.softmax(dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, t, c))


class EncoderBlock(nn.Module):
    """post-LN (BERT): x = LN(x + attn(x)); x = LN(x + ff(x)).
    pre-LN (GPT-2): x = x + attn(LN(x)); x = x + ff(LN(x))."""

    def __init__(self, dim: int, heads: int, hidden: int, pre_ln: bool) -> None:
        super().__init__()
        self.pre_ln = pre_ln
        self.attn = SelfAttention(dim, heads, causal=pre_ln)
        self.ln1 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, hidden)
        self.ln2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_ln:
            x = x + self.attn(self.ln1(x))
            return x + self.ff(self.ln2(x))
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.ff(x))


class Encoder(nn.Module):
    """Token embedding (1000) + learned positions, ``depth`` blocks, vocabulary head.
    ``pre_ln`` (GPT-2-like, causal, final LayerNorm) or post-LN (BERT-like, embedding LayerNorm).
    """

    def __init__(self, depth: int, pre_ln: bool, vocab: int = 1000, dim: int = 64, heads: int = 4,
                 hidden: int = 256, max_len: int = 64) -> None:
        super().__init__()
        self.pre_ln = pre_ln
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(0.02 * torch.randn(1, max_len, dim))
        self.ln_in = nn.Identity() if pre_ln else nn.LayerNorm(dim)
        self.blocks = nn.ModuleList([EncoderBlock(dim, heads, hidden, pre_ln)
                                     for _ in range(depth)])
        self.ln_f = nn.LayerNorm(dim) if pre_ln else nn.Identity()
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.ln_in(self.embed(idx) + self.pos[:, : idx.shape[1]])
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


# --------------------------------------------------------------------------------------------
# The held-out list
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One held-out (or verdict-only) model.

    ``tag``: "healthy" (GL101/GL103 would be false alarms), "sick" (GL101/GL104 should fire) or
    None. ``pooled``: counted in the held-out metrics (the verdict-only MLPs are grid-like and are
    reported on their own line instead).
    """

    name: str
    family: str
    build: Callable[[], nn.Module]
    inputs: Inputs
    batch: int
    tag: str | None = None
    pooled: bool = True


def _zoo_specs() -> list[Spec]:
    from models.convnext import ConvNeXtish
    from models.mlp import ResidualMLP, SmallBNCNN, ZeroHeadMLP, plain_mlp
    from models.resnet import ResNet
    from models.transformer import Transformer

    fam = "tests/models zoo"
    specs = [Spec(f"zoo plain_mlp {act} d8", fam, lambda a=act: plain_mlp(a, 8), vector_inputs(),
                  GRID_BATCH) for act in ("sigmoid", "tanh", "relu", "gelu")]
    specs += [
        Spec("zoo plain_mlp tanh d8 xavier", fam, lambda: plain_mlp("tanh", 8, init="xavier"),
             vector_inputs(), GRID_BATCH),
        Spec("zoo ResidualMLP d8", fam, lambda: ResidualMLP(depth=8), vector_inputs(), GRID_BATCH,
             "healthy"),
        Spec("zoo ZeroHeadMLP", fam, ZeroHeadMLP, vector_inputs(), GRID_BATCH, "healthy"),
        Spec("zoo SmallBNCNN", fam, SmallBNCNN, image_inputs(3, 32), 8, "healthy"),
        Spec("zoo ResNet", fam, ResNet, image_inputs(3, 32), 8, "healthy"),
        Spec("zoo ConvNeXtish", fam, ConvNeXtish, image_inputs(3, 32), 8, "healthy"),
        Spec("zoo Transformer explicit d6", fam, lambda: Transformer(depth=6), token_inputs(), 8,
             "healthy"),
        Spec("zoo Transformer MHA d6", fam, lambda: Transformer(depth=6, explicit=False),
             token_inputs(), 8, "healthy"),
    ]
    return specs


def heldout_specs() -> list[Spec]:
    specs: list[Spec] = []
    for depth in (6, 8, 10):
        specs.append(Spec(f"cnn relu d{depth}", "cnn (no BN)", lambda d=depth: PlainCNN(d),
                          image_inputs(3, 32), 8))
        specs.append(Spec(f"cnn bn relu d{depth}", "cnn (BN)",
                          lambda d=depth: PlainCNN(d, bn=True), image_inputs(3, 32), 8,
                          "healthy"))
    specs.append(Spec("cnn relu d10 kaiming", "cnn (no BN)",
                      lambda: apply_init(PlainCNN(10), "kaiming"), image_inputs(3, 32), 8,
                      "healthy"))
    specs.append(Spec("lenet5 sigmoid", "lenet (sigmoid)", LeNetSigmoid, image_inputs(1, 28), 16))
    specs.append(Spec("lenet5 sigmoid xavier", "lenet (sigmoid)",
                      lambda: apply_init(LeNetSigmoid(), "xavier"), image_inputs(1, 28), 16))
    specs.append(Spec("vgg13 sigmoid (no BN)", "vgg (no BN)", lambda: VGG("sigmoid"),
                      image_inputs(3, 32), 8, "sick"))
    specs.append(Spec("vgg13 relu (no BN)", "vgg (no BN)", lambda: VGG("relu"),
                      image_inputs(3, 32), 8))
    for cell in ("rnn", "lstm", "gru"):
        for steps in (10, 50, 200):
            tag = ("sick" if (cell, steps) == ("rnn", 200)
                   else "healthy" if (cell, steps) == ("lstm", 10) else None)
            specs.append(Spec(f"{cell} T={steps}", cell, lambda c=cell: RecurrentClassifier(c),
                              sequence_inputs(steps), 16, tag))
    for depth in (2, 6, 12):
        specs.append(Spec(f"bert post-LN L={depth}", "bert (post-LN)",
                          lambda d=depth: Encoder(d, pre_ln=False), token_inputs(), 8, "healthy"))
        specs.append(Spec(f"gpt2 pre-LN L={depth}", "gpt2 (pre-LN)",
                          lambda d=depth: Encoder(d, pre_ln=True), token_inputs(), 8, "healthy"))
    specs += _zoo_specs()
    # verdict-only MLPs: grid-like, so not pooled into the held-out metrics
    vm = "verdict MLPs"
    for depth in (10, 20, 40):
        specs.append(Spec(f"relu mlp d{depth} kaiming", vm,
                          lambda d=depth: grid_mlp("plain", "relu", "kaiming", d),
                          vector_inputs(), GRID_BATCH, "healthy", pooled=False))
    specs.append(Spec("sigmoid mlp d20 default", vm,
                      lambda: grid_mlp("plain", "sigmoid", "default", 20), vector_inputs(),
                      GRID_BATCH, "sick", pooled=False))
    specs.append(Spec("tanh mlp d30 default", vm,
                      lambda: grid_mlp("plain", "tanh", "default", 30), vector_inputs(),
                      GRID_BATCH, "sick", pooled=False))
    return specs


QUICK_HELDOUT = ("lenet5 sigmoid", "lstm T=10")
