"""``log10_update``: the update ratio at init, weight-gradient RMS / weight RMS (informational;
GL101 judges the gradient, docs/output.md)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from gradlint.run.check_file import check_model


def test_update_ratio_is_gradient_over_weight_rms() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    nn.init.zeros_(model[0].weight)  # a zero weight has no ratio (its gradient is not zero)
    report = check_model(model, torch.randn(4, 64))
    params = dict(model.named_parameters())
    for le in report.layers:
        w = params[f"{le.module}.weight"]
        if le.module == "0":
            assert le.log10_grad is not None and le.log10_update is None
            continue
        assert le.log10_grad is not None and le.log10_update is not None
        rms = math.log10(w.detach().pow(2).mean().sqrt().item())
        assert abs(le.log10_update - (le.log10_grad - rms)) < 1e-6
