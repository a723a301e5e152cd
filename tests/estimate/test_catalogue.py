"""The activation catalogue against the real torch ops (autograd), and a reference table
(docs/design.md, "Activations and the default init").

Every number gradlint uses for an elementwise op (sup|f'|, E f, E f^2, E f'^2 under a Gaussian)
is checked here against torch's own implementation differentiated by autograd, on fine grids in
float64, so a hand-written derivative or a mistyped constant cannot slip through.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gradlint.estimate.activations import ACTIVATIONS, gaussian_moments, with_defaults
from gradlint.trace.op_lookup import function_op, method_op, module_op, spec

Op = Callable[[torch.Tensor], torch.Tensor]


def _prelu(slope: float) -> Op:
    return lambda x: F.prelu(x, torch.tensor([slope], dtype=x.dtype))


# the real op for every catalogue entry, at the entry's default attributes
TORCH_OPS: dict[str, Op] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "hardtanh": F.hardtanh,
    "relu6": F.relu6,
    "hardsigmoid": F.hardsigmoid,
    "softsign": F.softsign,
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "prelu": _prelu(0.25),
    "elu": F.elu,
    "celu": F.celu,
    "selu": F.selu,
    "gelu": F.gelu,
    "silu": F.silu,
    "mish": F.mish,
    "softplus": F.softplus,
    "logsigmoid": F.logsigmoid,
    "hardswish": F.hardswish,
}
NAMES = sorted(TORCH_OPS)

# non-default attributes: (catalogue key, attrs, the real op with those attributes)
VARIANTS: list[tuple[str, dict[str, Any], Op]] = [
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2)),
    ("leaky_relu", {"negative_slope": 3.0}, lambda x: F.leaky_relu(x, 3.0)),
    ("prelu", {"negative_slope": -0.5}, _prelu(-0.5)),
    ("hardtanh", {"min_val": -2.0, "max_val": 3.0}, lambda x: F.hardtanh(x, -2.0, 3.0)),
    ("elu", {"alpha": 2.0}, lambda x: F.elu(x, 2.0)),
    ("elu", {"alpha": 0.5}, lambda x: F.elu(x, 0.5)),
    ("celu", {"alpha": 2.0}, lambda x: F.celu(x, 2.0)),
    ("celu", {"alpha": 0.5}, lambda x: F.celu(x, 0.5)),
    ("gelu", {"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh")),
    ("softplus", {"beta": 2.0, "threshold": 20.0}, lambda x: F.softplus(x, 2.0, 20.0)),
    ("softplus", {"beta": 1.0, "threshold": 1.0}, lambda x: F.softplus(x, 1.0, 1.0)),
]
VARIANT_IDS = [f"{n}-" + "-".join(f"{k}={v}" for k, v in a.items()) for n, a, _ in VARIANTS]

SATURATING = {"sigmoid", "tanh", "hardtanh", "hardsigmoid", "softsign"}

# the reference table, measured numerically when the design was written:
# E f'(z)^2 for z ~ N(0, q), q = 0.25, 1, 4
DESIGN_TABLE: dict[str, tuple[float, float, float]] = {
    "sigmoid": (0.0560, 0.0448, 0.0290),
    "tanh": (0.717, 0.464, 0.256),
    "hardtanh": (0.955, 0.683, 0.383),
    "hardsigmoid": (0.0278, 0.0277, 0.0241),
    "softsign": (0.377, 0.228, 0.125),
    "relu": (0.5, 0.5, 0.5),
    "leaky_relu": (0.50005, 0.50005, 0.50005),
    "elu": (0.762, 0.668, 0.594),
    "selu": (1.361, 1.072, 0.844),
    "gelu": (0.356, 0.456, 0.506),
    "silu": (0.300, 0.379, 0.466),
    "mish": (0.419, 0.479, 0.513),
    "softplus": (0.264, 0.293, 0.349),
    "logsigmoid": (0.264, 0.293, 0.349),
    "hardswish": (0.278, 0.359, 0.496),
}
DESIGN_SUP: dict[str, float] = {
    "sigmoid": 0.25, "tanh": 1.0, "hardtanh": 1.0, "hardsigmoid": 1 / 6, "softsign": 1.0,
    "relu": 1.0, "leaky_relu": 1.0, "elu": 1.0, "selu": 1.758, "gelu": 1.129, "silu": 1.100,
    "mish": 1.089, "softplus": 1.0, "logsigmoid": 1.0, "hardswish": 1.5,
}

SUP_GRID = torch.linspace(-12.0, 12.0, 2_000_001, dtype=torch.float64)
Z = torch.linspace(-12.0, 12.0, 1_000_001, dtype=torch.float64)  # standard units
PHI = torch.exp(-0.5 * Z * Z) / math.sqrt(2.0 * math.pi)


def value_and_derivative(op: Op, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and f'(x) by autograd (the op is elementwise, so grad of the sum is f')."""
    x = x.detach().clone().requires_grad_(True)
    y = op(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), dy


