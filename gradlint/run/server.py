"""The fork server: imports torch and gradlint once, then forks a fresh process for every file
(gradlint/run/child.py) and tells the parent (gradlint/run/pool.py) what became of each.

The server never runs user code. It is a subreaper, dies with the parent (PR_SET_PDEATHSIG) and
on its way out kills every process below it. It keeps a spare process per file checked at once
forked ahead, and once warm, where --jobs leaves a core free, a scout's list of the pages a
check writes for the spares to copy ahead (gradlint/run/working_set.py).
"""

from __future__ import annotations

import faulthandler
import gc
import os
import signal
import socket
import sys
import traceback
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from gradlint.run.child import PRELOAD, Spare
from gradlint.run.huge_pages import HUGE_PAGES_FROM, Background
from gradlint.run.process_tree import become_subreaper, die_with_parent, kill_below, reap
from gradlint.run.warm_up import warm_up
from gradlint.run.working_set import Runs, Scouting


class _Leave(BaseException):
    """SIGTERM/SIGHUP to the server: the parent is gone or wants everything stopped."""


def _leave(signum: int, frame: Any) -> None:
    raise _Leave(signum)


def no_threads() -> None:
    """A process that forks must not run threads (a lock held at the fork stays held in the
    child): torch.fx's Interpreter makes a tqdm bar, whose first use starts a monitor thread."""
    try:
        import tqdm
    except ImportError:
        return
    tqdm.tqdm.monitor_interval = 0


def _freeze() -> None:
    gc.collect()
    gc.freeze()  # the children share these pages: keep the collector from touching them


class _Server:
    """The server's state between messages: spares, running children, the scout."""

    def __init__(self, control: socket.socket, conn: Connection, limit: int,
                 budget: int | None, jobs: int, warm: bool) -> None:
        self.control, self.conn = control, conn
        self.limit, self.budget, self.warm = limit, budget, warm
        self.handed = 0
        self.running: dict[int, int] = {}  # pid -> job index
        # a spare per file checked at once (up to the cores): with one, a second file at once
        # waited for its fork, and --jobs 2 was no faster than --jobs 1
        self.spares: deque[Spare] = deque()
        self.width = max(1, min(jobs + 1, os.cpu_count() or 1))
        # the first spares prepare nothing (their files come at once); later ones copy the
        # pages the scout reports (None: no /proc/self/pagemap, a tiny check instead), on a
        # core the running checks leave free. Where --jobs takes every core, copying ahead
        # only competes with the checks (200 small files, --jobs 2 on 2 cores: 10.4 s
        # without, 11.6 s with), so spares prepare nothing there.
        self.working_set: Runs | None = []
        self.prepares = jobs < (os.cpu_count() or 1)
        self.scouting: Scouting | None = None
        self.collapsing: Iterator[bool] | None = None  # huge pages, a step whenever idle

    def held(self) -> tuple[Any, ...]:
        """The server's fds a new child closes."""
        return (self.control, self.conn, *(s.sock for s in self.spares))

    def fork_spares(self) -> None:
        while len(self.spares) < self.width:
            self.spares.append(Spare(self.limit, self.budget, self.working_set, self.held()))

    def scout(self) -> Scouting | None:
        if not self.prepares:
            return None
        if os.path.exists("/proc/self/pagemap"):
            return Scouting(self.held())
        self.working_set = None
        return None

    def renew(self) -> None:
        """The server's memory changed: new spares, a new scout."""
        while self.spares:  # a retired spare sees EOF and leaves
            self.spares.popleft().sock.close()
        self.fork_spares()
        if self.scouting is not None:
            self.scouting.close()
        self.scouting = self.scout() if self.warm else None

    def loop(self) -> None:
        """Serve until the parent closes the control socket."""
        while True:
            watched: list[Any] = [self.conn]
            if self.scouting is not None:
                watched.append(self.scouting.fd)
            ready = wait(watched, timeout=0.0 if self.collapsing is not None else 0.5)
            if not ready and self.collapsing is not None:
                if next(self.collapsing, None) is None:
                    self.collapsing = None
                self.collect()
                continue
            if self.scouting is not None and self.scouting.fd in ready:
                runs = self.scouting.read()
                if runs is not None:
                    self.working_set, self.scouting = runs or None, None
            if self.conn in ready:
                try:
                    job = self.conn.recv()
                    if job[0] == "preload":
                        _preload(job[1])
                        self.renew()
                        continue
                    _, fds, _, _ = socket.recv_fds(self.control, 1, 2)
                except (EOFError, OSError):
                    return
                self.hand(job, fds)
            self.collect()

    def hand(self, job: tuple[Any, ...], fds: list[int]) -> None:
        """Give a job to the next spare (a cold server warms up at its second file)."""
        if self.handed and not self.warm:
            self.warm = True
            warm_up()
            _freeze()
            self.renew()
        self.handed += 1
        spare = self.spares.popleft()
        try:
            spare.hand(job, fds)
        except OSError:  # the spare died (killed from outside): fork one now
            spare.sock.close()
            spare = Spare(self.limit, self.budget, self.working_set, self.held())
            spare.hand(job, fds)
        for fd in fds:
            os.close(fd)
        self.running[spare.pid] = job[1]
        self.conn.send(("forked", job[1], spare.pid))
        self.fork_spares()

    def collect(self) -> None:
        """Report the children that ended, and kill what they left behind."""
        ended = reap()
        for pid, code in ended:
            if pid in self.running:
                self.conn.send(("exited", self.running.pop(pid), code))
        if ended:  # what a finished or killed child left behind came back to us (a subreaper)
            keep = {*self.running, *(s.pid for s in self.spares)}
            if self.scouting is not None:
                keep.add(self.scouting.pid)
            kill_below(os.getpid(), keep=frozenset(keep))


