"""GL105 init-gain: a plain stack whose per-layer gain under its actual init is not ~1."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gradlint.core.values import Diagnostic, Fix, Location
from gradlint.lint.rule_api import ModelAnalysis, Rule, anchor_of, power10

if TYPE_CHECKING:
    from gradlint.lint.plain_stacks import Stack, StackLayer

LOW, HIGH = 0.8, 1.25  # per-layer gain bounds (README.md): 1/1.25 = 0.8, symmetric in log
MIN_LAYERS = 5
MIN_ACTIVATED = 4  # layers followed by an activation: the unit whose gain compounds

_RELU = frozenset({"relu", "relu6", "prelu", "elu", "celu", "gelu", "silu", "mish",
                   "hardswish", "softplus"})
_TANH = frozenset({"tanh", "hardtanh", "softsign"})
_KIND_NAMES = {"linear": "Linear", "conv": "Conv", "conv_transpose": "ConvTranspose"}
_NAMES = {"relu": "nn.ReLU", "relu6": "nn.ReLU6", "leaky_relu": "nn.LeakyReLU",
          "prelu": "nn.PReLU", "elu": "nn.ELU", "celu": "nn.CELU", "selu": "nn.SELU",
          "gelu": "nn.GELU", "silu": "nn.SiLU", "mish": "nn.Mish", "hardswish": "nn.Hardswish",
          "softplus": "nn.Softplus", "tanh": "nn.Tanh", "hardtanh": "nn.Hardtanh",
          "softsign": "nn.Softsign"}


class InitGain(Rule):
    code = "GL105"
    name = "init-gain"
    severity = "warning"
    summary = ("In a plain stack of >= 5 weight layers (no normalization, no skip between "
               "them) the per-layer gain fan_in·E[W²]·E[φ′²] under the actual init is below "
               "0.8 or above 1.25.")

    def check(self, analysis: ModelAnalysis) -> Iterator[Diagnostic]:
        # torch: not at `gradlint rules`
        from gradlint.lint.plain_stacks import judged_units, mean_log10_gain, plain_stacks

        fallback = analysis.fallback
        for stack in plain_stacks(analysis, MIN_LAYERS):
            units = judged_units(analysis, stack)
            log_gain = mean_log10_gain(units)
            if len(units) < MIN_ACTIVATED or not math.isfinite(log_gain):
                continue
            if LOW <= 10 ** log_gain <= HIGH:
                continue
            yield self._diagnose(analysis, stack, units, log_gain, fallback)

    def _diagnose(self, analysis: ModelAnalysis, stack: Stack, units: tuple[StackLayer, ...],
                  log_gain: float, fallback: Location) -> Diagnostic:
        from gradlint.lint.plain_stacks import main_activation

        first = stack.layers[0]
        node = analysis.nodes[first.node]
        anchor, related = anchor_of(node, fallback)
        le = next((x for x in analysis.layers if x.module == first.module), None)
        if le is not None:
            anchor, related = anchor_of(le, fallback)
        names: dict[str, None] = {}  # in order, once each
        types: set[str] = set()
        for la in stack.layers:  # one pass: a stack can be a thousand layers deep
            names[la.module] = None
            n = analysis.nodes[la.node]
            types.add(n.module_type or _KIND_NAMES.get(n.op, "weight"))
        listed = list(names)
        shown = ", ".join(listed[:3]) + (f", … {listed[-1]}" if len(listed) > 3 else "")
        gain = 10 ** log_gain
        fan = 10 ** (sum(la.log10_weight for la in units) / len(units))
        act = main_activation(analysis, units) or "identity"
        dphi = 10 ** (sum(la.log10_activation for la in units) / len(units))
        kind = types.pop() if len(types) == 1 else "weight"
        total = 0.5 * log_gain * len(units)
        message = (f"init gain: {len(stack.layers)} {kind} layers in a plain stack ({shown}) "
                   f"have a per-layer gain fan_in·E[W²]·E[φ′²] = {gain:.2f} under their init "
                   f"(fan_in·E[W²] = {fan:.2f}, E[φ′²] = {dphi:.2f} for "
                   f"{_NAMES.get(act, act)}); over these {len(units)} layers the "
                   f"gradient's size changes by about {power10(total)} "
                   f"({'shrinks' if gain < 1 else 'grows'} with every layer; 1 keeps it)")
        return self.diagnostic(message, anchor, analysis.target, first.module, related,
                               _fix(act, fan / gain, analysis, units))


def _fix(act: str, target: float, analysis: ModelAnalysis,
         units: tuple[StackLayer, ...]) -> Fix:
    """The init that gives this activation a per-layer gain of ~1."""
    from gradlint.core.op_kinds import HOMOGENEOUS

    if act in _RELU:
        init = "nn.init.kaiming_normal_(m.weight, nonlinearity=\"relu\")"
    elif act == "leaky_relu":
        slope = next((analysis.nodes[a].attrs.get("negative_slope") for la in units
                      for a in la.activations if analysis.nodes[a].op == "leaky_relu"), None)
        init = ("nn.init.kaiming_normal_(m.weight, a="
                f"{slope if slope is not None else 0.01}, nonlinearity=\"leaky_relu\")")
    elif act in _TANH:
        init = "nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain(\"tanh\"))"
    elif act == "selu":
        init = "nn.init.kaiming_normal_(m.weight, nonlinearity=\"linear\") (LeCun normal)"
    else:
        init = "nn.init.xavier_uniform_(m.weight)"
    first = f"initialize the stack's weights with {init} and zero biases"
    if act in HOMOGENEOUS:  # E[φ′²] does not depend on the scale: the target is exact
        first += f" (a gain of 1 needs fan_in·E[W²] = {target:.2g} here)"
    return Fix(f"{first}; or add normalization between the layers",
               (first, "add nn.LayerNorm / nn.BatchNorm between the layers",
                "add residual connections"))
