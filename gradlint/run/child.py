"""The process that checks one file, forked by the server (gradlint/run/server.py) ahead of it.

It runs in a session of its own (the parent kills its group on a timeout), with stdout and
stderr on a capture file of its own (nothing the user prints reaches gradlint's output;
faulthandler writes a crash's, or on SIGUSR1 a hang's, stack there for the parent to locate),
an address-space limit (``--max-memory``, gradlint/run/memory.py), and as a subreaper: whatever
its user code started, even in a new session or daemonized, stays its descendant and is killed
when the file is done. It starts from the server's pristine state and exits after its file, so
no Python, torch, fd, signal, cwd or environment state of one file can reach the next.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from gradlint.run.process_tree import become_subreaper, die_with_parent, kill_below
from gradlint.run.warm_up import touch
from gradlint.run.working_set import Runs, populate

# imports a file may need that cost ~1 s (the export fallback's torch._dynamo): once a file's
# process has imported one, the server imports it too, so later files start with it
PRELOAD = ("torch._dynamo",)
_LIMIT = 0  # the address-space limit in force in this process, for the out-of-memory message


def _limit_memory(limit: int) -> int:
    """Cap the address space (0: leave it); the limit in force, lowered to a hard limit the
    user's shell already set."""
    if limit > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit


def _run(conn: Connection, index: int, path: str, names: tuple[str, ...], options: Any,
         budget: int | None) -> tuple[list[Any], list[Any]]:
    from gradlint.lint.registry import use_config_rules
    from gradlint.run.check_file import analyse_file

    def progress(what: str, where: Any) -> None:
        conn.send(("progress", index, what, where))

    try:
        use_config_rules(options.config)  # extend-rules: the parent loaded them too
        return analyse_file(path, names, options, progress, budget)
    except MemoryError:
        from gradlint.run.memory import gib

        return [], [_failure(path, "ran out of memory (the worker's address-space limit is "
                             f"{gib(_LIMIT)}; raise it with --max-memory)")]
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... from user code
        from gradlint.load.importing import describe_exception, user_location

        if options.debug:
            traceback.print_exc()
        return [], [_failure(path, f"user code raised {describe_exception(exc)} while {path} "
                             "was being checked", user_location(exc, path))]


def _failure(path: str, message: str, loc: Any = None) -> Any:
    from gradlint.core.values import Location
    from gradlint.lint.registry import diagnostic

    return diagnostic("GL905", message, loc or Location(path, 1))


def _populate_idle(runs: Runs) -> bool:
    """Copy the pages of ``runs`` from a thread at idle priority (SCHED_IDLE: it runs only on
    a core nothing else wants), so that copying ahead never takes a core from a file being
    checked; the thread ends before the job comes. False: the kernel cannot copy ahead."""
    import threading

    done: list[bool] = []

    def copy() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # this thread only
        except (AttributeError, OSError):  # not Linux
            pass
        done.append(populate(runs))

    thread = threading.Thread(target=copy, name="gradlint-copy-ahead")
    thread.start()
    thread.join()
    return bool(done and done[0])


def _check_one_file(sock: socket.socket, limit: int, budget: int | None,
                    working_set: Runs | None) -> None:
    """A process forked ahead of its file: it copies the pages a check writes (``working_set``;
    None: unknown, a tiny check instead), waits for the job on a socket of its own, checks that
    one file and exits; never returns."""
    global _LIMIT
    try:
        os.setsid()
        die_with_parent(signal.SIGKILL)
        become_subreaper()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        import torch

        # after a fork torch rebuilds its thread pool lazily; autograd's device threads
        # (--verify's backward) raced to do it and one in ~30 runs aborted ("Invalid thread
        # pool!"): build it here, before any thread exists
        torch.set_num_threads(1)
        if working_set is None or not _populate_idle(working_set):  # while the previous
            touch()  # file is being checked
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
        result = _run(conn, index, path, names, options, budget)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(("done", index, result, tuple(m for m in PRELOAD if m in sys.modules)))
        # what is left (killing what the user started, dropping this process's memory: ~5 ms
        # of the kernel's time) yields to the next file's check
        os.nice(19)
    finally:
        try:
            kill_below(os.getpid())  # whatever the user's code started ends with the file
        finally:
            os._exit(0)


class Spare:
    """The next file's process, forked before the file comes: forking a process with torch
    loaded takes ~20-30 ms, which then overlaps the previous file's check. ``limit``: its
    address-space limit; ``budget``: parameter bytes above which models are built on meta."""

    def __init__(self, limit: int, budget: int | None, working_set: Runs | None,
                 inherited: tuple[Any, ...]) -> None:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            for held in inherited:  # the server's control socket is not the child's
                held.close()
            _check_one_file(theirs, limit, budget, working_set)
        theirs.close()
        self.pid, self.sock = pid, ours

    def hand(self, job: tuple[Any, ...], fds: list[int]) -> None:
        with Connection(os.dup(self.sock.fileno())) as conn:
            conn.send(job)
        socket.send_fds(self.sock, [b"F"], fds)
        self.sock.close()
