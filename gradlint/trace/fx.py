"""The trace stage: nn.Module -> torch.fx graph -> gradlint's LayerGraph.

A tracer subclass keeps qualified module names and stack traces, treats recurrent and attention
modules as leaves (the catalogue models them whole), and ShapeProp records tensor shapes, which
the estimate needs (positions per example, pooling windows, softmax widths).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import sys
import types
from collections.abc import Iterator
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.node import map_aggregate
from torch.fx.passes.shape_prop import TensorMetadata

from gradlint.core.graph import GraphNode, InputSpec, LayerGraph, ModuleInfo, ParamStats
from gradlint.core.values import Location, StageError, Target
from gradlint.load.sources import exception_site, model_site, trace_site
from gradlint.trace.op_lookup import LEAF_MODULES, function_label, function_op, method_op, module_op
from gradlint.trace.splice import MAX_LEAVES, failing_submodule, record_leaf_inputs, splice_leaf
from gradlint.trace.weight_stats import parameter_stats, tensor_stats

BATCH = 4  # examples in the shape-propagation batch (BatchNorm needs more than one)


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
    inputs = target.inputs if target.inputs is not None else infer_inputs(model, graph)
    if inputs is None:
        raise StageError("GL903", f"cannot infer an example input for {type(model).__name__}; "
                         "pass --input SHAPE[:DTYPE] or define example_inputs() in the file",
                         Location(target.file, target.line))
    specs = _input_specs(inputs)
    if default_init:  # a meta model runs on meta inputs: shapes only, no arithmetic
        inputs = tuple(t.to("meta") if isinstance(t, torch.Tensor) else t for t in inputs)
    try:
        with torch.no_grad(), restored(model):
            model.train()
            _ShapeRecorder(model, graph, spliced).run(*inputs)
    except _NodeFailed as failed:
        cause = failed.cause
        loc, _ = trace_site(failed.node.stack_trace, target.file)
        raise StageError("GL903", f"running {type(model).__name__} on an example input of "
                         f"shape {_shapes(inputs)} failed: {type(cause).__name__}: "
                         f"{_first_line(cause)}; pass --input SHAPE[:DTYPE] or define "
                         "example_inputs() in the file",
                         loc or exception_site(cause)) from None
    return _to_layer_graph(target, graph, specs, stats, default_init, spliced)


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
    inputs; if that fails too, GL903 at the line where fx broke, saying what would help."""
    from gradlint.trace.export import export_target

    where = exception_site(fx_error)
    why = f"{type(fx_error).__name__}: {_first_line(fx_error)}"
    inputs = target.inputs if target.inputs is not None else _first_layer_inputs(model)
    if inputs is None:
        raise StageError("GL903", f"torch.fx could not trace {type(model).__name__} ({why}) and "
                         "torch.export needs example inputs: pass --input SHAPE[:DTYPE] or "
                         "define example_inputs() in the file", where)
    try:
        with restored(model):
            model.train()
            return export_target(target, model, inputs, _input_specs(inputs),
                                 owners_of(model, target.sites, stats), stats, default_init)
    except StageError as err:
        guessed = "" if target.inputs is not None else (
            " (with an input guessed from the first layer: pass --input SHAPE[:DTYPE] or "
            "define example_inputs() in the file)")
        raise StageError("GL903", f"torch.fx could not trace {type(model).__name__} ({why}); "
                         f"{err.message}{guessed}; rewrite the data-dependent control flow in "
                         "forward() or lint the submodules separately",
                         where or err.location) from None


