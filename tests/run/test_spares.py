"""Spares copy ahead the pages a check writes only on a core the running checks leave free."""

from __future__ import annotations

import os
import socket
from multiprocessing.connection import Connection

import pytest

from gradlint.run import server


def _server(jobs: int) -> server._Server:
    ours, theirs = socket.socketpair()
    return server._Server(ours, Connection(theirs.detach()), 0, None, jobs, warm=True)


def test_no_copying_ahead_where_the_checks_take_every_core(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    busy = _server(jobs=2)
    assert not busy.prepares
    assert busy.scout() is None  # no scout forked: nothing to copy
    assert busy.working_set == []  # spares prepare nothing (not a tiny check either)
    assert _server(jobs=1).prepares