def gaussian_expectations(op: Op, mean: float, var: float) -> tuple[float, float, float]:
    """E f, E f^2, E f'^2 for h ~ N(mean, var), by the trapezoid rule on a fine grid."""
    y, dy = value_and_derivative(op, mean + math.sqrt(var) * Z)

    def e(v: torch.Tensor) -> float:
        return float(torch.trapezoid(v * PHI, Z))

    return e(y), e(y * y), e(dy * dy)


def test_every_catalogue_activation_has_a_torch_reference() -> None:
    assert set(ACTIVATIONS) - {"identity"} == set(TORCH_OPS)


@pytest.mark.parametrize("name", NAMES)
def test_reference_op_matches_catalogue_function(name: str) -> None:
    """Sanity of the reference table itself: the catalogue's f is the torch op."""
    act = ACTIVATIONS[name]
    x = torch.linspace(-8.0, 8.0, 10_001, dtype=torch.float64)
    torch.testing.assert_close(act.f(x, dict(act.defaults)), TORCH_OPS[name](x),
                               rtol=1e-9, atol=1e-9)


# (a) sup|f'| ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_sup_derivative_matches_autograd(name: str) -> None:
    act = ACTIVATIONS[name]
    _, dy = value_and_derivative(TORCH_OPS[name], SUP_GRID)
    measured = float(dy.abs().max())
    assert act.sup(dict(act.defaults)) == pytest.approx(measured, abs=1e-3)
    assert spec(name).sup_derivative({}) == pytest.approx(measured, abs=1e-3)


@pytest.mark.parametrize(("name", "attrs", "op"), VARIANTS, ids=VARIANT_IDS)
def test_sup_derivative_with_attributes_matches_autograd(name: str, attrs: dict[str, Any],
                                                         op: Op) -> None:
    _, dy = value_and_derivative(op, SUP_GRID)
    measured = float(dy.abs().max())
    assert spec(name).sup_derivative(attrs) == pytest.approx(measured, abs=1e-3), (
        f"sup|f'| of {name}{attrs}: catalogue {spec(name).sup_derivative(attrs)}, "
        f"autograd {measured}")


# (b), (c) Gaussian moments ----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_gaussian_moments_standard_normal(name: str) -> None:
    """E f'(z)^2, E f(z), E f(z)^2 for z ~ N(0, 1)."""
    ef, ef2, edf2 = gaussian_expectations(TORCH_OPS[name], 0.0, 1.0)
    got = gaussian_moments(name, {}, 0.0, 1.0)
    assert got.grad_sq == pytest.approx(edf2, abs=1e-3)
    assert got.mean == pytest.approx(ef, abs=1e-3)
    assert got.second == pytest.approx(ef2, abs=1e-3)


@pytest.mark.parametrize(("mean", "var"), [(0.0, 0.25), (0.0, 4.0), (0.7, 2.0), (-1.5, 0.5)])
@pytest.mark.parametrize("name", NAMES)
def test_gaussian_moments_shifted_and_scaled(name: str, mean: float, var: float) -> None:
    ef, ef2, edf2 = gaussian_expectations(TORCH_OPS[name], mean, var)
    got = gaussian_moments(name, {}, mean, var)
    assert got.grad_sq == pytest.approx(edf2, abs=1e-3)
    assert got.mean == pytest.approx(ef, abs=1e-3)
    assert got.second == pytest.approx(ef2, abs=1e-3)


