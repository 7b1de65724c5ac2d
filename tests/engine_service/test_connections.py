"""Client connections on the event loop: idle ones closed, long polls on threads, requests in order."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from statemachines.engine.backend import Backend
from statemachines.engine.config import EngineConfig
from statemachines.engine.connection import Connection, Front
from statemachines.engine.server import handle, is_loopback
from tests.engine_service.conftest import make_client, read_http_answer


def _request(target: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        "POST / HTTP/1.1\r\nHost: engine\r\nContent-Type: application/x-amz-json-1.0\r\n"
        f"X-Amz-Target: AWSStepFunctions.{target}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _answer(conn: socket.socket) -> tuple[bytes, bytes]:
    """(status line, body) of one HTTP answer read off `conn`."""
    return read_http_answer(conn.makefile("rb"))


def _activity_machine(sfn: Any, prefix: str) -> tuple[str, str]:
    """An activity and a state machine whose one Task state waits on it."""
    activity = sfn.create_activity(name=f"{prefix}-{time.time_ns()}")["activityArn"]
    definition = {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": activity, "End": True}}}
    machine = sfn.create_state_machine(
        name=f"{prefix}-{time.time_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/stepline",
    )["stateMachineArn"]
    return activity, machine


def _closed_by_peer(conn: socket.socket, within_s: float) -> bool:
    conn.settimeout(within_s)
    try:
        return conn.recv(1) == b""
    except TimeoutError:
        return False


@pytest.fixture
def engine_in_thread(redis_url: str) -> Iterator[tuple[int, Front]]:
    """The engine's event loop in a thread of this process, closing connections idle for 0.5 s."""
    svc = Backend(EngineConfig(port=0, redis_url=redis_url, engine_id="connections-test"))
    executor = ThreadPoolExecutor(max_workers=20)
    front = Front(svc, handle, executor, is_loopback, idle_s=0.5)
    loop = asyncio.new_event_loop()
    sock = socket.create_server(("127.0.0.1", 0))
    server = loop.run_until_complete(loop.create_server(lambda: Connection(front), sock=sock))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], front
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
        executor.shutdown(wait=False, cancel_futures=True)
        svc.store.close()


def test_an_idle_connection_is_closed_but_a_long_poll_is_not(engine_in_thread: tuple[int, Front]) -> None:
    port, _ = engine_in_thread
    sfn = make_client(f"http://127.0.0.1:{port}")
    activity, machine = _activity_machine(sfn, "idle")
    with (
        socket.create_connection(("127.0.0.1", port)) as quiet,
        socket.create_connection(("127.0.0.1", port)) as slow,
        socket.create_connection(("127.0.0.1", port)) as polling,
    ):
        slow.sendall(b"POST / HTTP/1.1\r\nHost: engine\r\n")  # and never the rest
        polling.sendall(_request("GetActivityTask", {"activityArn": activity, "workerName": "w"}))
        assert _closed_by_peer(quiet, 5)
        assert _closed_by_peer(slow, 5)
        time.sleep(1)  # the poll has now waited twice the idle limit
        sfn.start_execution(stateMachineArn=machine, input='{"n": 1}')
        status, body = _answer(polling)
        assert status.startswith(b"HTTP/1.1 200")
        assert json.loads(json.loads(body)["input"]) == {"n": 1}
        # answered, it waits for its next request like any other: closed after the limit
        assert _closed_by_peer(polling, 5)


def test_many_clients_share_the_event_loops_redis_connection(
    engine_in_thread: tuple[int, Front], redis_client: redis.Redis
) -> None:
    port, _ = engine_in_thread

    def engine_connections() -> int:
        return sum(1 for c in redis_client.client_list() if c.get("cmd") != "client|list")

    before = engine_connections()
    conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
    try:
        for conn in conns:
            conn.sendall(_request("ListActivities", {}))
        for conn in conns:
            assert _answer(conn)[0].startswith(b"HTTP/1.1 200")
        # answered on the event loop, on its one connection: not one Redis connection per client
        assert engine_connections() <= before + 1
    finally:
        for conn in conns:
            conn.close()


def test_requests_sent_at_once_on_one_connection_are_answered_in_order(
    engine_in_thread: tuple[int, Front],
) -> None:
    port, _ = engine_in_thread
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.settimeout(10)
        names = [f"pipelined-{time.time_ns()}-{n}" for n in range(3)]
        conn.sendall(b"".join(_request("CreateActivity", {"name": name}) for name in names))
        reader = conn.makefile("rb")
        for name in names:
            status, body = read_http_answer(reader)
            assert status.startswith(b"HTTP/1.1 200")
            assert json.loads(body)["activityArn"].endswith(":" + name)


def test_a_long_poll_waits_past_a_blocking_slice(engine_in_thread: tuple[int, Front]) -> None:
    """A poll blocks in Redis in 5 s slices: no socket limit may cut one short (redis-py's default is 5 s)."""
    port, _ = engine_in_thread
    sfn = make_client(f"http://127.0.0.1:{port}")
    activity, machine = _activity_machine(sfn, "long")
    with socket.create_connection(("127.0.0.1", port)) as polling:
        polling.sendall(_request("GetActivityTask", {"activityArn": activity, "workerName": "w"}))
        time.sleep(6.5)
        sfn.start_execution(stateMachineArn=machine, input='{"late": true}')
        polling.settimeout(10)
        status, body = _answer(polling)
    assert status.startswith(b"HTTP/1.1 200")
    assert json.loads(json.loads(body)["input"]) == {"late": True}


def test_a_call_that_holds_the_event_loop_is_logged(
    engine_in_thread: tuple[int, Front], caplog: pytest.LogCaptureFixture
) -> None:
    port, front = engine_in_thread
    front.slow_s = 0.0  # every call answered on the loop counts as slow now
    with socket.create_connection(("127.0.0.1", port)) as conn, caplog.at_level("WARNING"):
        conn.sendall(_request("ListActivities", {}))
        assert _answer(conn)[0].startswith(b"HTTP/1.1 200")
    assert "AWSStepFunctions.ListActivities from 127.0.0.1 held the event loop" in caplog.text
