"""Ground truth for the zoo benchmark: ``gradlint.verify.measure``'s protocol, in chunks, cached.

The protocol is docs/design.md's ("Ground truth"): the model copied to float64, ``train()``,
dropout off; loss Σ_b ⟨g_b, y_b⟩ with g_b ~ N(0, I) on the primary output; per-layer RMS of the
main weight's gradient. Per-example gradients (``torch.func``) are taken ``chunk`` examples at a
time, so a model of 90 M parameters does not hold B copies of its gradient at once; a model
that mixes examples (BatchNorm in training: vmap cannot run it), or one too large for per-example
gradients here, gets the batch gradient of Σ_b ⟨g_b, y_b⟩ / √B instead, which has the same
expected square for independent examples. The record says which.

A measurement depends on the model, its seed, the input and the library versions, not on
gradlint: it is cached as JSON under ``cache_dir()`` (``$GRADLINT_BENCH_CACHE``, default
``~/.cache/gradlint-bench/zoo``), keyed by all of them, so estimator changes re-run only the
cheap side.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from gradlint.verify.measure import _float64, _main_params, per_example_grad, primary_tensor

PROTOCOL = "zoo-1"  # bump when the measurement itself changes: old cache entries are not read
ENV = "GRADLINT_BENCH_CACHE"
PER_EXAMPLE_BYTES = 1.5e9  # per-example gradients held at once (float64), sets the chunk
PER_EXAMPLE_MAX_PARAMS = 60_000_000  # above this: batch gradients × √B (one chunk would be 1)


def cache_dir(given: str | Path | None = None) -> Path:
    """``given``, else ``$GRADLINT_BENCH_CACHE``, else ``~/.cache/gradlint-bench/zoo``."""
    if given is not None:
        return Path(given).expanduser()
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "gradlint-bench" / "zoo"


@dataclass(frozen=True)
class Truth:
    """Measured log10 RMS main-weight gradient per module (None: exactly zero)."""

    log10_grad: dict[str, float | None]
    per_example: bool
    chunk: int  # examples per vmap call (0: batch gradients)
    seconds: float  # what the measurement took when it was made
    cached: bool = False  # read from the cache in this run

    def relative(self) -> dict[str, float]:
        """Nonzero layers relative to the model's largest measured layer."""
        vals = {k: v for k, v in self.log10_grad.items() if v is not None and math.isfinite(v)}
        top = max(vals.values(), default=0.0)
        return {k: v - top for k, v in vals.items()}


