"""Property-based tests (hypothesis) over random architectures built from the op catalogue.

Random DAGs of Linear/Conv1d/Conv2d, every elementwise activation of the catalogue (as modules
and as functional calls), add/mul/cat, LayerNorm/BatchNorm and flatten, with random widths,
depths, inits, frozen and tied weights, are built as ``nn.Module`` objects whose forward
unrolls a static plan (so torch.fx traces them) and are checked through the Python API:

- the analyzer never raises (status ok, no GL905), every per-layer estimate is finite or flagged
  ``zero``, and every module that owns parameters is reported exactly once (as a layer or as
  an alias of a layer it shares all its parameters with);
- soundness of the worst-case bound (docs/design.md): with orthogonal Linear weights, zero biases,
  only elementwise activations and add/cat between them, the measured per-example gain
  ||dL/dh_l|| / ||dL/dy|| of every layer output h_l never exceeds 10**log10_bound;
- on plain chains where ``confidence`` is high, the estimate is within a decade of the gradient
  measured under the ground-truth protocol (docs/design.md).

Examples are derandomized (fixed seed) and bounded, so the suite is reproducible in CI.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

import gradlint
from gradlint.core.values import LayerEstimate, ModelReport
from gradlint.estimate.activations import ACTIVATIONS
from gradlint.verify.measure import measure_gradients

BATCH = 4  # check_model's example batch (BatchNorm needs more than one example)
REL_TOL = 1e-6  # soundness: measured gain <= bound * (1 + REL_TOL)
DECADE = 1.0  # estimate vs measured on high-confidence plain chains


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- architecture specs (plain data, so hypothesis shrinks and prints them) ------------------

# the catalogue's elementwise activations ("identity" is the catalogue's own neutral entry)
ACTS = sorted(k for k in ACTIVATIONS if k != "identity")


@dataclass(frozen=True)
class Mod:
    """One entry of the model's ModuleList: ``kind`` and its settings; kind ``shared`` reuses
    the instance of an earlier entry (registered twice), ``tie`` takes an earlier weight."""

    kind: str  # linear, conv1d, conv2d, act, layer_norm, batch_norm, shared
    args: tuple[Any, ...] = ()
    init: str = "default"
    bias: bool = True
    frozen: bool = False
    tie: int | None = None


@dataclass(frozen=True)
class Step:
    """One tensor of the plan: ``op`` applied to earlier tensors ``src`` (0 is the input)."""

    op: str  # module, fn, add, mul, cat, flatten
    src: tuple[int, ...]
    mod: int = -1
    fn: str = ""
    attrs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Arch:
    """A whole model: input shape per example, modules, plan, init seed, input scale."""

    in_shape: tuple[int, ...]
    mods: tuple[Mod, ...]
    steps: tuple[Step, ...]
    seed: int = 0
    input_scale: float = 1.0


def _act_module(name: str, a: dict[str, Any], channels: int) -> nn.Module:
    if name == "hardtanh":
        return nn.Hardtanh(a["min_val"], a["max_val"])
    if name == "leaky_relu":
        return nn.LeakyReLU(a["negative_slope"])
    if name == "prelu":
        return nn.PReLU(channels if a.get("per_channel") else 1, init=a["negative_slope"])
    if name in ("elu", "celu"):
        return (nn.ELU if name == "elu" else nn.CELU)(alpha=a["alpha"])
    if name == "gelu":
        return nn.GELU(approximate=a["approximate"])
    if name == "softplus":
        return nn.Softplus(beta=a["beta"], threshold=a["threshold"])
    simple: dict[str, Callable[[], nn.Module]] = {
        "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu6": nn.ReLU6, "hardsigmoid": nn.Hardsigmoid,
        "softsign": nn.Softsign, "relu": nn.ReLU, "selu": nn.SELU, "silu": nn.SiLU,
        "mish": nn.Mish, "logsigmoid": nn.LogSigmoid, "hardswish": nn.Hardswish}
    return simple[name]()


# functional forms: F.*, torch.* and tensor methods all map onto the same catalogue entries
FUNCTIONS: dict[str, Callable[[torch.Tensor, dict[str, Any]], torch.Tensor]] = {
    "sigmoid": lambda x, a: torch.sigmoid(x), "tanh": lambda x, a: x.tanh(),
    "hardtanh": lambda x, a: F.hardtanh(x, a["min_val"], a["max_val"]),
    "relu6": lambda x, a: F.relu6(x), "hardsigmoid": lambda x, a: F.hardsigmoid(x),
    "softsign": lambda x, a: F.softsign(x), "relu": lambda x, a: x.relu(),
    "leaky_relu": lambda x, a: F.leaky_relu(x, a["negative_slope"]),
    "elu": lambda x, a: F.elu(x, alpha=a["alpha"]), "celu": lambda x, a: F.celu(x, a["alpha"]),
    "selu": lambda x, a: torch.selu(x),
    "gelu": lambda x, a: F.gelu(x, approximate=a["approximate"]),
    "silu": lambda x, a: F.silu(x), "mish": lambda x, a: F.mish(x),
    "softplus": lambda x, a: F.softplus(x, beta=a["beta"], threshold=a["threshold"]),
    "logsigmoid": lambda x, a: F.logsigmoid(x), "hardswish": lambda x, a: F.hardswish(x),
}


class SpecNet(nn.Module):
    """Interprets a static plan; fx unrolls the loop, so the graph is the plan itself."""

    def __init__(self, mods: list[nn.Module], steps: tuple[Step, ...]) -> None:
        super().__init__()
        self.mods = nn.ModuleList(mods)
        self.plan = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ts = [x]
        for s in self.plan:
            a = ts[s.src[0]]
            if s.op == "module":
                y = self.mods[s.mod](a)
            elif s.op == "fn":
                y = FUNCTIONS[s.fn](a, dict(s.attrs))
            elif s.op == "add":
                y = a + ts[s.src[1]]
            elif s.op == "mul":
                y = a * ts[s.src[1]]
            elif s.op == "cat":
                y = torch.cat([a, ts[s.src[1]]], dim=1)
            else:  # flatten
                y = torch.flatten(a, 1)
            ts.append(y)
        return ts[-1]


def _init_weight(mod: nn.Module, how: str, bias: bool) -> None:
    w = mod.weight
    with torch.no_grad():
        if how == "orthogonal":
            nn.init.orthogonal_(w)
        elif how == "xavier":
            nn.init.xavier_uniform_(w)
        elif how == "kaiming":
            nn.init.kaiming_normal_(w, nonlinearity="relu")
        elif how == "zero":
            w.zero_()
        elif how == "large":
            w.mul_(8.0)
        elif how == "tiny":
            w.mul_(1e-3)
        if bias and how != "default":
            mod.bias.zero_()


def build(arch: Arch) -> SpecNet:
    torch.manual_seed(arch.seed)
    mods: list[nn.Module] = []
    for m in arch.mods:
        a = m.args
        mod: nn.Module
        if m.kind == "shared":
            mod = mods[a[0]]
        elif m.kind == "linear":
            mod = nn.Linear(a[0], a[1], bias=m.bias)
        elif m.kind in ("conv1d", "conv2d"):
            conv = nn.Conv1d if m.kind == "conv1d" else nn.Conv2d
            mod = conv(a[0], a[1], a[2], stride=a[3], padding=a[2] // 2, bias=m.bias)
        elif m.kind == "act":
            mod = _act_module(a[0], dict(a[1]), a[2])
        elif m.kind == "layer_norm":
            mod = nn.LayerNorm(a[0], elementwise_affine=a[1])
            if a[1] and m.init == "zero":
                nn.init.zeros_(mod.weight)
        else:  # batch_norm
            mod = (nn.BatchNorm2d if a[0] == 3 else nn.BatchNorm1d)(a[1], affine=a[2])
            if a[2] and m.init == "zero":
                nn.init.zeros_(mod.weight)
        if m.kind in ("linear", "conv1d", "conv2d"):
            _init_weight(mod, m.init, m.bias)
            if m.tie is not None:
                mod.weight = mods[m.tie].weight  # type: ignore[assignment]
        if m.frozen:
            mod.requires_grad_(False)
        mods.append(mod)
    return SpecNet(mods, arch.steps)


def example_inputs(arch: Arch, batch: int = BATCH, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *arch.in_shape, generator=gen) * arch.input_scale


# --- strategies ------------------------------------------------------------------------------

@st.composite
def act_attrs(draw: st.DrawFn, name: str) -> tuple[tuple[str, Any], ...]:
    """Non-default settings exercise the catalogue's sup|f'| and moments with attributes."""
    if name == "hardtanh":
        lo, hi = draw(st.sampled_from([(-1.0, 1.0), (-2.0, 0.5), (0.0, 6.0)]))
        return (("min_val", lo), ("max_val", hi))
    if name in ("leaky_relu", "prelu"):
        slope = draw(st.sampled_from([0.01, 0.25, -0.5, 1.5]))
        return (("negative_slope", slope),) + (
            (("per_channel", draw(st.booleans())),) if name == "prelu" else ())
    if name in ("elu", "celu"):
        return (("alpha", draw(st.sampled_from([1.0, 0.5, 2.0]))),)
    if name == "gelu":
        return (("approximate", draw(st.sampled_from(["none", "tanh"]))),)
    if name == "softplus":
        return (("beta", draw(st.sampled_from([1.0, 0.5, 3.0]))),
                ("threshold", draw(st.sampled_from([20.0, 2.0]))))
    return ()


class _Builder:
    """Draws a plan while tracking per-example shapes, so every op is well-formed."""

    def __init__(self, draw: st.DrawFn, in_shape: tuple[int, ...]) -> None:
        self.draw = draw
        self.shapes: list[tuple[int, ...]] = [in_shape]
        self.mods: list[Mod] = []
        self.steps: list[Step] = []
        self.linears: list[int] = []  # bias-free Linear entries (tying candidates)

    def src(self) -> int:
        back = self.draw(st.integers(0, min(3, len(self.shapes) - 1)))
        return len(self.shapes) - 1 - back

    def partner(self, a: int, same: Callable[[tuple[int, ...], tuple[int, ...]], bool]) -> int:
        fits = [i for i, s in enumerate(self.shapes) if same(s, self.shapes[a])]
        return self.draw(st.sampled_from(fits[::-1]))  # a itself always fits

    def module(self, mod: Mod, a: int, shape: tuple[int, ...]) -> None:
        self.mods.append(mod)
        self.steps.append(Step("module", (a,), mod=len(self.mods) - 1))
        self.shapes.append(shape)

    def step(self, step: Step, shape: tuple[int, ...]) -> None:
        self.steps.append(step)
        self.shapes.append(shape)

    def activation(self, a: int, shape: tuple[int, ...], names: list[str]) -> None:
        name = self.draw(st.sampled_from(names))
        attrs = self.draw(act_attrs(name))
        if name == "prelu" or self.draw(st.booleans()):
            self.module(Mod("act", (name, attrs, shape[0])), a, shape)
        else:
            self.step(Step("fn", (a,), fn=name, attrs=attrs), shape)

    def linear(self, a: int, shape: tuple[int, ...], init: str, bias: bool,
               frozen: bool = False, tie_ok: bool = True) -> None:
        out = self.draw(st.integers(1, 12))
        tie = None
        if not bias and tie_ok and self.draw(st.booleans()):
            same = [i for i in self.linears if self.mods[i].args == (shape[-1], out)]
            tie = self.draw(st.sampled_from(same)) if same else None
        self.module(Mod("linear", (shape[-1], out), init, bias, frozen, tie), a,
                    shape[:-1] + (out,))
        if not bias:
            self.linears.append(len(self.mods) - 1)


def _conv_out(n: int, k: int, s: int) -> int:
    return (n + 2 * (k // 2) - k) // s + 1


@st.composite
def any_arch(draw: st.DrawFn) -> Arch:
    """A random DAG over every op the generator knows, any init."""
    rank = draw(st.integers(1, 3))
    if rank == 1:
        in_shape: tuple[int, ...] = (draw(st.integers(1, 12)),)
    elif rank == 2:
        in_shape = (draw(st.integers(1, 4)), draw(st.integers(2, 8)))
    else:
        in_shape = (draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6)))
    b = _Builder(draw, in_shape)
    inits = ["default", "default", "orthogonal", "xavier", "kaiming", "zero", "large", "tiny"]
    for _ in range(draw(st.integers(1, 12))):
        a = b.src()
        shape = b.shapes[a]
        r = len(shape)
        ops = ["linear", "act", "act", "layer_norm", "batch_norm", "add", "mul", "cat", "share"]
        if r > 1:
            ops += ["flatten", "conv", "conv"]
        op = draw(st.sampled_from(ops))
        init = draw(st.sampled_from(inits))
        frozen = draw(st.integers(0, 9)) == 0
        if op == "linear":
            b.linear(a, shape, init, draw(st.booleans()), frozen)
        elif op == "conv":
            c_out, k, s = draw(st.integers(1, 8)), draw(st.sampled_from([1, 3])), \
                draw(st.sampled_from([1, 1, 2]))
            kind = "conv1d" if r == 2 else "conv2d"
            out = (c_out,) + tuple(_conv_out(n, k, s) for n in shape[1:])
            b.module(Mod(kind, (shape[0], c_out, k, s), init, draw(st.booleans()), frozen),
                     a, out)
        elif op == "act":
            b.activation(a, shape, ACTS)
        elif op == "layer_norm":
            norm_shape = shape[-1:] if draw(st.booleans()) else shape
            b.module(Mod("layer_norm", (norm_shape, draw(st.booleans())),
                         "zero" if init == "zero" else "default", frozen=frozen), a, shape)
        elif op == "batch_norm":
            b.module(Mod("batch_norm", (r, shape[0], draw(st.booleans())),
                         "zero" if init == "zero" else "default", frozen=frozen), a, shape)
        elif op in ("add", "mul"):
            p = b.partner(a, lambda s, t: s == t)
            b.step(Step(op, (a, p)), shape)
        elif op == "cat":
            p = b.partner(a, lambda s, t: s[1:] == t[1:])
            b.step(Step("cat", (a, p)), (shape[0] + b.shapes[p][0],) + shape[1:])
        elif op == "flatten":
            b.step(Step("flatten", (a,)), (math.prod(shape),))
        else:  # share: call an earlier shape-preserving or matching module again
            fits = [i for i, m in enumerate(b.mods) if m.kind == "act"
                    or (m.kind == "linear" and m.args[0] == shape[-1])]
            if not fits:
                b.activation(a, shape, ACTS)
                continue
            i = draw(st.sampled_from(fits))
            m = b.mods[i]
            out = shape[:-1] + (m.args[1],) if m.kind == "linear" else shape
            if m.kind == "act" and m.args[0] == "prelu" and m.args[2] != shape[0]:
                b.activation(a, shape, ACTS)
                continue
            b.module(Mod("shared", (i,)), a, out)
    return Arch(in_shape, tuple(b.mods), tuple(b.steps), seed=draw(st.integers(0, 2**16)))


@st.composite
def bounded_arch(draw: st.DrawFn) -> Arch:
    """The class where the bound is an upper bound: orthogonal Linear weights, zero or no
    biases, elementwise activations, add and cat (docs/design.md)."""
    b = _Builder(draw, (draw(st.integers(1, 12)),))
    for _ in range(draw(st.integers(1, 14))):
        a = b.src()
        shape = b.shapes[a]
        op = draw(st.sampled_from(["linear", "linear", "act", "act", "act", "add", "cat"]))
        if op == "linear":
            b.linear(a, shape, "orthogonal", draw(st.booleans()), tie_ok=False)
        elif op == "act":
            b.activation(a, shape, ACTS)
        elif op == "add":
            b.step(Step("add", (a, b.partner(a, lambda s, t: s == t))), shape)
        else:
            p = b.partner(a, lambda s, t: True)
            b.step(Step("cat", (a, p)), (shape[0] + b.shapes[p][0],))
    scale = draw(st.sampled_from([1.0, 1e-3, 10.0]))
    return Arch(b.shapes[0], tuple(b.mods), tuple(b.steps), seed=draw(st.integers(0, 2**16)),
                input_scale=scale)


Acts = tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]


def chain(widths: list[int], init: str, norm: str | None, acts: Acts, seed: int = 0) -> Arch:
    """Linear -> [norm] -> activation(s) for each width after the first, then a Linear head."""
    mods: list[Mod] = []
    for fan_in, out in zip(widths, widths[1:], strict=False):
        mods.append(Mod("linear", (fan_in, out), init, True))
        if norm is not None:
            mods.append(Mod(norm, ((out,), True) if norm == "layer_norm" else (1, out, True)))
        mods += [Mod("act", (name, attrs, out)) for name, attrs in acts]
    mods.append(Mod("linear", (widths[-1], 10), init, True))
    steps = tuple(Step("module", (i,), mod=i) for i in range(len(mods)))
    return Arch((widths[0],), tuple(mods), steps, seed=seed)


@st.composite
def plain_chain(draw: st.DrawFn) -> Arch:
    """Plain chains with standard inits, one or two activations per layer."""
    widths = draw(st.lists(st.sampled_from([32, 64]), min_size=2, max_size=9))
    init = draw(st.sampled_from(["default", "orthogonal", "xavier", "kaiming"]))
    norm = draw(st.sampled_from([None, None, "layer_norm", "batch_norm"]))
    acts = tuple((name, draw(act_attrs(name)))
                 for name in draw(st.lists(st.sampled_from(ACTS), min_size=1, max_size=2)))
    return chain(widths, init, norm, acts, seed=draw(st.integers(0, 2**16)))


# --- helpers ---------------------------------------------------------------------------------

def _check(model: nn.Module, arch: Arch) -> ModelReport:
    report = gradlint.check(model, example_inputs(arch))
    failures = [f"{d.code}: {d.message}" for d in report.diagnostics if d.code.startswith("GL9")
                and d.severity == "error"]
    assert report.status == "ok" and not failures, failures
    return report


def _owners(model: nn.Module) -> set[str]:
    return {name for name, mod in model.named_modules(remove_duplicate=False)
            if any(p is not None for p in mod._parameters.values())}


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _estimates_ok(le: LayerEstimate) -> None:
    if le.zero:
        assert le.log10_grad is None and le.log10_relative is None, le
        return
    for value in (le.log10_grad, le.log10_relative, le.log10_signal, le.log10_attenuation):
        assert _finite(value), le
    assert le.log10_bound is None or math.isfinite(le.log10_bound), le
    assert le.frozen or le.log10_relative <= 1e-9, le  # relative to the largest live layer


# --- properties ------------------------------------------------------------------------------

@_settings(250)
@given(any_arch())
def test_analyzer_never_raises_and_reports_every_layer_once(arch: Arch) -> None:
    model = build(arch)
    report = _check(model, arch)
    for le in report.layers:
        _estimates_ok(le)
    names = [le.module for le in report.layers] + [a for le in report.layers for a in le.aliases]
    assert sorted(names) == sorted(_owners(model)), (names, _owners(model))


@_settings(150)
@given(any_arch())
def test_skipping_unread_shared_moments_changes_nothing(arch: Arch) -> None:
    """The estimate leaves the batch-shared moment S NaN where no node reads it (moments.
    graph_reads_shared): the report must be the one computing it everywhere gives, so a node
    kind that reads S and is missing from graph_reads_shared fails here."""
    model = build(arch)
    report = _check(model, arch)
    with mock.patch("gradlint.estimate.sweeps.graph_reads_shared", lambda graph: True):
        forced = _check(model, arch)
    assert report.layers == forced.layers
    assert report.diagnostics == forced.diagnostics


def _layer_output_gains(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Worst per-example ||dL/dh|| / ||dL/dy|| over the batch for every Linear output h, with
    L = sum_b <g_b, y_b> (no op here mixes examples, so row b is example b's gradient)."""
    m = copy.deepcopy(model).to(torch.float64)
    outs: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[..., None]:
        def hook(_mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            out.retain_grad()
            outs[name] = out
        return hook

    for name, mod in m.named_modules():
        if isinstance(mod, nn.Linear):
            mod.register_forward_hook(keep(name))
    y = m(x.to(torch.float64).requires_grad_(True))
    g = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (y * g).sum().backward()
    gn = g.flatten(1).norm(dim=1)
    gains: dict[str, float] = {}
    for name, h in outs.items():
        if h.grad is None:
            gains[name] = 0.0
        else:
            gains[name] = float((h.grad.flatten(1).norm(dim=1) / gn).max())
    return gains


@_settings(250)
@given(bounded_arch())
def test_bound_is_an_upper_bound_on_the_gradient_norm_gain(arch: Arch) -> None:
    model = build(arch)
    report = _check(model, arch)
    gains = _layer_output_gains(model, example_inputs(arch, batch=16))
    layers = {le.module: le for le in report.layers}
    worst = 0.0
    for name, gain in gains.items():
        le = layers[name]
        if le.log10_bound is None:  # no path to the loss: no gradient at all
            assert gain == 0.0, (name, gain)
            continue
        bound = 10.0 ** le.log10_bound
        assert gain <= bound * (1 + REL_TOL), (
            f"{name}: measured gain {gain:.6g} > bound {bound:.6g}")
        worst = max(worst, gain / bound)
    target(worst, label="measured gain / bound")


def _high_confidence_errors(arch: Arch, seeds: int = 1) -> dict[str, float]:
    """|estimate - measured| in decades for every high-confidence layer; asserts that exactly
    the layers measured at exactly zero are flagged ``zero``."""
    model = build(arch)
    report = _check(model, arch)
    width = arch.in_shape[0]
    # BatchNorm mixes examples, so the batch gradient is measured: for a parameter with one
    # entry (PReLU's slope) that is a single Gaussian draw per seed, so average over seeds
    if any(m.kind == "batch_norm" for m in arch.mods):
        seeds = max(seeds, 8)
    measured = measure_gradients(model, lambda n: (torch.randn(n, width),), batch=32,
                                 seeds=tuple(range(arch.seed, arch.seed + seeds)))
    errors: dict[str, float] = {}
    for le in report.layers:
        got = measured.log10_grad.get(le.module)
        if le.confidence != "high":
            continue
        assert (got is None) == le.zero, f"{le.module}: estimate {le.log10_grad}, measured {got}"
        if got is not None and le.log10_grad is not None:
            errors[le.module] = abs(le.log10_grad - got)
    return errors


PRELU = ("prelu", (("negative_slope", 0.25),))
# what the properties found, each fixed in the analyzer: PReLU's slope only learns from negative
# inputs (exactly zero behind ReLU); a weight layer feeding BatchNorm sees its input centred
REGRESSIONS = {
    "prelu-after-relu": chain([32, 64], "default", None, (("relu", ()), PRELU)),
    "prelu-after-sigmoid": chain([32, 32], "default", None, (("sigmoid", ()), PRELU)),
    "prelu-after-batchnorm": chain([32, 64], "default", "batch_norm", (PRELU,)),
    "hardsigmoid-into-batchnorm": chain([32, 32, 32, 32], "default", "batch_norm",
                                        (("hardsigmoid", ()),)),
}


@pytest.mark.parametrize("arch", REGRESSIONS.values(), ids=REGRESSIONS.keys())
def test_found_regressions_within_a_fifth_of_a_decade(arch: Arch) -> None:
    errors = _high_confidence_errors(arch, seeds=16)
    assert errors and max(errors.values()) <= 0.2, errors


@pytest.mark.slow  # ~1 min: CI's slow step runs it
@_settings(60)
@given(plain_chain())
def test_estimate_within_a_decade_on_high_confidence_plain_chains(arch: Arch) -> None:
    errors = _high_confidence_errors(arch)
    for module, err in errors.items():
        assert err <= DECADE, f"{module}: |estimate - measured| = {err:.2f} decades"
    target(max(errors.values(), default=0.0), label="|estimate - measured| (decades)")
