"""Processes below ours, from ``/proc``: list them, reap them, kill them, and the two ``prctl``
settings that keep them below us (a subreaper, a death signal).

Both the fork server and each file's process are subreapers, so whatever user code started,
even in a new session or daemonized, comes back to them as an orphan and is killed here.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: no subreaper, no death signal
        pass


def die_with_parent(signum: int) -> None:
    """Have the kernel send ``signum`` to this process when its parent dies (PR_SET_PDEATHSIG)."""
    _prctl(_PR_SET_PDEATHSIG, signum)


def become_subreaper() -> None:
    """Orphans below this process come back to it, not to init (PR_SET_CHILD_SUBREAPER)."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process we can see (/proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rpartition(b")")[2].split()
                found[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    return found


def _children_of(pid: int) -> list[int]:
    """Direct children, from /proc/PID/task/*/children (a read per thread)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", "rb") as f:
                found.extend(int(c) for c in f.read().split())
    except (OSError, ValueError):  # gone meanwhile
        pass
    return found


def descendants(root: int) -> list[int]:
    """Every process below ``root``, parents before children: a few reads per process found
    where the kernel lists children, else one read per process on the machine."""
    if os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
        direct = _children_of
    else:
        children: dict[int, list[int]] = {}
        for pid, parent in _parents().items():
            children.setdefault(parent, []).append(pid)
        direct = lambda pid: children.get(pid, [])  # noqa: E731
    found: list[int] = []
    todo = list(direct(root))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(direct(pid))
    return found


def reap() -> list[tuple[int, int]]:
    """Collect every exited child: (pid, exit code; -N for signal N)."""
    done: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, os.waitstatus_to_exitcode(status)))


def kill_below(root: int, keep: frozenset[int] = frozenset()) -> None:
    """SIGKILL every process below ``root`` (a subreaper: orphans come back to it), except the
    subtrees of ``keep``, until none is left; stop first so nothing forks in between."""
    for _ in range(100):
        victims = descendants(root)
        if keep:
            kept = keep.union(*(descendants(pid) for pid in keep))
            victims = [pid for pid in victims if pid not in kept]
        if not victims:
            return
        for how in (signal.SIGSTOP, signal.SIGKILL):
            for pid in victims:
                try:
                    os.kill(pid, how)
                except (ProcessLookupError, PermissionError):
                    pass
        time.sleep(0.005)
        for pid in victims:  # ours once orphaned (we are a subreaper): collect them
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
