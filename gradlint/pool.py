"""A pool of worker processes (gradlint/worker.py) that check one file each, in the parent.

Workers are reused across files and runs (importing torch costs ~2 s per process) and replaced
after a crash or a timeout; whatever a file does to its worker — hang, segfault, ``os._exit``,
exhaust memory — becomes a GL905 diagnostic for that file, at the line it was running when we
can tell, and every other file is still checked.
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
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import IO, Any

from gradlint.ftypes import Diagnostic, Location, ModelReport
from gradlint.memory import LimitTooSmall
from gradlint.pipeline import FileJob, Options, stage_diagnostic

Result = tuple[list[ModelReport], list[Diagnostic]]
Limits = tuple[int | None, int]  # --max-memory (None: the default) and --jobs
STARTUP_SECONDS = 120.0  # importing torch on a loaded CI machine, before a job's clock starts
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in ')
_FATAL = re.compile(r"Fatal Python error: (?P<what>[^\n]+)")
# -c, not -m: neither puts the working directory (where a user's ``ast.py`` may live) first on
# sys.path in place of the interpreter's own modules
_BOOT = "import sys; del sys.path[0]; from gradlint.worker import main; main(sys.argv[1:])"


class _Worker:
    """One worker process, its socket, and the file its stdout/stderr go to."""

    def __init__(self, limits: Limits) -> None:
        ours, theirs = socket.socketpair()
        self.capture: IO[bytes] = tempfile.TemporaryFile()
        max_memory, jobs = limits
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(theirs.fileno()),
             "default" if max_memory is None else str(max_memory), str(jobs)],
            stdin=subprocess.DEVNULL, stdout=self.capture, stderr=self.capture,
            pass_fds=(theirs.fileno(),), start_new_session=True)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.job: tuple[int, FileJob] | None = None
        self.deadline = float("inf")
        self.doing = ("starting", Location("", 1))  # what the job last said it was running

    def submit(self, index: int, job: FileJob, options: Options) -> None:
        self.job = (index, job)
        self.doing = ("waiting for the worker to start", Location(job.path, 1))
        self.deadline = time.monotonic() + STARTUP_SECONDS + options.timeout
        self.conn.send(("job", index, job.path, job.names, options))

    def output(self) -> str:
        """What the current job printed (the worker empties the file at each job's start)."""
        size = os.fstat(self.capture.fileno()).st_size
        return os.pread(self.capture.fileno(), size, 0).decode("utf-8", "replace")

    def dump_stack(self) -> str:
        """Ask faulthandler for the stack of a hung worker (SIGUSR1), then read it."""
        before = self.output()
        try:
            os.kill(self.proc.pid, signal.SIGUSR1)
        except ProcessLookupError:
            return before
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            time.sleep(0.05)
            text = self.output()
            if len(text) > len(before) and "File " in text[len(before):]:
                time.sleep(0.05)
                return self.output()[len(before):]
        return ""

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # and anything the user's code started
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.conn.close()
        self.capture.close()

    def close(self) -> None:
        self.conn.close()  # the worker sees EOF and leaves
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


class WorkerPool:
    """Up to ``--jobs`` workers with the same memory limit."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.idle: list[_Worker] = []

    def close(self) -> None:
        for worker in self.idle:
            worker.close()
        self.idle = []

    def run(self, jobs: Sequence[FileJob], options: Options) -> list[Result]:
        """Check every job; results come back in the order of ``jobs``."""
        results: list[Result | None] = [None] * len(jobs)
        pending = deque(enumerate(jobs))
        busy: dict[Connection, _Worker] = {}
        width = max(1, min(options.jobs, len(jobs)))
        try:
            while pending or busy:
                while pending and len(busy) < width:
                    worker = self.idle.pop() if self.idle else _Worker(self.limits)
                    index, job = pending.popleft()
                    try:
                        worker.submit(index, job, options)
                    except OSError:  # a worker that died while idle: replace it, retry
                        worker.kill()
                        pending.appendleft((index, job))
                        continue
                    busy[worker.conn] = worker
                now = time.monotonic()
                timeout = max(0.0, min(w.deadline for w in busy.values()) - now)
                for conn in wait(list(busy), timeout=timeout):
                    worker = busy[conn]  # type: ignore[index]
                    finished = self._receive(worker, results, options)
                    if finished:
                        del busy[conn]  # type: ignore[arg-type]
                now = time.monotonic()
                for conn, worker in list(busy.items()):
                    if now >= worker.deadline:
                        del busy[conn]
                        self._timed_out(worker, results, options)
        except BaseException:
            for worker in busy.values():
                worker.kill()
            raise
        return [r if r is not None else ([], []) for r in results]

    def _receive(self, worker: _Worker, results: list[Result | None], options: Options) -> bool:
        """Handle one message; True when the worker is done with its job (or dead)."""
        assert worker.job is not None
        index, job = worker.job
        try:
            message: Any = worker.conn.recv()
        except (EOFError, OSError):
            results[index] = ([], [self._crashed(worker, job, options)])
            worker.kill()
            return True
        if message[0] == "too-small":
            worker.kill()
            raise LimitTooSmall(message[1], message[2])
        if message[0] == "started":
            worker.deadline = time.monotonic() + options.timeout
            return False
        if message[0] == "progress":
            worker.doing = (message[2], message[3])
            return False
        if message[0] == "done":
            printed = worker.output()  # the user's prints and warnings: stderr, never stdout
            if printed:
                sys.stderr.write(printed)
                sys.stderr.flush()
            results[index] = message[2]
            worker.job = None
            self.idle.append(worker)
            return True
        return False  # "ready"

    def _crashed(self, worker: _Worker, job: FileJob, options: Options) -> Diagnostic:
        try:
            code = worker.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        text = worker.output()
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
        doing, where = worker.doing
        return stage_diagnostic("GL905", f"the worker checking {job.path} {how} while "
                                f"{doing}", _located(text, job.path, where))

    def _timed_out(self, worker: _Worker, results: list[Result | None],
                   options: Options) -> None:
        assert worker.job is not None
        index, job = worker.job
        stack = worker.dump_stack()
        worker.kill()
        doing, where = worker.doing
        results[index] = ([], [stage_diagnostic(
            "GL905", f"checking {job.path} timed out after {options.timeout:g} s while {doing} "
            "(the location is where it was running); raise --timeout, or guard slow work with "
            "`if __name__ == \"__main__\":`", _located(stack, job.path, where))])


def _located(text: str, path: str, fallback: Location) -> Location:
    """The innermost frame of ``path`` in a faulthandler dump, else the model being checked."""
    here = os.path.abspath(path)
    for match in _FRAME.finditer(text):
        if os.path.abspath(match.group("file")) == here:
            return Location(path, int(match.group("line")))
    return fallback if fallback.file else Location(path, 1)


_POOL: WorkerPool | None = None


def run_jobs(jobs: Sequence[FileJob], options: Options) -> list[Result]:
    """Run jobs on this process's pool (kept across calls; replaced if the limit changes)."""
    global _POOL
    limits = (options.max_memory, options.jobs)
    if _POOL is not None and _POOL.limits != limits:
        _POOL.close()
        _POOL = None
    if _POOL is None:
        _POOL = WorkerPool(limits)
        atexit.register(_close_pool)
    return _POOL.run(jobs, options)


def _close_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.close()
        _POOL = None
