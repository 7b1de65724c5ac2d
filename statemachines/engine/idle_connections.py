"""Closing client connections that sit idle, without a timeout on every socket operation."""

from __future__ import annotations

import logging
import socket
import threading
import time

log = logging.getLogger(__name__)


class IdleConnections:
    """Keep-alive connections waiting for their next request, and since when.

    A socket timeout would do the same, but CPython polls before every read and write of a
    socket that has one, and under many clients those extra waits on the GIL cost more than
    answering. One thread looks instead: a connection idle (or stuck sending its request) for
    longer than `limit_s` is shut down, which ends its thread's blocked read.
    """

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self._since: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="idle-connections", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def waiting(self, conn: socket.socket) -> None:
        """`conn` now waits for (or is still sending) its next request."""
        with self._lock:
            self._since[conn] = time.monotonic()

    def working(self, conn: socket.socket) -> None:
        """`conn` has sent a whole request: it is not idle however long the answer takes."""
        with self._lock:
            self._since.pop(conn, None)

    forget = working

    def close_idle(self, now: float | None = None) -> int:
        """Shut down every connection idle for longer than the limit; how many were."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stale = [conn for conn, since in self._since.items() if now - since > self.limit_s]
            for conn in stale:
                del self._since[conn]
        for conn in stale:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:  # closed by its own thread meanwhile
                pass
        if stale:
            log.debug("-: closed %s idle client connections", len(stale))
        return len(stale)

    def _run(self) -> None:
        interval = max(0.05, min(10.0, self.limit_s / 4))
        while not self._stop.wait(interval):
            self.close_idle()
