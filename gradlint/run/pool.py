"""The parent's side of checking files in other processes (gradlint/run/server.py and
gradlint/run/child.py have the other).

One fork server per run imports torch once (~1-3 s) and forks a fresh process for every file,
so nothing one file does (imports, globals, torch defaults, fds, signals, cwd, environment,
processes it starts) reaches another. Whatever a file does to its process — hang, segfault,
``os._exit``, exhaust memory — becomes a GL905 diagnostic for that file, at the line it was
running when we can tell, and every other file is still checked. SIGTERM or SIGHUP to gradlint
ends every process of the run; so does SIGKILL, through the server's death signal.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from typing import IO, Any

from gradlint.core.options import FileJob, Options
from gradlint.core.values import Diagnostic, Location, ModelReport
from gradlint.lint.registry import diagnostic
from gradlint.run.memory import LimitTooSmall

Result = tuple[list[ModelReport], list[Diagnostic]]
Limits = tuple[int | None, int]  # --max-memory (None: the default) and --jobs
STARTUP_SECONDS = 120.0  # importing torch on a loaded CI machine, before any job's clock starts
CAPTURE_TAIL = 1 << 20  # bytes of a file's output shown on stderr; the rest is dropped
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in ')
_FATAL = re.compile(r"Fatal Python error: (?P<what>[^\n]+)")
# -c, not -m: neither puts the working directory (where a user's ``ast.py`` may live) first on
# sys.path in place of the interpreter's own modules
_BOOT = "import sys; del sys.path[0]; from gradlint.run.server import main; main(sys.argv[1:])"


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP reached gradlint while files were being checked."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def tail(capture: IO[bytes]) -> str:
    """The last ``CAPTURE_TAIL`` bytes written to a capture file, saying what was dropped."""
    size = os.fstat(capture.fileno()).st_size
    start = max(0, size - CAPTURE_TAIL)
    text = os.pread(capture.fileno(), size - start, start).decode("utf-8", "replace")
    if start:
        text = f"[gradlint: {start} earlier bytes of this output were dropped]\n" + text
    return text


class _Job:
    """One file being checked by a forked child: its socket, capture file and clock."""

    def __init__(self, index: int, job: FileJob, conn: Connection, capture: IO[bytes],
                 timeout: float) -> None:
        self.index, self.job, self.conn, self.capture = index, job, conn, capture
        self.deadline = time.monotonic() + timeout
        self.doing = ("importing and building the models", Location(job.path, 1))

    def close(self) -> None:
        self.conn.close()
        self.capture.close()


class _Server:
    """The fork server process, its control socket and what it reported about children."""

    def __init__(self, limits: Limits, files: int) -> None:
        ours, theirs = socket.socketpair()
        self.capture: IO[bytes] = tempfile.TemporaryFile()
        max_memory, jobs = limits
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(theirs.fileno()),
             "default" if max_memory is None else str(max_memory), str(jobs), str(os.getpid()),
             str(files)],
            stdin=subprocess.DEVNULL, stdout=self.capture, stderr=self.capture,
            pass_fds=(theirs.fileno(),), start_new_session=True)
        theirs.close()
        self.sock = ours
        self.conn = Connection(os.dup(ours.fileno()))
        self.ready = False
        self.alive = True
        self.pids: dict[int, int] = {}  # job index -> pid of its child
        self.exits: dict[int, int] = {}  # job index -> exit code (-N: signal N)
        self.preloaded: set[str] = set()

    def start(self) -> str | None:
        """Wait until the server has imported torch; None, or why it could not start."""
        end = time.monotonic() + STARTUP_SECONDS
        while not self.ready and self.alive:
            left = end - time.monotonic()
            if left <= 0:
                return f"the worker did not start within {STARTUP_SECONDS:g} s"
            if wait([self.conn], timeout=left):
                self.receive()
        if self.ready:
            return None
        output = tail(self.capture).strip().splitlines()
        return "the worker could not start" + (f": {output[-1]}" if output else "")

    def receive(self) -> None:
        """Handle one message from the server, if one is there. Never blocks: a wait that saw
        the server's socket ready may have been answered already (``exit_of`` and ``pid_of``
        read it while handling a child in the same wait), and a blocking read then waited
        forever."""
        if not self.conn.poll():
            return
        try:
            message: Any = self.conn.recv()
        except (EOFError, OSError):
            self.alive = False
            return
        kind = message[0]
        if kind == "ready":
            self.ready = True
        elif kind == "forked":
            self.pids[message[1]] = message[2]
        elif kind == "exited":
            self.exits[message[1]] = message[2]
        elif kind == "too-small":
            raise LimitTooSmall(message[1], message[2])

    def submit(self, index: int, job: FileJob, options: Options) -> _Job:
        ours, theirs = socket.socketpair()
        capture = tempfile.TemporaryFile()
        try:
            self.conn.send(("job", index, job.path, job.names, options, os.getcwd(),
                            dict(os.environ)))
            socket.send_fds(self.sock, [b"F"], [theirs.fileno(), capture.fileno()])
        finally:
            theirs.close()
        return _Job(index, job, Connection(ours.detach()), capture, options.timeout)

    def preload(self, names: Sequence[str]) -> None:
        """Have the server import what a file's process needed, once (child.PRELOAD)."""
        new = tuple(n for n in names if n not in self.preloaded)
        if new:
            self.preloaded.update(new)
            self.conn.send(("preload", new))

    def pid_of(self, index: int, patience: float = 5.0) -> int | None:
        """The child's pid: the server says it right after forking."""
        end = time.monotonic() + patience
        while index not in self.pids and self.alive and time.monotonic() < end:
            if wait([self.conn], timeout=end - time.monotonic()):
                self.receive()
        return self.pids.get(index)

    def exit_of(self, index: int, patience: float = 10.0) -> int | None:
        end = time.monotonic() + patience
        while index not in self.exits and self.alive and time.monotonic() < end:
            if wait([self.conn], timeout=end - time.monotonic()):
                self.receive()
        return self.exits.pop(index, None)

    def kill_job(self, job: _Job, patience: float = 5.0) -> None:
        """Kill a job's child (``patience``: how long to wait for the server to say its pid;
        0 reads nothing, for a parent interrupted mid-read, whose socket may hold half a
        message: the server's close kills the child then)."""
        pid = self.pid_of(job.index, patience)
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # the child leads its own session
            except (ProcessLookupError, PermissionError):
                pass
        job.close()

    def close(self) -> None:
        """Close the control socket: the server kills every process below it and leaves."""
        self.conn.close()
        self.sock.close()
        # a server still importing torch reads no socket and may not see SIGTERM for a second
        # or more (inside dlopen); it has forked nothing yet (spares die with it): kill it
        for how in (None, signal.SIGTERM, signal.SIGKILL) if self.ready else (
                signal.SIGKILL,):
            if how is not None:
                try:
                    self.proc.send_signal(how)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        self.capture.close()


