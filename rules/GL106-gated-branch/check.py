"""GL106 gated-branch: a learnable gate that starts closed, so the layers behind it start with
tiny gradients by design (information, not a problem)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from gradlint.core.values import Diagnostic, Fix, LayerEstimate, Location
from gradlint.lint.rule_api import ModelAnalysis, Rule, anchor_of

if TYPE_CHECKING:
    from gradlint.lint.gated_branches import Gate

_WHAT = {"scale": "learnable scale", "norm": "normalization γ", "weight": "layer"}


class GatedBranch(Rule):
    code = "GL106"
    name = "gated-branch"
    severity = "info"
    summary = ("A branch is scaled by a learnable gate initialized small or zero (layer scale, "
               "ReZero, zero-initialized norm γ or head), so its weights start with tiny "
               "gradients by design.")

    def check(self, analysis: ModelAnalysis) -> Iterator[Diagnostic]:
        from gradlint.lint.gated_branches import find_gates  # torch: not at `gradlint rules`

        fallback = analysis.fallback
        by_module = {le.module: le for le in analysis.layers}
        groups: dict[tuple[str, int, str], list[Gate]] = {}
        for gate in find_gates(analysis):
            anchor = self._where(analysis, gate, by_module, fallback)[0]
            groups.setdefault((anchor.file, anchor.line, gate.kind), []).append(gate)
        for gates in groups.values():
            anchor, related = self._where(analysis, gates[0], by_module, fallback)
            yield self.diagnostic(_message(gates), anchor, analysis.target, gates[0].owner,
                                  related, _fix(gates[0]))

    @staticmethod
    def _where(analysis: ModelAnalysis, gate: Gate, by_module: dict[str, LayerEstimate],
               fallback: Location) -> tuple[Location, tuple[Location, ...]]:
        """The line that builds the gate's owner (the user's line for library code)."""
        owner = by_module.get(gate.owner)
        if owner is not None:
            return anchor_of(owner, fallback)
        return anchor_of(analysis.nodes[gate.node], fallback)


def _size(gate: Gate) -> str:
    return "zero" if gate.rms == 0 else f"RMS {gate.rms:.0e}"


def _list(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f", … {names[-1]}" if len(names) > 3 else "")


def _message(gates: list[Gate]) -> str:
    gate = gates[0]
    what = _WHAT[gate.kind]
    behind = [m for g in gates for m in g.behind]
    if len(gates) == 1:
        name = gate.param.name if gate.kind == "scale" else gate.owner
        head = f"gated branch: the {what} '{name}' starts at {_size(gate)}"
        if gate.kind == "weight":
            head = f"gated branch: the {what} '{name}' is initialized at {_size(gate)}"
    else:
        names = [g.param.name if g.kind == "scale" else g.owner for g in gates]
        sizes = {_size(g) for g in gates}
        size = sizes.pop() if len(sizes) == 1 else "zero or near zero"
        head = f"gated branch: {len(gates)} {what}s built here ({_list(names)}) start at {size}"
    return (f"{head}, so the {len(behind)} layer{'s' if len(behind) != 1 else ''} behind "
            f"{'it' if len(gates) == 1 else 'them'} ({_list(behind)}) start with "
            f"{'zero' if all(g.rms == 0 for g in gates) else 'tiny'} gradients by design; "
            "under a real loss the gate gets a full gradient and opens in the first steps, "
            "and they learn from then on: not a vanishing gradient")


def _fix(gate: Gate) -> Fix:
    first = "nothing to change: a gate that starts closed is a deliberate init"
    if gate.kind == "scale":
        other = "if the branch should learn from the first step, initialize the scale at 1"
    elif gate.kind == "norm":
        other = "if the branch should learn from the first step, initialize γ at 1"
    else:
        other = ("if the layers behind it should learn from the first step, use a small random "
                 "init instead of zeros")
    return Fix(f"{first}; {other}", (first, other))
