"""``--verify``: measure each layer's weight gradient with autograd and set it beside the
estimate, so a user can see for their own model how far to trust the numbers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from gradlint.core.graph import InputSpec
from gradlint.core.values import LayerEstimate, Verification
from gradlint.verify.agreement import agreement
from gradlint.verify.measure import measure_gradients

BATCH = 16
SEEDS = (0, 1, 2)


def _draw(specs: Sequence[InputSpec], batch: int) -> tuple[torch.Tensor, ...]:
    out = []
    for s in specs:
        shape = (batch, *s.shape[1:])
        dtype = getattr(torch, s.dtype, torch.float32)
        if s.high is not None:
            out.append(torch.randint(0, max(s.high, 1), shape, dtype=dtype))
        else:
            out.append(torch.randn(*shape, dtype=dtype))
    return tuple(out)


def verify_model(model: nn.Module, specs: Sequence[InputSpec],
                 layers: Sequence[LayerEstimate], batch: int = BATCH,
                 seeds: Sequence[int] = SEEDS) -> Verification:
    """Measure at init under the protocol of docs/design.md ("Ground truth"); a model that
    cannot run says why."""
    if any(p.device.type == "meta" for p in model.parameters()):
        return Verification({}, tuple(seeds), batch,
                            error="built on the meta device: there are no weights to measure")
    if not specs:
        return Verification({}, tuple(seeds), batch, error="no example input to run the model on")
    try:
        m = measure_gradients(model, lambda b: _draw(specs, b), batch=batch, seeds=seeds)
    except Exception as exc:  # noqa: BLE001 - the user's model failed to run
        return Verification({}, tuple(seeds), batch,
                            error=f"running the model failed: {type(exc).__name__}: {exc}")
    probe = Verification(m.log10_grad)
    pred, meas = [], []
    for le in layers:
        mr = probe.measured_relative(le.module)
        if le.log10_relative is not None and mr is not None and not le.frozen:
            pred.append(le.log10_relative)
            meas.append(mr)
    stats = agreement(pred, meas)
    return Verification(m.log10_grad, tuple(seeds), batch, m.per_example, stats.n,
                        stats.spearman, stats.mean_error if stats.n else None,
                        stats.max_error if stats.n else None)
