"""When the first guessed input does not run: try other sizes and layouts before giving up.

The first guess (gradlint/trace/example_inputs.py) takes a Conv2d's input to be 32x32; an MNIST
net's ``Linear(9216, 128)`` after a flatten needs 28x28, a patch embedding behind a reshaping
helper (einops' ``Rearrange``) needs an image where its Linear sees vectors. Each input gets
a short list of candidates: common sizes for its first layer's rank (images, 1-D signals,
token lengths), then images and sequences for layouts rearranged in front. Each candidate is
run on the meta device (``fit_error``: no arithmetic); the first that runs is kept. A size
none of the common ones has is solved from the first Linear after the flatten: its fan-in
grows with the input size, so a bisection finds the size that gives it exactly. Only a model
that no candidate feeds is given up on, as GL902 (info) with the config line that feeds it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from gradlint.core.values import Location, StageError, Target
from gradlint.load.given_inputs import fit_error, forward_flops, meta_first
from gradlint.load.sources import exception_line
from gradlint.trace.example_inputs import (
    BATCH,
    first_layers_forward,
    generator,
    guess,
    input_for,
    one_example,
)
from gradlint.trace.forward_order import forward_params

IMAGE_SIZES = (32, 28, 64, 96, 128, 224, 256, 16)
LENGTHS = (64, 128, 256, 512, 1024, 32, 16, 784)  # 1-D signals (784: a flattened MNIST row)
VOLUME_SIZES = (16, 32, 8, 64)
TOKENS = (16, 32, 64, 128, 256, 512, 8, 1024, 4, 1)
SOLVE_RANGE = (1, 1024)  # sizes the bisection looks in
BUDGET_S = 10.0  # wall time the search may take before it gives up
# floating-point operations of one forward on a searched input above which the shape pass
# runs on one example (~1-3 s on two cores; a ViT-B/16 at 224x224 and batch 4 is 70e9)
FLOP_BUDGET = 100e9
# forward parameters that take one number per example, tried as such first: a diffusion
# model's timestep or noise level, a class-conditional model's label (DiT's forward(x, t, y))
PER_EXAMPLE = frozenset({"t", "time", "times", "timestep", "timesteps", "sigma", "sigmas",
                         "noise_level", "noise_levels", "y", "label", "labels", "class_label",
                         "class_labels", "classes", "class_ids"})

Make = Callable[[int], torch.Tensor]


@dataclass(frozen=True)
class Layout:
    """Inputs of one rank and kind by size: ``make(s)``; ``solvable``: a size a flatten turns
    into a Linear's fan-in, which a bisection can solve for."""

    make: Make
    sizes: tuple[int, ...]
    solvable: bool = False
    image: bool = False  # (C, s, s): what a constructor's image size is a side of


def layouts(mod: nn.Module) -> list[Layout]:
    """The candidate inputs of a first layer, its own kind's first, the first guess first."""
    images = [Layout(_randn(_square(c)), IMAGE_SIZES, True, True) for c in (3, 1)]
    vectors = [Layout(_randn(lambda s: (s,)), LENGTHS)]
    return _own_layouts(mod) + images + vectors


def _per_example(mod: nn.Module) -> Layout:
    """One number per example: a class label for an Embedding (``y``), else a diffusion
    timestep in [0, 1000) (``t``, which a sinusoidal table turns into the first Linear's
    features)."""
    if isinstance(mod, nn.Embedding):
        vocab = mod.num_embeddings
        return Layout(lambda s: torch.randint(0, vocab, (BATCH,), generator=generator()), (0,))
    return Layout(lambda s: torch.randint(0, 1000, (BATCH,), generator=generator()).float(),
                  (0,))


def _square(channels: int) -> Callable[[int], tuple[int, ...]]:
    return lambda s: (channels, s, s)


