"""The estimate of each layer against autograd, for tests of one estimator correction."""

from __future__ import annotations

import torch
import torch.nn as nn

from gradlint.core.graph import InputSpec
from gradlint.run.check_file import check_model
from gradlint.verify.compare import verify_model


def layer_errors(model: nn.Module, shape: tuple[int, ...], batch: int = 8,
                 seeds: tuple[int, ...] = (0, 1)) -> dict[str, float]:
    """Estimated minus measured log10 weight-gradient RMS of each layer, both relative to the
    model's largest (``--verify``'s protocol), for inputs of ``shape``."""
    torch.manual_seed(0)
    report = check_model(model, torch.randn(*shape))
    check = verify_model(model, (InputSpec(shape, "float32"),), report.layers, batch=batch,
                         seeds=seeds)
    assert check.error is None
    found = {}
    for le in report.layers:
        measured = check.measured_relative(le.module)
        if le.log10_relative is not None and measured is not None:
            found[le.module] = le.log10_relative - measured
    return found
