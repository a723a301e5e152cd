"""The fork server and the process that checks one file: nothing one file does reaches another.

The server imports torch and gradlint once, then forks a fresh child for every file; the child
imports the user's file, builds, traces, estimates, runs the rules, sends the result and exits.
So no Python, torch, fd, signal, cwd or environment state of one file can reach the next: each
child starts from the server's pristine state. The server never runs user code.

Each child runs in a session of its own (the parent kills its group on a timeout), with stdout
and stderr on a capture file of its own (nothing the user prints reaches gradlint's output;
faulthandler writes a crash's, or on SIGUSR1 a hang's, stack there for the parent to locate),
an address-space limit (``--max-memory``, gradlint/run/memory.py), and as a subreaper: whatever its
user code started, even in a new session or daemonized, stays its descendant and is killed when
the file is done. The server is a subreaper too, dies with the parent (PR_SET_PDEATHSIG) and on
its way out kills every process below it.
"""

from __future__ import annotations

import ctypes
import faulthandler
import gc
import os
import resource
import signal
import socket
import sys
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
# imports a file may need that cost ~1 s (the export fallback's torch._dynamo): once a file's
# process has imported one, the server imports it too, so later files start with it
PRELOAD = ("torch._dynamo",)
_LIMIT = 0  # the address-space limit in force in a child, for the out-of-memory message
_BUDGET: int | None = None  # parameter bytes above which models are built on meta


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: no subreaper, no death signal
        pass


def _limit_memory(limit: int) -> int:
    """Cap the address space (0: leave it); the limit in force, lowered to a hard limit the
    user's shell already set."""
    if limit > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit


# ------------------------------------------------------------------------------ process trees


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


def _reap() -> list[tuple[int, int]]:
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


# ------------------------------------------------------------------------------ one file


def _run(conn: Connection, index: int, path: str, names: tuple[str, ...], options: Any
         ) -> tuple[list[Any], list[Any]]:
    from gradlint.lint.registry import use_config_rules
    from gradlint.run.check_file import analyse_file

    def progress(what: str, where: Any) -> None:
        conn.send(("progress", index, what, where))

    try:
        use_config_rules(options.config)  # extend-rules: the parent loaded them too
        return analyse_file(path, names, options, progress, _BUDGET)
    except MemoryError:
        from gradlint.run.memory import gib

        return [], [_failure(path, "ran out of memory (the worker's address-space limit is "
                             f"{gib(_LIMIT)}; raise it with --max-memory)")]
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... from user code
        from gradlint.load.targets import _describe, _user_location

        if options.debug:
            traceback.print_exc()
        return [], [_failure(path, f"user code raised {_describe(exc)} while {path} was being "
                             "checked", _user_location(exc, path))]


def _failure(path: str, message: str, loc: Any = None) -> Any:
    from gradlint.core.values import Location
    from gradlint.lint.registry import diagnostic

    return diagnostic("GL905", message, loc or Location(path, 1))


def _child(sock: socket.socket, limit: int, working_set: Runs | None) -> None:
    """A process forked ahead of its file: it copies the pages a check writes (``working_set``;
    None: unknown, a tiny check instead), waits for the job on a socket of its own, checks that
    one file and exits; never returns."""
    global _LIMIT
    try:
        os.setsid()
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        import torch

        # after a fork torch rebuilds its thread pool lazily; autograd's device threads
        # (--verify's backward) raced to do it and one in ~30 runs aborted ("Invalid thread
        # pool!"): build it here, before any thread exists
        torch.set_num_threads(1)
        if working_set is None or not _populate(working_set):  # while the previous file is
            _touch()  # being checked
        try:
            with Connection(os.dup(sock.fileno())) as handed:
                job = handed.recv()
            _, (conn_fd, capture_fd), _, _ = socket.recv_fds(sock, 1, 2)
        except (EOFError, OSError, ValueError):  # the server left before a file came
            return
        sock.close()
        os.dup2(capture_fd, 1)
        os.dup2(capture_fd, 2)
        os.close(capture_fd)
        _, index, path, names, options, cwd, env = job
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [path]  # argparse at import sees the file, not the worker's arguments
        _LIMIT = _limit_memory(limit)
        conn = Connection(conn_fd)
        result = _run(conn, index, path, names, options)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(("done", index, result, tuple(m for m in PRELOAD if m in sys.modules)))
    finally:
        try:
            kill_below(os.getpid())  # whatever the user's code started ends with the file
        finally:
            os._exit(0)


