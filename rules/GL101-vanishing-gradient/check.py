"""GL101 vanishing-gradient: attenuation that compounds with distance from the loss."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

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
        # an activation after the path's last weight layer is the model's output activation
        # (a generator's Tanh): never a culprit to replace
        last_weight = max((k for k, n in enumerate(path) if n.kind in WEIGHT_KINDS), default=-1)
        saturating = [n for n in path[:last_weight + 1] if n.saturating]
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
        context = _Context(normalized=_normalized_between(path),
                           gain=_fan_gain(analysis, site, path))
        fix = _fix(saturating if blame_acts else [], [worst.module, *weights[:-1]], saturating,
                   context)
        if blame_acts:  # the activations are the cause: offer to replace the hidden ones
            from gradlint.lint.fix_targets import activation_edits

            edits = activation_edits(analysis, saturating)
            if edits:
                fix = replace(fix, applicability="unsafe", edits=edits)
        return self.diagnostic(message, anchor, analysis.target, worst.module, related, fix)


@dataclass(frozen=True)
class _Context:
    """What the fix must fit: is the path already normalized, and the weight layers' median
    fan_in·E[W²] on it (None: none known)."""

    normalized: bool
    gain: float | None


# PyTorch's default init, U(±1/sqrt(fan_in)), gives fan_in·E[W²] = 1/3; a real draw is close
DEFAULT_GAIN = (0.25, 0.42)


def _normalized_between(path: list[GraphNode]) -> bool:
    """Is there a normalization between every two consecutive weight layers on the path (a
    network with a norm after every conv)?"""
    from gradlint.trace.op_lookup import WEIGHT_KINDS  # torch: not at `gradlint rules`

    gaps, normed, seen_norm, started = 0, 0, False, False
    for n in path:
        if n.kind in WEIGHT_KINDS:
            if started:
                gaps += 1
                normed += seen_norm
            started, seen_norm = True, False
        elif n.kind == "norm":
            seen_norm = True
    return gaps > 0 and normed == gaps


def _fan_gain(analysis: ModelAnalysis, site: int | None, path: list[GraphNode]) -> float | None:
    """The median fan_in·E[W²] of the Linear/Conv layers from ``site`` to the loss."""
    from gradlint.lint.plain_stacks import fan_gains

    gains = analysis.derived(fan_gains)
    idx = ([site] if site is not None else []) + [n.index for n in path]
    known = sorted(10 ** gains[i] for i in idx if gains[i] > float("-inf"))
    return known[len(known) // 2] if known else None


def _fix(saturating: list[GraphNode], weights: list[str], present: list[GraphNode],
         context: _Context) -> Fix:
    """Name the culprit: the saturating activations when they cause most of the attenuation,
    else the init. Only in the first case do the edits (replace the hidden activations with
    ReLU) go with it. Never offers normalization to a path that has it, and blames PyTorch's
    default init only where the weights have its gain."""
    span = f" around layers {weights[0]}–{weights[-1]}" if len(weights) >= 2 else ""
    residual = f"add residual connections{span}"
    norm = () if context.normalized else (
        f"add nn.LayerNorm / nn.BatchNorm between the layers{span}",)
    also = "a residual connection / normalization" if not context.normalized else (
        "residual connections")
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
        return Fix(f"{first}; or add {also}{span}", (first, residual, *norm))
    gain = context.gain
    if gain is not None and DEFAULT_GAIN[0] <= gain <= DEFAULT_GAIN[1]:
        first = ("the per-layer gain at init is below 1 (PyTorch's default init gives "
                 "fan_in·E[W²] = 1/3): initialize with nn.init.kaiming_normal_ (ReLU family) or "
                 "nn.init.xavier_uniform_ (tanh)")
    elif gain is not None:
        first = (f"the per-layer gain at init is below 1 (this init gives fan_in·E[W²] ≈ "
                 f"{gain:.2g}): initialize with nn.init.kaiming_normal_ (ReLU family) or "
                 "nn.init.xavier_uniform_ (tanh)")
    else:
        first = ("the per-layer gain at init is below 1: initialize with "
                 "nn.init.kaiming_normal_ (ReLU family) or nn.init.xavier_uniform_ (tanh)")
    if present:
        first += f"; then consider replacing {present[0].label} with nn.ReLU or nn.GELU"
    return Fix(f"{first}; or add {'normalization / ' if not context.normalized else ''}"
               f"residual connections{span}", (first, *norm, residual))
