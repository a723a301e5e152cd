"""How well estimates agree with measurements: rank correlation, errors, classification scores.

Plain Python (no numpy/scipy): used by ``--verify`` and by ``bench/accuracy.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def ranks(xs: Sequence[float]) -> list[float]:
    """1-based ranks; ties get the average of the ranks they span."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (None when either side is constant or too short)."""
    return pearson(ranks(xs), ranks(ys))


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count 1/2)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    r = ranks(list(pos) + list(neg))
    rank_sum = sum(r[: len(pos)])
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def f1(predicted: Sequence[bool], labels: Sequence[bool]) -> float | None:
    tp = sum(1 for p, y in zip(predicted, labels, strict=True) if p and y)
    fp = sum(1 for p, y in zip(predicted, labels, strict=True) if p and not y)
    fn = sum(1 for p, y in zip(predicted, labels, strict=True) if y and not p)
    if tp + fp + fn == 0:
        return None
    return 2 * tp / (2 * tp + fp + fn)


@dataclass(frozen=True)
class Agreement:
    """Predicted vs measured log10 values of the same layers."""

    n: int
    spearman: float | None
    mean_error: float
    max_error: float


def agreement(predicted: Sequence[float], measured: Sequence[float]) -> Agreement:
    errors = [abs(p - m) for p, m in zip(predicted, measured, strict=True)]
    return Agreement(len(errors), spearman(predicted, measured),
                     sum(errors) / len(errors) if errors else 0.0, max(errors, default=0.0))
