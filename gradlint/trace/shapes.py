"""The shape pass: run the traced fx graph once on example inputs and record each tensor's shape
beside its node, which the estimate needs (positions per example, pooling windows, softmax
widths). Like fx's ShapeProp, but a failure names the node whose user code broke. The pass
runs on the inputs the user gave, else on inferred ones (``shape_pass``: the first guess, and
only when that fails the input search of gradlint/trace/input_search.py)."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import TensorMetadata

from gradlint.core.graph import InputSpec
from gradlint.core.values import StageError, Target
from gradlint.load.given_inputs import tree_map_tensors
from gradlint.load.model_state import restored
from gradlint.load.sources import exception_line, exception_site, failure_sites, trace_site
from gradlint.trace import attention_keys, token_coherence
from gradlint.trace.example_inputs import first_layers_fx, guess, input_specs
from gradlint.trace.input_search import (
    affordable,
    cannot_feed,
    declared,
    describe,
    first_layers_ran,
    search,
)
from gradlint.trace.ir_builder import flat
from gradlint.trace.op_lookup import function_op, method_op, splices
from gradlint.trace.splice import record_leaf_inputs

# ``restored`` lives with the inputs' fit check (gradlint/load/given_inputs.py): one way to run
# a model and leave it as it was
__all__ = ["NodeFailed", "ShapeRecorder", "record_shapes", "restored", "shape_pass"]


class NodeFailed(Exception):
    """The user's code behind ``node`` raised ``cause`` during the shape pass."""

    def __init__(self, node: fx.Node, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.node = node
        self.cause = cause


class ShapeRecorder(fx.Interpreter):
    """Runs the graph once and writes each tensor's shape beside its node; the inputs of
    spliced leaves are kept too (``splice`` exports those blocks on them), and an attention's
    keys per query, read from its mask (``attention_keys``)."""

    def __init__(self, model: nn.Module, graph: fx.Graph, spliced: set[str] | None = None
                 ) -> None:
        super().__init__(model, graph=graph)
        self.spliced = spliced or set()

    def run_node(self, n: fx.Node) -> Any:
        if (n.op == "call_module" and str(n.target) in self.spliced) or (
                n.op == "call_function" and splices(n.target)):  # a wrapped function
            record_leaf_inputs(n, *self.fetch_args_kwargs_from_env(n))
        if (attention := _attention_op(n, self.module)) is not None:
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            try:
                keys = attention_keys.of_call(attention[0], args, kwargs, attention[1])
            except Exception:  # noqa: BLE001 - arguments the call itself rejects (a bad dim):
                keys = None  # the call below fails at the user's line, not this reading
            if keys is not None:
                n.meta["attention_keys"] = keys
            if attention[0] == "softmax" and (
                    alike := token_coherence.of_softmax(args, kwargs, attention[1])) is not None:
                n.meta["row_coherence"] = alike
        if _dropout(n):  # as the estimate takes it, and without a draw: the
            args, kwargs = self.fetch_args_kwargs_from_env(n)  # readings are the export's
            if args and isinstance(args[0], torch.Tensor):
                return _recorded(n, args[0])
        if (op := _averaging_op(n)) is not None:
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            shared = token_coherence.of_einsum(
                args[0] if args else None, flat(args[1:]),
                [not (isinstance(a, fx.Node) and a.op == "get_attr") for a in flat(n.args[1:])]
            ) if op == "einsum" else token_coherence.of_call(op, args, kwargs)
            if shared is not None:
                n.meta["token_coherence"] = shared
        try:
            result = super().run_node(n)
        except Exception as exc:  # noqa: BLE001 - the user's forward raised
            raise NodeFailed(n, exc) from None
        return _recorded(n, result)


def _recorded(n: fx.Node, result: Any) -> Any:
    """``result``, its tensors' shapes written beside ``n``."""
    found = False

    def meta(obj: Any) -> Any:
        nonlocal found
        if isinstance(obj, torch.Tensor):
            found = True
            return _tensor_meta(obj)
        return obj

    value = map_aggregate(result, meta)
    if found:
        n.meta["tensor_meta"] = value
    return result


_DROPOUT_CALLS = frozenset({F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
                            F.feature_alpha_dropout, torch.dropout, torch.alpha_dropout,
                            torch.feature_dropout, torch.feature_alpha_dropout})


def _dropout(n: fx.Node) -> bool:
    """A functional dropout call: the estimate takes it as a view (its rescaling keeps the
    mean); dropout modules are in eval mode for the pass (``record_shapes``)."""
    if n.op == "call_function":
        return n.target in _DROPOUT_CALLS
    return n.op == "call_method" and n.target == "dropout"


def _attention_op(n: fx.Node, root: nn.Module) -> tuple[str, nn.Module | None] | None:
    """(catalogue op, module called) of an attention-like call: sdpa, a softmax, an
    nn.MultiheadAttention; None for every other node."""
    if n.op == "call_function":
        key = function_op(n.target)
        return (key, None) if key in ("sdpa", "softmax") else None
    if n.op == "call_method":
        return ("softmax", None) if method_op(str(n.target)) == "softmax" else None
    if n.op == "call_module":
        mod = root.get_submodule(str(n.target))
        if isinstance(mod, nn.Softmax):
            return "softmax", mod
        if isinstance(mod, nn.MultiheadAttention):
            return "multihead_attention", mod
    return None


def _averaging_op(n: fx.Node) -> str | None:
    """"sdpa", "matmul" or "einsum" for the calls whose operands' token coherence the estimate
    reads (gradlint/trace/token_coherence.py), else None."""
    if n.op == "call_function":
        key = function_op(n.target)
        return key if key in ("sdpa", "matmul", "einsum") else None
    if n.op == "call_method" and method_op(str(n.target)) == "matmul":
        return "matmul"
    return None


def _tensor_meta(t: torch.Tensor) -> TensorMetadata:
    """Shape and dtype only (the estimate reads shapes): fx's ``_extract_tensor_metadata`` also
    works out memory formats, whose first use imports sympy (~1 s)."""
    return TensorMetadata(t.shape, t.dtype, t.requires_grad, (), None, False, {})


def record_shapes(model: nn.Module, graph: fx.Graph, spliced: set[str],
                  inputs: tuple[Any, ...]) -> None:
    """Run ``graph`` once in train mode on ``inputs`` (dropout off: the token coherence read
    here does not depend on its draws), leaving the model as it was; raises NodeFailed naming
    the node that broke."""
    with torch.no_grad(), restored(model):
        model.train()
        for m in model.modules():  # dropout as the estimate takes it: a view, no draw
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        ShapeRecorder(model, graph, spliced).run(*inputs)


def shape_pass(target: Target, model: nn.Module, graph: fx.Graph, spliced: set[str],
               default_init: bool) -> tuple[InputSpec, ...]:
    """Record shapes on the inputs the user gave, else on inferred ones: the first guess from
    the graph (free when it runs), else the input search's; returns the inputs' specs. GL903
    when the model fails on inputs it should run on (the user's, or a guess its first layers
    took, when no other input runs either), GL902 when no input can be found."""
    if target.inputs is not None:
        return _record(target, model, graph, spliced, default_init, target.inputs)
    firsts = first_layers_fx(model, graph)
    found = declared(model, firsts, target.image_size, target.frames)
    if found is not None:
        return _record(target, model, graph, spliced, default_init,
                       affordable(model, found, firsts))
    first = guess(firsts)
    if first is None:
        raise cannot_feed(target, model, firsts, describe(None))
    with first_layers_ran(firsts) as ran:
        try:
            return _record(target, model, graph, spliced, default_init, first, strict=False)
        except NodeFailed as failed:
            failure, fed = failed, ran()
    found = search(model, firsts)
    if found is not None:
        found = affordable(model, found, firsts)
        return _record(target, model, graph, spliced, default_init, found)
    if fed:  # its first layers took the guess: the failure is the model's, where it broke
        raise _node_error(target, model, first, failure)
    raise cannot_feed(target, model, firsts, describe(failure.cause))


def _record(target: Target, model: nn.Module, graph: fx.Graph, spliced: set[str],
            default_init: bool, inputs: tuple[Any, ...], strict: bool = True
            ) -> tuple[InputSpec, ...]:
    """The shape pass on ``inputs``; ``strict``: a failure is GL903 at the node that broke
    (else NodeFailed, for the caller to try other inputs)."""
    specs = input_specs(inputs)
    if default_init:  # a meta model runs on meta inputs: shapes only, no arithmetic
        inputs = tree_map_tensors(lambda t: t.to("meta"), inputs)
    try:
        record_shapes(model, graph, spliced, inputs)
    except NodeFailed as failed:
        if not strict:
            raise
        raise _node_error(target, model, inputs, failed) from None
    return specs


def _node_error(target: Target, model: nn.Module, inputs: tuple[Any, ...],
                failed: NodeFailed) -> StageError:
    cause = failed.cause
    # the user's deepest line; an installed library's line below it goes into related
    loc, related = failure_sites(failed.node.stack_trace, cause)
    if loc is None:
        loc = trace_site(failed.node.stack_trace, target.file)[0] or exception_site(cause)
    if _out_of_memory(cause):  # the machine's limit, not the model's fault
        return StageError("GL905", f"ran out of memory running {type(model).__name__} on an "
                          f"example input of shape {_shapes(inputs)} "
                          f"({exception_line(cause, 160)}); pass a smaller --input SHAPE[:DTYPE] "
                          "or define example_inputs() in the file", loc, related)
    return StageError("GL903", f"running {type(model).__name__} on an example input of shape "
                      f"{_shapes(inputs)} failed: {exception_line(cause)}; "
                      "pass --input SHAPE[:DTYPE] or define example_inputs() in the file",
                      loc, related)


def _out_of_memory(exc: BaseException) -> bool:
    """torch's CPU allocator fails with a RuntimeError, not a MemoryError."""
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))


def _shapes(inputs: tuple[Any, ...]) -> str:
    return ", ".join("x".join(map(str, t.shape)) if isinstance(t, torch.Tensor) else repr(t)
                     for t in inputs)
