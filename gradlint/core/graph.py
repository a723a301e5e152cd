"""LayerGraph: gradlint's own small IR, produced by tracers and read by the estimator and rules.

Nodes are tensors in topological order; each names the op key that produced it, so later
stages never see torch.fx or ATen details. Torch-free: an op key's kind and static facts come
from gradlint.core.op_kinds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gradlint.core.op_kinds import kind_of, saturating, sup_derivative
from gradlint.core.values import Location


@dataclass(frozen=True)
class ParamStats:
    """Statistics of one parameter tensor; the estimate needs only these, not the values."""

    name: str
    shape: tuple[int, ...]
    mean: float
    mean_sq: float
    requires_grad: bool = True
    numel: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # asked for per layer and per use: computed once
        n = 1
        for s in self.shape:
            n *= s
        object.__setattr__(self, "numel", n)


@dataclass(frozen=True)
class GraphNode:
    """One tensor-producing operation.

    ``op`` is an op-catalogue key; ``inputs`` are indices of earlier nodes; ``scales`` holds
    constant multipliers per input (``a - b`` is add with scales (1, -1)); ``attrs`` holds
    op-specific settings (stride, kernel, slope, dim...); ``module`` is the qualified name of the
    module this node calls, if any.
    """

    index: int
    op: str
    inputs: tuple[int, ...] = ()
    scales: tuple[float, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)
    module: str | None = None
    module_type: str | None = None
    label: str = ""
    params: tuple[ParamStats, ...] = ()
    shape: tuple[int, ...] | None = None
    location: Location | None = None
    anchor: Location | None = None
    # resolved once here, read by every sweep of the estimate and the rules
    kind: str = field(init=False, repr=False, compare=False)  # the catalogue kind of ``op``
    # a two-sided saturating activation (sigmoid, tanh...): f' -> 0 on both sides
    saturating: bool = field(init=False, repr=False, compare=False)
    numel_per_example: int = field(init=False, repr=False, compare=False)
    _by_leaf: dict[str, ParamStats] = field(init=False, repr=False, compare=False)
    # param("weight") and param("bias"), asked by nearly every sweep; main: the weight, else
    # the first parameter (a functional call's tensor)
    weight: ParamStats | None = field(init=False, repr=False, compare=False)
    bias: ParamStats | None = field(init=False, repr=False, compare=False)
    main: ParamStats | None = field(init=False, repr=False, compare=False)
    _log10_sup: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = 1
        for s in (self.shape or (1, 1))[1:]:
            n *= s
        by_leaf: dict[str, ParamStats] = {}
        for p in self.params:  # "fc.weight", or "w1#weight" for a functional call's tensor
            by_leaf.setdefault(p.name.rsplit(".", 1)[-1].rsplit("#", 1)[-1], p)
        kind = kind_of(self.op)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "saturating", saturating(self.op))
        object.__setattr__(self, "numel_per_example", max(n, 1))
        object.__setattr__(self, "_by_leaf", by_leaf)
        object.__setattr__(self, "weight", by_leaf.get("weight"))
        object.__setattr__(self, "bias", by_leaf.get("bias"))
        object.__setattr__(self, "main", by_leaf.get("weight") or (
            self.params[0] if self.params else None))
        object.__setattr__(self, "_log10_sup", _log10_sup(self.op, self.attrs)
                           if kind == "elementwise" else 0.0)

    def param(self, name: str) -> ParamStats | None:
        return self._by_leaf.get(name)

    def without(self, setting: str) -> GraphNode:
        """This node without one of its ``attrs`` (a sweep that must not use it here)."""
        return replace(self, attrs={k: v for k, v in self.attrs.items() if k != setting})

    def log10_sup_derivative(self) -> float:
        """log10 sup|f'| for the worst-case bound (0 for non-elementwise ops)."""
        return self._log10_sup


