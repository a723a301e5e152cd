"""A worker's address-space limit (``--max-memory``) and the model-size budget it implies.

The limit is on address space (``RLIMIT_AS``), and what importing torch reserves there depends
on the build: ~0.7 GiB for the CPU wheel, ~3.2 GiB for the CUDA build (which reserves address
space it never touches on a CPU machine). So nothing here is a constant: the worker measures its
own footprint once torch and gradlint are imported, and the default limit, the smallest
accepted ``--max-memory`` and the parameter budget are all that footprint plus a share.
Torch-free: the parent formats the messages.
"""

from __future__ import annotations

import os

# What a check needs beyond the worker's imports: torch._dynamo and transformers for the export
# fallback reserve ~0.6 GiB more on torch 2.14 (measured), plus a small model and its trace.
HEADROOM = 1 << 30
RAM_SHARE = 0.8  # of physical memory, split over --jobs workers, by default


class LimitTooSmall(Exception):
    """``--max-memory`` is below what a worker needs to import torch and check a small model."""

    def __init__(self, requested: int, footprint: int) -> None:
        self.requested, self.footprint = requested, footprint
        super().__init__(
            f"--max-memory {gib(requested)} is too small here: importing torch and gradlint "
            f"reserves {gib(footprint)} of address space in a worker on this machine, so the "
            f"smallest limit that can check a model is {gib(floor(footprint))} "
            f"(use e.g. --max-memory {-(-floor(footprint) // (1 << 30))}G, or 0 for no limit)")


def gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n else "none"


def address_space() -> int:
    """This process's address space in bytes (VmSize), 0 where /proc does not tell."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def floor(footprint: int) -> int:
    """The smallest limit a worker with this footprint accepts."""
    return footprint + HEADROOM


def worker_limit(max_memory: int | None, jobs: int, footprint: int) -> int:
    """The address-space limit in bytes (0: none) for ``--max-memory`` (None: the default, 0:
    none): by default the footprint plus an even share of 80% of RAM, at least ``HEADROOM``."""
    if max_memory is not None:
        return max_memory
    ram = physical_memory()
    if not ram:
        return 0
    return footprint + max(HEADROOM, int(ram * RAM_SHARE) // max(jobs, 1))


def check_limit(limit: int, footprint: int) -> None:
    if limit and limit < floor(footprint):
        raise LimitTooSmall(limit, footprint)


def parameter_budget(limit: int, footprint: int) -> int | None:
    """Parameter bytes above which a model is built on the meta device: a quarter of what the
    limit leaves beyond the footprint (None: no limit, the loader's own default applies)."""
    if not limit:
        return None
    return max(limit - footprint, 0) // 4 or None