def _own_layouts(mod: nn.Module) -> list[Layout]:
    first = input_for(mod)
    assert first is not None
    once = [Layout(lambda s: first, (0,))]  # the first guess, as it was drawn
    if isinstance(mod, (nn.Conv2d, nn.BatchNorm2d)):
        c = mod.in_channels if isinstance(mod, nn.Conv2d) else mod.num_features
        return once + [Layout(_randn(_square(c)), IMAGE_SIZES, True, True)]
    if isinstance(mod, nn.Conv1d):
        return once + [Layout(_randn(lambda s: (mod.in_channels, s)), LENGTHS, True)]
    if isinstance(mod, nn.Conv3d):
        return once + [Layout(_randn(lambda s: (mod.in_channels, s, s, s)), VOLUME_SIZES, True)]
    if isinstance(mod, nn.BatchNorm1d):
        return once + [Layout(_randn(lambda s: (mod.num_features, s)), LENGTHS, True)]
    if isinstance(mod, nn.Embedding):
        vocab = mod.num_embeddings
        return once + [Layout(lambda s: torch.randint(0, vocab, (BATCH, s),
                                                      generator=generator()), TOKENS, True)]
    if isinstance(mod, nn.RNNBase) and not mod.batch_first:
        return once + [Layout(lambda s: torch.randn(s, BATCH, mod.input_size,
                                                    generator=generator()), TOKENS)]
    features = tuple(first.shape[1:])  # Linear, LayerNorm, MHA, batch-first RNNs: per token
    if isinstance(mod, (nn.RNNBase, nn.MultiheadAttention)):
        features = features[1:]
    return once + [Layout(_randn(lambda s: (s, *features)), TOKENS, True)]


def _randn(shape: Callable[[int], tuple[int, ...]]) -> Make:
    return lambda s: torch.randn(BATCH, *shape(s), generator=generator())


def affordable(model: nn.Module, inputs: tuple[Any, ...], firsts: list[nn.Module | None]
               ) -> tuple[Any, ...]:
    """``inputs``, or their first example when one forward on the whole batch costs more than
    FLOP_BUDGET. A searched input is the model's real size (a ViT's 224x224 image); the shape
    pass and the attention masks' readings run on it for real, and an attention over 3,136
    tokens at batch 4 took minutes. One example measures the same coherence per example.
    Counted on meta, only for a model whose fit checks ran there (its meta kernels are
    loaded); kept whole when one example does not run (BatchNorm needs two)."""
    if not meta_first(model) or any(p.is_meta for p in model.parameters()):
        return inputs
    flops = forward_flops(model, inputs)
    if flops is None or flops <= FLOP_BUDGET:
        return inputs
    small = one_example(inputs, firsts)
    return small if small is not None and forward_flops(model, small) is not None else inputs


def declared(model: nn.Module, firsts: list[nn.Module | None], side: int | None,
             frames: int | None = None) -> tuple[Any, ...] | None:
    """Inputs of the image side (and, for a video model, the frame count) the model's
    constructor was given (``image_size=256``, ``frames=16``: gradlint/load/declared_sizes.py),
    when they run: images, or videos (C, T, H, W), for the first layers that take them (their
    own channels, else 3, else 1), the first guess for the others. Tried before the first
    guess, which a position table that slices or broadcasts to fit would also take, with other
    token counts than the model was built for."""
    if side is None or not firsts or any(m is None or input_for(m) is None for m in firsts):
        return None
    mods = [m for m in firsts if m is not None]
    plans = [_declared_layouts(m, frames) for m in mods]
    if not any(plans):
        return None
    for k in range(max(len(p) for p in plans)):
        args = tuple(p[min(k, len(p) - 1)].make(side) if p else input_for(m)
                     for p, m in zip(plans, mods, strict=True))
        if fit_error(model, args) is None:
            return args
    return None