def _log10_sup(op: str, attrs: dict[str, Any]) -> float:
    key: tuple[Any, ...] | None = (op, *attrs.items())
    try:
        found = _LOG10_SUP.get(key)  # type: ignore[arg-type]
    except TypeError:  # an attribute that cannot be a key
        key, found = None, None
    if found is None:
        sup = sup_derivative(op, attrs)
        found = math.log10(sup) if sup > 0 else float("-inf")
        if key is not None:
            _LOG10_SUP[key] = found
    return found


_LOG10_SUP: dict[tuple[Any, ...], float] = {}  # (op, attrs...) -> log10 sup|f'|, few distinct


@dataclass(frozen=True)
class InputSpec:
    """One example input: enough to draw fresh batches of it (``high``: integer inputs are
    drawn from [0, high))."""

    shape: tuple[int, ...]
    dtype: str
    high: int | None = None


@dataclass(frozen=True)
class LayerGraph:
    """A traced model: nodes in topological order and the primary output (where the loss sits)."""

    name: str
    nodes: tuple[GraphNode, ...]
    output: int
    tracer: str = "fx"
    # modules that own parameters: qualified name -> (type name, params, location, anchor)
    owners: tuple[ModuleInfo, ...] = ()
    inputs: tuple[InputSpec, ...] = ()
    init: str = "actual"  # "default": built on the meta device, module types' default init

    def consumers(self) -> list[list[int]]:
        """Reverse adjacency, built once (the estimate and several rules walk it backwards);
        shared: callers must not change it."""
        users: list[list[int]] | None = self.__dict__.get("_users")
        if users is None:
            users = [[] for _ in self.nodes]
            for node in self.nodes:
                for i in node.inputs:
                    users[i].append(node.index)
            object.__setattr__(self, "_users", users)
        return users

    def carried_from(self, i: int) -> int:
        """The node whose values node ``i`` carries unchanged (``carried_from``)."""
        return carried_from(self.nodes, i)

    def ops(self) -> frozenset[str]:
        """The catalogue ops in the graph (built once): a sweep that looks for one kind of
        node returns at once where there is none (most sweeps, on a plain MLP)."""
        found: frozenset[str] | None = self.__dict__.get("_ops")
        if found is None:
            found = frozenset({n.op for n in self.nodes})
            object.__setattr__(self, "_ops", found)
        return found

    def kinds(self) -> frozenset[str]:
        """The catalogue kinds in the graph (built once, as ``ops``)."""
        found: frozenset[str] | None = self.__dict__.get("_kinds")
        if found is None:
            found = frozenset({n.kind for n in self.nodes})
            object.__setattr__(self, "_kinds", found)
        return found


@dataclass(frozen=True)
class ModuleInfo:
    """A module that directly owns parameters, whether or not the trace calls it."""

    name: str
    type: str
    params: tuple[ParamStats, ...]
    location: Location | None = None
    anchor: Location | None = None
    aliases: tuple[str, ...] = ()
    # its main parameter (``weight``, else the first) and parameter count, resolved once
    main: ParamStats | None = field(init=False, repr=False, compare=False)
    numel: int = field(init=False, repr=False, compare=False)
    frozen: bool = field(init=False, repr=False, compare=False)  # no parameter learns

    def __post_init__(self) -> None:
        main = next((p for p in self.params if p.name.rsplit(".", 1)[-1] == "weight"),
                    self.params[0] if self.params else None)
        object.__setattr__(self, "main", main)
        object.__setattr__(self, "numel", sum(p.numel for p in self.params))
        object.__setattr__(self, "frozen", not any(p.requires_grad for p in self.params))


def carried_from(nodes: Sequence[GraphNode], i: int) -> int:
    """The node whose values node ``i`` carries unchanged: back through single-input
    value-keeping ops (views, dropout, identity)."""
    while nodes[i].kind == "passthrough" and len(nodes[i].inputs) == 1:
        i = nodes[i].inputs[0]
    return i
