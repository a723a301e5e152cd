"""Example inputs when the user gave none: guessed from the first layer that consumes each input
(a Linear's in_features, a Conv's channels, an Embedding's vocabulary), and the input specs the
report records."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from gradlint.core.graph import InputSpec

BATCH = 4  # examples in the shape-propagation batch (BatchNorm needs more than one)


def infer_inputs(model: nn.Module, graph: fx.Graph) -> tuple[torch.Tensor, ...] | None:
    """A float/int example input per placeholder from the first layer that consumes it."""
    out: list[torch.Tensor] = []
    for ph in graph.nodes:
        if ph.op != "placeholder":
            continue
        mod = _first_module_user(model, ph)
        if mod is None:
            return None
        t = input_for(mod)
        if t is None:
            return None
        out.append(t)
    return tuple(out)


def first_layer_inputs(model: nn.Module) -> tuple[torch.Tensor, ...] | None:
    """Without a graph, guess from the first module (in definition order) that takes input."""
    for mod in model.modules():
        t = input_for(mod)
        if t is not None:
            return (t,)
    return None


def _first_module_user(model: nn.Module, start: fx.Node) -> nn.Module | None:
    frontier = [start]
    seen: set[fx.Node] = set()
    while frontier:
        node = frontier.pop(0)
        for user in node.users:
            if user in seen:
                continue
            seen.add(user)
            if user.op == "call_module":
                mod = model.get_submodule(str(user.target))
                if input_for(mod) is not None:
                    return mod
            frontier.append(user)
    return None


def input_for(mod: nn.Module) -> torch.Tensor | None:
    """An example input for ``mod``, drawn from a generator of its own: the values only serve
    the shape pass, and the caller's global random stream is left as it was."""
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    if isinstance(mod, nn.Linear):
        return randn(BATCH, mod.in_features)
    if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        spatial = {1: (64,), 2: (32, 32), 3: (16, 16, 16)}[len(mod.kernel_size)]
        return randn(BATCH, mod.in_channels, *spatial)
    if isinstance(mod, nn.Embedding):
        return torch.randint(0, mod.num_embeddings, (BATCH, 16), generator=gen)
    if isinstance(mod, nn.LayerNorm) or (hasattr(nn, "RMSNorm") and isinstance(mod, nn.RMSNorm)):
        return randn(BATCH, *mod.normalized_shape)
    if isinstance(mod, nn.BatchNorm1d):
        return randn(BATCH, mod.num_features)
    if isinstance(mod, nn.BatchNorm2d):
        return randn(BATCH, mod.num_features, 32, 32)
    if isinstance(mod, nn.RNNBase):
        shape = (BATCH, 16, mod.input_size) if mod.batch_first else (16, BATCH, mod.input_size)
        return randn(*shape)
    if isinstance(mod, nn.MultiheadAttention):
        shape = (BATCH, 16, mod.embed_dim) if mod.batch_first else (16, BATCH, mod.embed_dim)
        return randn(*shape)
    return None


def input_specs(inputs: tuple[Any, ...]) -> tuple[InputSpec, ...]:
    """Shape, dtype and (for integer inputs) the exclusive upper bound of each tensor input."""
    specs = []
    for t in inputs:
        if not isinstance(t, torch.Tensor):
            continue
        high = None
        if not (t.is_floating_point() or t.is_complex()) and t.numel():
            high = int(t.max()) + 1
        specs.append(InputSpec(tuple(t.shape), str(t.dtype).removeprefix("torch."), high))
    return tuple(specs)
