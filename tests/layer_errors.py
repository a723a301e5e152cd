"""The estimate of each layer against autograd, for tests of one estimator correction."""

from __future__ import annotations

import torch
import torch.nn as nn

from gradlint.core.graph import InputSpec
from gradlint.run.check_file import check_model
from gradlint.verify.compare import verify_model


def layer_errors(model: nn.Module, shape: tuple[int, ...], batch: int = 8,
                 seeds: tuple[int, ...] = (0, 1),
                 extra: tuple[tuple[int, ...], ...] = ()) -> dict[str, float]:
    """Estimated minus measured log10 weight-gradient RMS of each layer, both relative to the
    model's largest (``--verify``'s protocol), for inputs of ``shape`` (and of ``extra``'s
    shapes, forward's further arguments)."""
    torch.manual_seed(0)
    shapes = (shape, *extra)
    report = check_model(model, tuple(torch.randn(*s) for s in shapes))
    check = verify_model(model, tuple(InputSpec(s, "float32") for s in shapes), report.layers,
                         batch=batch, seeds=seeds)
    assert check.error is None
    found = {}
    for le in report.layers:
        measured = check.measured_relative(le.module)
        if le.log10_relative is not None and measured is not None:
            found[le.module] = le.log10_relative - measured
    return found
