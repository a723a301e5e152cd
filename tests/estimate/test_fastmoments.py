"""The fast paths of ``gaussian_moments`` (gradlint/estimate/gaussian_fast.py) give the reference
quadrature's numbers: the speed-up of issue 7 must not change a single estimate."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch

import gradlint.estimate.activations as activations
from gradlint.estimate import gaussian_fast as fastmoments
from gradlint.estimate.activations import (
    ACTIVATIONS,
    gaussian_moments,
    quadrature_moments,
    with_defaults,
)

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
        got, ref, where = _moments_beside_reference(name, attrs, mean, var, share)
        # S': the reference's product grid is itself only good to ~1e-8 (it stops at 6 sd)
        assert got.shared == pytest.approx(ref.shared, abs=1e-6 * ref.second + 1e-300), where


def _moments_beside_reference(name: str, attrs: dict[str, Any], mean: float, var: float,
                              share: float) -> tuple[Any, Any, str]:
    """The fast moments and the reference's, after checking E f, E f^2 and E f'^2 agree."""
    activations._MEMO.clear()
    got = gaussian_moments(name, attrs, mean, var, share * var)
    ref = quadrature_moments(name, attrs, mean, var, share * var)
    scale = math.sqrt(ref.second) + 1e-300
    where = f"{name}{attrs} mean {mean} var {var} shared {share * var}"
    assert got.mean == pytest.approx(ref.mean, abs=1e-9 * scale), where
    assert got.second == pytest.approx(ref.second, rel=1e-9, abs=1e-300), where
    assert got.grad_sq == pytest.approx(ref.grad_sq, rel=1e-9, abs=1e-300), where
    return got, ref, where


def test_remembered_results_are_the_same_object() -> None:
    """Activations behind normalization layers all see the same input: computed once."""
    activations._MEMO.clear()
    first = gaussian_moments("relu", {}, 0.0, 1.0)
    assert gaussian_moments("relu", {"inplace": True}, 0.0, 1.0) is first


# --- the numpy twins behind the analytic path -----------------------------------------------

SMOOTH = [(name, attrs) for name, attrs in VARIANTS if name in fastmoments._SMOOTH]
SMOOTH_IDS = [f"{n}{a or ''}" for n, a in SMOOTH]
# Each twin picks its form from the range of its input (no clamp can act, e^x cannot
# overflow, tanh saturates): windows that take every branch.
WINDOWS = ((-60.0, 60.0), (-19.5, 4.5), (-4.0, 19.5), (10.0, 30.0), (-30.0, -10.0))
FAR = (-800.0, -30.0, 30.0, 800.0)
EDGES = np.array([-1e4, -800.0, -750.0, -720.0, -709.0, -700.0, 700.0, 709.0, 750.0, 800.0,
                  1e4])


def _twin(name: str, a: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        return fastmoments._TWINS[name](x.copy(), a, float(x.min()), float(x.max()))


@pytest.mark.parametrize(("name", "attrs"), SMOOTH, ids=SMOOTH_IDS)
def test_numpy_twins_match_the_torch_activations(name: str, attrs: dict[str, Any]) -> None:
    """f and f' of the numpy twins are activations.py's to 1e-12 relative for |x| <= 60, give
    or take an ulp of the terms torch's formulas cancel (1 - tanh^2; 1 + tanh in GELU's tanh
    form, whose f' has an x^3 factor), and never overflow, even far beyond."""
    a = with_defaults(name, attrs)
    act = ACTIVATIONS[name]
    for lo, hi in WINDOWS:
        x = np.linspace(lo, hi, 2401)
        want = act.f(torch.from_numpy(x), a).numpy(), act.df(torch.from_numpy(x), a).numpy()
        for label, got, ref in zip(("f", "f'"), _twin(name, a, x), want, strict=True):
            slack = 1e-12 * np.abs(ref) + 1e-15 * (1.0 + np.abs(x)) ** 3
            worst = int(np.argmax(np.abs(got - ref) - slack))
            assert abs(got[worst] - ref[worst]) <= slack[worst], (
                f"{name}{attrs} {label}({x[worst]}): {got[worst]!r} vs torch {ref[worst]!r}")
    x = np.concatenate([np.linspace(-60.0, 60.0, 241), EDGES])
    want = act.f(torch.from_numpy(x), a).numpy(), act.df(torch.from_numpy(x), a).numpy()
    for label, got, ref in zip(("f", "f'"), _twin(name, a, x), want, strict=True):
        far = np.abs(x) > 60.0
        assert np.all(np.abs(got - ref)[far] <= 1e-12 * np.abs(ref)[far] + 1e-300), (
            name, attrs, label, x[far], got[far], ref[far])


