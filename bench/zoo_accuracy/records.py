"""One model's run: build, estimate with gradlint in-process, measure (cached), pair the layers.

A model that fails to build, trace or measure becomes a record with its error; nothing here
raises. The records are what the JSON beside the report holds, so later work can diff them.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import gradlint
from bench.zoo_accuracy import truth
from bench.zoo_accuracy.specs import ZooModel

# Q and K projections kept as modules of their own (fused qkv / in_proj / c_attn are not):
# BERT/RoBERTa/ViT ``query``/``key``, T5 ``q``/``k``, the others ``q_proj``/``k_proj``
QK_NAME = re.compile(r"(^|\.)(query|key|q|k|q_proj|k_proj)$")
QK_MODELS = ("hf/bert", "hf/roberta", "hf/t5", "hf/bart", "hf/llama", "hf/mistral",
             "hf/qwen2", "hf/phi", "hf/whisper", "hf/wav2vec2")
"""The issue's list of models that keep Q and K as separate modules (its Q/K target)."""


@dataclass
class LayerRecord:
    """One parameterized layer. ``status``: ``paired`` (both sides have a nonzero value: the
    layers every metric is over), ``unestimated`` (no estimate: inside an opaque block),
    ``estimated zero`` (gradlint says no gradient reaches it, autograd measures one),
    ``measured zero`` (autograd measures exactly 0: excluded), ``not measured`` (a tied
    weight the measurement counted under another module), ``frozen`` (excluded)."""

    module: str
    type: str
    status: str
    pred: float | None  # gradlint's log10_relative
    meas: float | None  # measured, relative to the model's largest measured layer
    confidence: str
    range: tuple[float, float] | None = None
    qk: bool = False
    low_reason: str | None = None  # gradlint's code for a low-confidence layer, where it has one

    @property
    def signed(self) -> float:
        """Estimate − measurement, decades (paired layers only)."""
        assert self.pred is not None and self.meas is not None
        return self.pred - self.meas

    @property
    def err(self) -> float:
        return abs(self.signed)

    @property
    def xy(self) -> tuple[float, float]:
        """(estimate, measurement) of a paired layer."""
        assert self.pred is not None and self.meas is not None
        return self.pred, self.meas


@dataclass
class ModelRecord:
    name: str
    family: str
    source: str
    input: str
    batch: int
    seed: int
    sick: bool = False
    params: int | None = None
    tracer: str | None = None
    per_example: bool | None = None
    chunk: int | None = None
    cached: bool | None = None
    measure_seconds: float | None = None  # what the measurement took when it was made
    estimate_seconds: float | None = None  # gradlint.check in this run
    seconds: float = 0.0  # this run, everything
    codes: list[str] = field(default_factory=list)
    fired: dict[str, list[str]] = field(default_factory=dict)  # GL101/GL103/GL104 -> modules
    not_reported: int = 0  # measured modules gradlint lists no layer for
    layers: list[LayerRecord] = field(default_factory=list)
    error: str | None = None
    stage: str | None = None  # where it failed: build | estimate | measure | pair

    @property
    def paired(self) -> list[LayerRecord]:
        return [la for la in self.layers if la.status == "paired"]


class Timeout(Exception):
    pass


class GradlintFailed(Exception):
    """gradlint did not check the model (status failed/skipped); the message is its own."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise Timeout in the main thread after ``seconds`` (checked between Python bytecodes, so
    a long torch kernel finishes first)."""
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise Timeout(f"took more than {seconds:.0f} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _error(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = (f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})"
             if tb and not isinstance(exc, GradlintFailed) else "")
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}{where}"


def cache_fields(spec: ZooModel, seed: int) -> dict[str, Any]:
    """What the ground truth depends on: the model and how it is built, the seed, the input,
    the batch, torch's and the model library's versions (not gradlint's)."""
    return {"model": spec.name, "build": spec.key, "seed": seed, "input": spec.input_desc,
            "batch": spec.batch, "torch": torch.__version__, "library": spec.library}


def run_model(spec: ZooModel, seed: int, cache: Path, timeout: float | None = None
              ) -> ModelRecord:
    rec = ModelRecord(spec.name, spec.family, spec.source, spec.input_desc, spec.batch, seed,
                      spec.sick)
    t0 = time.perf_counter()
    stage = "build"
    try:
        with deadline(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(seed)
            model = spec.build()
            rec.params = truth.n_params(model)
            torch.manual_seed(10_000 + seed)
            inputs = spec.inputs(spec.batch)

            stage = "estimate"
            te = time.perf_counter()
            report = gradlint.check(model, inputs=inputs)
            rec.estimate_seconds = time.perf_counter() - te
            rec.tracer = report.tracer
            rec.codes = [d.code for d in report.diagnostics]
            for d in report.diagnostics:
                if d.code in ("GL101", "GL103", "GL104"):
                    rec.fired.setdefault(d.code, []).append(d.module or d.target)
            if report.status != "ok":
                codes = ", ".join(sorted(set(rec.codes)))
                msg = next((d.message for d in report.diagnostics
                            if d.code.startswith("GL9")), "")
                raise GradlintFailed(f"status {report.status} ({codes}): {msg[:240]}")

            stage = "measure"
            t = truth.cached_measure(cache, spec.name, cache_fields(spec, seed),
                                     lambda: truth.measure(model, inputs, seed))
            rec.per_example, rec.chunk = t.per_example, t.chunk
            rec.cached, rec.measure_seconds = t.cached, t.seconds

            stage = "pair"
            pair(rec, report.layers, t)
    except BaseException as exc:  # noqa: BLE001 - recorded; only Ctrl-C stops the run
        if isinstance(exc, KeyboardInterrupt):
            raise
        rec.error, rec.stage = _error(exc), stage
    rec.seconds = time.perf_counter() - t0
    return rec


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def pair(rec: ModelRecord, layers: Any, t: truth.Truth) -> None:
    measured = t.relative()
    seen: set[str] = set()
    for le in layers:
        names = (le.module, *le.aliases)
        seen.update(names)
        meas = next((measured[n] for n in names if n in measured), None)
        rng = (float(le.range[0]), float(le.range[1])) if le.range is not None else None
        qk = bool(QK_NAME.search(le.module))
        if le.frozen:
            status = "frozen"
        elif not any(n in t.log10_grad for n in names):
            status = "not measured"  # a tied weight measured under another module's name
        elif meas is None:
            status = "measured zero"
        elif le.zero:
            status = "estimated zero"
        elif not _finite(le.log10_relative):
            status = "unestimated"
        else:
            status = "paired"
        rec.layers.append(LayerRecord(le.module, le.type, status,
                                      le.log10_relative if _finite(le.log10_relative) else None,
                                      meas, le.confidence, rng, qk,
                                      getattr(le, "low_reason", None)))
    rec.not_reported = sum(1 for k in measured if k not in seen)