@contextlib.contextmanager
def restored(model: nn.Module) -> Iterator[None]:
    """Running the model in train mode updates BatchNorm's running statistics (and any other
    buffer a forward writes) and sets every submodule's mode: put both back, so linting never
    changes the user's model (its outputs, or a test run after ``gradlint.check``)."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers() if b.device.type != "meta"]
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


def _first_layer_inputs(model: nn.Module) -> tuple[torch.Tensor, ...] | None:
    """Without a graph, guess from the first module (in definition order) that takes input."""
    for mod in model.modules():
        t = _input_for(mod)
        if t is not None:
            return (t,)
    return None


class _NodeFailed(Exception):
    def __init__(self, node: fx.Node, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.node = node
        self.cause = cause


class _ShapeRecorder(fx.Interpreter):
    """Runs the graph once and writes each tensor's shape beside its node (as fx's ShapeProp,
    but a failure names the node whose user code broke instead of printing a traceback)."""

    def __init__(self, model: nn.Module, graph: fx.Graph, spliced: set[str] | None = None
                 ) -> None:
        super().__init__(model, graph=graph)
        self.spliced = spliced or set()

    def run_node(self, n: fx.Node) -> Any:
        if n.op == "call_module" and str(n.target) in self.spliced:
            record_leaf_inputs(n, *self.fetch_args_kwargs_from_env(n))
        try:
            result = super().run_node(n)
        except Exception as exc:  # noqa: BLE001 - the user's forward raised
            raise _NodeFailed(n, exc) from None
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


def _tensor_meta(t: torch.Tensor) -> TensorMetadata:
    """Shape and dtype only (the estimate reads shapes): fx's ``_extract_tensor_metadata`` also
    works out memory formats, whose first use imports sympy (~1 s)."""
    return TensorMetadata(t.shape, t.dtype, t.requires_grad, (), None, False, {})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def _shapes(inputs: tuple[Any, ...]) -> str:
    return ", ".join("x".join(map(str, t.shape)) if isinstance(t, torch.Tensor) else repr(t)
                     for t in inputs)


def _defaulted_args(model: nn.Module) -> dict[str, Any]:
    """Arguments of forward() with defaults are fixed to them (``mask=None`` then traces)."""
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in sig.parameters.items()
            if p.default is not inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def infer_inputs(model: nn.Module, graph: fx.Graph) -> tuple[torch.Tensor, ...] | None:
    """A float/int example input per placeholder from the first layer that consumes it."""
    out: list[torch.Tensor] = []
    for ph in graph.nodes:
        if ph.op != "placeholder":
            continue
        mod = _first_module_user(model, ph)
        if mod is None:
            return None
        t = _input_for(mod)
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
                if _input_for(mod) is not None:
                    return mod
            frontier.append(user)
    return None


def _input_for(mod: nn.Module) -> torch.Tensor | None:
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


def _shape_of(meta: Any) -> tuple[int, ...] | None:
    if isinstance(meta, TensorMetadata):
        return tuple(int(s) for s in meta.shape)
    if isinstance(meta, (tuple, list)):
        for m in meta:
            s = _shape_of(m)
            if s is not None:
                return s
    if isinstance(meta, dict):
        for m in meta.values():
            s = _shape_of(m)
            if s is not None:
                return s
    return None


def _flat(args: Any) -> list[Any]:
    if isinstance(args, (list, tuple)):
        return [y for a in args for y in _flat(a)]
    if isinstance(args, dict):
        return [y for a in args.values() for y in _flat(a)]
    return [args]


def _arg(n: fx.Node, pos: int, name: str, default: Any = None) -> Any:
    if name in n.kwargs:
        return n.kwargs[name]
    return n.args[pos] if len(n.args) > pos else default


_FN_ATTRS: dict[str, list[tuple[int, str]]] = {
    "leaky_relu": [(1, "negative_slope")], "elu": [(1, "alpha")], "celu": [(1, "alpha")],
    "hardtanh": [(1, "min_val"), (2, "max_val")], "gelu": [(99, "approximate")],
    "softplus": [(1, "beta"), (2, "threshold")], "softmax": [(1, "dim")],
    "log_softmax": [(1, "dim")], "avg_pool": [(1, "kernel_size")],
    "max_pool": [(1, "kernel_size")], "sdpa": [(6, "scale")],
}


class _Converter:
    """Walks the fx graph once, appending one GraphNode per tensor-producing node."""

    def __init__(self, target: Target, model: nn.Module, graph: fx.Graph,
                 stats: dict[str, ParamStats], spliced: set[str] | None = None) -> None:
        self.target = target
        self.spliced = spliced or set()
        self.model = model
        self.graph = graph
        self.stats = stats
        self.modules = dict(model.named_modules())
        self.nodes: list[GraphNode] = []
        self.index: dict[fx.Node, int] = {}
        self.spliced_ok: set[str] = set()
        self.untraceable: dict[str, str] = {}  # spliced blocks export failed on, and why

    def add(self, op: str, inputs: tuple[int, ...] = (), **kw: Any) -> int:
        i = len(self.nodes)
        self.nodes.append(GraphNode(index=i, op=op, inputs=inputs, **kw))
        return i

    def operand(self, a: Any, shape: tuple[int, ...] | None) -> int | None:
        """A tensor operand's index; Python numbers become constant nodes."""
        if isinstance(a, fx.Node):
            return self.index.get(a)
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            return self.add("constant", attrs={"value": float(a)}, shape=shape, label=repr(a))
        return None

    def run(self) -> int:
        output = -1
        for n in self.graph.nodes:
            meta = n.meta.get("tensor_meta")
            shape = _shape_of(meta)
            if n.op == "output":
                output = self.primary_output(n)
                continue
            leaf = n.op == "call_module" and str(n.target) in self.spliced
            if shape is None and n.op != "get_attr" and not leaf:
                continue  # sizes, flags and other non-tensor values
            if n.op == "placeholder":
                self.index[n] = self.add("input", shape=shape, label=n.name)
            elif n.op == "get_attr":
                self.get_attr(n)
            elif n.op == "call_module":
                self.call_module(n, shape)
            else:
                self.call(n, shape)
        return output

    def get_attr(self, n: fx.Node) -> None:
        obj: Any = self.model
        for part in str(n.target).split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.Tensor):
            name = str(n.target)
            stats = self.stats.get(name) or tensor_stats(name, obj, obj.requires_grad)
            self.index[n] = self.add("param", params=(stats,),
                                     shape=(1, *obj.shape), label=str(n.target),
                                     module=None)

    def call_module(self, n: fx.Node, shape: tuple[int, ...] | None) -> None:
        name = str(n.target)
        mod = self.modules[name]
        if name in self.spliced and "leaf_inputs" in n.meta:
            ins = tuple(i for a in _flat((n.args, n.kwargs))
                        if (i := self.operand_only(a)) is not None)
            out = splice_leaf(self.nodes, ins, name, mod, n.meta["leaf_inputs"], self.target,
                              self.stats)
            if isinstance(out, int):
                self.index[n] = out
                self.spliced_ok.add(name)
                return
            self.untraceable[name] = out
        key, attrs = module_op(mod)
        if hasattr(mod, "eps"):
            attrs["eps"] = float(mod.eps)
        params = tuple(self.stats.get(f"{name}.{k}" if name else k)
                       or tensor_stats(f"{name}.{k}" if name else k, p, p.requires_grad)
                       for k, p in mod.named_parameters())
        loc, anchor = self.target.sites.get(name, (None, None))
        ins = tuple(i for a in _flat((n.args, n.kwargs)) if (i := self.operand_only(a)) is not None)
        t = type(mod)
        label = f"nn.{t.__name__}" if t.__module__.startswith("torch.nn") else t.__name__
        if name in self.untraceable:
            key, attrs = "opaque", {"untraceable": self.untraceable[name]}
        self.index[n] = self.add(key, ins, attrs=attrs, module=name, module_type=t.__name__,
                                 label=label, params=params, shape=shape, location=loc,
                                 anchor=anchor)

    def operand_only(self, a: Any) -> int | None:
        return self.index.get(a) if isinstance(a, fx.Node) else None

    def call(self, n: fx.Node, shape: tuple[int, ...] | None) -> None:
        if n.op == "call_function":
            key = function_op(n.target)
            label = function_label(n.target)
        else:
            key = method_op(str(n.target))
            label = f".{n.target}()"
        hint = getattr(n.target, "__name__", str(n.target))
        loc, anchor = trace_site(n.stack_trace, self.target.file, hint, model_site(self.target))
        common: dict[str, Any] = {"shape": shape, "location": loc, "anchor": anchor,
                                  "label": label}
        args = list(n.args)
        if key in ("add", "sub", "mul", "div"):
            self.index[n] = self.binary(key, args[0] if args else None, _arg(n, 1, "other"),
                                        common)
            return
        ins = tuple(i for a in _flat((n.args, n.kwargs)) if (i := self.operand_only(a)) is not None)
        attrs: dict[str, Any] = {}
        if key == "neg":
            key, attrs = "scale", {"factor": -1.0}
        elif key == "linear_fn" and len(ins) >= 2:
            key, attrs, params, ins = self.functional_weights(n, ins, "linear")
            common["params"] = params
            if params:
                common["module"] = params[0].name.rpartition(".")[0]
        elif key in ("layer_norm", "rms_norm") and n.op == "call_function":
            x = self.operand_only(args[0]) if args else None
            ws = [self.operand_only(_arg(n, 2, "weight")), self.operand_only(_arg(n, 3, "bias"))]
            params = tuple(self.rename(self.nodes[w], nm)
                           for w, nm in zip(ws, ("weight", "bias"), strict=True)
                           if w is not None and self.nodes[w].op == "param")
            common["params"] = params
            if params:
                common["module"] = params[0].name.rpartition(".")[0]
            ins = (x,) if x is not None else ins[:1]
        base = "avg_pool" if key == "avg_pool" else "max_pool" if key == "max_pool" else key
        for pos, name in _FN_ATTRS.get(base, []):
            v = _arg(n, pos, name)
            if v is not None and not isinstance(v, fx.Node):
                attrs["kernel" if name == "kernel_size" else name] = v
        if key in ("softmax", "log_softmax") and "dim" not in attrs:
            attrs["dim"] = -1
        if key == "opaque" and not ins:
            key = "constant"  # tensors made from scratch (arange, zeros): no gradient to carry
        self.index[n] = self.add(key, ins, attrs=attrs, **common)

    def binary(self, key: str, x: Any, y: Any, common: dict[str, Any]) -> int:
        """``a + b``, ``a - b``, ``a * b``, ``a / b``; a number operand scales or shifts."""
        def num(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        if key in ("mul", "div") and num(y) and isinstance(x, fx.Node) and x in self.index:
            c = float(y)
            factor = c if key == "mul" else (1.0 / c if c else 1.0)
            return self.add("scale", (self.index[x],), attrs={"factor": factor}, **common)
        if key == "mul" and num(x) and isinstance(y, fx.Node) and y in self.index:
            return self.add("scale", (self.index[y],), attrs={"factor": float(x)}, **common)
        if key == "div" and not (isinstance(x, fx.Node) and x in self.index):
            ins = tuple(i for i in (self.operand_only(y),) if i is not None)
            return self.add("opaque", ins, **common)  # c / x: outside the catalogue
        a = self.operand(x, common["shape"])
        b = self.operand(y, common["shape"])
        ins = tuple(i for i in (a, b) if i is not None)
        scales = (1.0, -1.0) if key == "sub" and len(ins) == 2 else ()
        return self.add("add" if key == "sub" else key, ins, scales=scales, **common)

    def rename(self, node: GraphNode, short: str) -> ParamStats:
        p = node.params[0]
        return ParamStats(f"{p.name}#{short}" if not p.name.endswith(short) else p.name,
                          p.shape, p.mean, p.mean_sq, p.requires_grad)

    def functional_weights(self, n: fx.Node, ins: tuple[int, ...], key: str
                           ) -> tuple[str, dict[str, Any], tuple[ParamStats, ...], tuple[int, ...]]:
        """F.linear(x, w, b) with parameter tensors: a Linear whose module is the caller."""
        w = self.nodes[ins[1]]
        if w.op != "param" or not w.params or len(w.params[0].shape) != 2:
            return "opaque", {}, (), ins
        ps = [self.rename(w, "weight")]
        if len(ins) > 2 and self.nodes[ins[2]].op == "param":
            ps.append(self.rename(self.nodes[ins[2]], "bias"))
        out_f, in_f = w.params[0].shape
        return key, {"fan_in": in_f, "fan_out": out_f}, tuple(ps), ins[:1]

    def primary_output(self, n: fx.Node) -> int:
        out = n.args[0]
        key = self.target.output_key
        if isinstance(out, fx.Node) and out.op == "call_function" and isinstance(
                out.target, type) and dataclasses.is_dataclass(out.target):
            out = dict(out.kwargs)  # fx records a returned dataclass as a call with its fields
        if isinstance(out, dict):
            for k in ([key] if key else []) + ["logits", "last_hidden_state"]:
                if k in out and isinstance(out[k], fx.Node) and out[k] in self.index:
                    return self.index[out[k]]
        for a in _flat(out):
            if isinstance(a, fx.Node) and a in self.index:
                return self.index[a]
        raise StageError("GL903", "the model's forward() returns no tensor to take a loss on",
                         Location(self.target.file, self.target.line))


def _input_specs(inputs: tuple[Any, ...]) -> tuple[InputSpec, ...]:
    specs = []
    for t in inputs:
        if not isinstance(t, torch.Tensor):
            continue
        high = None
        if not (t.is_floating_point() or t.is_complex()) and t.numel():
            high = int(t.max()) + 1
        specs.append(InputSpec(tuple(t.shape), str(t.dtype).removeprefix("torch."), high))
    return tuple(specs)


def _to_layer_graph(target: Target, graph: fx.Graph, inputs: tuple[InputSpec, ...],
                    stats: dict[str, ParamStats], default_init: bool,
                    spliced: set[str] | None = None) -> LayerGraph:
    model = target.model
    assert isinstance(model, nn.Module)
    conv = _Converter(target, model, graph, stats, spliced)
    output = conv.run()
    tracer = "fx+export" if conv.spliced_ok else "fx"  # some blocks exported alone, spliced in
    return LayerGraph(name=target.name, nodes=tuple(conv.nodes), output=output, tracer=tracer,
                      owners=owners_of(model, target.sites, stats), inputs=inputs,
                      init="default" if default_init else "actual")