def cache_key(fields: dict[str, Any]) -> str:
    text = json.dumps({"protocol": PROTOCOL, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_path(folder: Path, name: str, fields: dict[str, Any]) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:80]
    return folder / f"{slug}-{cache_key(fields)}.json"


def load(path: Path) -> Truth | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Truth(doc["log10_grad"], doc["per_example"], doc["chunk"], doc["seconds"],
                     cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(path: Path, truth: Truth, fields: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"protocol": PROTOCOL, "key": fields,
           **{k: v for k, v in asdict(truth).items() if k != "cached"}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def cached_measure(folder: Path, name: str, fields: dict[str, Any],
                   measure: Callable[[], Truth]) -> Truth:
    """The cached measurement for ``fields`` (the cache key), else ``measure()``, stored."""
    path = cache_path(folder, name, fields)
    hit = load(path)
    if hit is not None:
        return hit
    truth = measure()
    save(path, truth, fields)
    return truth


# --------------------------------------------------------------------------------------------
# The measurement
# --------------------------------------------------------------------------------------------


def _no_dropout(m: nn.Module) -> None:
    """measure_gradients' ``p = 0`` on torch's dropout modules, and the same for the zoos'
    stochastic-depth / drop-path modules (torchvision ``StochasticDepth``, timm ``DropPath``),
    which are dropout of a residual branch."""
    for mod in m.modules():
        if isinstance(mod, nn.modules.dropout._DropoutNd):
            mod.p = 0.0
        elif "drop" in type(mod).__name__.lower() or type(mod).__name__ == "StochasticDepth":
            for attr in ("p", "drop_prob", "prob"):
                if isinstance(getattr(mod, attr, None), float):
                    setattr(mod, attr, 0.0)


def mixes_examples(m: nn.Module) -> bool:
    """BatchNorm in training normalizes over the batch: vmap refuses it (measure_gradients
    falls back to batch gradients after trying; here without paying for the try)."""
    return any(isinstance(mod, nn.modules.batchnorm._BatchNorm) for mod in m.modules())


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def measure(model: nn.Module, inputs: Sequence[Any], seed: int,
            chunk: int | None = None, force_batch: bool = False) -> Truth:
    """Measure ``model`` at init on ``inputs`` (forward's positional arguments, one batch,
    batch first); the output gradient g is drawn under ``seed``. ``chunk`` examples per vmap
    call (default: as many as PER_EXAMPLE_BYTES of float64 gradients allow)."""
    t0 = time.perf_counter()
    m = copy.deepcopy(model).to(torch.float64).train()
    _no_dropout(m)
    mains = _main_params(m)
    xs = [_float64(x) for x in inputs]
    batch = next(x.shape[0] for x in xs if isinstance(x, torch.Tensor))
    params = n_params(m)
    if chunk is None:
        chunk = int(max(1, min(batch, PER_EXAMPLE_BYTES // (8 * max(params, 1)))))
    torch.manual_seed(seed)
    sq: dict[str, float] | None = None
    if not (force_batch or mixes_examples(m) or params > PER_EXAMPLE_MAX_PARAMS):
        try:
            sq = _per_example_chunked(m, xs, mains, batch, chunk, seed)
        except Exception:  # noqa: BLE001 - vmap cannot run it: the batch path below
            sq = None
    per_example = sq is not None
    if sq is None:
        torch.manual_seed(seed)
        sq = _batch(m, xs, mains)
        chunk = 0
    return Truth({k: (0.5 * math.log10(v) if v > 0 else None) for k, v in sq.items()},
                 per_example, chunk, time.perf_counter() - t0)


def _slice(value: Any, lo: int, hi: int) -> Any:
    return value[lo:hi] if isinstance(value, torch.Tensor) else value


def _output_shape(m: nn.Module, xs: list[Any]) -> tuple[int, ...]:
    """The primary output's shape for one example (a no-grad forward of example 0)."""
    with torch.no_grad():
        return tuple(primary_tensor(m(*[_slice(x, 0, 1) for x in xs])).shape[1:])


def _per_example_chunked(m: nn.Module, xs: list[Any], mains: dict[str, str], batch: int,
                         chunk: int, seed: int) -> dict[str, float]:
    mapped = [i for i, x in enumerate(xs) if isinstance(x, torch.Tensor)]
    g = torch.randn(batch, *_output_shape(m, xs), dtype=torch.float64,
                    generator=torch.Generator().manual_seed(seed))
    params = {k: v.detach() for k, v in m.named_parameters()}
    wanted = {mod: p for mod, p in mains.items() if p in params}
    sums = dict.fromkeys(wanted, 0.0)
    per_grad = per_example_grad(m, xs, mapped)
    for lo in range(0, batch, chunk):
        hi = min(batch, lo + chunk)
        with warnings.catch_warnings():  # vmap's "no batching rule" performance notes
            warnings.simplefilter("ignore")
            grads = per_grad(params, tuple(xs[i][lo:hi] for i in mapped), g[lo:hi])
        for mod, p in wanted.items():
            sums[mod] += float((grads[p] ** 2).sum()) / grads[p][0].numel()
        del grads
    return {mod: s / batch for mod, s in sums.items()}


def _batch(m: nn.Module, xs: list[Any], mains: dict[str, str]) -> dict[str, float]:
    """Batch gradient of Σ_b ⟨g_b, y_b⟩ / √B (the examples are mixed: one pass)."""
    m.zero_grad(set_to_none=True)
    y = primary_tensor(m(*xs))
    g = torch.randn_like(y)
    ((y * g).sum() / math.sqrt(y.shape[0])).backward()
    named = dict(m.named_parameters())
    out: dict[str, float] = {}
    for mod, p in mains.items():
        grad = named[p].grad if p in named else None
        out[mod] = float((grad**2).mean()) if grad is not None else 0.0
    return out
