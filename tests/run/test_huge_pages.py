"""The fork server's memory in huge pages (gradlint/run/huge_pages.py): collapsed where the
kernel can, and a child's writes still reach only the child."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

# both scripts: private anonymous memory written page by page (as arenas), and how much of
# this process's memory is in huge pages
MEMORY = """
import mmap, os, threading


def written(size):
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for at in range(0, size, 4096):
        memory[at] = 1
    return memory


def huge_kib():
    with open("/proc/self/smaps_rollup") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("AnonHugePages"))
"""

COLLAPSE = MEMORY + """
from gradlint.run.huge_pages import collapse

size = 16 << 20
memory = written(size)
before = huge_kib()
done = collapse()
after = huge_kib()
pid = os.fork()
if pid == 0:  # the child's write splits a shared huge page and copies 4 KiB of it
    memory[4096 * 700] = 7
    os._exit(0 if memory[4096 * 700] == 7 and memory[4096 * 701] == 1 else 3)
_, status = os.waitpid(pid, 0)
intact = all(memory[at] == 1 for at in range(0, size, 4096))
print(done, after - before, os.waitstatus_to_exitcode(status), intact)
"""


def _can_collapse() -> bool:
    """MADV_COLLAPSE needs Linux >= 6.1 and transparent huge pages not switched off."""
    enabled = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not enabled.exists() or "[never]" in enabled.read_text():
        return False
    major, minor = (int(x) for x in platform.release().split(".")[:2])
    return (major, minor) >= (6, 1)


def test_collapse_backs_memory_with_huge_pages_and_children_still_copy_on_write() -> None:
    proc = subprocess.run([sys.executable, "-c", COLLAPSE], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    done, grew, child, intact = proc.stdout.split()
    assert (child, intact) == ("0", "True")  # the child saw its write; the parent did not
    if _can_collapse():
        assert done == "True"
        assert int(grew) >= 8 << 10  # at least half of the 16 MiB is now in huge pages
    else:
        assert done == "False"


BACKGROUND = MEMORY + """
from gradlint.run.huge_pages import Background

size = 32 << 20
first = written(size)
before = huge_kib()
early = Background()
early.thread.join(60)  # let it finish what was mapped when it started
later = written(size)  # mapped since
in_thread = huge_kib() - before
rest = early.take_over()
threads = threading.active_count()  # 1: nothing runs beside the server at its next fork
for _ in rest:
    pass
print(in_thread, huge_kib() - before, threads)
"""


def test_background_collapse_stops_for_the_fork_and_the_rest_covers_later_memory() -> None:
    proc = subprocess.run([sys.executable, "-c", BACKGROUND], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    in_thread, in_all, threads = (int(x) for x in proc.stdout.split())
    assert threads == 1
    if _can_collapse():
        assert in_thread >= 16 << 10  # most of the first 32 MiB, in the thread
        assert in_all >= in_thread + (16 << 10)  # and the later 32 MiB, by the steps left
    else:
        assert in_thread == in_all == 0
