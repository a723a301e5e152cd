"""The fork server's memory in huge pages, so that a fork per file stays cheap.

Forking copies one page-table entry per page the server has written (~300 MB after importing
torch: ~75,000 entries, ~17 ms a fork on this kind of virtual machine), and a child's exit drops
them again (~20 ms). Backed by 2 MiB pages, the same memory is ~150 entries: ~3 ms a fork, ~5 ms
an exit. For a run of many files the server collapses its private memory into huge pages once
(``MADV_COLLAPSE``, Linux 6.1; ~0.4-1 s in all, which ~40 forks and exits pay back): torch's in
a thread while gradlint imports and warms up (``Background``), the rest a few MiB at a time
whenever no job waits, while the first files are checked. It marks nothing for huge pages:
memory the server or a file's process maps later is in 4 KiB pages, as without it (glibc's
``malloc.hugetlb`` would mark the heap, and a file's own tensors would then fault in with
direct compaction). A child's first write to a shared huge page splits it and copies 4 KiB, as
before.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

from gradlint.run.working_set import libc_madvise, private_writable

HUGE_PAGES_FROM = 40  # files in a run from which collapsing pays for itself
_MADV_COLLAPSE = 25
_HUGE = 2 << 20
_STEP = 8 << 20  # ~10 ms of collapsing between two looks at the job queue


def collapse() -> bool:
    """Back this process's private writable memory with huge pages where the kernel can
    (False: it cannot at all: no MADV_COLLAPSE, or transparent huge pages are off)."""
    done = False
    for step in collapsing():
        done = done or step
    return done


class Background:
    """``collapsing`` in a thread from now on, for the server to take over before it forks
    (no thread may run at a fork): torch's ~250 MiB go to huge pages on the other core while
    gradlint imports and warms up, instead of between the first files' forks (at --jobs 2,
    200 small files: page-table copying in fork 9% of all CPU samples before, 3.5% after)."""

    def __init__(self) -> None:
        self.steps = collapsing()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="gradlint-huge-pages",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for _ in self.steps:
            if self.stop.is_set():
                return

    def take_over(self) -> Iterator[bool]:
        """Stop the thread (within one step) and return the steps left, followed by a pass
        over what was mapped since (a pass over collapsed memory costs ~2 ms)."""
        self.stop.set()
        self.thread.join()
        return itertools.chain(self.steps, collapsing())


def collapsing(step: int = _STEP) -> Iterator[bool]:
    """``collapse`` a few MiB at a time (each ``next`` collapses up to ``step`` bytes, ~10 ms;
    True where the kernel collapsed some), so the fork server can do it between jobs while
    the first files are checked, instead of before them."""
    madvise = libc_madvise()
    if madvise is None:
        return
    for start, end in private_writable():
        first, last = -(-start // _HUGE) * _HUGE, end // _HUGE * _HUGE
        for at in range(first, last, step):
            yield madvise(at, min(step, last - at), _MADV_COLLAPSE) == 0
