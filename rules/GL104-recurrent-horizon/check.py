"""GL104 recurrent-horizon: the gradient along time dies long before the sequence ends."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gradlint.core.values import Diagnostic, Fix
from gradlint.lint.rule_api import ModelAnalysis, Rule, anchor_of, power10

if TYPE_CHECKING:
    from gradlint.estimate.recurrent import CellStats

NAMES = {"RNN_TANH": "RNN (tanh)", "RNN_RELU": "RNN (relu)", "LSTM": "LSTM", "GRU": "GRU"}


class RecurrentHorizon(Rule):
    code = "GL104"
    name = "recurrent-horizon"
    severity = "warning"
    summary = ("An RNN/LSTM/GRU's gradient across its sequence length T falls below the "
               "recurrent threshold (default 1e-3): rho^T is tiny, so early steps do not learn.")

    def check(self, analysis: ModelAnalysis) -> Iterator[Diagnostic]:
        from gradlint.estimate.recurrent import analyse_cell  # torch: not at `gradlint rules`

        if "recurrent" not in analysis.estimate.graph.ops():
            return
        limit = math.log10(analysis.recurrent_threshold)
        fallback = analysis.fallback
        for node in analysis.nodes:
            if node.op != "recurrent" or not node.inputs:
                continue
            x = analysis.estimate.moments[node.inputs[0]]
            cell = analyse_cell(node, x.second)
            if cell.steps < 2 or cell.log10_span >= limit:
                continue
            anchor, related = anchor_of(node, fallback)
            kind = NAMES.get(cell.mode, cell.mode)
            usable = limit / math.log10(cell.rho) if 0 < cell.rho < 1 else 0.0
            length = (f"T = {cell.steps} steps (a length gradlint guessed: no example input "
                      "was given; pass your own with --input)" if analysis.inputs_inferred
                      else f"the example input's T = {cell.steps} steps")
            message = (f"recurrent horizon: {kind} '{node.module}' carries its gradient back "
                       f"over a horizon of ξ = {cell.horizon:.1f} steps (ρ = {cell.rho:.2f}, "
                       f"{-math.log10(cell.rho):.2f} decades per step at init) and keeps it "
                       f"above {analysis.recurrent_threshold:g} for ~{usable:.0f} steps; over "
                       f"{length} the gradient at the first step is "
                       f"{power10(cell.log10_span)} of the last's (first/last ratio)")
            if cell.mode in ("LSTM", "GRU"):
                message += ("; the gates can learn to open, but dependencies longer than "
                            "the horizon get no gradient to start from")
            yield self.diagnostic(message, anchor, analysis.target, node.module, related,
                                  _fix(cell, usable))


def _fix(cell: CellStats, usable: float) -> Fix:
    """Fixes in the order that works at init (README.md, "Use instead")."""
    tbptt = (f"truncate backpropagation through time to ~{max(int(usable), 1)} steps "
             "(detach the hidden state between chunks)")
    attention = "let later layers attend over the sequence (attention) instead of carrying it"
    if cell.mode == "LSTM":
        first = "initialize the forget-gate bias to 1 (bias_ih_l0[H:2H] = 1, bias_hh_l0[H:2H] = 0)"
        steps = (first, tbptt, attention)
    elif cell.mode == "GRU":
        first = ("initialize the update-gate bias positive (bias_ih_l0[H:2H] ≈ 1) so the cell "
                 "carries its state")
        steps = (first, tbptt, attention)
    else:
        first = tbptt
        steps = (tbptt, attention, "an LSTM helps only with its forget-gate bias set to 1")
    return Fix("; or ".join(steps[:2]), steps)
