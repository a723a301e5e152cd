"""LayerGraph: gradlint's own small IR, produced by tracers and read by the estimator and rules.

Nodes are tensors in topological order; each names the catalogue op that produced it, so later
stages never see torch.fx or ATen details.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gradlint.ftypes import Location


@dataclass(frozen=True)
class ParamStats:
    """Statistics of one parameter tensor; the estimate needs only these, not the values."""

    name: str
    shape: tuple[int, ...]
    mean: float
    mean_sq: float
    requires_grad: bool = True

    @cached_property  # asked for per layer and per use; the shape never changes
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


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

    @cached_property  # the estimate asks ~10 times per node
    def numel_per_example(self) -> int:
        if not self.shape:
            return 1
        n = 1
        for s in self.shape[1:]:
            n *= s
        return max(n, 1)

    def param(self, name: str) -> ParamStats | None:
        for p in self.params:  # "fc.weight", or "w1#weight" for a functional call's tensor
            if p.name.rsplit(".", 1)[-1].rsplit("#", 1)[-1] == name:
                return p
        return None


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
        """Reverse adjacency, built in one pass (the estimator walks it backwards)."""
        users: list[list[int]] = [[] for _ in self.nodes]
        for node in self.nodes:
            for i in node.inputs:
                users[i].append(node.index)
        return users


@dataclass(frozen=True)
class ModuleInfo:
    """A module that directly owns parameters, whether or not the trace calls it."""

    name: str
    type: str
    params: tuple[ParamStats, ...]
    location: Location | None = None
    anchor: Location | None = None
    aliases: tuple[str, ...] = ()
