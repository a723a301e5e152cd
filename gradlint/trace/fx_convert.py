"""torch.fx graph -> LayerGraph: what is specific to fx's graph flavour.

fx records module calls whole (``call_module``), torch functions and tensor methods by their
Python objects, attributes read by ``get_attr``, and Python numbers as plain arguments; the
shared node building is ``ir_builder``'s.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.passes.shape_prop import TensorMetadata

from gradlint.core.graph import InputSpec, LayerGraph, ParamStats
from gradlint.core.values import Location, StageError, Target
from gradlint.trace.ir_builder import (
    NORM_AFFINE,
    IRBuilder,
    call_settings,
    flat,
    is_number,
    norm_order,
    owner,
    scale_factor,
    shape_of,
    take_of,
)
from gradlint.trace.op_lookup import function_label, function_op, method_op, module_op
from gradlint.trace.splice import splice_call, splice_leaf
from gradlint.trace.weight_stats import owners_of


def _arg(n: fx.Node, pos: int, name: str, default: Any = None) -> Any:
    if name in n.kwargs:
        return n.kwargs[name]
    return n.args[pos] if len(n.args) > pos else default


def _take(n: fx.Node) -> tuple[int, int, int, bool] | None:
    """What ``x[...]`` or ``x.narrow(dim, start, length)`` keeps of a tensor x (ir_builder's
    ``take_of``); None for other calls and for a tuple's item."""
    src = n.args[0] if n.args else None
    meta = src.meta.get("tensor_meta") if isinstance(src, fx.Node) else None
    if not isinstance(meta, TensorMetadata):
        return None
    if n.op == "call_function" and n.target is operator.getitem and len(n.args) > 1:
        return take_of(n.args[1], shape_of(meta))
    if n.op == "call_method" and n.target == "narrow" and len(n.args) == 4:
        dim, start, length = n.args[1:]
        if isinstance(dim, int) and isinstance(start, int) and isinstance(length, int):
            return take_of((slice(None),) * dim + (slice(start, start + length),),
                           shape_of(meta))
    return None