class _Spare:
    """The next file's process, forked before the file comes: forking a process with torch
    loaded takes ~20-30 ms, which then overlaps the previous file's check."""

    def __init__(self, limit: int, working_set: Runs | None, inherited: tuple[Any, ...]
                 ) -> None:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            for held in inherited:  # the server's control socket is not the child's
                held.close()
            _child(theirs, limit, working_set)
        theirs.close()
        self.pid, self.sock = pid, ours

    def hand(self, job: tuple[Any, ...], fds: list[int]) -> None:
        with Connection(os.dup(self.sock.fileno())) as conn:
            conn.send(job)
        socket.send_fds(self.sock, [b"F"], fds)
        self.sock.close()


# ------------------------------------------------------------------------------ the server


class _Leave(BaseException):
    """SIGTERM/SIGHUP to the server: the parent is gone or wants everything stopped."""


def _leave(signum: int, frame: Any) -> None:
    raise _Leave(signum)


_WARM_UP = """
import torch
import torch.nn as nn


class WarmUp(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.acts = nn.ModuleList([nn.ReLU(), nn.GELU(), nn.Tanh(), nn.Sigmoid(), nn.SiLU()])
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        h = self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1)
        h = self.norm(self.fc(h))
        for act in self.acts:
            h = h + act(h)
        return self.head(h)
"""


def _touch() -> None:
    """A spare's warm-up while it waits, where pages cannot be populated (not Linux >= 5.14):
    a tiny check faults in most pages a check writes."""
    import torch.nn as nn

    from gradlint.run.check_file import check_model

    check_model(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)))


# ------------------------------------------------------------------------------ working set
# A fresh fork shares every page with the server; the first write to one (a reference count, an
# allocator's free list) copies it, ~4-6 us a page on a virtual machine, and a check writes
# ~3,000 of them: ~15 ms per file, more than the check itself. A scout child checks the warm-up
# model once and reports which of the server's pages it wrote; each spare copies those pages
# with one madvise per run while it waits for its file (on a core the running check leaves
# free), so the check itself faults on a few hundred pages only.

_MADV_POPULATE_WRITE = 23  # Linux 5.14: write-fault a range without writing to it
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
Runs = list[tuple[int, int]]  # (start address, bytes)


def _private_writable() -> list[tuple[int, int]]:
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

    ranges = _private_writable()
    before = _pagemap(ranges)
    _warm_up()
    runs = _written_pages(ranges, before)
    data = array.array("Q", [len(runs), *(n for run in runs for n in run)]).tobytes()
    while data:
        data = data[os.write(out, data):]


class _Scouting:
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


def _populate(runs: Runs) -> bool:
    """Copy the pages of ``runs`` into this process now (False: the kernel cannot)."""
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return False
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for start, size in runs:
        if madvise(start, size, _MADV_POPULATE_WRITE) != 0 and ctypes.get_errno() == 22:
            return False  # EINVAL: no MADV_POPULATE_WRITE (other errors: a run gone since)
    return True


def _warm_up() -> None:
    """Check a small model file once, so that each child starts with what a first check loads
    lazily (numpy.random for the seeds, the quadrature grids, source lines of torch's files
    for construction sites) instead of paying ~0.1 s for it per file. sys.path and the
    module table are put back as they were."""
    import tempfile

    from gradlint.core.options import Options
    from gradlint.run.check_file import analyse_file

    path, modules = list(sys.path), set(sys.modules)
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "warm_up.py")
        with open(model, "w", encoding="utf-8") as f:
            f.write(_WARM_UP)
        analyse_file(model, (), Options())
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if name.startswith("gradlint_target_"):
            del sys.modules[name]


def _no_threads() -> None:
    """A process that forks must not run threads (a lock held at the fork stays held in the
    child): torch.fx's Interpreter makes a tqdm bar, whose first use starts a monitor thread."""
    try:
        import tqdm
    except ImportError:
        return
    tqdm.tqdm.monitor_interval = 0


