"""Finished step logs in the blob store: the worker moves a log there when its step ends; readers follow it.

A live log is a Redis stream (statemachines/step_logs.py). When its step ends the worker copies every
entry the stream holds, with its stream id, to one blob and deletes the stream in the same transaction
that marks the meta hash `archive=<blob key>`: Redis keeps only the small meta hash, however big the
log was. A reader's cursor is a stream id either way, so a follower that started on Redis goes on in
the blob where it left off.

    blob  logs/<trusted|untrusted>/<run_id>/<step>/<attempt>.jsonl
          one JSON object a line: {"id": "<stream id>", "t": "line\\nline…"} or {"id": …, "end": "1"}
    stepline:log-archive   Sorted set: blob key -> when retention deletes it (epoch seconds)

An attempt whose worker was lost (step_logs.end_lost_attempts) is moved by the worker of the step's next
attempt, once that ends (workers/build_outputs.archive_lost); the last attempt of a step that is not
retried stays in Redis until it expires. A log is moved once: a lost worker that comes back later never
replaces the blob with what it wrote since. The trust part of the key lets IAM keep an untrusted worker's writes on its own side
(statemachines/aws/stepline.yaml). `LogArchive.trim` is retention: it deletes the blobs whose time
has come, in bounded batches.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis

from statemachines.blob_store import BlobStore
from statemachines.errors import BlobError
from statemachines.redis_text import redis_text
from statemachines.step_logs import meta_key, parse_log_id, stream_id_before, stream_key, use_archive

log = logging.getLogger(__name__)

ARCHIVED_KEY = "stepline:log-archive"
ARCHIVE_FIELD = "archive"  # the meta hash's field naming the blob
READ_CHUNK = 512  # stream entries per XRANGE while archiving
TRIM_BATCH = 500


def use_blob_store(store: BlobStore) -> None:
    """Name the process's blob store once at start-up, so every StepLogReader finds finished logs in it."""
    use_archive(lambda client: LogArchive(client, store))


def archive_key(log_id: str, trusted: bool) -> str:
    run_id, step, attempt = parse_log_id(log_id)
    side = "trusted" if trusted else "untrusted"
    return f"logs/{side}/{quote(run_id, safe='')}/{quote(step, safe='')}/{attempt}.jsonl"


class LogArchive:
    """Moves finished logs out of Redis into the blob store, reads them back, and forgets them in time."""

    def __init__(self, client: redis.Redis, store: BlobStore) -> None:
        self.redis = client
        self.store = store

    def archive(self, log_id: str, trusted: bool, retention_seconds: int) -> str | None:
        """Move a finished log's stream to a blob; its key, or None when there was nothing to move."""
        if self.redis.hexists(meta_key(log_id), ARCHIVE_FIELD):  # moved already (a lost attempt)
            return None
        stream = stream_key(log_id)
        key = archive_key(log_id, trusted)
        with tempfile.NamedTemporaryFile("w+b", prefix="log-", suffix=".jsonl") as spool:
            entries = 0
            cursor = "-"
            while batch := self.redis.xrange(stream, min=cursor, count=READ_CHUNK):
                for entry, fields in batch:
                    record = {"id": redis_text(entry)} | {
                        redis_text(k): redis_text(v) for k, v in (fields or {}).items()
                    }
                    spool.write(json.dumps(record).encode() + b"\n")
                    entries += 1
                cursor = f"({redis_text(batch[-1][0])}"
            if not entries:
                return None
            spool.flush()
            self.store.put_file(key, Path(spool.name))
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(meta_key(log_id), mapping={ARCHIVE_FIELD: key})
        pipe.expire(meta_key(log_id), retention_seconds)
        pipe.delete(stream)
        pipe.zadd(ARCHIVED_KEY, {key: time.time() + retention_seconds})
        pipe.execute()
        return key

    def read(self, key: str, after: str = "0", limit: int = 1000) -> tuple[list[str], str, bool]:
        """Lines after the cursor, as StepLogReader.read_log gives them; the last item says the log ended."""
        lines: list[str] = []
        cursor, ended = after or "0", False
        for record in self._records(key):
            if not stream_id_before(cursor, record["id"]):
                continue
            if len(lines) >= limit:
                return lines, cursor, False
            cursor = record["id"]
            ended = ended or record.get("end") == "1"
            if "t" in record:
                lines.extend(str(record["t"]).split("\n"))
        return lines, cursor, True

    def _records(self, key: str) -> Iterator[dict[str, Any]]:
        try:
            blob = self.store.open(key)
        except BlobError as exc:
            log.warning("log %s is gone from the blob store: %s", key, exc.reason)
            return
        with blob:
            for raw in blob.iter_lines() if hasattr(blob, "iter_lines") else blob:
                if raw.strip():
                    yield json.loads(raw)

    def trim(self, now: float | None = None, batch: int = TRIM_BATCH, limit: int = 10 * TRIM_BATCH) -> int:
        """Delete up to `limit` archived logs whose retention ended; returns how many went."""
        deleted = 0
        cutoff = time.time() if now is None else now
        while deleted < limit:
            keys = [
                redis_text(k)
                for k in self.redis.zrangebyscore(
                    ARCHIVED_KEY, "-inf", cutoff, 0, min(batch, limit - deleted)
                )
            ]
            if not keys:
                break
            self.store.delete(keys)
            self.redis.zrem(ARCHIVED_KEY, *keys)
            deleted += len(keys)
        if deleted:
            log.info("retention: %d archived step log(s) deleted", deleted)
        return deleted

    def usage(self) -> int:
        """How many archived logs the blob store holds (for /metrics)."""
        return int(self.redis.zcard(ARCHIVED_KEY))