def _declared_layouts(mod: nn.Module, frames: int | None) -> list[Layout]:
    """Videos of ``frames`` frames first when there are, then the first layer's images."""
    images = [lay for lay in layouts(mod) if lay.image]
    if frames is None:
        return images
    own = mod.in_channels if isinstance(mod, nn.Conv3d) else None
    return [Layout(_randn(_video(c, frames)), IMAGE_SIZES, True, True)
            for c in ((own,) if own else (3, 1))] + images


def _video(channels: int, frames: int) -> Callable[[int], tuple[int, ...]]:
    return lambda s: (channels, frames, s, s)


def search(model: nn.Module, firsts: list[nn.Module | None]) -> tuple[Any, ...] | None:
    """The first candidate inputs ``model`` runs on (one per first layer; candidate k of every
    input together), or None when none does within the time budget."""
    if not firsts or any(m is None or input_for(m) is None for m in firsts):
        return None
    names = forward_params(model)
    plans = [([_per_example(m)] if i < len(names) and names[i] in PER_EXAMPLE else [])
             + layouts(m) for i, m in enumerate(firsts) if m is not None]
    deadline = time.monotonic() + BUDGET_S
    for k in range(max(len(p) for p in plans)):
        chosen = [p[min(k, len(p) - 1)] for p in plans]
        found = _search_layouts(model, chosen, deadline)
        if found is not None or time.monotonic() > deadline:
            return found
    return None


def _search_layouts(model: nn.Module, chosen: list[Layout], deadline: float
                    ) -> tuple[Any, ...] | None:
    """Every common size of these layouts, then the size the first Linear's fan-in solves.
    Two sizes that give the same mismatched Linear the same fan-in end it early: the size does
    not reach that Linear (global pooling in front of a wrong classifier), no size helps."""
    longest = max(len(lay.sizes) for lay in chosen)
    fan_in = _FanIn(model)
    first: tuple[nn.Module, int] | None = None
    for i in range(longest):
        args = tuple(lay.make(lay.sizes[min(i, len(lay.sizes) - 1)]) for lay in chosen)
        with fan_in:
            if fit_error(model, args) is None:
                return args
        if fan_in.mismatch is not None and first is not None \
                and fan_in.mismatch[0] is first[0]:
            if fan_in.mismatch[1] == first[1]:
                return None
        first = first or fan_in.mismatch
        if time.monotonic() > deadline:
            return None
    solvable = [j for j, lay in enumerate(chosen) if lay.solvable]
    if first is None or len(solvable) != 1:
        return None
    return _solve(model, chosen, solvable[0], first[0], deadline)


def _solve(model: nn.Module, chosen: list[Layout], j: int, target: nn.Module, deadline: float
           ) -> tuple[Any, ...] | None:
    """Bisect input ``j``'s size for the one at which the mismatched Linear ``target`` gets
    exactly its in_features (its fan-in grows with the size: convolutions and pooling only
    shrink)."""
    assert isinstance(target, nn.Linear)
    fan_in = _FanIn(model, target)

    def args_at(s: int) -> tuple[Any, ...]:
        return tuple(lay.make(s if i == j else lay.sizes[0]) for i, lay in enumerate(chosen))

    lo, hi = SOLVE_RANGE
    while lo <= hi and time.monotonic() < deadline:
        mid = (lo + hi) // 2
        args = args_at(mid)
        with fan_in:
            if fit_error(model, args) is None:
                return args
        seen = fan_in.seen
        if seen is None or seen < target.in_features:  # too small, or stopped before it
            lo = mid + 1
        elif seen > target.in_features:
            hi = mid - 1
        else:
            return None  # the Linear got its fan-in and the model still failed: not the size
    return None