@contextmanager
def _terminable() -> Iterator[None]:
    """SIGTERM/SIGHUP raise ``Terminated`` here (so the run's processes are ended first)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(signum)

    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


class WorkerPool:
    """A fork server and up to ``--jobs`` files being checked at once."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.server: _Server | None = None

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def prestart(self, files: int) -> None:
        """Start the server now without waiting for it: its torch import overlaps what the
        parent still does before the first job (the pre-filter of every file)."""
        if self.server is None:
            self.server = _Server(self.limits, files)

    def _serving(self, files: int) -> tuple[_Server | None, str | None]:
        """The running server (waited for if it was started ahead), else a new one for
        ``files`` files (warmed up unless it is for one)."""
        if self.server is not None and not self.server.alive:
            self.close()
        if self.server is None:
            self.server = _Server(self.limits, files)
        if not self.server.ready:
            try:
                failed = self.server.start()
            except LimitTooSmall:
                self.close()
                raise
            if failed:
                self.close()
                return None, failed
        return self.server, None

    def run(self, jobs: Sequence[FileJob], options: Options) -> list[Result]:
        """Check every job; results come back in the order of ``jobs``."""
        with _terminable():
            return self._run(jobs, options)

    def _run(self, jobs: Sequence[FileJob], options: Options) -> list[Result]:
        results: list[Result | None] = [None] * len(jobs)
        pending = deque(enumerate(jobs))
        busy: dict[Connection, _Job] = {}
        width = max(1, min(options.jobs, len(jobs)))
        server: _Server | None = None
        try:
            while pending or busy:
                if server is None or not server.alive:
                    server, failed = self._serving(len(pending))
                    if server is None:
                        for index, job in pending:
                            results[index] = ([], [diagnostic(
                                "GL905", f"{failed}; {job.path} was not checked",
                                Location(job.path, 1))])
                        pending.clear()
                        continue
                while pending and len(busy) < width:
                    index, job = pending.popleft()
                    running = server.submit(index, job, options)
                    busy[running.conn] = running
                if not busy:
                    continue
                timeout = max(0.0, min(j.deadline for j in busy.values()) - time.monotonic())
                for conn in wait([*busy, server.conn], timeout=timeout):
                    if conn is server.conn:
                        server.receive()
                        continue
                    running = busy[conn]  # type: ignore[index]
                    if self._receive(server, running, results, options):
                        del busy[conn]  # type: ignore[arg-type]
                now = time.monotonic()
                for conn, running in list(busy.items()):
                    if now >= running.deadline:
                        del busy[conn]
                        self._timed_out(server, running, results, options)
        except BaseException:
            for running in busy.values():
                if server is not None:
                    server.kill_job(running, patience=0.0)
            self.close()  # and every process below the server
            raise
        return [r if r is not None else ([], []) for r in results]

    def _receive(self, server: _Server, job: _Job, results: list[Result | None],
                 options: Options) -> bool:
        """Handle one message from a child; True when it is done with its file (or dead)."""
        try:
            message: Any = job.conn.recv()
        except (EOFError, OSError):
            results[job.index] = ([], [self._crashed(server, job, options)])
            job.close()
            return True
        if message[0] == "progress":
            job.doing = (message[2], message[3])
            return False
        printed = tail(job.capture)  # the user's prints and warnings: stderr, never stdout
        if printed:
            sys.stderr.write(printed)
            sys.stderr.flush()
        results[job.index] = message[2]
        server.preload(message[3])
        server.pids.pop(job.index, None)
        job.close()
        return True

    def _crashed(self, server: _Server, job: _Job, options: Options) -> Diagnostic:
        code = server.exit_of(job.index)
        text = tail(job.capture)
        if options.debug:
            sys.stderr.write(text)
        fatal = _FATAL.search(text)
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            how = f"was killed by {name}"
            if -code == signal.SIGKILL:
                how += " (most likely the out-of-memory killer; try --max-memory or --meta)"
            elif fatal:
                how += f" ({fatal.group('what').strip().lower()})"
        elif code is not None:
            how = f"exited with status {code} (the user's code ended the process, e.g. os._exit)"
        else:
            how = "stopped answering"
        doing, where = job.doing
        return diagnostic("GL905", f"the worker checking {job.job.path} {how} while "
                          f"{doing}", _located(text, job.job.path, where))

    def _timed_out(self, server: _Server, job: _Job, results: list[Result | None],
                   options: Options) -> None:
        stack = _dump_stack(server.pid_of(job.index), job.capture)
        server.kill_job(job)
        doing, where = job.doing
        results[job.index] = ([], [diagnostic(
            "GL905", f"checking {job.job.path} timed out after {options.timeout:g} s while "
            f"{doing} (the location is where it was running); raise --timeout, or guard slow "
            "work with `if __name__ == \"__main__\":`", _located(stack, job.job.path, where))])


