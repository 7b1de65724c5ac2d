"""One client connection: HTTP/1.1 requests read on the event loop, answered in order."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from http import HTTPStatus
from http.client import HTTPException, HTTPMessage, LineTooLong

from .api_errors import AccessDeniedException, ApiError, InternalFailure, SerializationException
from .backend import Backend, client_connected
from .http_messages import MAX_HEADERS, MAX_LINE, read_headers, response_head
from .loop_calls import MoveToThread, loop_call_began
from .protocol import CONTENT_TYPE
from .sigv4 import verify_request

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024
SERVER = "Stepline-Engine"
# Calls answered on a thread of their own: those that wait (a long poll, an EXPRESS run to its
# end) and those whose work grows with their input (parsing a definition, TestState's JSONata,
# long pages). The rest, the calls a pipeline makes all the time, are answered on the event loop,
# where no other thread competes for the GIL: under many clients that competition cost more CPU
# than the answers. One of those that reaches a pipeline's JSONata (or JSONPath beyond plain
# steps) moves to a thread then (loop_calls.py): the expression runs in a worker process.
THREADED_TARGETS = frozenset(
    "AWSStepFunctions." + name
    for name in (
        "GetActivityTask",
        "StartSyncExecution",
        "CreateStateMachine",
        "UpdateStateMachine",
        "ValidateStateMachineDefinition",
        "TestState",
        "GetExecutionHistory",
        "ListExecutions",
        "RedriveExecution",
    )
)
_MAX_HEAD = MAX_LINE + MAX_HEADERS * 1024
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# (service, X-Amz-Target, body) -> (HTTP status, body): server.handle
Handler = Callable[[Backend, str | None, bytes], tuple[int, bytes]]


@dataclass
class Front:
    """What every connection of one engine process shares."""

    svc: Backend
    handle: Handler
    executor: Executor
    loopback: Callable[[str], bool]
    idle_s: float = 120.0
    # a call answered on the loop that takes longer is logged: it held up every other client
    slow_s: float = 1.0


@dataclass
class _Request:
    method: str
    path: str
    headers: HTTPMessage
    body: bytes
    keep_alive: bool


class _Refused(Exception):
    """A request the connection cannot go on after: answer it, then close."""

    def __init__(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        super().__init__(status)
        self.status, self.body, self.content_type = status, body, content_type


class Connection(asyncio.Protocol):
    """Requests are parsed from the buffer as they complete; one is answered at a time.

    A connection waiting for its next request (or still sending one) for longer than
    `front.idle_s` is closed: that also ends clients that send half a request and stop.
    """

    def __init__(self, front: Front) -> None:
        self.front = front
        self.buffer = bytearray()
        self.busy = False  # a request runs on a thread; the next ones wait in the buffer
        self.closed = False
        self.continued = False
        self.peer = "-"
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "-"
        self._wait_for_request()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._serve()

    def eof_received(self) -> bool:
        self.closed = True
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.idle is not None:
            self.idle.cancel()

    def _serve(self) -> None:
        while not self.busy and not self.closed:
            try:
                request = self._next_request()
            except _Refused as refused:
                self._write(refused.status, refused.body, refused.content_type)
                self._close()
                return
            if request is None:
                return
            if self.idle is not None:
                self.idle.cancel()
            self._answer(request)

    def _answer(self, request: _Request) -> None:
        if request.method == "GET":  # a health probe for supervisors and tests: no auth, no data
            self._finish(request, 200, b'{"status":"ok"}')
            return
        try:
            self._authorize(request)
        except ApiError as exc:
            self._write(*exc.to_wire())
            self._close()
            return
        target = request.headers.get("X-Amz-Target")
        if target not in THREADED_TARGETS:
            answer = self._handle_on_loop(target, request.body)
            if answer is not None:
                self._finish(request, *answer)
                return
        self.busy = True
        future = asyncio.get_running_loop().run_in_executor(
            self.front.executor, self._handle_on_thread, target, request.body
        )
        future.add_done_callback(lambda done: self._waited(request, done))

    def _handle_on_loop(self, target: str | None, body: bytes) -> tuple[int, bytes] | None:
        """The answer, or None when the call reached work that may take long (loop_calls.py)."""
        began = time.monotonic()
        entered = loop_call_began.set(began)
        try:
            return self.front.handle(self.front.svc, target, body)
        except MoveToThread:  # raised before the call wrote anything: it runs again on a thread
            return None
        finally:
            loop_call_began.reset(entered)
            took = time.monotonic() - began
            if took > self.front.slow_s:  # every other client of this process waited that long
                log.warning("-: %s from %s held the event loop for %.1f s", target, self.peer, took)

    def _handle_on_thread(self, target: str | None, body: bytes) -> tuple[int, bytes]:
        # a long poll asks whether its poller is still there
        client_connected.set(lambda: not self.closed)
        return self.front.handle(self.front.svc, target, body)

    def _waited(self, request: _Request, done: asyncio.Future[tuple[int, bytes]]) -> None:
        self.busy = False
        try:
            status, body = done.result()
        except Exception:  # handle() answers every failure itself; this is the executor failing
            log.exception("-: a call from %s failed on its thread", self.peer)
            status, body = InternalFailure("The engine failed to process the request.").to_wire()
        self._finish(request, status, body)
        if not self.busy:
            self._serve()

    def _finish(self, request: _Request, status: int, body: bytes) -> None:
        if self.closed:  # the client left while its call ran on a thread: nobody to answer
            return
        self._write(status, body)
        if request.keep_alive:
            self._wait_for_request()
        else:
            self._close()

    def _authorize(self, request: _Request) -> None:
        keys = self.front.svc.config.access_keys
        if keys:
            host = request.headers.get("Host", "")
            verify_request(keys, "POST", host, request.path, dict(request.headers.items()), request.body)
        elif not self.front.loopback(self.peer):
            raise AccessDeniedException("Set ENGINE_ACCESS_KEYS to accept calls from other hosts.")

    def _next_request(self) -> _Request | None:
        """The next whole request in the buffer (taken out of it), None while it is incomplete."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD:
                raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, b"Request head too large")
            return None
        line_end = self.buffer.find(b"\r\n")
        words = bytes(self.buffer[:line_end]).decode("iso-8859-1").split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
            raise _Refused(HTTPStatus.BAD_REQUEST, b"Bad request syntax")
        method, path, version = words
        if method not in ("GET", "POST"):
            raise _Refused(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({method!r})".encode())
        try:
            headers = read_headers(io.BytesIO(bytes(self.buffer[line_end + 2 : end + 4])), HTTPMessage)
        except (LineTooLong, HTTPException) as exc:
            raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, str(exc).encode()) from exc
        length = _content_length(headers)
        if len(self.buffer) < end + 4 + length:
            if headers.get("Expect", "").lower() == "100-continue" and not self.continued:
                self.continued = True
                self._send(_CONTINUE)
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.continued = False
        connection = headers.get("Connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        return _Request(
            method, "/" + path.lstrip("/") if path.startswith("//") else path, headers, body, keep_alive
        )

    def _wait_for_request(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(self.front.idle_s, self._close)

    def _write(self, status: int, body: bytes, content_type: str = CONTENT_TYPE) -> None:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        self._send(response_head(status, reason, SERVER, content_type, len(body)) + body)

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _content_length(headers: HTTPMessage) -> int:
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError as exc:
        raise _Refused(
            *SerializationException("Content-Length is not a number").to_wire(), CONTENT_TYPE
        ) from exc
    if not 0 <= length <= MAX_BODY:
        message = f"Request body must be at most {MAX_BODY} bytes"
        raise _Refused(*SerializationException(message).to_wire(), CONTENT_TYPE)
    return length
