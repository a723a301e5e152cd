"""``--verify``: measure each layer's weight gradient with autograd and set it beside the
estimate, so a user can see for their own model how far to trust the numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from gradlint.core.graph import InputSpec
from gradlint.core.input_specs import HeldArgument
from gradlint.core.values import LayerEstimate, Verification
from gradlint.verify.agreement import agreement
from gradlint.verify.measure import Measurement, measure_gradients

BATCH = 16
SEEDS = (0, 1, 2)


def _draw(specs: Sequence[InputSpec], batch: int | None) -> tuple[Any, ...]:
    """Fresh example inputs: each tensor drawn anew, every other argument (a HeldArgument: a
    tuple of states, None, an int) as the user gave it, its tensors drawn anew too. ``batch``
    replaces the first size of each top-level tensor and, inside a held argument, the size
    equal to the example's batch (an LSTM's ``h`` is ``(layers, batch, hidden)``); None keeps
    the example's shapes."""
    given = next((s.shape[0] for s in specs if not isinstance(s, HeldArgument) and s.shape),
                 None)

    def tensor(s: InputSpec, top: bool) -> torch.Tensor:
        shape = list(s.shape)
        if batch is not None and shape:
            at = 0 if top else next((i for i, n in enumerate(shape) if n == given), None)
            if at is not None:
                shape[at] = batch
        dtype = getattr(torch, s.dtype, torch.float32)
        if s.high is not None:
            return torch.randint(0, max(s.high, 1), tuple(shape), dtype=dtype)
        return torch.randn(*shape, dtype=dtype)

    def held(value: Any) -> Any:
        if isinstance(value, InputSpec):
            return tensor(value, False)
        if isinstance(value, (tuple, list)):
            items = [held(v) for v in value]
            return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
        if isinstance(value, dict):
            return {k: held(v) for k, v in value.items()}
        return value

    return tuple(held(s.value) if isinstance(s, HeldArgument) else tensor(s, True)
                 for s in specs)


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
        m, batch = _measure(model, specs, batch, seeds)
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


def _measure(model: nn.Module, specs: Sequence[InputSpec], batch: int, seeds: Sequence[int]
             ) -> tuple[Measurement, int]:
    """Measure at ``batch``; where a held argument's batch size was guessed wrong (it did not
    run), at the example's own batch instead. Returns the batch measured at."""
    try:
        return measure_gradients(model, lambda b: _draw(specs, b), batch=batch,
                                 seeds=seeds), batch
    except Exception:
        own = next((s.shape[0] for s in specs if not isinstance(s, HeldArgument) and s.shape),
                   None)
        if own is None or not any(isinstance(s, HeldArgument) for s in specs):
            raise
        return measure_gradients(model, lambda b: _draw(specs, None), batch=own,
                                 seeds=seeds), own
