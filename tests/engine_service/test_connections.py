"""Client connections: idle ones are closed without socket timeouts, and each gives its Redis connection back."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from statemachines.engine.config import EngineConfig
from statemachines.engine.idle_connections import IdleConnections
from statemachines.engine.server import make_server
from statemachines.engine.service import Service
from tests.engine_service.conftest import make_client


def _request(target: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        "POST / HTTP/1.1\r\nHost: engine\r\nContent-Type: application/x-amz-json-1.0\r\n"
        f"X-Amz-Target: AWSStepFunctions.{target}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _answer(conn: socket.socket) -> tuple[bytes, bytes]:
    """(status line, body) of one HTTP answer read off `conn`."""
    reader = conn.makefile("rb")
    status = reader.readline()
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)


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


def test_only_connections_idle_past_the_limit_are_shut_down() -> None:
    idle = IdleConnections(limit_s=10)
    waiting, waiting_peer = socket.socketpair()
    busy, busy_peer = socket.socketpair()
    fresh, fresh_peer = socket.socketpair()
    with waiting, waiting_peer, busy, busy_peer, fresh, fresh_peer:
        idle.waiting(waiting)
        idle.waiting(busy)
        idle.working(busy)  # a long poll or a slow answer is not idle
        now = time.monotonic()
        idle.waiting(fresh)
        assert idle.close_idle(now + 5) == 0
        assert idle.close_idle(now + 11) == 2  # `waiting` and `fresh`: both past 10 s by then
        assert _closed_by_peer(waiting_peer, 1)
        assert _closed_by_peer(fresh_peer, 1)
        assert not _closed_by_peer(busy_peer, 0.2)
        assert idle.close_idle(now + 100) == 0  # each is shut down once


@pytest.fixture
def engine_in_thread(redis_url: str) -> Iterator[tuple[int, Service]]:
    """The engine's HTTP server in this process with an idle limit of 0.5 s."""
    svc = Service(EngineConfig(port=0, redis_url=redis_url, engine_id="connections-test"))
    idle = IdleConnections(limit_s=0.5)
    server = make_server(svc, idle)
    idle.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], svc
    finally:
        server.shutdown()
        idle.stop()
        server.server_close()
        svc.store.close()


def test_an_idle_connection_is_closed_but_a_long_poll_is_not(engine_in_thread: tuple[int, Service]) -> None:
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


def test_a_client_that_leaves_gives_its_redis_connection_back(
    engine_in_thread: tuple[int, Service], redis_client: redis.Redis
) -> None:
    port, _ = engine_in_thread

    def engine_connections() -> int:
        return sum(1 for c in redis_client.client_list() if c.get("cmd") != "client|list")

    def serve_wave() -> int:
        """Twelve clients at once, each with one call; Redis connections while they are there."""
        conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
        try:
            for conn in conns:
                conn.sendall(_request("ListActivities", {}))
                assert _answer(conn)[0].startswith(b"HTTP/1.1 200")
            return engine_connections()
        finally:
            for conn in conns:
                conn.close()

    before = engine_connections()
    during_first = serve_wave()
    # each connection's thread keeps one Redis connection while its client stays
    assert during_first >= before + 12
    time.sleep(0.5)  # the threads of the first clients end
    # they gave their connections back to the pool: the next clients reuse them, none leaked
    assert serve_wave() <= during_first + 1


def test_a_long_poll_waits_past_a_blocking_slice(engine_in_thread: tuple[int, Service]) -> None:
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
