"""The torch.export fallback: for models torch.fx cannot trace symbolically (Hugging Face models
with data-dependent control flow, cache objects), export an ATen graph with example inputs and
map it onto the same LayerGraph through the op catalogue. Module names come from the parameter
names and ``nn_module_stack``; lines from each node's ``stack_trace``."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
import logging
import operator
from collections.abc import Iterator
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
from torch.utils import _pytree as pytree

from gradlint.core.graph import InputSpec, LayerGraph, ParamStats
from gradlint.core.values import Location, StageError, Target
from gradlint.load.given_inputs import tree_map_tensors
from gradlint.load.model_state import attributes_kept
from gradlint.load.sources import exception_line, exception_sites, in_user_code
from gradlint.trace.aten_program import aten_program
from gradlint.trace.attention_keys import KeyCounts
from gradlint.trace.export_masks import program_keys
from gradlint.trace.ir_builder import (
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
from gradlint.trace.op_lookup import ATEN_CONV, ATEN_LINEAR, ATEN_NORMS, aten_op, aten_packet
from gradlint.trace.token_coherence import Coherence


def export_target(target: Target, model: nn.Module, inputs: tuple[Any, ...],
                  specs: tuple[InputSpec, ...], owners: Any, stats: dict[str, ParamStats],
                  default_init: bool) -> LayerGraph:
    """Trace to ATen (``aten_program``: as torch.export with ``strict=False`` does) and
    convert; failures become GL903 at the user's line."""
    traced = tuple(inputs)
    if default_init:  # a model built on meta runs on meta inputs and makes its tensors there
        traced = tuple(tree_map_tensors(lambda t: t.to("meta"), traced))
    try:
        with torch.no_grad(), quiet_logs(), attributes_kept(model), (
                torch.device("meta") if default_init else contextlib.nullcontext()):
            kwargs = no_cache(model, len(inputs))
            ep = aten_program(model, traced, kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's model failed to export
        where, related = in_user_code(*exception_sites(exc), Location(target.file, target.line))
        raise StageError("GL903", f"torch.export could not trace {type(model).__name__} either: "
                         f"{exception_line(exc)}", where, related) from exc
    conv = AtenConverter(target, ep, stats)
    if not default_init:  # masks are read off real values; a meta model has none
        conv.read_masks((tuple(inputs), kwargs))
    output = conv.run(primary_leaf(ep.call_spec.out_spec, target.output_key))
    return LayerGraph(name=target.name, nodes=tuple(conv.nodes), output=output, tracer="export",
                      owners=owners, inputs=specs, init="default" if default_init else "actual")


def no_cache(model: nn.Module, given: int) -> dict[str, Any]:
    """``use_cache=False`` where forward() takes it (Hugging Face): a key/value cache is
    inference state that carries no gradient, and torch.export cannot return its object."""
    try:
        names = list(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return {}
    if "use_cache" not in names or names.index("use_cache") < given:
        return {}
    return {"use_cache": False}


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """torch.export logs and prints a failed guard with the whole graph (dozens of lines on
    stderr); the failure reaches the user as one GL903/GL904 line instead."""
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(logging.NOTSET)


def primary_leaf(spec: Any, key: str | None = None) -> int:
    """Index among the flattened outputs of the one the loss is taken on (docs/design.md,
    "Ground truth"): a tensor; a tuple's first; a dict's or ModelOutput's ``logits``, else
    ``last_hidden_state``, else the first."""
    if spec is None:
        return 0
    children = list(spec.children() if hasattr(spec, "children") else spec.children_specs)
    if not children:
        return 0
    context = spec.context
    keys = list(context) if isinstance(context, (list, tuple)) else []
    if not keys and isinstance(context, dict):
        keys = list(context)
    if isinstance(context, (list, tuple)) and len(context) == 2 and isinstance(
            context[1], (list, tuple)):  # dataclass-like specs carry (fields, ...) here
        keys = list(context[1])
    pick = 0
    for wanted in ([key] if key else []) + ["logits", "last_hidden_state"]:
        if wanted in keys and keys.index(wanted) < len(children):
            pick = keys.index(wanted)
            break
    offset = sum(c.num_leaves for c in children[:pick])
    return offset + primary_leaf(children[pick], None)


def _argument(n: fx.Node, name: str) -> Any:
    """An ATen call's argument by its schema name (given, else the schema's default)."""
    schema = getattr(n.target, "_schema", None)
    for i, arg in enumerate(schema.arguments if schema is not None else ()):
        if arg.name == name:
            if i < len(n.args):
                return n.args[i]
            return n.kwargs.get(name, arg.default_value if arg.has_default_value() else None)
    return None


class AtenConverter(IRBuilder):
    """Walks an exported program's ATen graph once, appending one GraphNode per tensor-producing
    node; parameters and buffers arrive as placeholders, layers as their ATen calls."""

    def __init__(self, target: Target, ep: Any, stats: dict[str, ParamStats]) -> None:
        super().__init__(target, stats)
        self.ep = ep
        sig = ep.graph_signature
        self.param_of: dict[str, str] = dict(sig.inputs_to_parameters)
        self.buffer_of: dict[str, str] = dict(sig.inputs_to_buffers)
        # tensors forward makes from constants (``x[:, [-1]]``'s index) are lifted to inputs
        self.buffer_of.update(getattr(sig, "inputs_to_lifted_tensor_constants", {}))
        self.state = ep.state_dict
        self.constants = getattr(ep, "constants", {})
        self.inert: set[int] = set()  # nodes whose values carry no gradient (mark_inert)
        self.keys: dict[fx.Node, KeyCounts] = {}  # attention ops' keys per query (masks)
        self.alike: dict[fx.Node, Coherence] = {}  # products' token coherence (values, keys)
        self.rows: dict[fx.Node, float] = {}  # softmax inputs' share alike along the row

    def param(self, a: Any, role: str) -> ParamStats | None:
        return self.in_role(self.operand(a), role)

    def read_masks(self, inputs: Any) -> None:
        """Keys per query of the program's attention ops and their operands' token coherence,
        evaluated on the real ``inputs`` the program was traced with (``export_masks``);
        before ``run``."""
        state = {**self.state, **self.constants}
        self.keys, self.alike, self.rows = program_keys(
            self.ep.graph_module.graph, state, {**self.param_of, **self.buffer_of},
            pytree.tree_leaves(inputs))

    def run(self, out_index: int) -> int:
        """Convert every node; returns the index of flattened output ``out_index``."""
        output = -1
        for n in self.ep.graph_module.graph.nodes:
            if n.op == "output":
                flat = [a for a in (n.args[0] if isinstance(n.args[0], (list, tuple))
                                    else [n.args[0]])]
                pick = flat[out_index] if out_index < len(flat) else flat[0]
                output = self.index.get(pick, -1)
                if output < 0:
                    output = next((self.index[a] for a in flat if a in self.index), -1)
                continue
            shape = shape_of(n.meta.get("val"))
            if n.op == "placeholder":
                self.placeholder(n, shape)
            elif n.op == "call_function" and shape is not None:
                self.call(n, shape)
            if n in self.index:
                self.mark_inert(self.index[n], n.meta.get("val"))
        if output < 0:
            raise StageError("GL903", "the exported graph returns no tensor to take a loss on",
                             Location(self.target.file, self.target.line))
        return output

    def mark_inert(self, i: int, val: Any) -> None:
        """Values that carry no gradient: integer tensors (token ids, positions) and whatever is
        computed from them alone. An op outside the catalogue on such values (T5's position
        buckets: abs, log, min) is a constant, not an unknown gain."""
        node = self.nodes[i]
        if node.op == "param":
            return
        if node.op == "constant" or (isinstance(val, torch.Tensor) and not (
                val.is_floating_point() or val.is_complex())) or (
                node.inputs and all(j in self.inert for j in node.inputs)):
            self.inert.add(i)
            if node.op == "opaque":
                self.nodes[i] = dataclasses.replace(node, op="constant")

    def placeholder(self, n: fx.Node, shape: tuple[int, ...] | None) -> None:
        """A model input, or a parameter/buffer/constant the program lifted to an input."""
        fqn = self.param_of.get(n.name) or self.buffer_of.get(n.name)
        if fqn is None:
            if shape is not None:
                self.index[n] = self.add("input", shape=shape, label=n.name)
            return
        t = self.state.get(fqn)
        if t is None:
            t = self.constants.get(fqn)
        if isinstance(t, torch.Tensor):
            trainable = n.name in self.param_of and t.requires_grad
            op = "param" if t.is_floating_point() else "constant"
            self.index[n] = self.add_tensor(fqn, t, trainable, op)

    def call(self, n: fx.Node, shape: tuple[int, ...]) -> None:
        """An ATen call: layers by their weights' roles, everything else by the catalogue."""
        packet = aten_packet(n.target)
        args = list(n.args)
        loc, anchor = self.source_site(n.meta.get("stack_trace"))
        common: dict[str, Any] = {"shape": shape, "location": loc, "anchor": anchor,
                                  "label": packet.replace("aten.", "aten::")}
        if n.target is operator.getitem:
            src = self.operand(args[0])
            if src is not None:
                self.index[n] = self.add("passthrough", (src,), **common)
            return
        if packet in ATEN_LINEAR:
            self.index[n] = self.linear_call(packet, args, common)
        elif packet in ATEN_CONV:
            self.index[n] = self.conv_call(packet, args, common)
        elif packet in ATEN_NORMS:
            self.index[n] = self.norm_call(n, packet, args, common)
        elif (i := self.weight_read(packet, args, common)) is not None:
            self.index[n] = i
        else:
            self.index[n] = self.op(n, args, common)

    def weight_read(self, packet: str, args: list[Any], common: dict[str, Any]) -> int | None:
        """A weight-normed parameter or an embedding lookup (None for other calls)."""
        if packet == "aten._weight_norm":  # g * v / ||v||: at init g = ||v||, so the weight is v
            v = self.param(args[0], "weight")
            if v is not None:
                return self.add("param", params=(v,), shape=(1, *v.shape), label=v.name)
        if packet == "aten.embedding":
            w = self.param(args[0], "weight")
            if w is not None:
                module = owner(w)
                return self.add("embedding", attrs={"num_embeddings": w.shape[0]}, params=(w,),
                                module=module, module_type="Embedding",
                                **self.at_module(module, common))
        return None

    def op(self, n: fx.Node, args: list[Any], common: dict[str, Any]) -> int:
        """Arithmetic, activations and the rest of the catalogue, with their settings."""
        key = aten_op(n.target)
        if key == "einsum":
            return self.einsum(args[0] if args else None, flat(args[1:]), common,
                               self.alike.get(n))
        if key in ("var", "std"):
            return self.variance(key, args[0] if args else None, common)
        if key == "vector_norm":
            return self.vector_norm(args[0] if args else None, norm_order(args, n.kwargs), common)
        if key in ("addcmul", "addcdiv"):
            return self.add_product(key, args, n.kwargs.get("value", 1), common)
        ins = self.operands(args)
        if key in ("sub", "rsub", "add"):
            alpha = n.kwargs.get("alpha", 1.0)
            alpha = float(alpha) if isinstance(alpha, (int, float)) else 1.0
            if len(ins) == 2:
                return self.signed_sum(key, ins, alpha, **common)
            if len(ins) == 1 and len(args) >= 2 and (is_number(args[1]) or is_number(args[0])):
                # x + c shifts x (fx: ``binary``)
                c = args[1] if is_number(args[1]) else args[0]
                const = self.add("constant", attrs={"value": float(c)}, shape=common["shape"],
                                 label=repr(c))
                pair = (ins[0], const) if is_number(args[1]) else (const, ins[0])
                return self.signed_sum(key, pair, alpha, **common)
        if key in ("sub", "rsub", "add", "mul", "div", "neg") and len(ins) == 1:
            other = [a for a in args if is_number(a)]
            factor = scale_factor(key, float(other[0]) if other else 1.0)
            return self.scale(ins[0], factor, **common)
        attrs = call_settings(key, args, n.kwargs)
        packet = aten_packet(n.target)
        if key == "passthrough" and ins and (take := _aten_take(
                packet, args, n.kwargs, self.nodes[ins[0]].shape)) is not None:
            attrs["take"] = take
        elif packet == "aten.stack":
            attrs["stack"] = True
        if n in self.keys:
            attrs["keys"] = self.keys[n]
        if n in self.alike:
            attrs["coherence"] = self.alike[n]
        if n in self.rows:
            attrs["row_coherence"] = self.rows[n]
        return self.add_op(key, ins, attrs=attrs, **common)

    def norm_call(self, n: fx.Node, packet: str, args: list[Any], common: dict[str, Any]) -> int:
        """A normalization; its module is its weight's owner, else the calling module."""
        key, wi, bi = ATEN_NORMS[packet]
        found: list[ParamStats] = []
        computed: list[tuple[str, int]] = []  # a γ or β computed in forward
        for pos, role in ((wi, "weight"), (bi, "bias")):
            a = args[pos] if pos is not None and pos < len(args) else None
            p = self.param(a, role)
            if p is not None:
                found.append(p)
            elif (i := self.operand(a)) is not None:
                computed.append((role, i))
        ps = tuple(found)
        stack = n.meta.get("nn_module_stack") or {}
        scope = list(stack.values())[-1][0] if stack else None
        module = owner(ps[0]) if ps else (scope or "")
        x = self.operand(args[0])
        eps = _argument(n, "eps")
        attrs = {"eps": float(eps)} if isinstance(eps, (int, float)) else {}
        where = self.at_module(module, common)
        out = self.add(key, (x,) if x is not None else (), params=ps,
                       module=module if ps else None, module_type=key, attrs=attrs, **where)
        return self.computed_affine(out, computed, where) if computed else out

    def linear_call(self, packet: str, args: list[Any], common: dict[str, Any]) -> int:
        """``aten.linear``, or ``aten.addmm`` of a parameter (GPT-2's Conv1D)."""
        if packet == "aten.addmm":  # Conv1D (GPT-2): bias, x, W with W stored (in, out)
            b, x, w = args[0], args[1], args[2]
            wp = self.param(w, "weight")
            if wp is not None:
                wp = ParamStats(wp.name, tuple(reversed(wp.shape)), wp.mean, wp.mean_sq,
                                wp.requires_grad)
        else:
            x, w, b = args[0], args[1], args[2] if len(args) > 2 else None
            wp = self.param(w, "weight")
        xi = self.operand(x)
        if wp is None or xi is None or len(wp.shape) != 2:
            ins = tuple(i for i in (xi, self.operand(w), self.operand(b)) if i is not None)
            return self.add("matmul" if wp is None else "opaque", ins, **common)
        return self.linear(xi, wp, self.param(b, "bias"), module_type="Linear",
                           **self.at_module(owner(wp), common))

    def conv_call(self, packet: str, args: list[Any], common: dict[str, Any]) -> int:
        """A convolution (plain or transposed) of a parameter weight, or of a weight computed
        in forward (NFNet's weight standardization), which is then an input."""
        x, w = self.operand(args[0]), self.param(args[1], "weight")
        weight: ParamStats | int | None = w if w is not None else self.operand(args[1])
        shape = (tuple(w.shape) if w is not None else
                 tuple(getattr(args[1].meta.get("val"), "shape", ())) if weight is not None
                 else ())
        if x is None or weight is None or len(shape) < 3:
            return self.add("opaque", tuple(i for i in (x,) if i is not None), **common)
        b = self.param(args[2] if len(args) > 2 else None, "bias")
        transposed = "transpose" in packet or (packet == "aten.convolution" and bool(args[6]))
        stride = args[3] if len(args) > 3 else 1
        # groups: aten.convolution's 9th argument; conv{1,2,3}d's and conv_transpose's 7th
        groups = int(args[8] if packet == "aten.convolution" and len(args) > 8
                     else args[6] if len(args) > 6 else 1)
        module = owner(w) if w is not None else None
        where = self.at_module(module, common) if module is not None else common
        return self.conv(x, weight, shape, b, stride, groups, transposed, module=module,
                         module_type="Conv", **where)


def _aten_take(packet: str, args: list[Any], kwargs: dict[str, Any],
               shape: tuple[int, ...] | None) -> tuple[int, int, int, bool] | None:
    """What ``aten.select``/``aten.slice``/``aten.narrow`` keeps of a tensor of this shape
    (ir_builder's ``take_of``); None for other ops."""
    if shape is None or packet not in ("aten.select", "aten.slice", "aten.narrow"):
        return None
    rest = list(args[1:]) + [None] * 4
    dim = kwargs.get("dim", rest[0] if rest[0] is not None else 0)
    if not isinstance(dim, int) or not -len(shape) <= dim < len(shape):
        return None
    dim %= len(shape)
    lead: tuple[Any, ...] = (slice(None),) * dim
    if packet == "aten.select":
        return take_of(lead + (rest[1],), shape)
    if packet == "aten.narrow":
        start, length = rest[1], rest[2]
        if not isinstance(start, int) or not isinstance(length, int):
            return None
        return take_of(lead + (slice(start, start + length),), shape)
    start, end = kwargs.get("start", rest[1]), kwargs.get("end", rest[2])
    step = kwargs.get("step", rest[3] if rest[3] is not None else 1)
    if not all(v is None or isinstance(v, int) for v in (start, end, step)):
        return None
    return take_of(lead + (slice(start, end, step),), shape)