def serve(control: socket.socket, max_memory: int | None, jobs: int, warm: bool) -> None:
    """Fork one child per job until the parent closes the control socket. ``warm``: more than
    one file will come, so warm up first and scout the pages a check writes (for one file
    that is ~0.3 s its own process would pay anyway); a cold server warms up at its second.

    The memory limit is measured against what the imports reserved (gradlint/run/memory.py); a
    limit below that answers ("too-small", limit, footprint) and the server leaves."""
    global _BUDGET
    import torch  # pay the import once, before any job's clock starts

    # One thread: gradlint's tensors are small (moments, one forward pass for shapes), and on a
    # busy machine (CI, other hooks, --jobs workers) torch's spinning thread pool made the same
    # lint 5-8x slower (bench/speed.py); on an idle one a second thread saves little.
    torch.set_num_threads(1)

    import gradlint.run.check_file  # noqa: F401
    from gradlint.run import memory

    _no_threads()
    conn = Connection(os.dup(control.fileno()))
    footprint = memory.address_space()
    limit = memory.worker_limit(max_memory, jobs, footprint)
    if limit and limit < memory.floor(footprint):
        conn.send(("too-small", limit, footprint))
        return
    _BUDGET = memory.parameter_budget(limit, footprint)
    if warm:
        _warm_up()
    gc.collect()
    gc.freeze()  # the children share these pages: keep the collector from touching them
    conn.send(("ready",))
    handed = 0
    running: dict[int, int] = {}  # pid -> job index
    # a spare per file checked at once (up to the cores): with one, a second file at once
    # waited for its fork, and --jobs 2 was no faster than --jobs 1
    spares: deque[_Spare] = deque()
    width = max(1, min(jobs + 1, os.cpu_count() or 1))
    # the first spares prepare nothing (their files come at once); later ones copy the pages
    # the scout reports (None: no /proc/self/pagemap, a tiny check instead)
    working_set: Runs | None = []
    scouting: _Scouting | None = None

    def held() -> tuple[Any, ...]:  # the server's fds a new child closes
        return (control, conn, *(s.sock for s in spares))

    def fork_spares() -> None:
        while len(spares) < width:
            spares.append(_Spare(limit, working_set, held()))

    def scout() -> _Scouting | None:
        nonlocal working_set
        if os.path.exists("/proc/self/pagemap"):
            return _Scouting(held())
        working_set = None
        return None

    def renew() -> None:  # the server's memory changed: new spares, a new scout
        nonlocal scouting
        while spares:  # a retired spare sees EOF and leaves
            spares.popleft().sock.close()
        fork_spares()
        if scouting is not None:
            scouting.close()
        scouting = scout() if warm else None

    fork_spares()
    scouting = scout() if warm else None
    while True:
        watched: list[Any] = [conn] if scouting is None else [conn, scouting.fd]
        ready = wait(watched, timeout=0.5)
        if scouting is not None and scouting.fd in ready:
            runs = scouting.read()
            if runs is not None:
                working_set, scouting = runs or None, None
        if conn in ready:
            try:
                job = conn.recv()
                if job[0] == "preload":
                    _preload(job[1])
                    renew()
                    continue
                _, fds, _, _ = socket.recv_fds(control, 1, 2)
            except (EOFError, OSError):
                return
            if handed and not warm:
                warm = True
                _warm_up()
                gc.collect()
                gc.freeze()
                renew()
            handed += 1
            spare = spares.popleft()
            try:
                spare.hand(job, fds)
            except OSError:  # the spare died (killed from outside): fork one now
                spare.sock.close()
                spare = _Spare(limit, working_set, held())
                spare.hand(job, fds)
            for fd in fds:
                os.close(fd)
            running[spare.pid] = job[1]
            conn.send(("forked", job[1], spare.pid))
            fork_spares()
        ended = _reap()
        for pid, code in ended:
            if pid in running:
                conn.send(("exited", running.pop(pid), code))
        if ended:  # what a finished or killed child left behind came back to us (a subreaper)
            keep = {*running, *(s.pid for s in spares)}
            if scouting is not None:
                keep.add(scouting.pid)
            kill_below(os.getpid(), keep=frozenset(keep))


def _preload(names: tuple[str, ...]) -> None:
    """Import what a file's process needed (``PRELOAD``), so that later spares have it."""
    import importlib

    for name in names:
        if name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - each file's process will import it then
                pass
    _no_threads()
    gc.collect()
    gc.freeze()


def main(argv: list[str]) -> None:
    """``argv``: the control socket's fd, ``--max-memory`` in bytes ("default" or 0 for none),
    ``--jobs``, the parent's pid and "warm" when more than one file will come."""
    fd, jobs, parent = int(argv[0]), int(argv[2]), int(argv[3])
    # a process that forks must not run threads: OpenBLAS (numpy) starts one per core at load
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    max_memory = None if argv[1] == "default" else int(argv[1])
    sys.dont_write_bytecode = True  # no __pycache__ in the user's tree
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _leave)
    signal.signal(signal.SIGHUP, _leave)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    try:
        if os.getppid() == parent:  # else the parent died before the death signal was set
            serve(socket.socket(fileno=fd), max_memory, jobs, argv[4:5] == ["warm"])
    except _Leave:
        pass
    except BaseException:  # gradlint's own bug: say it where the parent shows it
        traceback.print_exc()
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kill_below(os.getpid())
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip interpreter teardown: torch's atexit hooks are not needed
