"""What the IR knows about an op key without torch: its kind, and each kind's static facts.

Tracers name every node with an op key ("linear", "sigmoid", "rsqrt"); the estimate and the
rules mostly ask for the op's kind (how moments propagate through it) and a few facts about it
(is it a weight layer, does it saturate, sup|f'|). Those facts live here, once, so the IR
(gradlint.core.graph) and the rules read them without importing torch. What an op *does* to the
moments is the estimate's business (gradlint.estimate.op_table); which torch callable maps to
which key is the tracer's (gradlint.trace.op_lookup).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# weight layers: the boundaries between the per-layer factors of the attenuation (docs/design.md)
WEIGHT_KINDS = frozenset({"linear", "conv", "conv_transpose", "embedding", "attention",
                          "recurrent"})
# y = W x + b layers whose moments and gains follow from fan-in/fan-out alone
AFFINE_KINDS = frozenset({"linear", "conv", "conv_transpose"})
# nodes no gradient flows *into* from upstream: the graph's leaves
SOURCE_KINDS = frozenset({"param", "constant", "input"})
# positively homogeneous, f(a h) = a f(h) for a > 0: a weight behind them keeps its scale
# invariance under a norm (GL103), a stack of them keeps Euler's identity (residual coherence)
HOMOGENEOUS = frozenset({"relu", "leaky_relu", "prelu"})
GATE_RMS = 0.1  # a learnable multiplier smaller than this at init gates its branch (GL106)
NORM_GATE_RMS = 0.01  # a norm's γ below this gates what follows it (the estimate, GL106)

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


@dataclass(frozen=True)
class ElementwiseFacts:
    """An elementwise activation's static facts. ``saturating``: f' -> 0 on both sides
    (docs/design.md); ``sup``: sup|f'| for the worst-case bound, from its (defaulted) attributes."""

    saturating: bool
    sup: Callable[[dict[str, Any]], float]
    defaults: dict[str, Any] = field(default_factory=dict)


def _one(a: dict[str, Any]) -> float:
    return 1.0


def _const(v: float) -> Callable[[dict[str, Any]], float]:
    return lambda a: v


ELEMENTWISE: dict[str, ElementwiseFacts] = {
    "identity": ElementwiseFacts(False, _one),
    "sigmoid": ElementwiseFacts(True, _const(0.25)),
    "tanh": ElementwiseFacts(True, _one),
    "hardtanh": ElementwiseFacts(True, lambda a: 1.0 if a["max_val"] > a["min_val"] else 0.0,
                                 {"min_val": -1.0, "max_val": 1.0}),
    "relu6": ElementwiseFacts(False, _one),
    "hardsigmoid": ElementwiseFacts(True, _const(1 / 6)),
    "softsign": ElementwiseFacts(True, _one),
    "relu": ElementwiseFacts(False, _one),
    "leaky_relu": ElementwiseFacts(False, lambda a: max(1.0, abs(a["negative_slope"])),
                                   {"negative_slope": 0.01}),
    "prelu": ElementwiseFacts(False, lambda a: max(1.0, abs(a["negative_slope"])),
                              {"negative_slope": 0.25}),
    "elu": ElementwiseFacts(False, lambda a: max(1.0, a["alpha"]), {"alpha": 1.0}),
    "celu": ElementwiseFacts(False, _one, {"alpha": 1.0}),
    "selu": ElementwiseFacts(False, _const(SELU_SCALE * SELU_ALPHA)),
    "gelu": ElementwiseFacts(
        False, lambda a: 1.12900 if a.get("approximate", "none") == "tanh" else 1.12891,
        {"approximate": "none"}),
    "silu": ElementwiseFacts(False, _const(1.09984)),
    "mish": ElementwiseFacts(False, _const(1.08850)),
    "softplus": ElementwiseFacts(False, _one, {"beta": 1.0, "threshold": 20.0}),
    "logsigmoid": ElementwiseFacts(False, _one),
    "hardswish": ElementwiseFacts(False, _const(1.5)),
}


def with_defaults(name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    """An activation's attributes: its defaults, overridden by those it knows in ``attrs``."""
    merged = dict(ELEMENTWISE[name].defaults)
    merged.update({k: v for k, v in attrs.items() if k in merged})
    return merged


# op key -> kind, for every op that is not an elementwise activation; anything else is opaque
KIND_OF: dict[str, str] = {
    "input": "input", "param": "param", "constant": "constant",
    "linear": "linear", "conv": "conv", "conv_transpose": "conv_transpose",
    "embedding": "embedding",
    "layer_norm": "norm", "batch_norm": "norm", "group_norm": "norm", "rms_norm": "norm",
    "instance_norm": "norm",
    "add": "add", "mul": "mul", "div": "div", "scale": "scale", "cat": "cat",
    "passthrough": "passthrough",
    "avg_pool": "pool", "max_pool": "pool", "adaptive_avg_pool": "pool",
    "adaptive_max_pool": "pool", "mean": "reduce", "sum": "reduce",
    "softmax": "softmax", "log_softmax": "log_softmax", "matmul": "matmul",
    "multihead_attention": "attention", "recurrent": "recurrent", "upsample": "upsample",
    "compare": "constant", "where": "where", "sdpa": "sdpa", "pow": "smooth",
    "rsqrt": "smooth", "sqrt": "smooth", "reciprocal": "smooth", "exp": "smooth",
    "bernoulli": "constant", "l2_normalize": "smooth",
}


@functools.lru_cache(maxsize=1024)
def kind_of(op: str) -> str:
    """The kind of an op key (``opaque`` when unknown); cached: every node built asks."""
    if op in ELEMENTWISE:
        return "elementwise"
    return KIND_OF.get(op, "opaque")


def saturating(op: str) -> bool:
    """A two-sided saturating activation (sigmoid, tanh...): f' -> 0 on both sides."""
    facts = ELEMENTWISE.get(op)
    return facts is not None and facts.saturating


def sup_derivative(op: str, attrs: dict[str, Any]) -> float:
    """sup|f'| for the worst-case bound; non-elementwise ops count as gain 1."""
    facts = ELEMENTWISE.get(op)
    return 1.0 if facts is None else facts.sup(with_defaults(op, attrs))
