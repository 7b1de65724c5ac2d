"""Step logs in Redis: written in batches, read from a cursor, followed live, bounded, kept after the end."""

from __future__ import annotations

import threading

from statemachines.step_logs import (
    CUT_MARKER,
    StepLogReader,
    StepLogWriter,
    meta_key,
    parse_log_id,
    stream_key,
)


def test_lines_are_read_in_order_from_a_cursor(redis_client):
    writer = StepLogWriter.start(redis_client, "run-1", "test", worker="host/1/0")
    for number in range(10):
        writer.write_line(f"line {number}")
    writer.flush()
    reader = StepLogReader(redis_client)
    lines, cursor, finished = reader.read("run-1", "test", after="0")
    assert lines == [f"line {n}" for n in range(10)] and not finished
    writer.write_line("more")
    writer.finish("succeeded", 0)
    lines, cursor, finished = reader.read("run-1", "test", after=cursor)
    assert lines == ["more"] and finished
    assert reader.read("run-1", "test", after=cursor) == ([], cursor, True)


def test_attempts_are_numbered_and_listed_per_run(redis_client):
    first = StepLogWriter.start(redis_client, "run:with:colons", "build")
    first.finish("failed", 2)
    second = StepLogWriter.start(redis_client, "run:with:colons", "build")
    other = StepLogWriter.start(redis_client, "run:with:colons", "lint/py 3")
    assert (first.attempt, second.attempt, other.attempt) == (1, 2, 1)
    assert parse_log_id(second.log_id) == ("run:with:colons", "build", 2)
    reader = StepLogReader(redis_client)
    logs = reader.list_logs("run:with:colons")
    assert [(m["step"], m["attempt"]) for m in logs] == [("build", 1), ("build", 2), ("lint/py 3", 1)]
    assert logs[0]["finished"] is True and logs[0]["exit_code"] == 2 and logs[0]["status"] == "failed"
    assert reader.meta("run:with:colons", "build")["attempt"] == 2  # the latest attempt
    assert reader.meta("run:with:colons", "build", attempt=1)["exit_code"] == 2
    assert reader.meta("run:with:colons", "missing") is None


def test_a_long_log_keeps_its_tail_and_marks_the_cut(redis_client):
    writer = StepLogWriter.start(redis_client, "run-2", "big", max_bytes=16 * 1024, batch_bytes=1024)
    for number in range(5000):
        writer.write_line(f"{number:08d} " + "x" * 40)
    writer.finish("succeeded", 0)
    assert redis_client.memory_usage(stream_key(writer.log_id)) < 64 * 1024
    lines, _, finished = StepLogReader(redis_client).read("run-2", "big", limit=100_000)
    assert finished and lines[0] == CUT_MARKER.format(
        cut=writer.cut_bytes, kept=writer.bytes - writer.cut_bytes
    )
    assert lines[-1].startswith("00004999 ") and 200 < len(lines) < 500
    numbers = [int(line[:8]) for line in lines[1:]]
    assert numbers == list(range(numbers[0], 5000))  # one contiguous tail
    meta = StepLogReader(redis_client).meta("run-2", "big")
    assert meta["cut_bytes"] == writer.cut_bytes > 0 and meta["lines"] == 5000


def test_a_reader_that_kept_up_sees_no_cut_marker(redis_client):
    writer = StepLogWriter.start(redis_client, "run-3", "s", max_bytes=4096, batch_bytes=1024)
    reader = StepLogReader(redis_client)
    cursor, seen = "0", []
    for number in range(400):
        writer.write_line(f"{number:05d}" + "y" * 20)
        if number % 20 == 19:
            writer.flush()
            lines, cursor, _ = reader.read("run-3", "s", after=cursor)
            seen += lines
    writer.finish("succeeded", 0)
    lines, cursor, finished = reader.read("run-3", "s", after=cursor)
    seen += lines
    assert finished and [int(line[:5]) for line in seen] == list(range(400))


def test_follow_waits_for_new_lines(redis_client):
    writer = StepLogWriter.start(redis_client, "run-4", "live")
    writer.write_line("first")
    writer.flush()
    reader = StepLogReader(redis_client)
    _, cursor, _ = reader.read("run-4", "live")
    timer = threading.Timer(0.2, lambda: (writer.write_line("second"), writer.flush()))
    timer.start()
    lines, cursor, finished = reader.follow("run-4", "live", after=cursor, block_ms=3000)
    timer.join()
    assert lines == ["second"] and not finished


def test_logs_expire_after_the_retention(redis_client):
    writer = StepLogWriter.start(redis_client, "run-5", "s", retention_seconds=120)
    writer.write_line("x")
    writer.finish("succeeded", 0)
    for key in (stream_key(writer.log_id), meta_key(writer.log_id)):
        assert 0 < redis_client.ttl(key) <= 120


def test_over_long_lines_are_cut(redis_client):
    writer = StepLogWriter.start(redis_client, "run-6", "s")
    writer.write_line("z" * 100_000)
    writer.finish("succeeded", 0)
    lines, _, _ = StepLogReader(redis_client).read("run-6", "s")
    assert len(lines) == 1 and len(lines[0]) < 17_000 and lines[0].endswith("bytes]")
