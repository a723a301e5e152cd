"""gradlint.testing: an assertion for users' own pytest suites."""

from __future__ import annotations

import pytest
import torch.nn as nn

from gradlint.testing import assert_no_vanishing_gradients


def _mlp(act: type[nn.Module], depth: int) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(64, 64), act()]
    return nn.Sequential(*layers, nn.Linear(64, 10))


def test_passes_on_a_healthy_model() -> None:
    assert_no_vanishing_gradients(_mlp(nn.ReLU, 3))


def test_fails_readably_on_a_deep_sigmoid_model() -> None:
    with pytest.raises(AssertionError) as info:
        assert_no_vanishing_gradients(_mlp(nn.Sigmoid, 12))
    text = str(info.value)
    assert "GL101" in text and "help:" in text and "gradient (log10, relative)" in text
