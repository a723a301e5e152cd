"""The trace stage's entry: nn.Module -> torch.fx graph -> gradlint's LayerGraph.

A tracer subclass keeps qualified module names and stack traces and treats recurrent and
attention modules as leaves (the catalogue models them whole); a submodule fx cannot trace is
retraced as a leaf and exported alone (``splice``), a root fx cannot trace goes to torch.export
whole (``export``). The shape pass (``shapes``) records tensor shapes, ``fx_convert`` turns the
graph into a LayerGraph.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn

from gradlint.core.graph import LayerGraph, ParamStats
from gradlint.core.values import Location, StageError, Target
from gradlint.load.model_state import attributes_kept, restored
from gradlint.load.sources import exception_line, exception_site, exception_sites, in_user_code
from gradlint.trace.example_inputs import input_specs
from gradlint.trace.export import export_target
from gradlint.trace.fx_convert import to_layer_graph
from gradlint.trace.input_search import forward_inputs
from gradlint.trace.op_lookup import LEAF_MODULES
from gradlint.trace.shapes import shape_pass
from gradlint.trace.splice import MAX_LEAVES, exported_on_meta, failing_submodule
from gradlint.trace.weight_stats import owners_of, parameter_stats


class GradTracer(fx.Tracer):
    """fx tracer that records stack traces and keeps RNN/attention modules whole."""

    def __init__(self, spliced: set[str] | None = None) -> None:
        super().__init__()
        self.record_stack_traces = False  # create_node records them, cheaper (_forward_stack)
        self.spliced = spliced or set()  # submodules fx cannot trace: exported alone (splice.py)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (isinstance(m, LEAF_MODULES) or module_qualified_name in self.spliced
                or super().is_leaf_module(m, module_qualified_name))

    def create_node(self, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(*args, **kwargs)
        if not node.stack_trace:
            node.stack_trace = _forward_stack(sys._getframe(1))
        return node


def _forward_stack(frame: types.FrameType | None) -> str:
    """The stack from the outermost ``forward`` in, in fx's ``stack_trace`` format without the
    source lines (``sources.trace_site`` reads files and lines only). fx's own recording
    symbolizes a CapturedTraceback, whose first use imports torch._inductor (~1.2-2 s)."""
    frames: list[tuple[str, int, str]] = []
    while frame is not None:
        code = frame.f_code
        frames.append((code.co_filename, frame.f_lineno, code.co_name))
        frame = frame.f_back
    frames.reverse()
    for i, (_, _, name) in enumerate(frames):
        if name == "forward":
            return "\n".join(f'  File "{file}", line {line}, in {func}'
                             for file, line, func in frames[i:])
    return ""


def _materialize_lazy(model: nn.Module, target: Target) -> None:
    """Lazy layers (``nn.LazyLinear``) get their shapes, and so their init, from the first
    forward: run it once on the example inputs, as training would."""
    lazy = [name for name, m in model.named_modules()
            if any(isinstance(p, nn.parameter.UninitializedParameter)
                   for p in m.parameters(recurse=False))]
    if not lazy:
        return
    if target.inputs is None:
        raise StageError("GL903", f"{type(model).__name__} has lazy layers ('{lazy[0]}') whose "
                         "sizes the first forward sets: pass --input SHAPE[:DTYPE] or define "
                         "example_inputs() in the file", Location(target.file, target.line))
    try:
        with torch.no_grad():
            model(*target.inputs)
    except Exception as exc:  # noqa: BLE001 - the user's forward on their input
        raise StageError("GL903", f"running {type(model).__name__} once to size its lazy layers "
                         f"raised {type(exc).__name__}: {exc}",
                         Location(target.file, target.line)) from exc


def trace_target(target: Target) -> LayerGraph:
    """Trace a target; user-caused failures become ``StageError('GL903', ...)``."""
    model = target.model
    assert isinstance(model, nn.Module)
    _materialize_lazy(model, target)
    stats, default_init = parameter_stats(model)
    concrete = _defaulted_args(model)
    spliced: set[str] = set()
    while True:
        tracer = GradTracer(spliced)
        try:
            # a forward that stores values (``self.mask = self.mask.to(x.dtype)``) would leave
            # fx's Proxies in the user's model: every module's attributes are put back
            with attributes_kept(model):
                graph = tracer.trace(model, concrete_args=concrete or None)
            break
        except Exception as exc:  # noqa: BLE001 - any failure in user code is a diagnostic
            if "not installed as a submodule" in str(exc):
                _unregistered_modules(model, exc)
            block = failing_submodule(model, exc, spliced)
            if block is None or len(spliced) >= MAX_LEAVES:  # the root's own forward: export
                return _export_fallback(target, model, exc, stats, default_init)
            spliced.add(block)
    # no fx.GraphModule: later steps need the graph and the modules it calls, not the Python
    # code a GraphModule generates and compiles for it (~40% of fx's tracing time)
    with attributes_kept(model):
        # tensors forward builds from Python values (timm's Swin: a relative-position index)
        # are graph constants the tracer set on the model, and attributes_kept took back
        for t, name in tracer.tensor_attrs.items():
            if name.startswith("_tensor_constant") and isinstance(t, torch.Tensor):
                setattr(model, name, t)
        with exported_on_meta(model, spliced, default_init) as programs:
            specs = shape_pass(target, model, graph, spliced, default_init)
        return to_layer_graph(target, graph, specs, stats, default_init, spliced, programs)


def _unregistered_modules(model: nn.Module, exc: BaseException) -> None:
    """Layers kept in a plain list/dict are invisible to ``parameters()`` and so to the
    optimizer: a real bug, reported as such rather than traced around."""
    for name, mod in model.named_modules():
        for attr, value in vars(mod).items():
            if attr == "_modules":
                continue  # the registered ones
            items = value.values() if isinstance(value, dict) else value
            if isinstance(value, (list, tuple, dict)) and any(
                    isinstance(v, nn.Module) for v in items):
                kinds = sorted({type(v).__name__ for v in items if isinstance(v, nn.Module)})
                holder = "self." + (f"{name}.{attr}" if name else attr)
                wrapper = "nn.ModuleDict" if isinstance(value, dict) else "nn.ModuleList"
                raise StageError(
                    "GL903", f"{type(model).__name__} calls layers kept in a plain "
                    f"{type(value).__name__} ({holder}: {', '.join(kinds)}); they are not "
                    "registered submodules, so model.parameters() and your optimizer never see "
                    f"their weights: wrap it in {wrapper}", exception_site(exc))


def _export_fallback(target: Target, model: nn.Module, fx_error: BaseException,
                     stats: dict[str, ParamStats], default_init: bool) -> LayerGraph:
    """fx failed (data-dependent control flow, cache objects): try torch.export with example
    inputs; if that fails too, GL903 at the user's line where fx broke (the library line
    under it as related information), saying what would help."""
    where, related = exception_sites(fx_error)
    why = exception_line(fx_error)
    inputs = target.inputs if target.inputs is not None else forward_inputs(target, model)
    try:
        with restored(model):
            model.train()
            return export_target(target, model, inputs, input_specs(inputs),
                                 owners_of(model, target.sites, stats), stats, default_init)
    except StageError as err:
        guessed = "" if target.inputs is not None else (
            " (with an input guessed from the first layer: pass --input SHAPE[:DTYPE] or "
            "define example_inputs() in the file)")
        at, near = (where, related) if where else (err.location, err.related)
        at, near = in_user_code(at, near, Location(target.file, target.line))
        failed = StageError("GL903", f"torch.fx could not trace {type(model).__name__} ({why}); "
                            f"{err.message}{guessed}; rewrite the data-dependent control flow "
                            "in forward() or lint the submodules separately", at, near)
        # --debug prints the cause (gradlint/run/check_file.py): export's failure, which
        # Python chains to fx's (it was raised while fx's was handled)
        raise failed from (err.__cause__ or fx_error)


def _defaulted_args(model: nn.Module) -> dict[str, Any]:
    """Arguments of forward() with defaults are fixed to them (``mask=None`` then traces)."""
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