@pytest.mark.parametrize(("name", "attrs"), SMOOTH, ids=SMOOTH_IDS)
def test_numpy_path_gives_the_torch_paths_sums(name: str, attrs: dict[str, Any]) -> None:
    """The same levels, nodes and weights on numpy arrays: the torch path's numbers to
    rounding (S' to 1e-12 of E f^2, as its scale is)."""
    a = with_defaults(name, attrs)
    act = ACTIVATIONS[name]
    for mean, var, share in itertools.product((*MEANS, *FAR), VARIANCES, SHARED):
        sd = math.sqrt(var)
        old = fastmoments._analytic(lambda x: act.f(x, a), lambda x: act.df(x, a), mean, sd,
                                    share)
        new = fastmoments._analytic_np(fastmoments._TWINS[name], a, mean, sd, share)
        where = f"{name}{attrs} mean {mean} var {var} shared {share * var}"
        assert (old is None) == (new is None), where
        if old is None or new is None:
            continue
        scale = math.sqrt(old[1])
        assert new[0] == pytest.approx(old[0], rel=1e-12, abs=1e-12 * scale), where
        assert new[1] == pytest.approx(old[1], rel=1e-12, abs=1e-300), where
        assert new[2] == pytest.approx(old[2], rel=1e-12, abs=1e-300), where
        assert (old[3] is None) == (new[3] is None), where
        if old[3] is not None and new[3] is not None:
            assert new[3] == pytest.approx(old[3], abs=1e-12 * old[1] + 1e-300), where


def test_smooth_activations_take_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """No per-call torch path for them (issue 7: ~1 us per torch operation)."""
    def torch_path(*args: Any) -> None:
        raise AssertionError("the torch path was taken")

    monkeypatch.setattr(fastmoments, "_analytic", torch_path)
    for (name, attrs), share in itertools.product(SMOOTH, SHARED):
        activations._MEMO.clear()
        gaussian_moments(name, attrs, 0.7, 2.0, share * 2.0)


@pytest.mark.parametrize(("name", "attrs", "mean"), [
    *((name, attrs, mean) for name, attrs in SMOOTH for mean in FAR),
    ("softplus", {"beta": 1.0, "threshold": 1000.0}, 695.0),  # e^x would overflow: torch path
    ("softplus", {"beta": 0.5, "threshold": -3.0}, 0.0),
])
def test_far_and_odd_inputs_match_the_reference(name: str, attrs: dict[str, Any],
                                                mean: float) -> None:
    """Far in the tails, and attributes a twin leaves to torch. Not S': where f grows like
    e^-h the reference's product grid, cut at 6 sd, is itself off by up to ~3e-5 of E f^2
    there (the torch path's S' too); the test above holds S' to the torch path's."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for var, share in itertools.product((0.0, 1.0, 4.0), SHARED):
            _moments_beside_reference(name, attrs, mean, var, share)


@pytest.mark.parametrize("name", sorted(fastmoments._FILLS))
def test_in_place_fills_give_the_twins_numbers(name: str) -> None:
    """tanh and sigmoid fill their rows in place (no array per operation): bit for bit what
    the twin and the generic path give, saturated and far in the tails too."""
    for mean, var, share in itertools.product((*MEANS, *FAR, 6.5, -12.0), VARIANCES, SHARED):
        sd = math.sqrt(var)
        args = (fastmoments._TWINS[name], {}, mean, sd, share)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            assert (fastmoments._analytic_np(*args, fastmoments._FILLS[name])
                    == fastmoments._analytic_np(*args)), (name, mean, var, share)


def test_shared_moment_left_out_when_nothing_reads_it() -> None:
    """shared_var None: the same E f, E f^2, E f'^2, and S' NaN (not computed)."""
    for name, mean, var in itertools.product(("tanh", "relu", "gelu"), MEANS, VARIANCES):
        activations._MEMO.clear()
        full = gaussian_moments(name, {}, mean, var, 0.3 * var)
        bare = gaussian_moments(name, {}, mean, var, None)
        assert bare[:3] == full[:3] and math.isnan(bare.shared), (name, mean, var)


def test_threads_linting_at_once_do_not_share_scratch_rows() -> None:
    """The numpy path fills preallocated rows in place: per thread, so that concurrent
    ``gradlint.check`` calls in threads get the numbers a single thread gets."""
    import sys
    import threading

    cases = [(0.01 * i, 0.2 + 0.003 * i) for i in range(400)]
    fill = fastmoments._FILLS["tanh"]
    twin = fastmoments._TWINS["tanh"]
    want = [fastmoments._analytic_np(twin, {}, m, math.sqrt(v), 0.0, fill) for m, v in cases]
    got: dict[int, list[Any]] = {}

    def work(k: int) -> None:
        got[k] = [fastmoments._analytic_np(twin, {}, m, math.sqrt(v), 0.0, fill)
                  for m, v in cases for _ in range(5)][::5]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert all(got[k] == want for k in range(4))
