"""The fast paths of ``gaussian_moments`` (gradlint/fastmoments.py) give the reference
quadrature's numbers: the speed-up of issue 7 must not change a single estimate."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

import gradlint.activations as activations
from gradlint.activations import ACTIVATIONS, gaussian_moments, quadrature_moments

VARIANTS: list[tuple[str, dict[str, Any]]] = [(name, {}) for name in sorted(ACTIVATIONS)] + [
    ("leaky_relu", {"negative_slope": 0.2}), ("prelu", {"negative_slope": -0.5}),
    ("hardtanh", {"min_val": -2.0, "max_val": 0.5}), ("gelu", {"approximate": "tanh"}),
    ("softplus", {"beta": 2.0, "threshold": 10.0}),
]
MEANS = (0.0, 0.7, -1.5, 3.0)
VARIANCES = (0.0, 1e-4, 0.25, 1.0, 4.0, 30.0)
SHARED = (0.0, 0.3, 1.0)  # the batch-shared part, as a fraction of the variance


@pytest.mark.parametrize(("name", "attrs"), VARIANTS,
                         ids=[f"{n}{a or ''}" for n, a in VARIANTS])
def test_fast_moments_match_the_reference(name: str, attrs: dict[str, Any]) -> None:
    for mean, var, share in itertools.product(MEANS, VARIANCES, SHARED):
        activations._MEMO.clear()
        got = gaussian_moments(name, attrs, mean, var, share * var)
        ref = quadrature_moments(name, attrs, mean, var, share * var)
        scale = math.sqrt(ref.second) + 1e-300
        where = f"{name}{attrs} mean {mean} var {var} shared {share * var}"
        assert got.mean == pytest.approx(ref.mean, abs=1e-9 * scale), where
        assert got.second == pytest.approx(ref.second, rel=1e-9, abs=1e-300), where
        assert got.grad_sq == pytest.approx(ref.grad_sq, rel=1e-9, abs=1e-300), where
        # S': the reference's product grid is itself only good to ~1e-8 (it stops at 6 sd)
        assert got.shared == pytest.approx(ref.shared, abs=1e-6 * ref.second + 1e-300), where


def test_remembered_results_are_the_same_object() -> None:
    """Activations behind normalization layers all see the same input: computed once."""
    activations._MEMO.clear()
    first = gaussian_moments("relu", {}, 0.0, 1.0)
    assert gaussian_moments("relu", {"inplace": True}, 0.0, 1.0) is first
