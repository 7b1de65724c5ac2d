"""The web process's gunicorn worker: gthread, except that a thread gets a request only once all of it is in.

gunicorn's gthread worker hands a connection to a thread as soon as its first bytes arrive, and the
thread then reads the rest of the head and the body itself, blocking. Twenty clients that sent
headers announcing a 100,000-byte body and then one byte held every thread for as long as they
stayed connected, before any signature check: /healthz and every webhook waited. Here the worker's
own poll loop reads each request, head and body, without blocking; a thread takes the connection
only when the whole request is in memory, and answers it from there. So a slow client costs a
socket and a few bytes, never a thread. Each request must:

- arrive whole within REQUEST_SECONDS of the worker starting to wait for it (else 408),
- have a head under MAX_HEAD_BYTES (431) and a Content-Length no larger than the largest body the
  app takes, STEPLINE_WEBHOOK_MAX_BYTES (413); a chunked body gets 411 (GitHub and browsers send a
  Content-Length),
- fit, with every other request a worker is reading, in BUFFER_BUDGET bytes (503 otherwise).

A thread writing an answer to a client that does not read it gives up after WRITE_SECONDS. The
whole connection count per worker is gunicorn's worker_connections (1,000). In production a
reverse proxy in front (README, "Security model") still bounds what reaches us per client.
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

REQUEST_SECONDS = 10.0  # GitHub gives up on a delivery after 10 s
WRITE_SECONDS = 30.0
MAX_HEAD_BYTES = 64 * 1024
BUFFER_BUDGET = 64 * 1024 * 1024
DEFAULT_MAX_BODY = 25 * 1024 * 1024
DRAIN_SECONDS = 2.0
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass
class _Reading:
    """A request being read by the poll loop; for a chunked body, how far its chunks are checked."""

    deadline: float
    data: bytearray = field(default_factory=bytearray)
    expects: bool = False  # Expect: 100-continue, the body not in yet
    continued: bool = False  # the 100 Continue is sent
    chunk_at: int = 0  # where the next chunk-size line starts (0: the head is not parsed yet)
    chunked_size: int = 0  # body bytes of the chunks checked so far


class _Refusal(Exception):
    """Raised when a request cannot be read whole: answer `status` and close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.answer = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(reason)}\r\n"
            f"Connection: close\r\n\r\n{reason}"
        ).encode()


class BufferingThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, reading every request whole in its poll loop before a thread takes it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = getattr(self.app, "service_config", None)
        self.max_body = getattr(config, "webhook_max_bytes", DEFAULT_MAX_BODY)
        self.reading: dict[TConn, _Reading] = {}
        self.draining: dict[TConn, float] = {}  # refused connections read until the client stops: deadline
        self.buffered = 0

    def enqueue_req(self, conn: TConn) -> None:
        """Every way to a thread passes here (a new connection, a kept-alive one, a pipelined request)."""
        if self.cfg.is_ssl:  # the poll loop would see TLS records: no TLS here, a proxy ends it
            super().enqueue_req(conn)
            return
        ahead = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        reading = _Reading(time.monotonic() + REQUEST_SECONDS, bytearray(ahead))
        self.buffered += len(ahead)
        self.reading[conn] = reading
        conn.sock.setblocking(False)
        if not self._whole(conn, reading):
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: TConn, _sock: Any) -> None:
        reading = self.reading.get(conn)
        if reading is None:
            return
        chunk = self._receive(conn)
        if chunk is None:
            return
        if not chunk:  # the client left
            self._forget(conn)
            self._close(conn)
            return
        reading.data += chunk
        self.buffered += len(chunk)
        self._whole(conn, reading)

    def _whole(self, conn: TConn, reading: _Reading) -> bool:
        """True once the request is complete (handed to a thread) or refused (answered, then closed)."""
        try:
            if self.buffered > BUFFER_BUDGET:
                raise _Refusal(503, "Service Unavailable")
            needed = self._request_size(reading)
        except _Refusal as refusal:
            self._refuse(conn, refusal)
            return True
        if needed is None:
            if reading.expects and not reading.continued:  # the client waits for it to send its body
                reading.continued = True
                self._send_quietly(conn, _CONTINUE)
            return False
        data = bytes(reading.data)
        self._forget(conn)
        self._unwatch(conn)
        conn.whole_request = data
        conn.data_ready = True
        super().enqueue_req(conn)
        return True

    def _request_size(self, reading: _Reading) -> int | None:
        """Bytes the whole request takes (head and body), None until they are all in."""
        data = reading.data
        if not reading.chunk_at:
            while data.startswith(b"\r\n"):  # empty lines before a request are allowed
                del data[:2]
            end = data.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEAD_BYTES:
                if end > MAX_HEAD_BYTES or len(data) > MAX_HEAD_BYTES:
                    raise _Refusal(431, "Request Header Fields Too Large")
                return None
            length, chunked, reading.expects = self._framing(bytes(data[:end]))
            if not chunked:
                return end + 4 + length if len(data) >= end + 4 + length else None
            reading.chunk_at = end + 4
        return self._chunks_end(reading)

    def _framing(self, head: bytes) -> tuple[int, bool, bool]:
        """(Content-Length, chunked, expects 100 Continue) from a request head; refuses what cannot be read."""
        lengths, chunked, expects = [], False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                if value != b"chunked":
                    raise _Refusal(501, "Not Implemented")
                chunked = True
            elif name == b"expect":
                expects = value == b"100-continue"
        if (chunked and lengths) or len(set(lengths)) > 1 or (lengths and not lengths[0].isdigit()):
            raise _Refusal(400, "Bad Request")
        length = int(lengths[0]) if lengths else 0
        if length > self.max_body:
            raise _Refusal(413, "Content Too Large")
        return length, chunked, expects

    def _chunks_end(self, reading: _Reading) -> int | None:
        """Where a chunked body ends (its last chunk and trailers checked), None while it has not arrived."""
        data = reading.data
        while True:
            at = reading.chunk_at
            line_end = data.find(b"\r\n", at)
            if line_end < 0:
                if len(data) - at > 1024:
                    raise _Refusal(400, "Bad Request")
                return None
            size_text = bytes(data[at:line_end]).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Refusal(400, "Bad Request") from None
            if size < 0 or reading.chunked_size + size > self.max_body:
                raise _Refusal(413, "Content Too Large")
            if size == 0:  # the last chunk, then trailer lines up to an empty one
                if data[line_end + 2 : line_end + 4] == b"\r\n":
                    return line_end + 4
                end = data.find(b"\r\n\r\n", line_end)
                if end < 0 and len(data) - line_end > MAX_HEAD_BYTES:
                    raise _Refusal(431, "Request Header Fields Too Large")
                return None if end < 0 else end + 4
            chunk_end = line_end + 2 + size + 2
            if len(data) < chunk_end:
                return None
            if data[chunk_end - 2 : chunk_end] != b"\r\n":
                raise _Refusal(400, "Bad Request")
            reading.chunk_at, reading.chunked_size = chunk_end, reading.chunked_size + size

    def handle(self, conn: TConn) -> Any:
        """In a thread: the request is whole in memory; gunicorn's parser reads it from there."""
        data = getattr(conn, "whole_request", b"")
        if data:
            conn.whole_request = b""
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(data)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: TConn) -> bool:
        # a client that does not read its answer holds this thread only so long
        conn.sock.settimeout(WRITE_SECONDS)
        try:
            return bool(super().handle_request(req, conn))
        except TimeoutError:
            self.log.info(
                "a client at %s did not read its answer for %s s; closed", conn.client, WRITE_SECONDS
            )
            return False

    def murder_pending(self) -> None:
        """gunicorn's sweep of idle connections, and of requests not whole by their deadline (408)."""
        super().murder_pending()
        now = time.monotonic()
        for conn in [c for c, r in self.reading.items() if r.deadline <= now]:
            self._refuse(conn, _Refusal(408, "Request Timeout"))
        for conn in [c for c, deadline in self.draining.items() if deadline <= now]:
            del self.draining[conn]
            self._close(conn)

    def _refuse(self, conn: TConn, refusal: _Refusal) -> None:
        """Answer, then read what the client still sends for a moment and close: closing a socket
        with unread bytes would reset it, and the client might never read the answer."""
        self._forget(conn)
        self._unwatch(conn)
        try:
            conn.sock.send(refusal.answer)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:  # the client is gone
            self._close(conn)
            return
        self.draining[conn] = time.monotonic() + DRAIN_SECONDS
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_drain, conn))

    def _on_drain(self, conn: TConn, _sock: Any) -> None:
        chunk = self._receive(conn)
        if chunk is None:
            return
        if not chunk and conn in self.draining:
            del self.draining[conn]
            self._close(conn)

    @staticmethod
    def _receive(conn: TConn) -> bytes | None:
        """The bytes waiting on the socket; b"" when the client closed or failed, None when none are in."""
        try:
            return bytes(conn.sock.recv(256 * 1024))
        except BlockingIOError:
            return None
        except OSError:
            return b""

    @staticmethod
    def _send_quietly(conn: TConn, data: bytes) -> None:
        try:
            conn.sock.send(data)
        except OSError:  # best effort: the client may be gone, or not reading
            pass

    def _forget(self, conn: TConn) -> None:
        reading = self.reading.pop(conn, None)
        if reading is not None:
            self.buffered -= len(reading.data)

    def _unwatch(self, conn: TConn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):  # not registered (the request was whole at once)
            pass

    def _close(self, conn: TConn) -> None:
        self._unwatch(conn)
        self.nr_conns -= 1
        conn.close()