def _dump_stack(pid: int | None, capture: IO[bytes]) -> str:
    """Ask faulthandler for the stack of a hung child (SIGUSR1), then read it."""
    before = tail(capture)
    if pid is None:
        return before
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        return before
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        time.sleep(0.05)
        text = tail(capture)
        if len(text) > len(before) and "File " in text[len(before):]:
            time.sleep(0.05)
            return tail(capture)[len(before):]
    return ""


def _located(text: str, path: str, fallback: Location) -> Location:
    """The innermost frame of ``path`` in a faulthandler dump, else the model being checked."""
    here = os.path.abspath(path)
    for match in _FRAME.finditer(text):
        if os.path.abspath(match.group("file")) == here:
            return Location(path, int(match.group("line")))
    return fallback if fallback.file else Location(path, 1)


_POOL: WorkerPool | None = None


def run_jobs(jobs: Sequence[FileJob], options: Options) -> list[Result]:
    """Run jobs on this process's fork server (kept across calls; replaced if the limits
    change)."""
    return _pool(options).run(jobs, options)


def prestart(files: int, options: Options) -> None:
    """Start the fork server for up to ``files`` files before they are planned (an unused
    server is ended when gradlint exits)."""
    _pool(options).prestart(files)


def _pool(options: Options) -> WorkerPool:
    global _POOL
    limits = (options.max_memory, options.jobs)
    if _POOL is not None and _POOL.limits != limits:
        _POOL.close()
        _POOL = None
    if _POOL is None:
        _POOL = WorkerPool(limits)
        atexit.register(_close_pool)
    return _POOL


def _close_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.close()
        _POOL = None
