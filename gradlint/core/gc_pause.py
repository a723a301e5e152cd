"""Pause Python's cyclic garbage collector around the estimate and the rules.

They build tens of thousands of small acyclic objects (moments, path states, layer rows) and
free them by reference counting; every 700 allocations the collector would still walk the
young objects, and now and then everything torch and the model keep alive (~10% of the
estimate's time on a 1,000-layer MLP). Nothing they build needs the cycle collector, so it
waits until they return.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def collector_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with the cyclic collector off (restored after, also when it raises; a
    caller that already paused it keeps it paused)."""

    @functools.wraps(fn)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        was_on = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_on:
                gc.enable()

    return paused
