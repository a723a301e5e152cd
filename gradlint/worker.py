"""The fork server and the process that checks one file: nothing one file does reaches another.

The server imports torch and gradlint once, then forks a fresh child for every file; the child
imports the user's file, builds, traces, estimates, runs the rules, sends the result and exits.
So no Python, torch, fd, signal, cwd or environment state of one file can reach the next: each
child starts from the server's pristine state. The server never runs user code.

Each child runs in a session of its own (the parent kills its group on a timeout), with stdout
and stderr on a capture file of its own (nothing the user prints reaches gradlint's output;
faulthandler writes a crash's, or on SIGUSR1 a hang's, stack there for the parent to locate),
an address-space limit (``--max-memory``, gradlint/memory.py), and as a subreaper: whatever its
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
    from gradlint.analyse import analyse_file
    from gradlint.engine import use_config_rules

    def progress(what: str, where: Any) -> None:
        conn.send(("progress", index, what, where))

    try:
        use_config_rules(options.config)  # extend-rules: the parent loaded them too
        return analyse_file(path, names, options, progress, _BUDGET)
    except MemoryError:
        from gradlint.memory import gib

        return [], [_failure(path, "ran out of memory (the worker's address-space limit is "
                             f"{gib(_LIMIT)}; raise it with --max-memory)")]
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... from user code
        from gradlint.load import _describe, _user_location

        if options.debug:
            traceback.print_exc()
        return [], [_failure(path, f"user code raised {_describe(exc)} while {path} was being "
                             "checked", _user_location(exc, path))]


def _failure(path: str, message: str, loc: Any = None) -> Any:
    from gradlint.ftypes import Location
    from gradlint.pipeline import stage_diagnostic

    return stage_diagnostic("GL905", message, loc or Location(path, 1))


def _child(sock: socket.socket, limit: int) -> None:
    """A process forked ahead of its file: it waits for the job on a socket of its own, checks
    that one file and exits; never returns."""
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
        _touch()  # while the previous file is being checked
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

    def __init__(self, limit: int, inherited: tuple[Any, ...]) -> None:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            for held in inherited:  # the server's control socket is not the child's
                held.close()
            _child(theirs, limit)
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
    """A spare's warm-up while it waits: a fresh fork faults in each page a check touches
    (copy-on-write heap, library code); a tiny check first took a 200-file tree's per-file
    time from ~55 to ~44 ms (a warm reused process: ~22 ms; a heavier warm-up here ran past
    the previous file's check and cost more than it saved)."""
    import torch.nn as nn

    from gradlint.analyse import check_model

    check_model(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)))


def _warm_up() -> None:
    """Check a small model file once, so that each child starts with what a first check loads
    lazily (numpy.random for the seeds, the quadrature grids, source lines of torch's files
    for construction sites) instead of paying ~0.1 s for it per file. sys.path and the
    module table are put back as they were."""
    import tempfile

    from gradlint.analyse import analyse_file
    from gradlint.pipeline import Options

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


def serve(control: socket.socket, max_memory: int | None, jobs: int) -> None:
    """Fork one child per job until the parent closes the control socket.

    The memory limit is measured against what the imports reserved (gradlint/memory.py); a
    limit below that answers ("too-small", limit, footprint) and the server leaves."""
    global _BUDGET
    import torch  # pay the import once, before any job's clock starts

    # One thread: gradlint's tensors are small (moments, one forward pass for shapes), and on a
    # busy machine (CI, other hooks, --jobs workers) torch's spinning thread pool made the same
    # lint 5-8x slower (bench/speed.py); on an idle one a second thread saves little.
    torch.set_num_threads(1)

    import gradlint.analyse  # noqa: F401
    from gradlint import memory

    _no_threads()
    conn = Connection(os.dup(control.fileno()))
    footprint = memory.address_space()
    limit = memory.worker_limit(max_memory, jobs, footprint)
    if limit and limit < memory.floor(footprint):
        conn.send(("too-small", limit, footprint))
        return
    _BUDGET = memory.parameter_budget(limit, footprint)
    _warm_up()
    gc.collect()
    gc.freeze()  # the children share these pages: keep the collector from touching them
    conn.send(("ready",))
    running: dict[int, int] = {}  # pid -> job index
    # a spare per file checked at once (up to the cores): with one, a second file at once
    # waited for its fork, and --jobs 2 was no faster than --jobs 1
    spares: deque[_Spare] = deque()
    width = max(1, min(jobs, os.cpu_count() or 1))

    def fork_spares() -> None:
        while len(spares) < width:  # each closes the server's ends of the others' sockets
            spares.append(_Spare(limit, (control, conn, *(s.sock for s in spares))))

    fork_spares()
    while True:
        if wait([conn], timeout=0.5):
            try:
                job = conn.recv()
                if job[0] == "preload":
                    _preload(job[1])
                    while spares:  # a retired spare sees EOF and leaves
                        spares.popleft().sock.close()
                    fork_spares()
                    continue
                _, fds, _, _ = socket.recv_fds(control, 1, 2)
            except (EOFError, OSError):
                return
            spare = spares.popleft()
            try:
                spare.hand(job, fds)
            except OSError:  # the spare died (killed from outside): fork one now
                spare.sock.close()
                spare = _Spare(limit, (control, conn, *(s.sock for s in spares)))
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
            kill_below(os.getpid(), keep=frozenset(running) | {s.pid for s in spares})


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
    ``--jobs`` and the parent's pid."""
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
            serve(socket.socket(fileno=fd), max_memory, jobs)
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
