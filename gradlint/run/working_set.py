"""The pages a check writes, copied ahead of each file.

A fresh fork shares every page with the server; the first write to one (a reference count, an
allocator's free list) copies it, ~4-6 us a page on a virtual machine, and a check writes
~3,000 of them: ~15 ms per file, more than the check itself. A scout child checks the warm-up
model once and reports which of the server's pages it wrote; each spare copies those pages
with one madvise per run while it waits for its file (on a core the running check leaves
free), so the check itself faults on a few hundred pages only.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from gradlint.run.warm_up import warm_up

_MADV_POPULATE_WRITE = 23  # Linux 5.14: write-fault a range without writing to it
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
Runs = list[tuple[int, int]]  # (start address, bytes)


def private_writable() -> list[tuple[int, int]]:
    """The (start, end) of this process's private writable mappings, from /proc/self/maps."""
    found = []
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            perms = fields[1]
            name = fields[5].strip() if len(fields) > 5 else ""
            if perms[1] == "w" and perms[3] == "p" and not name.startswith("[v"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                found.append((start, end))
    return found


def _pagemap(ranges: list[tuple[int, int]]) -> list[Any]:
    """The pagemap entries (numpy uint64 arrays) of each range."""
    import numpy as np

    entries = []
    with open("/proc/self/pagemap", "rb") as pagemap:
        for start, end in ranges:
            pagemap.seek(start // _PAGE * 8)
            entries.append(np.frombuffer(pagemap.read((end - start) // _PAGE * 8), np.uint64))
    return entries


def _written_pages(ranges: list[tuple[int, int]], before: list[Any]) -> Runs:
    """Runs of pages present before (shared with the server) that are now this process's own
    copies (pagemap bit 56, exclusively mapped)."""
    import numpy as np

    runs: Runs = []
    for (start, _), old, new in zip(ranges, before, _pagemap(ranges), strict=True):
        present = (old >> np.uint64(63)) & np.uint64(1)
        own = (new[: len(old)] >> np.uint64(56)) & np.uint64(1)
        mask = np.concatenate(([0], (present & own).astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(mask))
        runs.extend((start + int(a) * _PAGE, int(b - a) * _PAGE)
                    for a, b in zip(edges[::2], edges[1::2], strict=True))
    return runs


def _scout(out: int) -> None:
    """In a child of the server: check the warm-up model and write to ``out`` the runs of the
    server's pages that the check copied (native-endian start, length pairs)."""
    import array

    ranges = private_writable()
    before = _pagemap(ranges)
    warm_up()
    runs = _written_pages(ranges, before)
    data = array.array("Q", [len(runs), *(n for run in runs for n in run)]).tobytes()
    while data:
        data = data[os.write(out, data):]


class Scouting:
    """A scout child forked by the server, and what it has reported so far."""

    def __init__(self, inherited: tuple[Any, ...]) -> None:
        ours, theirs = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(ours)
                for held in inherited:
                    held.close()
                os.nice(19)  # it only helps later files: never take a core from a check
                _scout(theirs)
                code = 0
            finally:
                os._exit(code)
        os.close(theirs)
        os.set_blocking(ours, False)
        self.pid, self.fd, self.data = pid, ours, bytearray()

    def read(self) -> Runs | None:
        """Read what is there; the runs once the scout is done (empty if it failed). The
        server's loop reaps the scout with every other child."""
        import array

        while True:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                return None
            if not chunk:
                break
            self.data += chunk
        self.close()
        flat = array.array("Q")
        flat.frombytes(bytes(self.data[: len(self.data) // 8 * 8]))
        if not flat or len(flat) != 1 + 2 * flat[0]:  # the scout failed on its way
            return []
        return list(zip(flat[1::2], flat[2::2], strict=True))

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def libc_madvise() -> Any:
    """libc's ``madvise(addr, length, advice)``, errno kept (None: no such libc call)."""
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return madvise


def populate(runs: Runs) -> bool:
    """Copy the pages of ``runs`` into this process now (False: the kernel cannot)."""
    madvise = libc_madvise()
    if madvise is None:
        return False
    for start, size in runs:
        if madvise(start, size, _MADV_POPULATE_WRITE) != 0 and ctypes.get_errno() == 22:
            return False  # EINVAL: no MADV_POPULATE_WRITE (other errors: a run gone since)
    return True
