"""The ATen program of a model (the export fallback) or of a block (splicing), about twice as
fast as ``torch.export.export(strict=False)``.

Non-strict export is, at its core, one ``make_fx(pre_dispatch=True, record_module_stack=True)``
trace of the module on fake tensors. Around it, it fakes the inputs with a shape environment,
intercepts every torch function call, symbolises a captured traceback for each node,
regenerates the graph module's Python code several times and runs passes for guards, runtime
asserts and serialisation; the ATen converter reads none of that (Llama-3 70B: 12.7 s in
export, ~6 s in its trace). ``traced_program`` runs the same trace, with the same flags and the
parameters and buffers in the same order, and keeps what the converter reads: the constants a
forward makes, lifted by export's own pass; export's placeholder names, signature and module
stacks; each node's stack of ``forward`` frames, read from the frames instead of symbolised.
It has no shape environment, so a data-dependent value (``.item()``, ``nonzero``) raises
instead of being guarded, and it raises on what export would turn into something else (a
grad-mode switch inside forward, a higher-order op, a buffer assigned, a tensor subclass):
``aten_program`` then calls ``torch.export.export`` as before, whose graph or error stands.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import sys
import types
from collections.abc import Mapping
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
import torch.utils._pytree as pytree

from gradlint.load.model_state import attributes_kept

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CallSpec:
    in_spec: Any
    out_spec: Any


@dataclasses.dataclass(frozen=True)
class AtenProgram:
    """What the ATen converter and splicing read of an ``ExportedProgram``, by the same names."""

    graph_module: fx.GraphModule
    graph_signature: Any  # torch.export.graph_signature.ExportGraphSignature
    state_dict: dict[str, torch.Tensor]
    constants: dict[str, Any]
    call_spec: CallSpec

    @property
    def graph(self) -> fx.Graph:
        return self.graph_module.graph


class Unsupported(Exception):
    """The direct trace would not give export's graph: torch.export is used instead."""


