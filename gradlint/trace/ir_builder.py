"""The LayerGraph builder both tracers share.

The fx converter (``fx_convert``) and the ATen converter (``export``) each walk their own graph
flavour and decide which IR op a node becomes; what they have in common lives here, once:
appending nodes, reading shapes, the settings a call passes, parameter statistics and their
names by role, source sites, the arithmetic lowerings (``x*c``, ``x/c``, ``-x``, ``a - b``) and
the rule that an op outside the catalogue with no tensor input makes a constant.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.fx as fx
from torch.fx.passes.shape_prop import TensorMetadata

from gradlint.core.graph import GraphNode, ParamStats
from gradlint.core.values import Location, Target
from gradlint.load.sources import model_site, trace_site
from gradlint.trace.einsum_layout import einsum_terms, pair_subscripts
from gradlint.trace.token_coherence import Coherence
from gradlint.trace.weight_stats import tensor_stats

# the signs of a sum's two operands: ``a - b`` is add with scales (1, -1)
_SIGNS = {"add": (1.0, 1.0), "sub": (1.0, -1.0), "rsub": (-1.0, 1.0)}


# The settings an op's call passes, by op key: (position, keyword, attribute). torch.*/F.*
# functions and their ATen ops take them at the same positions (keyword-only: no position).
_SETTINGS: dict[str, tuple[tuple[int | None, str, str], ...]] = {
    "leaky_relu": ((1, "negative_slope", "negative_slope"),), "elu": ((1, "alpha", "alpha"),),
    "celu": ((1, "alpha", "alpha"),), "gelu": ((None, "approximate", "approximate"),),
    "hardtanh": ((1, "min_val", "min_val"), (2, "max_val", "max_val")),
    "softplus": ((1, "beta", "beta"), (2, "threshold", "threshold")),
    "softmax": ((1, "dim", "dim"),), "log_softmax": ((1, "dim", "dim"),),
    "avg_pool": ((1, "kernel_size", "kernel"),), "max_pool": ((1, "kernel_size", "kernel"),),
    "sdpa": ((6, "scale", "scale"),), "pow": ((1, "exponent", "exponent"),),
    "layer_norm": ((4, "eps", "eps"),), "rms_norm": ((3, "eps", "eps"),),
    "batch_norm": ((7, "eps", "eps"),), "instance_norm": ((7, "eps", "eps"),),
    "group_norm": ((1, "num_groups", "groups"), (4, "eps", "eps")), "cat": ((1, "dim", "dim"),),
    "bernoulli": ((1, "p", "p"),), "l2_normalize": ((2, "dim", "dim"),),
}
# the orders of a norm that are the L2 norm (a matrix norm's default is Frobenius, the same sum)
_L2_ORDERS = frozenset({2.0, "fro"})
# where a functional norm takes its affine parameters: (weight, bias) positions (and keywords)
NORM_AFFINE: dict[str, tuple[int | None, int | None]] = {
    "layer_norm": (2, 3), "rms_norm": (2, None), "group_norm": (2, 3), "batch_norm": (3, 4),
    "instance_norm": (3, 4)}
# what a setting is when the call does not give it as a constant (a tensor exponent: gain 1)
_UNSET: dict[str, dict[str, Any]] = {"softmax": {"dim": -1}, "log_softmax": {"dim": -1},
                                     "pow": {"exponent": 1.0}, "l2_normalize": {"dim": 1}}


def call_settings(key: str, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
                  ) -> dict[str, Any]:
    """The attributes op ``key`` takes from a call's constant arguments."""
    attrs = dict(_UNSET.get(key, {}))
    for pos, keyword, attr in _SETTINGS.get(key, ()):
        if keyword in kwargs:
            v = kwargs[keyword]
        else:
            v = args[pos] if pos is not None and pos < len(args) else None
        if v is not None and not isinstance(v, fx.Node):
            attrs[attr] = v
    return attrs


