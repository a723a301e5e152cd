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


def _limit_memory(limit: int) -> None:
    if limit > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


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
        return analyse_file(path, names, options, progress)
    except MemoryError:
        return [], [_failure(path, "ran out of memory (the worker's limit is "
                             f"{_gib(options.memory_limit)}; raise it with --max-memory)")]
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt... from user code
        from gradlint.load import _describe, _user_location

        if options.debug:
            traceback.print_exc()
        return [], [_failure(path, f"user code raised {_describe(exc)} while {path} was being "
                             "checked", _user_location(exc, path))]


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n else "none"


def _failure(path: str, message: str, loc: Any = None) -> Any:
    from gradlint.ftypes import Location
    from gradlint.pipeline import stage_diagnostic

    return stage_diagnostic("GL905", message, loc or Location(path, 1))


def serve(conn: Connection) -> None:
    """Answer jobs until the parent closes the pipe: ("started", i) at once, ("done", i, result)."""
    import torch  # pay the import once, before the first job's clock starts

    # One thread: gradlint's tensors are small (moments, one forward pass for shapes), and on a
    # busy machine (CI, other hooks, --jobs workers) torch's spinning thread pool made the same
    # lint 5-8x slower (bench/speed.py); on an idle one a second thread saves little.
    torch.set_num_threads(1)

    import gradlint.analyse  # noqa: F401

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
    """``argv``: the socket's file descriptor and the address-space limit in bytes (0: none)."""
    fd, limit = int(argv[0]), int(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    _limit_memory(limit)
    try:
        serve(Connection(fd))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # skip interpreter teardown: user atexit hooks and torch's are not ours


