"""Weight statistics per parameter: measured from the real tensors, or, for a model built on the
``meta`` device (too big to instantiate), the defaults of the module types' init; and the
modules that own the parameters, with theirs."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from gradlint.core.graph import ModuleInfo, ParamStats
from gradlint.core.values import Location

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm,
          nn.modules.instancenorm._InstanceNorm) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


def _fan_in(p: torch.Tensor) -> int:
    if p.dim() < 2:
        return max(int(p.shape[0]) if p.dim() else 1, 1)
    return int(p.shape[1]) * math.prod(int(s) for s in p.shape[2:])


def default_init(mod: nn.Module, name: str, p: torch.Tensor, sigma: float | None
                 ) -> tuple[float, float]:
    """(mean, mean square) a parameter has after its module type's default init.

    PyTorch: Linear/Conv weights and biases U(±1/sqrt(fan_in)) (E[W^2] = 1/(3 fan_in)),
    Embedding N(0, 1), norms γ = 1 and β = 0, RNN weights U(±1/sqrt(H)), attention in_proj
    Xavier. Hugging Face models (a config with ``initializer_range`` σ) re-initialize weights to
    N(0, σ^2) with zero biases."""
    cls = type(mod).__name__
    is_norm = isinstance(mod, _NORMS) or "Norm" in cls
    if is_norm or name in ("gamma", "scale") and p.dim() == 1:
        return (1.0, 1.0) if name in ("weight", "gamma", "scale") else (0.0, 0.0)
    if isinstance(mod, nn.PReLU):
        return 0.25, 0.0625
    if sigma is not None:  # Hugging Face _init_weights
        return (0.0, sigma * sigma) if p.dim() >= 2 else (0.0, 0.0)
    if isinstance(mod, nn.Embedding):
        return 0.0, 1.0
    if isinstance(mod, nn.RNNBase):
        return 0.0, 1.0 / (3.0 * mod.hidden_size)
    if isinstance(mod, nn.MultiheadAttention):
        if name == "in_proj_weight":  # Xavier uniform over (3E, E)
            return 0.0, 2.0 / (4.0 * mod.embed_dim)
        return 0.0, 0.0
    if p.dim() >= 2 or name == "bias":
        weight = getattr(mod, "weight", None)
        fan = _fan_in(weight if isinstance(weight, torch.Tensor) and weight.dim() >= 2 else p)
        return 0.0, 1.0 / (3.0 * fan)
    return 0.0, 0.0


# float64 copies of this many entries (512 kB) stay in the CPU's cache between the cast and
# the two sums; a whole-tensor copy streams through memory three times and, for a 1B-parameter
# model, needs gigabytes beside it (ResNet-50: 86 -> ~10 ms)
_CHUNK = 1 << 16


def tensor_stats(name: str, t: torch.Tensor, requires_grad: bool) -> ParamStats:
    """Mean and mean square of a real tensor (zeros for meta, empty or integer tensors), summed
    in float64 a cache-sized chunk at a time."""
    if t.device.type == "meta" or t.numel() == 0 or not t.is_floating_point():
        return ParamStats(name, tuple(t.shape), 0.0, 0.0, requires_grad)
    flat = t.detach().reshape(-1)
    total = square = 0.0
    for chunk in flat.split(_CHUNK):
        d = chunk.to(torch.float64)
        total += float(d.sum())
        square += float(torch.dot(d, d))
    n = flat.numel()
    return ParamStats(name, tuple(t.shape), total / n, square / n, requires_grad)


def parameter_stats(model: nn.Module) -> tuple[dict[str, ParamStats], bool]:
    """Statistics of every parameter by qualified name (tied ones under each name), and
    whether any came from default init (the model lives on the meta device)."""
    config = getattr(model, "config", None)
    sigma = getattr(config, "initializer_range", None)
    sigma = float(sigma) if isinstance(sigma, (int, float)) else None
    stats: dict[str, ParamStats] = {}
    default = False
    for mname, mod in model.named_modules(remove_duplicate=False):
        for pname, p in mod._parameters.items():
            if p is None:
                continue
            fqn = f"{mname}.{pname}" if mname else pname
            if p.device.type == "meta":
                mean, msq = default_init(mod, pname, p, sigma)
                stats[fqn] = ParamStats(fqn, tuple(p.shape), mean, msq, bool(p.requires_grad))
                default = True
            else:
                stats[fqn] = tensor_stats(fqn, p, bool(p.requires_grad))
    return stats, default


def owners_of(model: nn.Module, sites: dict[str, tuple[Location | None, Location | None]],
              stats: dict[str, ParamStats] | None = None) -> tuple[ModuleInfo, ...]:
    """Modules that directly own parameters; one sharing all its parameters with an earlier
    module (tied weights, a module registered twice) becomes that module's alias."""
    infos: list[ModuleInfo] = []
    aliases: dict[str, list[str]] = {}
    by_param: dict[int, str] = {}
    for name, mod in model.named_modules(remove_duplicate=False):
        own = [(k, p) for k, p in mod._parameters.items() if p is not None]
        if not own:
            continue
        ids = [id(p) for _, p in own]
        if all(i in by_param for i in ids):
            aliases.setdefault(by_param[ids[0]], []).append(name)
            continue
        for i in ids:
            by_param.setdefault(i, name)
        prefix = f"{name}." if name else ""
        loc, anchor = sites.get(name, (None, None))
        infos.append(ModuleInfo(name, type(mod).__name__,
                                tuple((stats or {}).get(prefix + k)
                                      or tensor_stats(prefix + k, p, p.requires_grad)
                                      for k, p in own), loc, anchor))
    return tuple(ModuleInfo(i.name, i.type, i.params, i.location, i.anchor,
                            tuple(aliases.get(i.name, ()))) for i in infos)