def norm_order(args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> Any:
    """The order a norm call asks for: ``p`` of ``torch.norm``/``Tensor.norm``, ``ord`` of
    ``torch.linalg``'s and ATen's norms, the second argument of each; None when not given."""
    for keyword in ("p", "ord"):
        if keyword in kwargs:
            return kwargs[keyword]
    return args[1] if len(args) > 1 else None


def take_of(index: Any, shape: tuple[int, ...] | None) -> tuple[int, int, int, bool] | None:
    """What ``x[index]`` keeps of ``x`` (of this shape) when it narrows one non-batch dimension
    and leaves the rest whole: (dim, start, stop, keeps the dim), as ``x[:, 0]`` -> (1, 0, 1,
    False) and ``x[:, 1:]`` -> (1, 1, n, True). None for anything else (the estimate then
    assumes the gradient reaches every position, as it did without it)."""
    if shape is None:
        return None
    items = index if isinstance(index, tuple) else (index,)
    if any(it is None for it in items) or sum(it is Ellipsis for it in items) > 1:
        return None
    for k, it in enumerate(items):
        if it is Ellipsis:
            fill = (slice(None),) * (len(shape) - len(items) + 1)
            items = items[:k] + fill + items[k + 1:]
            break
    found: tuple[int, int, int, bool] | None = None
    for d, it in enumerate(items):
        if d >= len(shape):
            return None
        if isinstance(it, slice):
            if it == slice(None):
                continue
            try:
                start, stop, step = it.indices(shape[d])
            except TypeError:  # a traced size as a bound
                return None
            if step != 1 or found is not None:
                return None
            found = (d, start, max(stop, start), True)
        elif isinstance(it, int) and not isinstance(it, bool) and -shape[d] <= it < shape[d]:
            if found is not None:
                return None
            i = it % shape[d]
            found = (d, i, i + 1, False)
        else:  # a tensor index, a list: positions the graph does not know
            return None
    return found if found is not None and found[0] > 0 else None


def shape_of(value: Any) -> tuple[int, ...] | None:
    """The first tensor shape in a node's recorded value: fx's TensorMetadata, an export fake
    tensor, or a container of them (None for symbolic sizes and non-tensor values)."""
    if isinstance(value, TensorMetadata):  # a NamedTuple: before the tuple case
        return tuple(int(s) for s in value.shape)
    if isinstance(value, torch.Tensor):
        try:
            return tuple(int(s) for s in value.shape)
        except (TypeError, ValueError):  # symbolic sizes
            return None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for v in value:
            s = shape_of(v)
            if s is not None:
                return s
    return None


def flat(args: Any) -> list[Any]:
    """The leaves of nested argument lists, tuples and dicts, in order."""
    if isinstance(args, (list, tuple)):
        return [y for a in args for y in flat(a)]
    if isinstance(args, dict):
        return [y for a in args.values() for y in flat(a)]
    return [args]


def is_number(v: Any) -> bool:
    """A Python number operand (bools are flags, not numbers)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def scale_factor(key: str, c: float = 1.0) -> float:
    """The factor of ``x*c``, ``x/c``, ``-x`` and ``c - x`` on x (1 for ``x ± c``)."""
    return {"mul": c, "div": 1.0 / c if c else 1.0, "neg": -1.0, "rsub": -1.0}.get(key, 1.0)


def owner(p: ParamStats) -> str:
    """The qualified name of the module holding parameter ``p``."""
    return p.name.rpartition(".")[0]


class IRBuilder:
    """A LayerGraph's nodes in the making, indexed by the graph node that produced each."""

    def __init__(self, target: Target, stats: dict[str, ParamStats]) -> None:
        self.target = target
        self.stats = stats  # measured (or default-init) statistics by qualified name
        self.model_site = model_site(target)
        self.nodes: list[GraphNode] = []
        self.index: dict[fx.Node, int] = {}
        self.unbatched: set[int] = set()  # parameters and their views: no batch dimension
        self._sites: dict[tuple[str | None, str | None],
                          tuple[Location | None, Location | None]] = {}

    def add(self, op: str, inputs: tuple[int, ...] = (), **kw: Any) -> int:
        """Append a node; returns its index. A view of a parameter gets a leading 1, as the
        parameter has (one example's tensor): ``w[:, None, None]`` is (1, C, 1, 1), not C
        examples of one entry each."""
        i = len(self.nodes)
        if op == "param":
            self.unbatched.add(i)
        elif op == "passthrough" and inputs and inputs[0] in self.unbatched:
            shape = kw.get("shape")
            if shape and math.prod(shape) == self.nodes[inputs[0]].numel_per_example:
                self.unbatched.add(i)
                if shape[0] != 1:
                    kw["shape"] = (1, *shape)
        self.nodes.append(GraphNode(index=i, op=op, inputs=inputs, **kw))
        return i

    def add_op(self, key: str, inputs: tuple[int, ...], **kw: Any) -> int:
        """Append an op node; an op outside the catalogue with no tensor input (``arange``,
        ``zeros``) makes a constant: there is no gradient for it to carry."""
        return self.add("constant" if key == "opaque" and not inputs else key, inputs, **kw)

    def operand(self, a: Any) -> int | None:
        """The index of a graph node's tensor (None for anything else)."""
        return self.index.get(a) if isinstance(a, fx.Node) else None

    def operands(self, args: Any) -> tuple[int, ...]:
        """The indices of every tensor in (nested) arguments, in order."""
        return tuple(i for a in flat(args) if (i := self.operand(a)) is not None)

    def param_stats(self, fqn: str, t: torch.Tensor, trainable: bool) -> ParamStats:
        """A tensor's statistics under its qualified name: the measured ones if known (they
        are the default-init ones on the meta device), else measured now."""
        known = self.stats.get(fqn)
        if known is None:
            return tensor_stats(fqn, t, trainable)
        return ParamStats(fqn, known.shape, known.mean, known.mean_sq, trainable)

    def add_tensor(self, fqn: str, t: torch.Tensor, trainable: bool, op: str = "param") -> int:
        """A parameter (or buffer) the graph reads, shaped as one example's tensor."""
        params = (self.param_stats(fqn, t, trainable),) if op == "param" else ()
        return self.add(op, params=params, shape=(1, *t.shape), label=fqn)

    def in_role(self, i: int | None, role: str) -> ParamStats | None:
        """The parameter node ``i`` holds, named for the role a call gives it: a tensor called
        ``w1`` passed as a weight becomes ``w1#weight``, so LayerGraph finds its weight."""
        if i is None or self.nodes[i].op != "param" or not self.nodes[i].params:
            return None
        p = self.nodes[i].params[0]
        if p.name.rsplit(".", 1)[-1] == role:
            return p
        return ParamStats(f"{p.name}#{role}", p.shape, p.mean, p.mean_sq, p.requires_grad)

    def linear(self, x: int, weight: ParamStats, bias: ParamStats | None, **kw: Any) -> int:
        """``x @ W.T + b`` with a 2-D weight (out, in), owned by the weight's module."""
        out_f, in_f = weight.shape
        return self.add("linear", (x,), attrs={"fan_in": in_f, "fan_out": out_f},
                        params=(weight,) + ((bias,) if bias else ()), module=owner(weight), **kw)

    def conv(self, x: int, weight: ParamStats | int, w_shape: tuple[int, ...],
             bias: ParamStats | None, stride: Any, groups: int, transposed: bool,
             **kw: Any) -> int:
        """A convolution (or its transpose) of a weight of ``w_shape`` (out, in / groups, *k;
        transposed: in, out / groups, *k): a parameter, owned by its module, or a tensor
        computed in forward (weight standardization, a weight norm), which is an input."""
        k = tuple(w_shape[2:])
        stride_t = tuple(stride) if isinstance(stride, (list, tuple)) else (int(stride),) * len(k)
        if transposed:
            c_in, c_out = w_shape[0], w_shape[1] * groups
        else:
            c_out, c_in = w_shape[0], w_shape[1] * groups
        attrs = {"in": c_in, "out": c_out, "kernel": k, "stride": stride_t, "groups": groups}
        op = "conv_transpose" if transposed else "conv"
        if isinstance(weight, int):
            w = self.nodes[weight]
            if w.shape == tuple(w_shape):  # one example's tensor, as parameters are shaped
                self.nodes[weight] = dataclasses.replace(w, shape=(1, *w_shape))
            if self._standardized(weight):
                attrs["centred"] = True
            return self.add(op, (x, weight), attrs=attrs, params=(bias,) if bias else (),
                            **kw)
        return self.add(op, (x,), attrs=attrs, params=(weight,) + ((bias,) if bias else ()),
                        **kw)

    def _standardized(self, weight: int) -> bool:
        """A weight computed by a norm over each output's fan-in (StdConv, NFNet), through
        views and a γ: each of its rows sums to zero."""
        node = self.nodes[weight]
        while node.kind in ("passthrough", "mul", "scale") and node.inputs:
            node = self.nodes[node.inputs[0]]
        return node.kind == "norm"

    def computed_affine(self, norm: int, computed: list[tuple[str, int]],
                        common: dict[str, Any]) -> int:
        """A norm's γ or β computed in forward (NFNet's ``gain * scale`` for a standardized
        weight), not a parameter the norm can own: ``x̂ * γ + β`` after the norm node."""
        plain = {k: v for k, v in common.items() if k not in ("params", "module", "module_type")}
        for role, i in computed:
            norm = self.add("mul" if role == "weight" else "add", (norm, i), **plain)
        return norm

    def scale(self, src: int, factor: float, **kw: Any) -> int:
        """``x * factor``: one input times a constant."""
        return self.add("scale", (src,), attrs={"factor": factor}, **kw)

    def signed_sum(self, key: str, ins: tuple[int, ...], alpha: float = 1.0, **kw: Any
                   ) -> int:
        """``a + alpha*b``, ``a - alpha*b`` or ``b - a`` (rsub) as one add with signed scales."""
        first, second = _SIGNS[key]
        if key != "rsub":
            second *= alpha
        return self.add("add", ins, scales=(first, second), **kw)

    def variance(self, key: str, x: Any, common: dict[str, Any]) -> int:
        """``torch.var``/``torch.std`` (a hand-written channel LayerNorm's statistic) lowered
        onto what it computes, mean((x - mean(x))²), then sqrt for std: a centring, a square
        and two means, all ops the estimate knows (the n/(n-1) correction is left out)."""
        ins = self.operands([x])
        shape = common.get("shape")
        src = self.nodes[ins[0]].shape if ins else None
        if not ins or shape is None or src is None:
            return self.add("opaque", ins, **common)
        kw = {k: v for k, v in common.items() if k != "shape"}
        mean = self.add("mean", ins, shape=shape, **kw)
        centred = self.signed_sum("sub", (ins[0], mean), shape=src, **kw)
        square = self.add("pow", (centred,), attrs={"exponent": 2.0}, shape=src, **kw)
        var = self.add("mean", (square,), shape=shape, **kw)
        return self.add("sqrt", (var,), shape=shape, **kw) if key == "std" else var

    def vector_norm(self, x: Any, order: Any, common: dict[str, Any]) -> int:
        """``x.norm()``, ``torch.linalg.vector_norm`` (ConvNeXt-V2's global response norm, a
        hand-written normalize) lowered onto what the L2 norm computes, sqrt(sum(x²)): a square,
        a sum and a root, all ops the estimate knows. Other orders stay opaque."""
        ins = self.operands([x])
        shape = common.get("shape")
        src = self.nodes[ins[0]].shape if ins else None
        if not ins or shape is None or src is None or not (
                order is None or isinstance(order, (int, float, str)) and order in _L2_ORDERS):
            return self.add("opaque", ins, **common)
        kw = {k: v for k, v in common.items() if k != "shape"}
        square = self.add("pow", (ins[0],), attrs={"exponent": 2.0}, shape=src, **kw)
        total = self.add("sum", (square,), shape=shape, **kw)
        return self.add("sqrt", (total,), shape=shape, **kw)

    def add_product(self, key: str, args: Any, value: Any, common: dict[str, Any]) -> int:
        """``torch.addcmul(x, a, b, value=v)`` = x + v·a·b (a GRN's affine: x + β + γ·(...))
        and ``addcdiv`` (x + v·a/b), lowered onto a product, a scale and a sum; opaque unless
        all three are tensors."""
        ins = tuple(self.operand(a) for a in args[:3])
        if len(ins) != 3 or None in ins or not is_number(value):
            return self.add("opaque", tuple(i for i in ins if i is not None), **common)
        x, a, b = (int(i) for i in ins if i is not None)
        product = self.add("mul" if key == "addcmul" else "div", (a, b), **common)
        if float(value) != 1.0:
            product = self.scale(product, float(value), **common)
        return self.signed_sum("add", (x, product), **common)

    def einsum(self, equation: Any, operands: list[Any], common: dict[str, Any],
               coherence: Coherence | None = None) -> int:
        """``torch.einsum`` lowered onto matmul and sum (``EinsumLowering``); ``operands``:
        the graph nodes of its tensors (their recorded shapes are the real ones: a parameter's
        IR node has a leading 1); ``coherence``: the token coherence the trace measured for a
        two-operand product (``token_coherence.of_einsum``). Opaque when the equation or a
        shape is not known."""
        ins = self.operands(operands)
        shapes = [shape_of(a.meta.get("tensor_meta", a.meta.get("val")))
                  if isinstance(a, fx.Node) else None for a in operands]
        terms = einsum_terms(equation, [len(s) for s in shapes if s is not None]) if (
            isinstance(equation, str) and ins and len(ins) == len(shapes)
            and None not in shapes) else None
        if terms is None:
            return self.add("opaque", ins, **common)
        lowering = EinsumLowering(self, common, coherence if len(terms[0]) == 2 else None)
        return lowering.lower(*terms, ins, shapes, common.get("shape"))

    def source_site(self, stack_trace: str | None, hint: str | None = None
                    ) -> tuple[Location | None, Location | None]:
        """(definition, anchor) of a node from its stack trace, read once per trace and hint:
        nodes of one line share it (Llama-3 70B's ~5600 ATen nodes come from ~40 lines)."""
        site = self._sites.get((stack_trace, hint))
        if site is None:
            site = trace_site(stack_trace, self.target.file, hint, self.model_site)
            self._sites[stack_trace, hint] = site
        return site

    def at_module(self, module: str, common: dict[str, Any]) -> dict[str, Any]:
        """A node's keywords reported at the line that built ``module`` when known (a layer
        found by its parameters), else at the call's own line."""
        site = self.target.sites.get(module, (None, None))
        return {**common, "location": site[0] or common["location"],
                "anchor": site[1] or common["anchor"]}


# --- einsum: lowered onto the matmuls and sums it computes ------------------------------------

def _product(sizes: Any) -> int:
    n = 1
    for s in sizes:
        n *= s
    return n


class EinsumLowering:
    """``torch.einsum`` as the ops it computes, on a builder's nodes: each operand's own
    subscripts that nothing else needs are summed (``sum``), and each pair of operands is one
    batched ``matmul`` over the subscripts they share, their layouts reshaped to
    (batch, n, k) and (batch, k, m) (``passthrough``, exact); the estimate knows both. An
    activation's first subscript is the example's (the estimate is per example): a batch
    dimension of the matmul, never counted in n or m."""

    def __init__(self, builder: IRBuilder, common: dict[str, Any],
                 coherence: Coherence | None = None) -> None:
        self.b = builder
        self.common = {k: v for k, v in common.items() if k != "shape"}
        self.coherence = coherence  # of a two-operand product's right factor, measured
        self.size: dict[str, int] = {}
        self.examples: set[str] = set()

    def lower(self, terms: list[str], out: str, ins: tuple[int, ...],
              shapes: list[Any], shape: tuple[int, ...] | None) -> int:
        for t, s, i in zip(terms, shapes, ins, strict=True):
            for c, n in zip(t, s, strict=True):
                self.size[c] = max(self.size.get(c, 1), n)
            if t and self.b.nodes[i].op not in ("param", "constant"):
                self.examples.add(t[0])
        needed = set(out) | set("".join(terms[1:]))
        idx, cur = self.own_sums(terms[0], ins[0], needed)
        for k in range(1, len(terms)):
            later = set(out) | set("".join(terms[k + 1:]))
            other, nxt = self.own_sums(terms[k], ins[k], later | set(idx))
            last = k == len(terms) - 1
            idx, cur = self.pair(idx, cur, other, nxt, later, shape if last else None)
        if len(terms) == 1 or idx != out:
            cur = self.b.add("passthrough", (cur,), shape=shape, **self.common)
        return cur

    def own_sums(self, term: str, i: int, needed: set[str]) -> tuple[str, int]:
        """Sum away the subscripts only this operand has and nothing later needs."""
        keep = "".join(c for c in term if c in needed)
        if keep == term:
            return term, i
        shape = tuple(self.size[c] for c in keep) or (1,)
        return keep, self.b.add("sum", (i,), shape=shape, **self.common)

    def pair(self, a_idx: str, a: int, b_idx: str, b: int, needed: set[str],
             shape: tuple[int, ...] | None) -> tuple[str, int]:
        batch, inner, free_a, free_b = pair_subscripts(a_idx, b_idx, needed, self.examples)
        lead = tuple(self.size[c] for c in batch) or (1,)
        n, k, m = (_product(self.size[c] for c in cs) for cs in (free_a, inner, free_b))
        pa = self.b.add("passthrough", (a,), shape=(*lead, n, k), **self.common)
        pb = self.b.add("passthrough", (b,), shape=(*lead, k, m), **self.common)
        idx = "".join(batch + free_a + free_b)
        out_shape = shape if shape is not None else (*lead, n, m)
        attrs = {"coherence": self.coherence} if self.coherence is not None else {}
        return idx, self.b.add("matmul", (pa, pb), shape=out_shape, attrs=attrs,
                               **self.common)