def aten_program(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``mod(*args, **kwargs)`` as an ATen program (``AtenProgram``), or, where the direct trace
    raises, as torch.export's ``ExportedProgram`` (its error is the one reported). The caller
    turns grad off and puts the module back; the module is put back before export runs too."""
    try:
        with attributes_kept(mod):
            return traced_program(mod, args, kwargs)
    except Exception as exc:  # noqa: BLE001 - export decides
        log.debug("direct ATen trace of %s: %s; using torch.export", type(mod).__name__, exc)
    return torch.export.export(mod, args, kwargs, strict=False)


# ops export's dead-code elimination removes (its ``_is_impure``); every other node stays
_REMOVED_IF_DEAD = (
    torch.ops.profiler._record_function_enter.default,
    torch.ops.profiler._record_function_enter_new.default,
    torch.ops.profiler._record_function_exit._RecordFunction,
    torch.ops.aten.detach.default,
)


def traced_program(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> AtenProgram:
    """One pre-dispatch ``make_fx`` trace of ``mod`` as non-strict export runs it (module
    docstring); raises where export's graph could differ. Torch's private helpers are those
    export itself calls; a torch without them raises here, and export is used."""
    from torch._export.non_strict_utils import _gather_constant_attrs
    from torch._export.passes.lift_constants_pass import lift_constants_pass
    from torch._export.utils import _compiling_state_context, placeholder_naming_pass
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.export._trace import _ignore_backend_decomps
    from torch.fx._lazy_graph_module import _use_lazy_graph_module
    from torch.fx.experimental.proxy_tensor import make_fx

    params = dict(mod.named_parameters(remove_duplicate=False))
    buffers = dict(mod.named_buffers(remove_duplicate=False))
    state = {**params, **buffers}
    user_leaves, user_spec = pytree.tree_flatten((tuple(args), dict(kwargs)))
    if any(isinstance(t, torch.Tensor) and type(t) not in (torch.Tensor, nn.Parameter)
           for t in [*state.values(), *user_leaves]):
        raise Unsupported("a tensor subclass")  # export proxies their inner tensors
    # as export's fake mode, without a shape environment: data-dependent values raise
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True, export=True)
    flat_args = [fake_mode.from_tensor(t, static_shapes=True) if isinstance(t, torch.Tensor)
                 else t for t in [*state.values(), *user_leaves]]  # memoised: ties stay tied
    names = list(state)
    out_spec: Any = None

    def run(*flat: Any) -> tuple[Any, ...]:
        nonlocal out_spec
        _record_forward_stacks(sys._getframe())
        a, k = pytree.tree_unflatten(list(flat[len(names):]), user_spec)
        tensors = dict(zip(names, flat[:len(names)], strict=True))
        out = torch.func.functional_call(mod, tensors, a, k, tie_weights=True, strict=True)
        leaves, out_spec = pytree.tree_flatten(out)
        return tuple(leaves)

    run._orig_mod = mod  # type: ignore[attr-defined]  # make_fx's module stacks are under it
    assigned: list[str] = []  # export would copy a value into a buffer forward assigns
    ours = {id(m) for m in mod.modules()}
    hook = nn.modules.module.register_module_buffer_registration_hook(
        lambda m, name, b: assigned.append(name) if id(m) in ours else None)
    grad = torch.is_grad_enabled()
    try:
        # a lazy graph module: its Python code, which nothing here runs, is never generated
        with fake_mode, _compiling_state_context(), _ignore_backend_decomps(), \
                torch.no_grad(), _use_lazy_graph_module(True):
            gm = make_fx(run, pre_dispatch=True, record_module_stack=True,
                         _disable_torch_fn_metadata_mode=True)(*flat_args)
    finally:
        hook.remove()
        torch._C._set_grad_enabled(grad)  # a forward that switched it without switching back
    if assigned:
        raise Unsupported(f"forward assigns buffer {assigned[0]}")
    graph = gm.graph
    graph.eliminate_dead_code(lambda n: n.target not in _REMOVED_IF_DEAD)
    _check(graph)
    holders = [n for n in graph.nodes if n.op == "placeholder"]
    for n, value in zip(holders, flat_args, strict=True):
        n.meta.setdefault("val", value)  # as export: a non-tensor input's value
    signature = _signature(holders, graph, params, buffers, mod)
    fake_a, fake_k = pytree.tree_unflatten(flat_args[len(names):], user_spec)
    with fake_mode, _use_lazy_graph_module(True):
        constants = lift_constants_pass(gm, signature, _gather_constant_attrs(mod))
        placeholder_naming_pass(gm, signature, mod, fake_a, fake_k,
                                dict(zip(names, flat_args[:len(names)], strict=True)), constants)
    for spec in signature.input_specs:  # as export: non-persistent buffers are constants
        if spec.kind.name == "BUFFER" and not spec.persistent:
            constants[spec.target] = state.pop(spec.target)
    for n in graph.nodes:  # export's keys: the root's module stack under "L__self__"
        stack = n.meta.get("nn_module_stack")
        if stack:
            n.meta["nn_module_stack"] = {"L__self__" + key: v for key, v in stack.items()}
    return AtenProgram(gm, signature, state, dict(constants), CallSpec(user_spec, out_spec))


def _check(graph: fx.Graph) -> None:
    """Raise on what export would make into something else: calls that are no ATen op (the
    grad-mode and autocast switches it wraps in higher-order ops, those ops themselves) and
    symbolic values."""
    for n in graph.nodes:
        if n.op == "call_module" or n.op == "call_function" and not _is_aten(n):
            raise Unsupported(f"{n.target} in the graph")
        if isinstance(n.meta.get("val"), (torch.SymInt, torch.SymFloat, torch.SymBool)):
            raise Unsupported(f"a symbolic value at {n.name}")


def _is_aten(n: fx.Node) -> bool:
    return isinstance(n.target, torch._ops.OpOverload) or n.target is operator.getitem


def _signature(holders: list[fx.Node], graph: fx.Graph, params: Mapping[str, torch.Tensor],
               buffers: Mapping[str, torch.Tensor], mod: nn.Module) -> Any:
    """Export's signature of the graph: parameters, buffers and user inputs in the order the
    trace took them, and the outputs."""
    from torch.export.graph_signature import (
        ConstantArgument,
        ExportGraphSignature,
        InputKind,
        InputSpec,
        OutputKind,
        OutputSpec,
        TensorArgument,
    )

    def argument(a: Any) -> Any:
        if isinstance(a, fx.Node) and isinstance(a.meta.get("val"), torch.Tensor):
            return TensorArgument(a.name)
        return ConstantArgument(a.name if isinstance(a, fx.Node) else "", a)

    non_persistent = {f"{name}.{b}" if name else b for name, m in mod.named_modules()
                      for b in m._non_persistent_buffers_set}
    fqns = [*params, *buffers]
    inputs = []
    for i, n in enumerate(holders):
        if i < len(params):
            inputs.append(InputSpec(InputKind.PARAMETER, TensorArgument(n.name), fqns[i]))
        elif i < len(fqns):
            inputs.append(InputSpec(InputKind.BUFFER, TensorArgument(n.name), fqns[i],
                                    persistent=fqns[i] not in non_persistent))
        else:
            inputs.append(InputSpec(InputKind.USER_INPUT, argument(n), None))
    out = next(n for n in graph.nodes if n.op == "output")
    outputs = [OutputSpec(OutputKind.USER_OUTPUT, argument(a), None) for a in out.args[0]]
    return ExportGraphSignature(inputs, outputs)


def _record_forward_stacks(top: types.FrameType) -> None:
    """Give each node the running trace makes export's ``stack_trace``: the ``forward`` frames,
    outermost first (``sources.trace_site`` reads their files and lines), read off the frames
    themselves. The tracer's own recording captures and symbolises a traceback per node: a
    fifth or more of the trace's time. ``top`` is the traced function's frame: the forwards
    outside it are read once. A call that is no ATen op raises at once: the trace is doomed."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    tracer = getattr(get_proxy_mode(), "tracer", None)
    if tracer is None:
        raise Unsupported("no proxy tracer")
    tracer.record_stack_traces = False
    outside = _forward_frames(top, None)
    create = tracer.create_node

    def create_node(*a: Any, **k: Any) -> fx.Node:
        node = create(*a, **k)
        if node.op == "call_function" and not _is_aten(node):
            raise Unsupported(f"{node.target} in the graph")
        if node.op not in ("placeholder", "output") and not node.stack_trace:
            node.stack_trace = "\n  ".join(outside + _forward_frames(sys._getframe(1), top))
        return node

    tracer.create_node = create_node


def _forward_frames(frame: types.FrameType | None, stop: types.FrameType | None) -> list[str]:
    """``File "...", line N, in forward`` for each ``forward`` frame from ``frame`` out to
    ``stop`` (excluded), outermost first."""
    frames: list[str] = []
    while frame is not None and frame is not stop:
        code = frame.f_code
        if code.co_name == "forward":
            frames.append(f'File "{code.co_filename}", line {frame.f_lineno}, in forward')
        frame = frame.f_back
    frames.reverse()
    return frames
