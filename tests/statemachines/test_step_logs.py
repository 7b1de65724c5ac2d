"""Step logs tell the truth about faults: a lost worker's attempt ends, a Redis outage leaves a mark."""

from __future__ import annotations

import contextlib

import redis

from statemachines.step_logs import LOST, StepLogReader, StepLogWriter, end_lost_attempts
from tests.harness.redis_server import RedisServer


def test_an_attempt_whose_worker_was_lost_ends_when_its_retry_starts(redis_client):
    first = StepLogWriter.start(redis_client, "run-1", "test", worker="host/1/0")
    first.write_line("working")
    first.flush()  # then the worker is SIGKILLed: no finish()
    second = StepLogWriter.start(redis_client, "run-1", "test", worker="host/2/0")
    reader = StepLogReader(redis_client)

    lost = reader.meta("run-1", "test", attempt=1)
    assert lost is not None and lost["finished"] and lost["status"] == LOST
    lines, _, finished = reader.read("run-1", "test", attempt=1)
    assert lines[0] == "working" and "worker was lost" in lines[-1] and finished
    assert reader.meta("run-1", "test", attempt=second.attempt)["status"] == "running"


def test_an_attempt_its_worker_finished_keeps_its_status(redis_client):
    first = StepLogWriter.start(redis_client, "run-2", "test")
    first.finish("failed", 2)
    StepLogWriter.start(redis_client, "run-2", "test")
    assert StepLogReader(redis_client).meta("run-2", "test", attempt=1)["status"] == "failed"
    assert end_lost_attempts(redis_client, "run-2", "test", "its task timed out") == ["run-2:test:2"]
    assert end_lost_attempts(redis_client, "run-2", "test", "its task timed out") == []  # once


def test_output_refused_while_redis_was_away_leaves_a_mark_where_it_was(tmp_path):
    server = RedisServer(tmp_path, "--appendfsync", "always").start()
    try:
        client = server.client()
        writer = StepLogWriter.start(client, "run-3", "build")
        writer.write_line("before")
        writer.flush()
        server.kill()
        for number in range(3):
            writer.write_line(f"during {number}")
            writer.flush()  # refused: Redis is away
        server.start()
        for _ in range(3):  # the client reconnects: its first command after a restart may fail
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
        writer.write_line("after")
        writer.finish("succeeded", 0)
        lines, _, finished = StepLogReader(client).read("run-3", "build")
    finally:
        server.stop()
    assert lines[0] == "before" and lines[-1] == "after" and finished
    (mark,) = lines[1:-1]
    assert "3 line(s)" in mark and "lost here: Redis was unavailable" in mark
