"""The parent reads the fork server's messages without ever blocking on them."""

from __future__ import annotations

import socket
import threading
from multiprocessing.connection import Connection

from gradlint.run.pool import _Server


def _server_on(conn: Connection) -> _Server:
    """A parent-side server handle on a socket pair (no process behind it)."""
    server = object.__new__(_Server)
    server.conn, server.alive, server.ready = conn, True, False
    server.pids, server.exits = {}, {}
    return server


def test_a_message_read_already_does_not_block_the_parent() -> None:
    # One wait saw a child's socket (EOF: it crashed) and the server's ("exited") ready at once;
    # handling the child, exit_of read the server's message; then came the server's turn in
    # the same wait. A blocking read there waited forever (the hostile tests' 300 s hangs).
    ours, theirs = socket.socketpair()
    server, peer = _server_on(Connection(ours.detach())), Connection(theirs.detach())
    peer.send(("exited", 0, 3))
    assert server.exit_of(0, patience=5) == 3
    done = threading.Event()

    def receive() -> None:
        server.receive()
        done.set()

    threading.Thread(target=receive, daemon=True).start()
    assert done.wait(5), "receive() blocked with nothing to read"
    assert server.alive
    peer.send(("forked", 1, 1234))
    server.receive()
    assert server.pids == {1: 1234}
    peer.close()
    server.receive()
    assert not server.alive
