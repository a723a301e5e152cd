"""Example inputs when the user gave none: guessed from the first layer with weights that each
input reaches (a Linear's in_features, a Conv's channels, an Embedding's vocabulary), in the
order ``forward`` uses its layers: the fx graph's when fx traced the model, else the AST of
``forward`` (gradlint/trace/forward_order.py). A guess that does not run is not the end: the
input search (gradlint/trace/input_search.py) tries other sizes. Also the input specs the report
records."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from gradlint.core.graph import InputSpec
from gradlint.core.input_specs import HeldArgument
from gradlint.load.given_inputs import tree_map_tensors
from gradlint.trace.forward_order import forward_params, layers_on

BATCH = 4  # examples in the shape-propagation batch (BatchNorm needs more than one)


def first_layers_fx(model: nn.Module, graph: fx.Graph) -> list[nn.Module | None]:
    """The first layer with weights each input placeholder reaches in the graph (None where
    none does); placeholders fixed to a default (``mask=None``) take no input and end it."""
    out: list[nn.Module | None] = []
    for ph in graph.nodes:
        if ph.op != "placeholder":
            continue
        if ph.args:  # a concrete default (fx's concrete_args): forward's default is used
            break
        out.append(_first_module_user(model, ph))
    return out


def first_layers_forward(model: nn.Module) -> list[nn.Module | None]:
    """Without a graph: for each required parameter of ``forward``, the first layer with
    weights ``forward`` applies to it (its AST); registration order only when the source says
    nothing (and only for the first input)."""
    out: list[nn.Module | None] = []
    for i, _ in enumerate(forward_params(model) or ["x"]):
        found = next((m for m in layers_on(model, i) if input_for(m) is not None), None)
        if found is None and i == 0:
            found = next((m for m in model.modules() if input_for(m) is not None), None)
        out.append(found)
    return out


def guess(layers: list[nn.Module | None]) -> tuple[torch.Tensor, ...] | None:
    """One example input per first layer; None when some input reaches no layer it knows."""
    out = []
    for mod in layers:
        t = input_for(mod) if mod is not None else None
        if t is None:
            return None
        out.append(t)
    return tuple(out)


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
                inner = _first_layer_inside(mod, user, node)
                if inner is not None:
                    return inner
            frontier.append(user)
    return None


def _first_layer_inside(mod: nn.Module, call: fx.Node, operand: fx.Node) -> nn.Module | None:
    """A block fx kept whole (one it could not trace into: a wrapped GPT that is exported and
    spliced later) takes the input its own ``forward`` hands its first layer."""
    if not any(True for _ in mod.parameters()):
        return None
    arg = next((i for i, a in enumerate(call.args) if a is operand), 0)
    return next((m for m in layers_on(mod, arg) if input_for(m) is not None), None)


def generator() -> torch.Generator:
    """Example values come from a generator of their own: they only serve the shape pass, and
    the caller's global random stream is left as it was."""
    return torch.Generator().manual_seed(0)


def input_for(mod: nn.Module) -> torch.Tensor | None:
    """The first example input to try for ``mod`` (gradlint/trace/input_search.py has the
    others)."""
    gen = generator()

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
    if isinstance(mod, nn.RNNCellBase):
        return randn(BATCH, mod.input_size)
    if isinstance(mod, nn.MultiheadAttention):
        shape = (BATCH, 16, mod.embed_dim) if mod.batch_first else (16, BATCH, mod.embed_dim)
        return randn(*shape)
    return None


def batch_dim(mod: nn.Module) -> int:
    """The batch dimension of ``input_for(mod)``: 1 for sequence-first RNNs and attention."""
    if isinstance(mod, (nn.RNNBase, nn.MultiheadAttention)) and not mod.batch_first:
        return 1
    return 0


def one_example(inputs: tuple[Any, ...], firsts: list[nn.Module | None]
                ) -> tuple[Any, ...] | None:
    """The first example of a batch of inferred inputs (one per first layer), or None when an
    input has no dimension of BATCH where its layer's batch goes."""
    out: list[Any] = []
    for t, mod in zip(inputs, firsts, strict=True):
        if not isinstance(t, torch.Tensor) or mod is None:
            return None
        dim = batch_dim(mod)
        if t.dim() <= dim or t.shape[dim] != BATCH:
            dim = 0
        if t.dim() == 0 or t.shape[dim] != BATCH:
            return None
        out.append(t.narrow(dim, 0, 1).clone())
    return tuple(out)


def input_specs(inputs: tuple[Any, ...]) -> tuple[InputSpec, ...]:
    """One spec per positional argument: a tensor's shape, dtype and (for integers) the
    exclusive upper bound of its values; anything else (a tuple of tensors, None, an int) as a
    HeldArgument, so ``--verify`` passes every argument the model was traced with."""
    return tuple(_spec(t) if isinstance(t, torch.Tensor)
                 else HeldArgument(value=tree_map_tensors(_spec, t)) for t in inputs)


def _spec(t: torch.Tensor) -> InputSpec:
    high = None
    if not (t.is_floating_point() or t.is_complex()) and t.numel() and t.device.type != "meta":
        high = int(t.max()) + 1
    return InputSpec(tuple(t.shape), str(t.dtype).removeprefix("torch."), high)
