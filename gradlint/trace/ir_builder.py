"""The LayerGraph builder both tracers share.

The fx converter (``fx_convert``) and the ATen converter (``export``) each walk their own graph
flavour and decide which IR op a node becomes; what they have in common lives here, once:
appending nodes, reading shapes, the settings a call passes, parameter statistics and their
names by role, source sites, the arithmetic lowerings (``x*c``, ``x/c``, ``-x``, ``a - b``) and
the rule that an op outside the catalogue with no tensor input makes a constant.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
from torch.fx.passes.shape_prop import TensorMetadata

from gradlint.core.graph import GraphNode, ParamStats
from gradlint.core.values import Location, Target
from gradlint.load.sources import model_site, trace_site
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
}
# what a setting is when the call does not give it as a constant (a tensor exponent: gain 1)
_UNSET: dict[str, dict[str, Any]] = {"softmax": {"dim": -1}, "log_softmax": {"dim": -1},
                                     "pow": {"exponent": 1.0}}


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

    def add(self, op: str, inputs: tuple[int, ...] = (), **kw: Any) -> int:
        """Append a node; returns its index."""
        i = len(self.nodes)
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

    def source_site(self, stack_trace: str | None, hint: str | None = None
                    ) -> tuple[Location | None, Location | None]:
        """(definition, anchor) of a node from its stack trace."""
        return trace_site(stack_trace, self.target.file, hint, self.model_site)

    def at_module(self, module: str, common: dict[str, Any]) -> dict[str, Any]:
        """A node's keywords reported at the line that built ``module`` when known (a layer
        found by its parameters), else at the call's own line."""
        site = self.target.sites.get(module, (None, None))
        return {**common, "location": site[0] or common["location"],
                "anchor": site[1] or common["anchor"]}
