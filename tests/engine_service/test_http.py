"""HTTP/1.1 as the engine speaks it: keep-alive, HTTP/1.0, Expect: 100-continue, and requests it refuses."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from statemachines.engine.server import is_loopback

from .conftest import EngineProcess, read_http_answer

LIST = b'{"maxResults": 1}'


def _post(body: bytes, *headers: str, version: str = "HTTP/1.1") -> bytes:
    head = [f"POST / {version}", "Host: engine", "X-Amz-Target: AWSStepFunctions.ListActivities"]
    head += ["Content-Type: application/x-amz-json-1.0", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _read_answer(reader: Any) -> tuple[int, bytes]:
    """(status code, body) of the next answer; (0, b"") once the engine has closed."""
    status_line, body = read_http_answer(reader)
    return (int(status_line.split()[1]), body) if status_line else (0, b"")


def _exchange(engine: EngineProcess, data: bytes, answers: int = 1) -> tuple[list[tuple[int, bytes]], bool]:
    """The answers to `data`, and whether the engine closed the connection after them."""
    with socket.create_connection(("127.0.0.1", engine.port), timeout=10) as conn:
        conn.sendall(data)
        reader = conn.makefile("rb")
        got = [_read_answer(reader) for _ in range(answers)]
        conn.settimeout(1)
        try:
            closed = reader.read(1) == b""
        except TimeoutError:
            closed = False
    return got, closed


def test_keep_alive_answers_several_requests_on_one_connection(engine: EngineProcess) -> None:
    (first, second), closed = _exchange(engine, _post(LIST) + _post(LIST), answers=2)
    assert first[0] == second[0] == 200 and "activities" in json.loads(second[1])
    assert not closed


def test_connection_close_and_http_1_0_get_their_answer_then_the_end(engine: EngineProcess) -> None:
    for request in (_post(LIST, "Connection: close"), _post(LIST, version="HTTP/1.0")):
        [(status, body)], closed = _exchange(engine, request)
        assert status == 200 and "activities" in json.loads(body)
        assert closed


def test_expect_100_continue_is_answered_before_the_body(engine: EngineProcess) -> None:
    head, _, body = _post(LIST, "Expect: 100-continue").partition(b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", engine.port), timeout=10) as conn:
        conn.sendall(head + b"\r\n\r\n")
        reader = conn.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 100")
        assert reader.readline() == b"\r\n"
        conn.sendall(body)
        status, answer = _read_answer(reader)
    assert status == 200 and "activities" in json.loads(answer)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"POST / HTTP/2.0\r\nHost: x\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"POST / HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % n for n in range(150)) + b"\r\n", 431),
    ],
)
def test_malformed_requests_are_refused_and_closed(
    engine: EngineProcess, request_bytes: bytes, status: int
) -> None:
    [(got, _)], closed = _exchange(engine, request_bytes)
    assert got == status
    assert closed
    # and the engine goes on answering everybody else
    [(ok, _)], _ = _exchange(engine, _post(LIST))
    assert ok == 200


def test_a_request_head_that_never_ends_is_refused(engine: EngineProcess) -> None:
    # refused once the head outgrows the limit, with what is unread still in flight: the client
    # reads the 431, or a reset if the close overtook it; either way nothing more is taken in
    try:
        [(status, _)], closed = _exchange(engine, b"POST / HTTP/1.1\r\n" + b"X-Pad: " + b"b" * 200_000)
    except ConnectionResetError:
        status, closed = 431, True
    assert status == 431 and closed
    [(ok, _)], _ = _exchange(engine, _post(LIST))
    assert ok == 200


def test_a_client_without_a_known_address_is_not_taken_for_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("10.1.2.3")
    assert not is_loopback("-")  # what a connection without a peer name reports