@pytest.mark.parametrize(("name", "attrs", "op"), VARIANTS, ids=VARIANT_IDS)
def test_gaussian_moments_with_attributes(name: str, attrs: dict[str, Any], op: Op) -> None:
    for mean, var in [(0.0, 1.0), (0.7, 2.0)]:
        ef, ef2, edf2 = gaussian_expectations(op, mean, var)
        got = gaussian_moments(name, attrs, mean, var)
        assert got.grad_sq == pytest.approx(edf2, abs=1e-3)
        assert got.mean == pytest.approx(ef, abs=1e-3)
        assert got.second == pytest.approx(ef2, abs=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_shared_moment_limits(name: str) -> None:
    """S' (the batch-shared second moment) is (E f)^2 with nothing shared and E f^2 with all.

    S' comes from a coarser product grid than the other moments (relu,
    hardtanh: up to ~2e-2 off); BatchNorm only uses it through s^2 = P - S, where that is a few
    percent at most, so the tolerance here is loose: it guards the formula, not the quadrature.
    """
    for mean, var in [(0.3, 1.5), (0.0, 1.0), (-1.0, 4.0)]:
        g0 = gaussian_moments(name, {}, mean, var, shared_var=0.0)
        g1 = gaussian_moments(name, {}, mean, var, shared_var=var)
        assert g0.shared == pytest.approx(g0.mean ** 2, abs=2.5e-2)
        assert g1.shared == pytest.approx(g1.second, abs=2.5e-2)
        assert g0.shared <= g1.shared + 1e-9


# (d) the reference table -----------------------------------------------------------------------

@pytest.mark.parametrize("q", [0.25, 1.0, 4.0])
@pytest.mark.parametrize("name", sorted(DESIGN_TABLE))
def test_design_table_values(name: str, q: float) -> None:
    expected = DESIGN_TABLE[name][(0.25, 1.0, 4.0).index(q)]
    assert gaussian_moments(name, {}, 0.0, q).grad_sq == pytest.approx(expected, abs=2e-3)


@pytest.mark.parametrize("name", sorted(DESIGN_SUP))
def test_design_table_sup(name: str) -> None:
    act = ACTIVATIONS[name]
    assert act.sup(dict(act.defaults)) == pytest.approx(DESIGN_SUP[name], abs=1e-3)


# (e) saturating --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_saturating_flag(name: str) -> None:
    assert spec(name).saturating is (name in SATURATING)
    assert ACTIVATIONS[name].saturating is (name in SATURATING)


def test_non_elementwise_ops_count_as_gain_one_and_do_not_saturate() -> None:
    for key in ("linear", "conv", "layer_norm", "batch_norm", "add", "softmax", "opaque"):
        assert spec(key).sup_derivative({}) == 1.0
        assert spec(key).saturating is False


# (f) mapping modules, functions and methods onto the catalogue ---------------------------------

MODULES: list[tuple[nn.Module, str]] = [
    (nn.Sigmoid(), "sigmoid"), (nn.Tanh(), "tanh"), (nn.Hardtanh(), "hardtanh"),
    (nn.ReLU6(), "relu6"), (nn.Hardsigmoid(), "hardsigmoid"), (nn.Softsign(), "softsign"),
    (nn.ReLU(), "relu"), (nn.LeakyReLU(), "leaky_relu"), (nn.PReLU(), "prelu"),
    (nn.ELU(), "elu"), (nn.CELU(), "celu"), (nn.SELU(), "selu"), (nn.GELU(), "gelu"),
    (nn.SiLU(), "silu"), (nn.Mish(), "mish"), (nn.Softplus(), "softplus"),
    (nn.LogSigmoid(), "logsigmoid"), (nn.Hardswish(), "hardswish"),
]


@pytest.mark.parametrize(("module", "key"), MODULES, ids=[k for _, k in MODULES])
def test_module_op_maps_activation_modules(module: nn.Module, key: str) -> None:
    got, attrs = module_op(module)
    assert got == key
    assert spec(got).kind == "elementwise"
    # with the attributes module_op reports, the catalogue reproduces the module itself
    x = torch.linspace(-8.0, 8.0, 4001, dtype=torch.float64)
    with torch.no_grad():
        expected = module.double()(x)
    torch.testing.assert_close(ACTIVATIONS[got].f(x, with_defaults(got, attrs)), expected,
                               rtol=1e-7, atol=1e-7)


def test_module_op_attributes() -> None:
    assert module_op(nn.LeakyReLU(0.2)) == ("leaky_relu", {"negative_slope": pytest.approx(0.2)})
    assert module_op(nn.Hardtanh(-2.0, 3.0)) == ("hardtanh", {"min_val": -2.0, "max_val": 3.0})
    assert module_op(nn.ELU(alpha=2.0)) == ("elu", {"alpha": 2.0})
    assert module_op(nn.GELU(approximate="tanh")) == ("gelu", {"approximate": "tanh"})
    assert module_op(nn.Softplus(beta=2.0, threshold=10.0)) == (
        "softplus", {"beta": 2.0, "threshold": 10.0})
    assert module_op(nn.PReLU(init=0.1))[1]["negative_slope"] == pytest.approx(0.1)


@pytest.mark.parametrize("module", [nn.Linear(4, 4), nn.Conv2d(3, 4, 3), nn.LayerNorm(4),
                                    nn.BatchNorm2d(4), nn.Dropout(), nn.Bilinear(2, 2, 2)],
                         ids=lambda m: type(m).__name__)
def test_module_op_non_activations(module: nn.Module) -> None:
    expected = {"Linear": "linear", "Conv2d": "conv", "LayerNorm": "layer_norm",
                "BatchNorm2d": "batch_norm", "Dropout": "passthrough", "Bilinear": "opaque"}
    assert module_op(module)[0] == expected[type(module).__name__]


FUNCTIONS: list[tuple[Any, str]] = [
    (torch.sigmoid, "sigmoid"), (F.sigmoid, "sigmoid"), (torch.special.expit, "sigmoid"),
    (torch.tanh, "tanh"), (F.tanh, "tanh"), (F.hardtanh, "hardtanh"), (F.relu6, "relu6"),
    (F.hardsigmoid, "hardsigmoid"), (F.softsign, "softsign"), (torch.relu, "relu"),
    (F.relu, "relu"), (F.leaky_relu, "leaky_relu"), (F.elu, "elu"), (F.celu, "celu"),
    (F.selu, "selu"), (torch.selu, "selu"), (F.gelu, "gelu"), (F.silu, "silu"),
    (F.mish, "mish"), (F.softplus, "softplus"), (F.logsigmoid, "logsigmoid"),
    (F.hardswish, "hardswish"),
]


@pytest.mark.parametrize(("fn", "key"), FUNCTIONS,
                         ids=[f"{getattr(f, '__module__', '')}.{f.__name__}" for f, _ in FUNCTIONS])
def test_function_op_maps_activation_functions(fn: Any, key: str) -> None:
    assert function_op(fn) == key


@pytest.mark.parametrize(("name", "key"), [("sigmoid", "sigmoid"), ("tanh", "tanh"),
                                           ("relu", "relu"), ("sigmoid_", "sigmoid"),
                                           ("tanh_", "tanh"), ("relu_", "relu"),
                                           ("softmax", "softmax"), ("view", "passthrough")])
def test_method_op(name: str, key: str) -> None:
    assert method_op(name) == key


def test_unknown_ops_are_opaque() -> None:
    assert function_op(torch.cumsum) == "opaque"
    assert spec(function_op(torch.cumsum)).kind == "opaque"
    assert function_op(lambda x: x) == "opaque"
    assert method_op("cumsum") == "opaque"
    assert module_op(nn.Module())[0] == "opaque"
