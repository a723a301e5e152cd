"""GL101 vanishing-gradient: attenuation that compounds with distance from the loss."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace

from gradlint.core.graph import GraphNode
from gradlint.core.values import Diagnostic, Fix, LayerEstimate, Location
from gradlint.lint import vanishing
from gradlint.lint.rule_api import ModelAnalysis, Rule, anchor, anchor_of, power10


class VanishingGradient(Rule):
    code = "GL101"
    name = "vanishing-gradient"
    severity = "error"
    summary = ("A layer's gradient is attenuated below the threshold by per-layer gains below 1 "
               "that compound with its distance from the loss.")

    def check(self, analysis: ModelAnalysis) -> Iterator[Diagnostic]:
        limit = math.log10(analysis.threshold)
        sick = [le for le in analysis.layers if vanishing.vanishes(le, limit)]
        groups: dict[tuple[str, int], list[LayerEstimate]] = {}
        fallback = analysis.fallback
        for le in sick:
            at = anchor(le, fallback)
            groups.setdefault((at.file, at.line), []).append(le)
        for layers in groups.values():
            yield self._diagnose(analysis, layers, fallback)

    def _diagnose(self, analysis: ModelAnalysis, layers: list[LayerEstimate],
                  fallback: Location) -> Diagnostic:
        from gradlint.trace.op_lookup import WEIGHT_KINDS  # torch: not at `gradlint rules`

        worst = min(layers, key=lambda le: le.log10_attenuation or 0.0)
        att = worst.log10_attenuation or 0.0
        anchor, related = anchor_of(worst, fallback)
        site = analysis.site_of(worst.module)
        path = list(analysis.path_to_loss(site)) if site is not None else []
        saturating = [n for n in path if n.saturating]
        # how much of the loss the activations themselves cause (the rest: init, widths, pools)
        prev = [site, *(n.index for n in path[:-1])] if site is not None else []
        from_acts = sum(analysis.estimate.log10_gain(n.index, p)
                        for n, p in zip(path, prev, strict=True)
                        if n.kind == "elementwise")
        weights = [n.module for n in path if n.kind in WEIGHT_KINDS and n.module]
        if len(layers) == 1:
            what = f"{worst.type} '{worst.module}'"
        else:
            names = [le.module for le in layers]
            shown = ", ".join(names[:3]) + (f", … {names[-1]}" if len(names) > 3 else "")
            what = (f"{len(layers)} layers built here ({shown}); the deepest, "
                    f"{worst.type} '{worst.module}',")
        message = (f"vanishing gradient: {what} gets a weight gradient {power10(att)} times "
                   f"that of the layers nearest the loss: {worst.factors} of the weight layers "
                   "between it and the loss each shrink it "
                   f"(about {power10(att / max(worst.factors, 1))} per layer)")
        if worst.saturating and worst.log10_bound is not None and worst.log10_bound < -0.5:
            message += (f"; {worst.saturating} saturating activations on the way "
                        f"(worst case {power10(worst.log10_bound)})")
        blame_acts = bool(saturating) and from_acts < 0.5 * att
        fix = _fix(saturating if blame_acts else [], [worst.module, *weights[:-1]], saturating)
        if blame_acts:  # the activations are the cause: offer to replace the hidden ones
            from gradlint.lint.fix_targets import activation_edits

            edits = activation_edits(analysis, saturating)
            if edits:
                fix = replace(fix, applicability="unsafe", edits=edits)
        return self.diagnostic(message, anchor, analysis.target, worst.module, related, fix)


def _fix(saturating: list[GraphNode], weights: list[str], present: list[GraphNode]) -> Fix:
    """Name the culprit: the saturating activations when they cause most of the attenuation,
    else the init (PyTorch's default init shrinks every layer's gain to ~1/sqrt(3)). Only in
    the first case do the edits (replace the hidden activations with ReLU) go with it."""
    span = f" around layers {weights[0]}–{weights[-1]}" if len(weights) >= 2 else ""
    if saturating:
        places: dict[tuple[str, str | None, int], None] = {}  # formatted once per place
        for n in saturating:
            loc = n.anchor or n.location
            places[(n.label, loc.file, loc.line) if loc else (n.label, None, 0)] = None
        seen: dict[tuple[str, str], str] = {}
        for label, file, line in places:
            where = f"{file}:{line}" if file is not None else "forward()"
            seen.setdefault((label, where), f"{label} ({where})")
        culprits = list(seen.values())
        first = "replace " + ", ".join(culprits[:3]) + " with nn.ReLU or nn.GELU"
        return Fix(f"{first}; or add a residual connection / normalization{span}",
                   (first, f"add residual connections{span}",
                    f"add nn.LayerNorm / nn.BatchNorm between the layers{span}"))
    first = ("the per-layer gain at init is below 1 (PyTorch's default init gives "
             "fan_in·E[W²] = 1/3): initialize with nn.init.kaiming_normal_ (ReLU family) or "
             "nn.init.xavier_uniform_ (tanh)")
    if present:
        first += f"; then consider replacing {present[0].label} with nn.ReLU or nn.GELU"
    return Fix(f"{first}; or add normalization / residual connections{span}",
               (first, f"add nn.LayerNorm / nn.BatchNorm between the layers{span}",
                f"add residual connections{span}"))
