"""The worker process: imports torch once, then checks one file per job until its pipe closes.

It runs in a session of its own (the parent kills the whole group on a timeout), with its
stdout and stderr on a capture file so nothing the user's code prints reaches gradlint's
output, faulthandler writing a crash's (or, on SIGUSR1, a hang's) stack there for the parent to
locate, and an address-space limit (``--max-memory``) so a runaway model fails here, not the
machine.
"""

from __future__ import annotations

import faulthandler
import os
import resource
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any


def _limit_memory(limit: int) -> int:
    """Cap the address space (0: leave it); the limit in force, lowered to a hard limit the
    user's shell already set."""
    if limit > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit


_LIMIT = 0  # the address-space limit in force, for the out-of-memory message
_BUDGET: int | None = None  # parameter bytes above which models are built on meta


def _reset_capture() -> None:
    """Each job starts with an empty capture file, so a crash report shows only this file's."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.ftruncate(1, 0)
    os.lseek(1, 0, os.SEEK_SET)


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


def serve(conn: Connection, max_memory: int | None, jobs: int) -> None:
    """Answer jobs until the parent closes the pipe: ("started", i) at once, ("done", i, result).

    The memory limit goes on once torch is imported, measured against what that import
    reserved (gradlint/memory.py); a limit below that answers ("too-small", footprint) and
    the worker leaves."""
    global _LIMIT, _BUDGET
    import torch  # pay the import once, before the first job's clock starts

    # One thread: gradlint's tensors are small (moments, one forward pass for shapes), and on a
    # busy machine (CI, other hooks, --jobs workers) torch's spinning thread pool made the same
    # lint 5-8x slower (bench/speed.py); on an idle one a second thread saves little.
    torch.set_num_threads(1)

    import gradlint.analyse  # noqa: F401
    from gradlint import memory

    footprint = memory.address_space()
    limit = memory.worker_limit(max_memory, jobs, footprint)
    if limit and limit < memory.floor(footprint):
        conn.send(("too-small", limit, footprint))
        return
    _LIMIT = _limit_memory(limit)
    _BUDGET = memory.parameter_budget(_LIMIT, footprint)
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        _, index, path, names, options = message
        _reset_capture()
        conn.send(("started", index))
        result = _run(conn, index, path, names, options)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(("done", index, result))


def main(argv: list[str]) -> None:
    """``argv``: the socket's file descriptor, ``--max-memory`` in bytes ("default" or 0 for
    none) and ``--jobs``."""
    fd, jobs = int(argv[0]), int(argv[2])
    max_memory = None if argv[1] == "default" else int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    try:
        serve(Connection(fd), max_memory, jobs)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip interpreter teardown: user atexit hooks and torch's are not ours


