"""GL103 exploding-gradient: per-layer gains above 1 that compound towards the input."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gradlint.core.values import Diagnostic, Fix, Location
from gradlint.lint.rule_api import ModelAnalysis, Rule, anchor, anchor_of, power10

if TYPE_CHECKING:
    from gradlint.lint.signal_growth import Growth

MIN_FACTORS = 3  # one large factor (a wide projection, an upsampling) never fires alone
# where the estimate is known to be weak (confidence: low) GL103 asks for this much more growth;
# less than GL101's 3 decades: in the unnormalized residual stacks that carry most low marks
# the estimate under-predicts the growth (measured 3.4 vs 2.5 decades at depth 20)
LOW_CONFIDENCE_MARGIN = 1.0
_CELLS = {"RNN_TANH": "RNN (tanh)", "RNN_RELU": "RNN (relu)", "LSTM": "LSTM", "GRU": "GRU"}


class ExplodingGradient(Rule):
    code = "GL103"
    name = "exploding-gradient"
    severity = "error"
    summary = ("A layer's backward signal grows above 1/threshold times the gradient at the "
               "model's output through per-layer gains above 1 that compound with its distance "
               "from the loss.")

    def check(self, analysis: ModelAnalysis) -> Iterator[Diagnostic]:
        from gradlint.lint.signal_growth import may_grow_beyond  # torch: not at `gradlint rules`

        limit = -math.log10(analysis.threshold)
        fallback = analysis.fallback
        if may_grow_beyond(analysis, limit):
            yield from self._along_layers(analysis, limit, fallback)
        yield from self._along_time(analysis, limit, fallback)

    def _along_layers(self, analysis: ModelAnalysis, limit: float,
                      fallback: Location) -> Iterator[Diagnostic]:
        from gradlint.core.op_kinds import WEIGHT_KINDS
        from gradlint.lint.signal_growth import signal_growth

        confidence = {le.module: le.confidence for le in analysis.layers}
        sick = [g for g in signal_growth(analysis)
                if analysis.nodes[g.site].kind in WEIGHT_KINDS and not g.invariant
                and g.factors >= MIN_FACTORS and g.log10_growth > limit + (
                    LOW_CONFIDENCE_MARGIN if confidence.get(g.module) == "low" else 0.0)]
        by_module = {le.module: le for le in analysis.layers}
        groups: dict[tuple[str, int], list[Growth]] = {}
        for g in sick:
            at = anchor(by_module[g.module], fallback)
            groups.setdefault((at.file, at.line), []).append(g)
        for layers in groups.values():
            yield self._diagnose(analysis, layers, fallback)

    def _along_time(self, analysis: ModelAnalysis, limit: float,
                    fallback: Location) -> Iterator[Diagnostic]:
        """A recurrent cell multiplies the gradient by ρ per step going back in time; with
        ρ > 1 (vanilla RNN with H·E[W_hh²]·E[φ′²] > 1) it compounds over the sequence."""
        from gradlint.estimate.recurrent import analyse_cell

        if "recurrent" not in analysis.estimate.graph.ops():
            return
        for node in analysis.nodes:
            if node.op != "recurrent" or not node.inputs:
                continue
            cell = analyse_cell(node, analysis.estimate.moments[node.inputs[0]].second)
            gated = cell.mode in ("LSTM", "GRU")  # confidence: low (docs/design.md)
            if (cell.steps - 1 < MIN_FACTORS or cell.rho <= 1 / 0.9
                    or cell.log10_span <= limit + (LOW_CONFIDENCE_MARGIN if gated else 0.0)):
                continue
            anchor, related = anchor_of(node, fallback)
            kind = _CELLS.get(cell.mode, cell.mode)
            message = (f"exploding gradient: {kind} '{node.module}' multiplies the gradient by "
                       f"ρ = {cell.rho:.2f} per step back in time over T = {cell.steps} steps: "
                       "the last step's gradient reaches the first at "
                       f"{power10(cell.log10_span)}")
            first = ("initialize weight_hh so the per-step gain H·E[W_hh²]·E[φ′²] is at most 1 "
                     "(nn.init.orthogonal_ for tanh; std sqrt(2/H) for relu)")
            fix = Fix(f"{first}; clip gradients (torch.nn.utils.clip_grad_norm_) and truncate "
                      "backpropagation through time; or use an LSTM/GRU",
                      (first, "clip gradients and truncate backpropagation through time",
                       "use an LSTM or GRU"))
            yield self.diagnostic(message, anchor, analysis.target, node.module, related, fix)

    def _diagnose(self, analysis: ModelAnalysis, layers: list[Growth],
                  fallback: Location) -> Diagnostic:
        from gradlint.lint.plain_stacks import CHAIN_KINDS, log10_fan_gain

        worst = max(layers, key=lambda g: g.log10_growth)
        le = next(x for x in analysis.layers if x.module == worst.module)
        anchor, related = anchor_of(le, fallback)
        path = list(analysis.path_to_loss(worst.site))

        weights = [n for n in path if n.kind in CHAIN_KINDS and n.module]
        fans = [v for n in weights if (v := log10_fan_gain(analysis, n.index)) > -math.inf]
        if len(layers) == 1:
            what = f"{le.type} '{le.module}'"
        else:
            names = [g.module for g in layers]
            shown = ", ".join(names[:3]) + (f", … {names[-1]}" if len(names) > 3 else "")
            what = f"{len(layers)} layers built here ({shown}); the deepest, {le.type} " \
                   f"'{le.module}',"
        growth = worst.log10_growth
        message = (f"exploding gradient: {what} gets a backward signal {power10(growth)} times "
                   f"the gradient at the model's output: {worst.factors} of the layers between "
                   f"it and the loss each amplify it (about {power10(growth / worst.factors)} "
                   "per layer)")
        residual = worst.joins >= MIN_FACTORS and worst.joins * 2 >= worst.factors
        if residual:
            message += (f"; {worst.joins} residual joins without normalization on the way each "
                        "add their branch's gradient to the skip path's")
        elif fans:
            message += (f"; the weight layers on the way have fan_in·E[W²] ≈ "
                        f"{10 ** statistics.median(fans):.2g}")
        span = (f" around layers {worst.module}–{weights[-1].module}" if weights
                and weights[-1].module != worst.module else "")
        return self.diagnostic(message, anchor, analysis.target, worst.module, related,
                               _fix(residual, span))


def _fix(residual: bool, span: str) -> Fix:
    """Name the cause: unnormalized residual branches that add up, or an init whose per-layer
    gain fan_in·E[W²]·E[φ′²] is above 1."""
    clip = ("gradient clipping (torch.nn.utils.clip_grad_norm_) only treats the symptom "
            "during training")
    if residual:
        first = ("normalize each residual branch (pre-LayerNorm / BatchNorm), or start the "
                 "branches small: zero-initialize each branch's last layer (Fixup, SkipInit) "
                 "or scale it by 1/sqrt(number of blocks)")
        return Fix(f"{first}; {clip}", (first, f"add normalization{span}", clip))
    first = ("initialize so the per-layer gain fan_in·E[W²]·E[φ′²] is 1: "
             "nn.init.kaiming_normal_ (ReLU family) or nn.init.xavier_uniform_ (tanh)")
    return Fix(f"{first}; or add normalization{span}; {clip}",
               (first, f"add nn.LayerNorm / nn.BatchNorm between the layers{span}", clip))
