"""What a rule sees and returns. Rules live in ``rules/<CODE>-<name>/check.py``, one class each;
the class's README.md beside it is its documentation (``gradlint explain CODE``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from gradlint.core.graph import GraphNode
from gradlint.core.rule_catalogue import Rule
from gradlint.core.values import LayerEstimate, Location

if TYPE_CHECKING:  # the estimate imports torch; `gradlint rules` and `explain` must not
    from gradlint.estimate.sweeps import GraphEstimate

T = TypeVar("T")

__all__ = ["ModelAnalysis", "Rule", "anchor", "anchor_of", "power10"]  # Rule: the catalogue's


@dataclass(frozen=True)
class ModelAnalysis:
    """One traced and estimated model, as the rules see it."""

    target: str
    estimate: GraphEstimate
    threshold: float
    recurrent_threshold: float = 1e-3
    # the example inputs were guessed (none given): a sequence length is then gradlint's
    inputs_inferred: bool = False
    nodes: tuple[GraphNode, ...] = field(init=False, repr=False, compare=False)
    # where a finding goes when its layer has no source line: the checked file's top
    fallback: Location = field(init=False, repr=False, compare=False)
    _derived: dict[Any, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", self.estimate.graph.nodes)
        object.__setattr__(self, "fallback", Location(self.target.split("::")[0], 1))
        object.__setattr__(self, "_derived", {})

    @property
    def layers(self) -> tuple[LayerEstimate, ...]:
        return self.estimate.layers

    @property
    def users(self) -> list[list[int]]:
        """Each node's consumers (shared: do not change)."""
        return self.estimate.graph.consumers()

    def derived(self, compute: Callable[[ModelAnalysis], T]) -> T:
        """``compute(self)``, once per analysis: rules that need the same sweep share it."""
        if compute not in self._derived:
            self._derived[compute] = compute(self)
        result: T = self._derived[compute]
        return result

    def path_to_loss(self, start: int) -> Iterator[GraphNode]:
        """The nodes on the strongest path from ``start`` to the loss, nearest first."""
        i = self.estimate.paths[start].next
        while i is not None:
            yield self.nodes[i]
            i = self.estimate.paths[i].next

    def site_of(self, module: str) -> int | None:
        """The call of ``module`` that carries the most gradient."""
        return self.layer_sites().get(module)

    def layer_sites(self) -> dict[str, int]:
        """Module -> its call that carries the most gradient, for every module (shared)."""
        return self.derived(_strongest_calls)


def anchor(layer: LayerEstimate | GraphNode, fallback: Location) -> Location:
    """The user's line for a finding about ``layer`` (rules group their findings by it)."""
    return layer.anchor or layer.location or fallback


def anchor_of(layer: LayerEstimate | GraphNode, fallback: Location) -> tuple[
        Location, tuple[Location, ...]]:
    """Diagnostics sit on the user's line; a library definition goes under ``related``."""
    at = anchor(layer, fallback)
    related: tuple[Location, ...] = ()
    if layer.location is not None and layer.location is not at and layer.location != at:
        related = (layer.location,)
    return at, related


def power10(x: float) -> str:
    """10^-5.9 style, the way the report prints gradient sizes."""
    if x is None or math.isinf(x):
        return "0"
    return f"10^{x:.1f}"


def _strongest_calls(analysis: ModelAnalysis) -> dict[str, int]:
    """Module -> its call (a node with parameters) that carries the most gradient."""
    log_r = analysis.estimate.log_r
    best: dict[str, int] = {}
    for node in analysis.nodes:
        if node.module is not None and node.params and node.kind != "param":
            i = best.get(node.module)
            if i is None or log_r[node.index] > log_r[i]:
                best[node.module] = node.index
    return best