def serve(control: socket.socket, max_memory: int | None, jobs: int, files: int) -> None:
    """Fork one child per job until the parent closes the control socket. ``files``: how many
    will come; for more than one, warm up first and scout the pages a check writes (for one
    file that is ~0.3 s its own process would pay anyway; a cold server warms up at its
    second), and for many, move the server's memory to huge pages (gradlint/run/huge_pages.py):
    in a thread while it imports and warms up, then a step at a time between jobs.

    The memory limit is measured against what the imports reserved (gradlint/run/memory.py); a
    limit below that answers ("too-small", limit, footprint) and the server leaves."""
    import torch  # pay the import once, before any job's clock starts

    # One thread: gradlint's tensors are small (moments, one forward pass for shapes), and on a
    # busy machine (CI, other hooks, --jobs workers) torch's spinning thread pool made the same
    # lint 5-8x slower (bench/speed.py); on an idle one a second thread saves little.
    torch.set_num_threads(1)
    # torch's memory into huge pages on the other core while gradlint imports and warms up
    early = Background() if files >= HUGE_PAGES_FROM else None

    import gradlint.run.check_file  # noqa: F401
    from gradlint.run import memory

    no_threads()
    conn = Connection(os.dup(control.fileno()))
    footprint = memory.address_space()
    limit = memory.worker_limit(max_memory, jobs, footprint)
    if limit and limit < memory.floor(footprint):
        conn.send(("too-small", limit, footprint))
        return
    budget = memory.parameter_budget(limit, footprint)
    warm = files > 1
    if warm:
        warm_up()
    rest = early.take_over() if early is not None else None  # no thread may run at a fork
    _freeze()
    conn.send(("ready",))
    server = _Server(control, conn, limit, budget, jobs, warm)
    server.collapsing = rest  # the rest between jobs, while the first files are checked
    server.fork_spares()
    server.scouting = server.scout() if warm else None
    server.loop()


def _preload(names: tuple[str, ...]) -> None:
    """Import what a file's process needed (``PRELOAD``), so that later spares have it."""
    import importlib

    for name in names:
        if name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - each file's process will import it then
                pass
    no_threads()
    _freeze()


def main(argv: list[str]) -> None:
    """``argv``: the control socket's fd, ``--max-memory`` in bytes ("default" or 0 for none),
    ``--jobs``, the parent's pid and the number of files that will come."""
    fd, jobs, parent = int(argv[0]), int(argv[2]), int(argv[3])
    # a process that forks must not run threads: OpenBLAS (numpy) starts one per core at load
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    max_memory = None if argv[1] == "default" else int(argv[1])
    sys.dont_write_bytecode = True  # no __pycache__ in the user's tree
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _leave)
    signal.signal(signal.SIGHUP, _leave)
    die_with_parent(signal.SIGTERM)
    become_subreaper()
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    try:
        if os.getppid() == parent:  # else the parent died before the death signal was set
            serve(socket.socket(fileno=fd), max_memory, jobs, int(argv[4]))
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