class _FanIn:
    """During one run: the first Linear whose input's last size is not its in_features (the
    flatten in front of a classifier) and the size it got (``mismatch``); with ``only``, the
    size that Linear got, matching or not (``seen``)."""

    def __init__(self, model: nn.Module, only: nn.Module | None = None) -> None:
        self.linears = [only] if only is not None else [
            m for m in model.modules() if isinstance(m, nn.Linear)]
        self.only = only
        self.mismatch: tuple[nn.Module, int] | None = None
        self.seen: int | None = None
        self._handles: list[Any] = []

    def __enter__(self) -> _FanIn:
        self.mismatch = self.seen = None
        self._handles = [m.register_forward_pre_hook(self._hook) for m in self.linears]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()

    def _hook(self, mod: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor) or not x.dim():
            return
        got = int(x.shape[-1])
        if self.seen is None and mod is self.only:
            self.seen = got
        if self.mismatch is None and got != getattr(mod, "in_features", got):
            self.mismatch = (mod, got)


@contextlib.contextmanager
def first_layers_ran(firsts: list[nn.Module | None]) -> Iterator[Callable[[], bool]]:
    """Yields a check of whether every first layer returned since: whether the model took the
    inputs (a failure after that is the model's, not the input's)."""
    ran: set[int] = set()
    layers = [m for m in firsts if m is not None]
    handles = [m.register_forward_hook(lambda mod, args, out: ran.add(id(mod)))
               for m in layers]
    try:
        yield lambda: bool(layers) and all(id(m) in ran for m in layers)
    finally:
        for h in handles:
            h.remove()


def cannot_feed(target: Target, model: nn.Module, firsts: list[nn.Module | None],
                why: str) -> StageError:
    """GL902: no inferred input runs the model; says what to add to pyproject.toml."""
    hints = [_spec_text(input_for(m)) if m is not None else None for m in firsts]
    specs = ", ".join(f'"{h}"' for h in hints if h) if hints and all(hints) \
        else '"1x3x224x224"'
    return StageError(
        "GL902", f"cannot infer an example input for {type(model).__name__} ({why}); to check "
        f"it, add to pyproject.toml: [tool.gradlint.targets.\"{target.name}\"] "
        f"inputs = [{specs}] (or define example_inputs() in the file)",
        Location(target.file, target.line))


def _spec_text(t: torch.Tensor | None) -> str | None:
    if t is None:
        return None
    shape = "x".join(str(n) for n in t.shape)
    return shape if t.is_floating_point() else f"{shape}:{str(t.dtype).removeprefix('torch.')}"


def describe(exc: BaseException | None) -> str:
    """A short reason for the GL902 message."""
    if exc is None:
        return "no input of it reaches a layer whose input size gradlint can read"
    return f"the inputs tried fail, the first with {exception_line(exc, 200)}"



# a call inside the model that does not fit the callee's signature: no input can change that
# (MAE's forward_features(x) under a newer timm, which calls it with attn_mask=...)
_SIGNATURE = re.compile(r"got an unexpected keyword argument|missing \d+ required "
                        r"(positional|keyword-only) argument|takes (from )?\d+ (to \d+ )?"
                        r"positional arguments? but \d+ (were|was) given|got multiple values")


def call_mismatch(exc: BaseException | None) -> bool:
    """Whether a failure is such a call (then it is the model's, whatever the input)."""
    return isinstance(exc, TypeError) and _SIGNATURE.search(str(exc)) is not None


def forward_inputs(target: Target, model: nn.Module) -> tuple[Any, ...]:
    """Inputs for a model fx could not trace (the export fallback): from the first layers
    ``forward`` applies to its inputs, checked by running it, else searched for; the first
    guess when its first layers took it and nothing else runs either (the export then says
    where the model fails); GL902 when no input can be found."""
    firsts = first_layers_forward(model)
    found = declared(model, firsts, target.image_size, target.frames)
    if found is not None:
        return affordable(model, found, firsts)
    first = guess(firsts)
    if first is None:
        raise cannot_feed(target, model, firsts, describe(None))
    with first_layers_ran(firsts) as ran:
        error = fit_error(model, first)
        fed = ran()
    if error is None:
        return first
    found = search(model, firsts)
    if found is not None:
        return affordable(model, found, firsts)
    if fed or call_mismatch(error):
        return first
    raise cannot_feed(target, model, firsts, describe(error))
