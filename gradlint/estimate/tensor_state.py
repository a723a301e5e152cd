"""What the estimate carries per tensor (``Moments``) and what an op entry returns (``Step``).

Per tensor entry: the mean M, the second moment P and the part of P shared across the batch S
(per-unit means, what BatchNorm subtracts). Every op entry (gradlint.estimate.op_table) reads
its inputs' records and writes one for its output, so a new per-tensor quantity is one more
field here, with a default: entries that build their record with ``Moments(...)`` get the
default, entries that hand their input's record on (views, opaque ops) keep its value, and only
the entries that change the quantity are rewritten - plus the hot paths' ``make_moments``
calls, which skip the constructor and must pass every field (tests/estimate/test_scaling.py
checks).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

NEG_INF = float("-inf")


class Moments(NamedTuple):  # a tuple: built ~3 times per node, the estimate's hottest object
    """M, P and S per entry; S is NaN throughout a graph where nothing reads it (see
    ``op_table.graph_reads_shared``): the estimate then skips the activations' batch-shared
    moments."""

    mean: float
    second: float
    shared: float

    @property
    def var(self) -> float:
        return max(self.second - self.mean * self.mean, 0.0)


class Step(NamedTuple):
    """What one node does: its output moments and log gain of r per input (natural log of
    r_in / r_out, r the mean squared gradient per entry); ``gate``: a multiplier that may close
    the branch (GL106)."""

    out: Moments
    log_gains: tuple[float, ...]
    gate: bool = False


# NamedTuple's own constructor is a Python function (~0.2 us); these build the same tuples
# in C (~0.1 us), for the two or three a node of a deep stack makes
make_moments = functools.partial(tuple.__new__, Moments)
make_step = functools.partial(tuple.__new__, Step)
# what an op with no input sees (unit variance, zero mean)
NO_INPUT = Moments(0.0, 1.0, 0.0)


def log_or_neg_inf(x: float) -> float:
    """Natural log, -inf for 0 (no gradient) and below."""
    return math.log(x) if x > 0 else NEG_INF


def prod(xs: tuple[int, ...] | list[int]) -> int:
    n = 1
    for x in xs:
        n *= int(x)
    return n


_exp, _ln = math.exp, math.log


def logaddexp(a: float, b: float) -> float:
    """log(e^a + e^b), exact at -inf (no gradient) on either side (``max`` spelled out and
    the math functions bound: the backward sweep calls this per edge, up to three times)."""
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = b if b > a else a  # max(a, b), NaN included
    return m + _ln(_exp(a - m) + _exp(b - m))
