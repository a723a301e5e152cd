"""Ground truth: per-layer weight-gradient RMS measured with autograd (docs/design.md's protocol).

The model is copied to float64 in train() mode with dropout off; the loss on the primary output is
<g_b, y_b> with g_b ~ N(0, I) per example. Per-example gradients (torch.func) where the model
allows it; where it mixes examples (BatchNorm in training) the batch gradient of
sum_b <g_b, y_b> / sqrt(B) is used instead, which has the same scale for independent examples.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn


def primary_tensor(out: Any) -> torch.Tensor:
    """The output the loss is taken on (docs/design.md): tensor; tuple -> first tensor; dict-like ->
    logits, else last_hidden_state, else first tensor."""
    if isinstance(out, torch.Tensor):
        return out
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        out = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
    if isinstance(out, dict) or hasattr(out, "keys"):
        for k in ("logits", "last_hidden_state"):
            if k in out and isinstance(out[k], torch.Tensor):
                return out[k]
        out = list(out.values())
    for v in out:
        try:
            return primary_tensor(v)
        except TypeError:
            continue
    raise TypeError("the model returns no tensor")


@dataclass(frozen=True)
class Measurement:
    """log10 RMS of each layer's main weight gradient (None where exactly zero)."""

    log10_grad: dict[str, float | None]
    per_example: bool


def _main_params(model: nn.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    seen: set[int] = set()
    for name, mod in model.named_modules():
        own = [(k, p) for k, p in mod._parameters.items() if p is not None]
        if not own or all(id(p) in seen for _, p in own):
            continue
        seen.update(id(p) for _, p in own)
        key = "weight" if any(k == "weight" for k, _ in own) else own[0][0]
        out[name] = f"{name}.{key}" if name else key
    return out


def measure_gradients(model: nn.Module, make_inputs: Callable[[int], Sequence[Any]],
                      batch: int = 64, seeds: Sequence[int] = (0,)) -> Measurement:
    """Measure at init; ``make_inputs(batch)`` draws one batch of example inputs: ``forward``'s
    positional arguments, tensors or anything else (a tuple of states, None)."""
    m = copy.deepcopy(model).to(torch.float64).train()
    for mod in m.modules():
        if isinstance(mod, nn.modules.dropout._DropoutNd):
            mod.p = 0.0
    mains = _main_params(m)
    sums: dict[str, float] = dict.fromkeys(mains, 0.0)
    per_example = True
    for seed in seeds:
        torch.manual_seed(seed)
        inputs = [_float64(x) for x in make_inputs(batch)]
        with torch.no_grad():
            y = primary_tensor(m(*inputs))
        g = torch.randn_like(y)
        try:
            with warnings.catch_warnings():  # vmap's "no batching rule" performance notes
                warnings.simplefilter("ignore")
                sq = _per_example(m, inputs, g, mains)
        except Exception:  # noqa: BLE001 - vmap cannot run models that mix examples
            per_example = False
            sq = _batch(m, inputs, g, mains)
        for k, v in sq.items():
            sums[k] += v / len(seeds)
    return Measurement({k: (0.5 * math.log10(v) if v > 0 else None) for k, v in sums.items()},
                       per_example)


def _float64(value: Any) -> Any:
    """Floating tensors in ``value`` (and in its tuples, lists, dicts) as float64."""
    if isinstance(value, torch.Tensor):
        return value.to(torch.float64) if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        items = [_float64(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {k: _float64(v) for k, v in value.items()}
    return value


def _per_example(m: nn.Module, inputs: list[Any], g: torch.Tensor,
                 mains: dict[str, str]) -> dict[str, float]:
    """Per-example gradients with vmap over the tensor arguments; the others (None, an int)
    are passed as they are. A tensor inside another argument (an LSTM's ``(h, c)``) has its
    batch where vmap cannot tell: raises, for the batch path."""
    mapped = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)]
    if any(_holds_tensor(x) for i, x in enumerate(inputs) if i not in mapped):
        raise TypeError("a tensor inside an argument: its batch dimension is unknown")
    params = {k: v.detach() for k, v in m.named_parameters()}
    wanted = {p for p in mains.values() if p in params}
    xs = tuple(inputs[i] for i in mapped)
    grads = per_example_grad(m, inputs, mapped)(params, xs, g)
    return {mod: float((grads[p] ** 2).mean()) for mod, p in mains.items() if p in wanted}


def per_example_grad(m: nn.Module, inputs: Sequence[Any], mapped: Sequence[int]) -> Any:
    """``(params, xs, g) -> per-example gradients`` of <g_b, y_b>: vmap over the tensor
    arguments at ``mapped`` (with a batch dimension), the others passed as given."""
    from torch.func import functional_call, grad, vmap

    def loss(ps: dict[str, torch.Tensor], xs: tuple[torch.Tensor, ...], gb: torch.Tensor
             ) -> torch.Tensor:
        args = list(inputs)
        for i, x in zip(mapped, xs, strict=True):
            args[i] = x.unsqueeze(0)
        out = primary_tensor(functional_call(m, ps, tuple(args)))
        return (out * gb.unsqueeze(0)).sum()

    return vmap(grad(loss), in_dims=(None, 0, 0))


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    return isinstance(value, (tuple, list)) and any(_holds_tensor(v) for v in value)


def _batch(m: nn.Module, inputs: list[Any], g: torch.Tensor,
           mains: dict[str, str]) -> dict[str, float]:
    m.zero_grad(set_to_none=True)
    y = primary_tensor(m(*inputs))
    ((y * g).sum() / math.sqrt(y.shape[0])).backward()
    params = dict(m.named_parameters())
    out: dict[str, float] = {}
    for mod, p in mains.items():
        grad = params[p].grad if p in params else None
        out[mod] = float((grad**2).mean()) if grad is not None else 0.0
    return out


def measure_time_decay(model: nn.Module, steps: int, features: int, batch: int = 64) -> float:
    """log10 of the per-step ratio of the RMS input gradient going back in time, measured on a
    batch-first sequence model: minus the slope of log10 RMS dL/dx_t over t, fitted away from
    both ends of the sequence (t in [5, T - 10) from T = 30 on; the loss is <g, y> on the
    primary output, the last step's transient from the gated cells' two paths left out)."""
    m = copy.deepcopy(model).to(torch.float64).train()
    x = torch.randn(batch, steps, features, dtype=torch.float64, requires_grad=True)
    y = primary_tensor(m(x))
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None
    rms = x.grad.pow(2).mean(dim=(0, 2)).sqrt().log10()
    lo, hi = (5, steps - 10) if steps >= 30 else (max(1, steps - 25), steps - 2)
    t = torch.arange(lo, hi, dtype=torch.float64)
    design = torch.stack([t, torch.ones_like(t)], 1)
    return -float(torch.linalg.lstsq(design, rms[lo:hi].unsqueeze(1)).solution[0, 0])
