"""Finished logs leave Redis for the blob store; readers follow them there with the same cursors."""

from __future__ import annotations

from statemachines.blob_store import open_blob_store
from statemachines.log_archive import ARCHIVED_KEY, LogArchive
from statemachines.step_logs import CUT_MARKER, StepLogReader, StepLogWriter, stream_key


def _writer(redis_client, **options):
    return StepLogWriter.start(redis_client, "run-1", "build", worker="w1", batch_bytes=1024, **options)


def test_a_follower_goes_on_in_the_blob_where_it_left_off_in_redis(redis_client, blob_settings):
    archive = LogArchive(redis_client, open_blob_store(blob_settings))
    reader = StepLogReader(redis_client, archive)
    writer = _writer(redis_client)
    for n in range(300):
        writer.write_line(f"line {n} " + "x" * 40)
    writer.flush()
    first, cursor, finished = reader.read("run-1", "build", limit=50)
    assert first[0].startswith("line 0 ") and not finished
    for n in range(300, 400):
        writer.write_line(f"line {n}")
    writer.finish("succeeded", 0)

    key = archive.archive(writer.log_id, trusted=True, retention_seconds=3600)
    assert key == "logs/trusted/run-1/build/1.jsonl"
    assert not redis_client.exists(stream_key(writer.log_id))  # Redis holds only the meta now
    rest, end = [], cursor
    while True:
        lines, end, finished = reader.read("run-1", "build", after=end, limit=100)
        rest += lines
        if finished:
            break
    assert first + rest == [f"line {n} " + "x" * 40 for n in range(300)] + [
        f"line {n}" for n in range(300, 400)
    ]
    whole, _, finished = reader.read("run-1", "build")
    assert finished and len(whole) == 400
    assert reader.meta("run-1", "build")["status"] == "succeeded"
    assert reader.read("run-1", "build", after=end) == ([], end, True)


def test_a_cut_log_is_archived_as_redis_kept_it_and_retention_deletes_it(redis_client, blob_settings):
    store = open_blob_store(blob_settings)
    archive = LogArchive(redis_client, store)
    writer = _writer(redis_client, max_bytes=4096)
    for n in range(500):
        writer.write_line(f"line {n:04d} " + "y" * 30)
    writer.finish("failed", 1)
    key = archive.archive(writer.log_id, trusted=False, retention_seconds=60)
    assert key is not None and key.startswith("logs/untrusted/")
    lines, _, finished = StepLogReader(redis_client, archive).read("run-1", "build")
    assert finished and lines[0] == CUT_MARKER.format(
        cut=_cut(redis_client, writer), kept=_kept(redis_client, writer)
    )
    assert lines[-1] == "line 0499 " + "y" * 30

    assert archive.trim(now=0) == 0  # not yet due
    assert archive.trim(now=10**10) == 1
    assert store.stat(key) is None and redis_client.zcard(ARCHIVED_KEY) == 0


def _cut(redis_client, writer) -> int:
    return int(redis_client.hget(f"stepline:log:{writer.log_id}:meta", "cut_bytes"))


def _kept(redis_client, writer) -> int:
    return int(redis_client.hget(f"stepline:log:{writer.log_id}:meta", "bytes")) - _cut(redis_client, writer)


def test_a_log_is_moved_once_and_a_late_writer_never_replaces_it(redis_client, blob_settings):
    """A lost attempt is moved by the next attempt's worker; its own worker, back from a network split,
    must not overwrite the blob with the little it wrote since."""
    archive = LogArchive(redis_client, open_blob_store(blob_settings))
    reader = StepLogReader(redis_client, archive)
    writer = _writer(redis_client)
    writer.write_line("before it was lost")
    writer.finish("lost")
    assert archive.archive(writer.log_id, trusted=True, retention_seconds=3600)
    writer.write_line("written after it was moved")
    writer.flush()
    assert archive.archive(writer.log_id, trusted=True, retention_seconds=3600) is None
    lines, _, _ = reader.read("run-1", "build")
    assert lines == ["before it was lost"]
