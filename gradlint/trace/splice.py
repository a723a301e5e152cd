"""Tracing around a block that torch.fx cannot trace, instead of giving up on the model.

When fx fails inside a submodule's ``forward`` (data-dependent control flow, an unsupported
call), the model is retraced with that submodule as a leaf; the shape pass records the leaf's
real inputs, torch.export traces the leaf alone on them, and its ATen graph is spliced into the
parent graph in place of the call — with qualified names prefixed, so its layers are reported
like any other. A leaf that export cannot trace either stays one opaque node (GL904), and
the rest of the model is still analysed. Failures in the root's own ``forward`` go to the
whole-model export fallback instead (``fx.trace_target``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn
import torch.utils._pytree as pytree

from gradlint.core.graph import GraphNode, ParamStats
from gradlint.core.values import Target
from gradlint.load.model_state import attributes_kept
from gradlint.load.sources import exception_line, exception_site, is_library_file
from gradlint.trace.aten_program import aten_program
from gradlint.trace.export import (
    AtenConverter,
    no_cache,
    primary_leaf,
    quiet_logs,
)

MAX_LEAVES = 32  # retraces before the whole model goes to the export fallback


def failing_submodule(model: nn.Module, exc: BaseException, leaves: set[str]) -> str | None:
    """The innermost user-written submodule whose ``forward`` was running when tracing raised
    (None when it is the root's own forward, or no module of ours is on the stack)."""
    names = {id(m): name for name, m in model.named_modules()}
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        me = frame.f_locals.get("self")
        if (isinstance(me, nn.Module) and frame.f_code.co_name == "forward"
                and not is_library_file(frame.f_code.co_filename)):
            name = names.get(id(me))
            if name is not None:
                found = name  # keep the innermost
    if not found or found in leaves:
        return None
    return found


def record_leaf_inputs(n: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Keep the tensors a spliced leaf was called with (the shape pass runs it for real)."""
    def keep(v: Any) -> Any:
        return v.detach() if isinstance(v, torch.Tensor) else v

    n.meta["leaf_inputs"] = (tuple(keep(a) for a in args),
                             {k: keep(v) for k, v in kwargs.items()})


def export_block(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The ATen program of a block (``aten_program``: as torch.export traces it) on the
    arguments it was really called with (``use_cache=False`` where it takes one, as for a whole
    model); the block is left as it was."""
    kwargs = {**kwargs, **no_cache(mod, len(args))}
    with torch.no_grad(), quiet_logs(), attributes_kept(mod):
        return aten_program(mod, args, kwargs)


def why_not(exc: BaseException) -> str:
    """Why a block could not be exported, in one line with the user's line."""
    where = exception_site(exc)
    return exception_line(exc, 160) + (f" at {where.file}:{where.line}" if where else "")


def splice_leaf(nodes: list[GraphNode], operands: tuple[int, ...], name: str, mod: nn.Module,
                inputs: tuple[tuple[Any, ...], dict[str, Any]], target: Target,
                stats: dict[str, ParamStats], program: Any = None) -> int | str:
    """Export ``mod`` on its recorded inputs (or take its ``program``, exported during a meta
    shape pass, or why that failed) and append its graph to ``nodes``, its inputs wired to
    ``operands``; returns the index of its primary output, or why it cannot."""
    if isinstance(program, str):
        return program
    try:
        ep = program if program is not None else export_block(mod, *inputs)
        prefix = name + "."
        sub = Target(f"{target.name}.{name}", mod, target.file, target.line, None,
                     {k[len(prefix):]: v for k, v in target.sites.items()
                      if k.startswith(prefix)})
        conv = AtenConverter(sub, ep, {k[len(prefix):]: v for k, v in stats.items()
                                        if k.startswith(prefix)})
        args, kwargs = inputs
        conv.read_masks((args, {**kwargs, **no_cache(mod, len(args))}))
        out = conv.run(primary_leaf(ep.call_spec.out_spec))
    except Exception as exc:  # noqa: BLE001 - export failed too: the leaf stays opaque
        return why_not(exc)
    def relabel(node: GraphNode) -> tuple[str | None, tuple[ParamStats, ...]]:
        return (f"{name}.{node.module}" if node.module else (name if node.params else None),
                tuple(dataclasses.replace(p, name=f"{prefix}{p.name}") for p in node.params))

    return _append(nodes, conv.nodes, iter(operands), relabel, out)


def _append(nodes: list[GraphNode], converted: list[GraphNode], wires: Iterator[int],
            relabel: Callable[[GraphNode], tuple[str | None, tuple[ParamStats, ...]]],
            out: int) -> int | str:
    """Append a converted graph to ``nodes``, its inputs wired to ``wires`` and each node's
    module and parameters renamed by ``relabel``; the index of its output ``out``, or why
    it cannot."""
    mapping: dict[int, int] = {}
    added: list[GraphNode] = []
    for node in converted:
        if node.op == "input":
            src = next(wires, None)
            if src is None:
                return "its inputs do not match the call"
            mapping[node.index] = src
            continue
        mapping[node.index] = len(nodes) + len(added)
        module, params = relabel(node)
        added.append(dataclasses.replace(
            node, index=mapping[node.index], inputs=tuple(mapping[i] for i in node.inputs),
            module=module, params=params))
    nodes.extend(added)
    return mapping.get(out, "it returns no tensor")


# ------------------------------------------------------------------ blocks of a meta model

@contextlib.contextmanager
def exported_on_meta(model: nn.Module, spliced: set[str], on_meta: bool
                     ) -> Iterator[dict[str, Any]]:
    """While a meta model's shape pass runs, each spliced block is exported on the arguments
    it is called with and answers with meta tensors of the exported outputs' shapes: on the
    meta device its own forward may not run (Hugging Face's ``.item()`` on a mask), while
    export's fake tensors trace it, as they do the same model subclassed directly. Yields
    the programs by block name (an export's failure: why), so each block is exported once."""
    programs: dict[str, Any] = {}
    modules = dict(model.named_modules())
    blocks = {name: modules[name] for name in spliced} if on_meta else {}
    saved = [(mod, vars(mod).get("forward")) for mod in blocks.values()]
    for name, mod in blocks.items():
        vars(mod)["forward"] = functools.partial(_exported_call, programs, name, mod)
    try:
        yield programs
    finally:
        for mod, own in saved:
            vars(mod).pop("forward", None)
            if own is not None:  # a forward the user set on the instance
                vars(mod)["forward"] = own


def _exported_call(programs: dict[str, Any], name: str, mod: nn.Module, *args: Any,
                   **kwargs: Any) -> Any:
    """A spliced block's call during a meta shape pass (``exported_on_meta``): its outputs
    from its exported program, else its own forward's."""
    patch = vars(mod).pop("forward")  # export (or the fallback) calls the block's own forward
    try:
        try:
            ep = export_block(mod, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - the block stays opaque, if it runs on meta
            programs[name] = why_not(exc)
            return mod.forward(*args, **kwargs)
        programs[name] = ep
        return _meta_outputs(ep)
    finally:
        vars(mod)["forward"] = patch


def _meta_outputs(ep: Any) -> Any:
    """What an exported program returns, as meta tensors of its outputs' shapes."""
    out = next(n for n in ep.graph.nodes if n.op == "output")
    produced = {a.name: a.meta.get("val") for a in out.args[0] if hasattr(a, "name")}
    leaves = []
    for name in ep.graph_signature.user_outputs:
        val = produced.get(name) if name is not None else None
        leaves.append(torch.empty(val.shape, dtype=val.dtype, device="meta")
                      if isinstance(val, torch.Tensor) else val)
    return pytree.tree_unflatten(leaves, ep.call_spec.out_spec)


# ------------------------------------------------------------------ functions fx kept whole

class _FunctionCall(nn.Module):
    """A call fx kept as one node (a function under ``torch.fx.wrap``, as torchvision's
    ``shifted_window_attention`` and ``stochastic_depth``) as a module export can trace: the
    model's parameters it is passed are registered as ``p0``, ``p1``... (export lifts them as
    parameters), the other tensors are forward's inputs, everything else is baked in."""

    def __init__(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                 params: dict[tuple[str, int | str], nn.Parameter]) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.slots: dict[tuple[str, int | str], str] = {}
        for k, (slot, param) in enumerate(params.items()):
            self.register_parameter(f"p{k}", param)
            self.slots[slot] = f"p{k}"
        self.inputs = [slot for slot in _tensor_slots(args, kwargs) if slot not in params]

    def forward(self, *tensors: torch.Tensor) -> Any:
        args, kwargs = list(self.args), dict(self.kwargs)
        given = dict(zip(self.inputs, tensors, strict=True))
        for slot in _tensor_slots(self.args, self.kwargs):
            value = (getattr(self, self.slots[slot]) if slot in self.slots else given[slot])
            if slot[0] == "arg":
                args[int(slot[1])] = value
            else:
                kwargs[str(slot[1])] = value
        return self.fn(*args, **kwargs)


def _tensor_slots(args: tuple[Any, ...], kwargs: dict[str, Any]
                  ) -> list[tuple[str, int | str]]:
    return ([("arg", i) for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
            + [("kw", k) for k, v in kwargs.items() if isinstance(v, torch.Tensor)])


def _call_key(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
              params: dict[tuple[str, int | str], Any]) -> tuple[Any, ...] | None:
    """What an exported call's program depends on: the function, each tensor slot's shape,
    dtype and whether a parameter fills it, the other arguments (None: not hashable)."""
    def part(slot: tuple[str, int | str], v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return (slot, tuple(v.shape), v.dtype, v.device.type, slot in params)
        return (slot, v)

    key = (fn, *(part(("arg", k), a) for k, a in enumerate(args)),
           *(part(("kw", k), v) for k, v in sorted(kwargs.items())))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def splice_call(nodes: list[GraphNode], fn: Any, inputs: tuple[tuple[Any, ...], dict[str, Any]],
                params: dict[tuple[str, int | str], tuple[str, nn.Parameter]],
                operands: dict[tuple[str, int | str], int], target: Target,
                stats: dict[str, ParamStats], programs: dict[Any, Any] | None = None
                ) -> int | str:
    """Export a call fx kept whole (``fn`` on its recorded ``inputs``; ``params``: the slots the
    model's parameters fill, with their qualified names; ``operands``: the graph node of every
    other tensor slot) and append its graph to ``nodes``; returns the index of its primary
    output, or why it cannot. Its layers are reported under the parameters' own modules.
    ``programs`` keeps each program (or why it failed) by ``_call_key``: a model calls one
    function many times alike (Swin-T: 51 calls, 16 kinds)."""
    args, kwargs = inputs
    if any(isinstance(v, torch.Tensor) for a in (*args, *kwargs.values())
           if isinstance(a, (list, tuple)) for v in a):
        return "it takes a list of tensors"
    call = _FunctionCall(fn, args, kwargs, {slot: p for slot, (_, p) in params.items()})
    if any(slot not in operands for slot in call.inputs):
        return "its inputs do not match the call"
    names = {call.slots[slot]: fqn for slot, (fqn, _) in params.items()}
    tensors = tuple(args[int(slot[1])] if slot[0] == "arg" else kwargs[str(slot[1])]
                    for slot in call.inputs)
    key = _call_key(fn, args, kwargs, params) if programs is not None else None
    try:
        ep = programs.get(key) if programs is not None and key is not None else None
        if isinstance(ep, str):
            return ep
        if ep is None:
            ep = export_block(call, tensors, {})
            if programs is not None and key is not None:
                programs[key] = ep
        sub = Target(target.name, call, target.file, target.line, None, {})
        conv = AtenConverter(sub, ep, {k: dataclasses.replace(stats[fqn], name=k)
                                       for k, fqn in names.items() if fqn in stats})
        conv.read_masks((tensors, {}))
        out = conv.run(primary_leaf(ep.call_spec.out_spec))
    except Exception as exc:  # noqa: BLE001 - export failed too: the call stays opaque
        if programs is not None and key is not None:
            programs[key] = why_not(exc)
        return why_not(exc)

    def renamed(p: ParamStats) -> ParamStats:
        base, sep, role = p.name.partition("#")
        fqn = names.get(base, base)
        keep = sep and fqn.rpartition(".")[2] != role
        return dataclasses.replace(p, name=f"{fqn}{sep}{role}" if keep else fqn)

    def relabel(node: GraphNode) -> tuple[str | None, tuple[ParamStats, ...]]:
        ps = tuple(renamed(p) for p in node.params)
        owner = ps[0].name.partition("#")[0].rpartition(".")[0] if ps else None
        return (owner if node.module is not None or ps else None), ps

    return _append(nodes, conv.nodes, iter(operands[slot] for slot in call.inputs), relabel,
                   out)