class FxConverter(IRBuilder):
    """Walks the fx graph once, appending one GraphNode per tensor-producing node."""

    def __init__(self, target: Target, model: nn.Module, graph: fx.Graph,
                 stats: dict[str, ParamStats], spliced: set[str] | None = None,
                 programs: dict[str, Any] | None = None) -> None:
        super().__init__(target, stats)
        self.spliced = spliced or set()
        self.programs = programs or {}  # spliced blocks exported during the shape pass
        self.model = model
        self.graph = graph
        self.modules = dict(model.named_modules())
        self.spliced_ok: set[str] = set()
        self.untraceable: dict[str, str] = {}  # spliced blocks export failed on, and why
        self.call_programs: dict[Any, Any] = {}  # wrapped functions' programs (splice_call)

    def run(self) -> int:
        """Convert every node; returns the index of the output the loss is taken on."""
        output = -1
        for n in self.graph.nodes:
            shape = shape_of(n.meta.get("tensor_meta"))
            if n.op == "output":
                output = self.primary_output(n)
                continue
            leaf = n.op == "call_module" and str(n.target) in self.spliced
            if (shape is None and n.op != "get_attr" and not leaf) or _packs(n):
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

    def constant_or_operand(self, a: Any, shape: tuple[int, ...] | None) -> int | None:
        """A tensor operand's index; a Python number becomes a constant node."""
        if is_number(a):
            return self.add("constant", attrs={"value": float(a)}, shape=shape, label=repr(a))
        return self.operand(a)

    def get_attr(self, n: fx.Node) -> None:
        obj: Any = self.model
        for part in str(n.target).split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.Tensor):
            self.index[n] = self.add_tensor(str(n.target), obj, obj.requires_grad)

    def call_module(self, n: fx.Node, shape: tuple[int, ...] | None) -> None:
        name = str(n.target)
        mod = self.modules[name]
        ins = self.operands((n.args, n.kwargs))
        if name in self.spliced and "leaf_inputs" in n.meta:
            out = splice_leaf(self.nodes, ins, name, mod, n.meta["leaf_inputs"], self.target,
                              self.stats, self.programs.get(name))
            if isinstance(out, int):
                self.index[n] = out
                self.spliced_ok.add(name)
                return
            self.untraceable[name] = out
        key, attrs = module_op(mod)
        eps = getattr(mod, "eps", None)  # RMSNorm's None: the dtype's (~1e-7, as no eps)
        if isinstance(eps, (int, float)):
            attrs["eps"] = float(eps)
        params = tuple(self.param_stats(f"{name}.{k}" if name else k, p, p.requires_grad)
                       for k, p in mod.named_parameters())
        loc, anchor = self.target.sites.get(name, (None, None))
        t = type(mod)
        label = f"nn.{t.__name__}" if t.__module__.startswith("torch.nn") else t.__name__
        if "attention_keys" in n.meta:
            attrs["keys"] = n.meta["attention_keys"]
        if "row_coherence" in n.meta:
            attrs["row_coherence"] = n.meta["row_coherence"]
        if name in self.untraceable:
            key, attrs = "opaque", {"untraceable": self.untraceable[name]}
        self.index[n] = self.add(key, ins, attrs=attrs, module=name, module_type=t.__name__,
                                 label=label, params=params, shape=shape, location=loc,
                                 anchor=anchor)

    def call(self, n: fx.Node, shape: tuple[int, ...] | None) -> None:
        """A torch function or tensor method."""
        if n.op == "call_function":
            key, label = function_op(n.target), function_label(n.target)
        else:
            key, label = method_op(str(n.target)), f".{n.target}()"
        loc, anchor = self.source_site(n.stack_trace, getattr(n.target, "__name__",
                                                              str(n.target)))
        common: dict[str, Any] = {"shape": shape, "location": loc, "anchor": anchor,
                                  "label": label}
        if key in ("add", "sub", "mul", "div"):
            self.index[n] = self.binary(key, n.args[0] if n.args else None,
                                        _arg(n, 1, "other"), common)
            return
        if key == "einsum":
            self.index[n] = self.einsum(n.args[0] if n.args else None, flat(n.args[1:]), common,
                                        n.meta.get("token_coherence"))
            return
        if key in ("var", "std"):
            self.index[n] = self.variance(key, n.args[0] if n.args else None, common)
            return
        if key == "vector_norm":
            self.index[n] = self.vector_norm(n.args[0] if n.args else None,
                                             norm_order(n.args, n.kwargs), common)
            return
        if key in ("addcmul", "addcdiv"):
            self.index[n] = self.add_product(key, n.args, n.kwargs.get("value", 1), common)
            return
        if key == "opaque" and "leaf_inputs" in n.meta:
            if (i := self.splice_function(n)) is not None:
                self.index[n] = i
                return
        ins = self.operands((n.args, n.kwargs))
        attrs: dict[str, Any] = {}
        if key == "neg":
            key, attrs = "scale", {"factor": scale_factor("neg")}
        elif key == "linear_fn" and len(ins) >= 2:
            if (i := self.functional_linear(ins, common)) is not None:
                self.index[n] = i
                return
            key = "opaque"
        elif key == "conv_fn":
            if (i := self.functional_conv(n, common)) is not None:
                self.index[n] = i
                return
            key = "opaque"
        elif key in NORM_AFFINE and n.op == "call_function":
            ins, computed = self.functional_norm(key, n, ins, common)
        attrs.update(call_settings(key, n.args, n.kwargs))
        if key == "passthrough" and (take := _take(n)) is not None:
            attrs["take"] = take
        elif key == "cat" and n.target is torch.stack:
            attrs["stack"] = True
        if "attention_keys" in n.meta:
            attrs["keys"] = n.meta["attention_keys"]
        if "token_coherence" in n.meta:
            attrs["coherence"] = n.meta["token_coherence"]
        if "row_coherence" in n.meta:
            attrs["row_coherence"] = n.meta["row_coherence"]
        self.index[n] = self.add_op(key, ins, attrs=attrs, **common)
        if key in NORM_AFFINE and n.op == "call_function" and computed:
            self.index[n] = self.computed_affine(self.index[n], computed, common)

    def splice_function(self, n: fx.Node) -> int | None:
        """A function fx kept whole (``torch.fx.wrap``), exported on the inputs the shape pass
        recorded and spliced in (``splice.splice_call``); None where it cannot be."""
        params: dict[tuple[str, int | str], tuple[str, nn.Parameter]] = {}
        operands: dict[tuple[str, int | str], int] = {}
        slots = [(("arg", k), a) for k, a in enumerate(n.args)] + [
            (("kw", k), a) for k, a in n.kwargs.items()]
        for slot, a in slots:
            if not isinstance(a, fx.Node):
                continue
            if a.op == "get_attr":
                obj: Any = self.model
                for part in str(a.target).split("."):
                    obj = getattr(obj, part, None)
                if isinstance(obj, nn.Parameter):
                    params[slot] = (str(a.target), obj)
                    continue
            i = self.operand(a)
            if i is not None:
                operands[slot] = i
        out = splice_call(self.nodes, n.target, n.meta["leaf_inputs"], params, operands,
                          self.target, self.stats, self.call_programs)
        return out if isinstance(out, int) else None

    def binary(self, key: str, x: Any, y: Any, common: dict[str, Any]) -> int:
        """``a + b``, ``a - b``, ``a * b``, ``a / b``; a number operand scales or shifts."""
        xi, yi = self.operand(x), self.operand(y)
        if key in ("mul", "div") and is_number(y) and xi is not None:
            return self.scale(xi, scale_factor(key, float(y)), **common)
        if key == "mul" and is_number(x) and yi is not None:
            return self.scale(yi, float(x), **common)
        if key == "div" and xi is None:  # c / x: outside the catalogue
            return self.add("opaque", (yi,) if yi is not None else (), **common)
        a = self.constant_or_operand(x, common["shape"])
        b = self.constant_or_operand(y, common["shape"])
        ins = tuple(i for i in (a, b) if i is not None)
        if key in ("add", "sub") and len(ins) == 2:
            return self.signed_sum(key, ins, **common)
        return self.add("add" if key == "sub" else key, ins, **common)

    def functional_linear(self, ins: tuple[int, ...], common: dict[str, Any]) -> int | None:
        """``F.linear(x, w, b)`` with parameter tensors: a Linear whose module is the caller
        (None when the weight is not a 2-D parameter)."""
        w = self.in_role(ins[1], "weight")
        if w is None or len(w.shape) != 2:
            return None
        b = self.in_role(ins[2], "bias") if len(ins) > 2 else None
        return self.linear(ins[0], w, b, **common)

    def functional_conv(self, n: fx.Node, common: dict[str, Any]) -> int | None:
        """``F.conv2d(x, w, b, stride, padding, dilation, groups)``: a conv of a parameter
        weight, owned by its module, or of a weight computed in forward (timm's StdConv2d,
        NFNet's ScaledStdConv2d standardize it each call), which is an input."""
        x = self.operand(n.args[0] if n.args else _arg(n, 0, "input"))
        wi = self.operand(_arg(n, 1, "weight"))
        if x is None or wi is None:
            return None
        w = self.in_role(wi, "weight")
        shape = tuple(w.shape) if w is not None else tuple(self.nodes[wi].shape or ())
        if len(shape) < 3:
            return None
        b = self.in_role(self.operand(_arg(n, 2, "bias")), "bias")
        stride, groups = _arg(n, 3, "stride", 1), _arg(n, 6, "groups", 1)
        if not isinstance(groups, int) or isinstance(stride, fx.Node):
            return None
        module = owner(w) if w is not None else None
        where = self.at_module(module, common) if module is not None else common
        return self.conv(x, w if w is not None else wi, shape, b, stride, groups, False,
                         module=module, module_type="Conv", **where)

    def functional_norm(self, key: str, n: fx.Node, ins: tuple[int, ...],
                        common: dict[str, Any]) -> tuple[tuple[int, ...], list[tuple[str, int]]]:
        """``F.layer_norm``, ``F.batch_norm``... with parameter tensors: the norm takes them
        over (running statistics and sizes are not inputs: train mode normalizes by the batch).
        A γ or β computed in forward (NFNet's ``gain * scale``) is returned with its role, for
        a product and a sum after the norm."""
        x = self.operand(n.args[0]) if n.args else None
        params: list[ParamStats] = []
        computed: list[tuple[str, int]] = []
        for pos, role in zip(NORM_AFFINE[key], ("weight", "bias"), strict=True):
            if pos is None:
                continue
            i = self.operand(_arg(n, pos, role))
            p = self.in_role(i, role)
            if p is not None:
                params.append(p)
            elif i is not None:
                computed.append((role, i))
        common["params"] = tuple(params)
        if params:
            common["module"] = owner(params[0])
        return ((x,) if x is not None else ins[:1]), computed

    def primary_output(self, n: fx.Node) -> int:
        """The output the loss is taken on: a dict's (or dataclass's) requested key, ``logits``
        or ``last_hidden_state``, else the first tensor returned."""
        out = n.args[0]
        key = self.target.output_key
        if isinstance(out, fx.Node) and _packs(out):
            # fx records a returned dataclass or named tuple as a call with its fields
            out = {**dict(zip(getattr(out.target, "_fields", ()), out.args, strict=False)),
                   **out.kwargs} if out.kwargs or not out.args else list(out.args)
        if isinstance(out, dict):
            for k in ([key] if key else []) + ["logits", "last_hidden_state"]:
                if k in out and isinstance(out[k], fx.Node) and out[k] in self.index:
                    return self.index[out[k]]
        for a in flat(out):
            if isinstance(a, fx.Node) and a in self.index:
                return self.index[a]
        raise StageError("GL903", "the model's forward() returns no tensor to take a loss on",
                         Location(self.target.file, self.target.line))


def _packs(n: fx.Node) -> bool:
    """A call that packs tensors into a dataclass or a named tuple (GoogLeNet's outputs):
    a container, not an op."""
    t = n.target
    return (n.op == "call_function" and isinstance(t, type)
            and (dataclasses.is_dataclass(t) or (issubclass(t, tuple) and t is not tuple)))


def to_layer_graph(target: Target, graph: fx.Graph, inputs: tuple[InputSpec, ...],
                   stats: dict[str, ParamStats], default_init: bool,
                   spliced: set[str] | None = None, programs: dict[str, Any] | None = None
                   ) -> LayerGraph:
    """The LayerGraph of a traced (and shape-propagated) fx graph; ``programs``: spliced
    blocks already exported (``splice.exported_on_meta``)."""
    model = target.model
    assert isinstance(model, nn.Module)
    conv = FxConverter(target, model, graph, stats, spliced, programs)
    output = conv.run()
    tracer = "fx+export" if conv.spliced_ok else "fx"  # some blocks exported alone, spliced in
    return LayerGraph(name=target.name, nodes=tuple(conv.nodes), output=output, tracer=tracer,
                      owners=owners_of(model, target.sites, stats), inputs=inputs,
                      init="default" if default_init else "actual")
