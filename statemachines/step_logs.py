"""Step logs in Redis: the key layout, the writer a worker streams into and the reader the dashboard follows.

One log per (run_id, step, attempt); its id, which a step's result carries as `log`, is
`<run_id>:<step>:<attempt>` (step names never hold ':'; attempts count from 1 per run and step).

    stepline:log:<log id>           Stream of batches of whole lines: {"t": "line\\nline…"}; an entry
                                    {"end": "1"} closes it. Trimmed from the head to keep the tail.
    stepline:log:<log id>:meta      Hash: run_id, step, attempt, worker, started_ms, updated_ms, bytes,
                                    lines, cut_bytes, cut_until (id of the last entry cut), lost_bytes
                                    (Redis refused them), finished, status, exit_code, finished_ms
    stepline:logs:<run_id>          Sorted set of the run's log ids by start time (the dashboard's list)
    stepline:log-attempts:<run_id>  Hash step -> the last attempt number handed out

Every key expires `retention_seconds` after its last write, so a log outlives its step by that long.

Faults are written into the log itself, so a reader sees them where they happened: lines Redis
refused (it was away) leave one `GAP_MARKER` line where they were; an attempt whose worker was lost
(SIGKILL, a dead machine) is ended with status `lost` and a `LOST_MARKER` line, by the next
attempt's `start` or by `end_lost_attempts` (the reconciler, once the engine timed the task out).

Writer (a worker): `StepLogWriter.start(redis, run_id, step, worker=…)`, then `write_line(text)`,
`flush_if_due()` from time to time, `finish(status, exit_code)`. It holds at most `batch_bytes` in
memory; Redis holds at most about `max_bytes` per log: older batches are cut and the cut is marked.

Reader (the dashboard): `StepLogReader(redis)`
    list_logs(run_id) -> [meta, …]              every log of a run, oldest first
    meta(run_id, step, attempt=None) -> meta | None   attempt None: the latest attempt
    read(run_id, step, attempt=None, after="0", limit=1000) -> (lines, next_cursor, finished)
    follow(…, block_ms=5000) -> as read, but waits up to block_ms for new lines when there are none
    read_log(log_id, after, limit) -> as read, by the id a step result carries
A finished log moves to the blob store (statemachines/log_archive.py; meta field `archive`): a reader
given that archive reads it there, with the same cursors.
A cursor is opaque (a stream id; "0" is the start). `finished` is True once the step ended and
every line was read. A reader whose cursor falls before cut output first gets one marker line
(`CUT_MARKER`). Meta dicts: strings as written, with attempt, started_ms, updated_ms, bytes,
lines, cut_bytes, lost_bytes (int), finished (bool) and exit_code (int or None) typed, plus "log_id".
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import redis

from statemachines.redis_text import redis_text

log = logging.getLogger(__name__)

PREFIX = "stepline:log:"
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600
MAX_LINE_BYTES = 16 * 1024
CUT_MARKER = "[stepline] {cut} bytes of earlier output were cut; the log keeps the last {kept} bytes"
GAP_MARKER = (
    "[stepline] {lines} line(s), {bytes} bytes of output lost here: Redis was unavailable for {seconds:.0f} s"
)
LOST_MARKER = "[stepline] this attempt ended without its worker: {reason}"
LOST = "lost"  # the status of an attempt whose worker never reported its end
# end an attempt only if it is still running: a worker that finished it after all keeps its word
_END_LOST_SCRIPT = """
if redis.call('HGET', KEYS[1], 'finished') ~= '0' then return 0 end
redis.call('HSET', KEYS[1], 'finished', '1', 'status', ARGV[1], 'finished_ms', ARGV[2], 'exit_code', '')
redis.call('XADD', KEYS[2], '*', 't', ARGV[3])
redis.call('XADD', KEYS[2], '*', 'end', '1')
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[4]) end
return 1
"""
INT_FIELDS = (
    "attempt",
    "started_ms",
    "updated_ms",
    "finished_ms",
    "bytes",
    "lines",
    "cut_bytes",
    "lost_bytes",
)


def log_id(run_id: str, step: str, attempt: int) -> str:
    return f"{run_id}:{step}:{attempt}"


def parse_log_id(value: str) -> tuple[str, str, int]:
    """(run_id, step, attempt) of a log id; ValueError when it is not one."""
    run_id, step, attempt = value.rsplit(":", 2)
    return run_id, step, int(attempt)


def stream_key(log: str) -> str:
    return PREFIX + log


def meta_key(log: str) -> str:
    return PREFIX + log + ":meta"


def index_key(run_id: str) -> str:
    return f"stepline:logs:{run_id}"


def attempts_key(run_id: str) -> str:
    return f"stepline:log-attempts:{run_id}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_CURSOR = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")
_STREAM_ID_MAX = 2**64 - 1  # each part of a Redis stream id is an unsigned 64-bit number


def is_cursor(value: str) -> bool:
    """Whether `value` can be a read() cursor (a stream id); anything else makes Redis raise."""
    match = _CURSOR.fullmatch(value)
    return match is not None and all(int(part or 0) <= _STREAM_ID_MAX for part in match.groups())


def stream_id_before(left: str, right: str) -> bool:
    """Whether stream id `left` sorts before `right` ("0" is before everything)."""

    def parts(value: str) -> tuple[int, int]:
        ms, _, seq = value.partition("-")
        return int(ms or 0), int(seq or 0)

    return parts(left) < parts(right)


class StepLogWriter:
    """Appends one step's output to its log, keeping only the tail; thread-safe (a reader thread writes)."""

    def __init__(
        self,
        client: redis.Redis,
        run_id: str,
        step: str,
        attempt: int,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retention_seconds: int = DEFAULT_RETENTION_SECONDS,
        batch_bytes: int = 64 * 1024,
        flush_seconds: float = 0.2,
    ) -> None:
        self.redis = client
        self.run_id = run_id
        self.step = step
        self.attempt = attempt
        self.log_id = log_id(run_id, step, attempt)
        self.max_bytes = max_bytes
        self.retention = retention_seconds
        self.batch_bytes = min(batch_bytes, max(max_bytes // 4, 1024))
        self.flush_seconds = flush_seconds
        self.bytes = self.lines = self.cut_bytes = self.lost_bytes = 0
        self.cut_until = ""
        self.tail: deque[str] = deque(maxlen=40)  # the last lines, for a failure's cause
        self._batch: list[str] = []
        self._batch_size = 0
        self._batch_since = time.monotonic()
        self._kept: deque[tuple[str, int]] = deque()  # (entry id, bytes) of the batches in Redis
        self._gap: list[float] = [0, 0, 0.0]  # lines, bytes and monotonic start of output Redis refused
        self._kept_bytes = 0
        self._lock = threading.Lock()

    @classmethod
    def start(
        cls, client: redis.Redis, run_id: str, step: str, worker: str = "", **options: Any
    ) -> StepLogWriter:
        """A new log for the next attempt of `step` in `run_id`, listed in the run's index."""
        attempt = int(client.hincrby(attempts_key(run_id), step, 1))
        writer = cls(client, run_id, step, attempt, **options)
        started = now_ms()
        meta: dict[Any, Any] = {"run_id": run_id, "step": step, "attempt": attempt, "worker": worker}
        meta |= {"started_ms": started, "updated_ms": started, "bytes": 0, "lines": 0, "cut_bytes": 0}
        meta |= {"finished": 0, "status": "running"}
        pipe = client.pipeline(transaction=False)
        pipe.hset(meta_key(writer.log_id), mapping=meta)
        pipe.zadd(index_key(run_id), {writer.log_id: started})
        for key in (meta_key(writer.log_id), index_key(run_id), attempts_key(run_id)):
            pipe.expire(key, writer.retention)
        pipe.execute()
        # an earlier attempt still "running" lost its worker: the engine gave its task to us
        end_lost_attempts(client, run_id, step, "the worker was lost; a retry started", before=attempt)
        return writer

    def write_line(self, text: str) -> None:
        """Append one line (without its newline); long lines are cut to MAX_LINE_BYTES."""
        data = text.encode("utf-8", "replace")
        if len(data) > MAX_LINE_BYTES:
            text = data[:MAX_LINE_BYTES].decode("utf-8", "ignore") + f" [line cut at {MAX_LINE_BYTES} bytes]"
        with self._lock:
            self.tail.append(text)
            self._batch.append(text)
            self._batch_size += len(data) + 1
            self.bytes += len(data) + 1
            self.lines += 1
            if self._batch_size >= self.batch_bytes:
                self._flush_locked()

    def flush_if_due(self) -> None:
        """Send the pending lines when they have waited `flush_seconds` (the live view's latency)."""
        with self._lock:
            if self._batch and time.monotonic() - self._batch_since >= self.flush_seconds:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def finish(self, status: str, exit_code: int | None = None) -> None:
        """Flush, mark the log finished with the step's status, and wake every follower."""
        with self._lock:
            self._flush_locked()
            fields: dict[Any, Any] = {"finished": 1, "status": status, "finished_ms": now_ms()}
            fields["exit_code"] = "" if exit_code is None else exit_code
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset(meta_key(self.log_id), mapping=fields)
            pipe.xadd(stream_key(self.log_id), {"end": "1"})
            self._expire(pipe)
            try:
                pipe.execute()
            except redis.RedisError as exc:
                log.warning("%s: log %s not marked finished: %s", self.run_id, self.log_id, exc)

    def _flush_locked(self) -> None:
        self._batch_since = time.monotonic()
        if not self._batch:
            return
        size, lines = self._batch_size, len(self._batch)
        text = "\n".join(self._batch)
        self._batch, self._batch_size = [], 0
        lost_lines, lost_bytes, since = self._gap
        if lost_lines:  # where the refused output was: one line says so, before what follows it
            seconds = time.monotonic() - since
            text = (
                GAP_MARKER.format(lines=int(lost_lines), bytes=int(lost_bytes), seconds=seconds) + "\n" + text
            )
        try:
            self._append_locked(size, text)
        except redis.RedisError as exc:
            # a step must not fail or stall because the log store hiccupped: these lines are lost
            if not self.lost_bytes:
                log.warning("%s: log %s lost lines: %s", self.run_id, self.log_id, exc)
            self.lost_bytes += size
            self._gap = [lost_lines + lines, lost_bytes + size, since if lost_lines else time.monotonic()]
            return
        self._gap = [0, 0, 0.0]

    def _append_locked(self, size: int, text: str) -> None:
        entry = redis_text(self.redis.xadd(stream_key(self.log_id), {"t": text}))
        self._kept.append((entry, size))
        self._kept_bytes += size
        pipe = self.redis.pipeline(transaction=False)
        if self._kept_bytes > self.max_bytes:
            self._cut_head(pipe)
        meta: dict[Any, Any] = {"bytes": self.bytes, "lines": self.lines, "updated_ms": now_ms()}
        meta |= {"cut_bytes": self.cut_bytes, "cut_until": self.cut_until, "lost_bytes": self.lost_bytes}
        pipe.hset(meta_key(self.log_id), mapping=meta)
        self._expire(pipe)
        pipe.execute()

    def _cut_head(self, pipe: Any) -> None:
        # keep the tail: drop whole batches from the head until the log fits, and remember where
        while self._kept_bytes > self.max_bytes and len(self._kept) > 1:
            entry, size = self._kept.popleft()
            self._kept_bytes -= size
            self.cut_bytes += size
            self.cut_until = entry
        pipe.xtrim(stream_key(self.log_id), minid=self._kept[0][0])

    def _expire(self, pipe: Any) -> None:
        for key in (stream_key(self.log_id), meta_key(self.log_id), index_key(self.run_id)):
            pipe.expire(key, self.retention)
        pipe.expire(attempts_key(self.run_id), self.retention)


def end_lost_attempts(
    client: redis.Redis, run_id: str, step: str, reason: str, before: int | None = None
) -> list[str]:
    """End every attempt of `step` still marked running (those numbered below `before` only) as
    lost, with a LOST_MARKER line saying why; returns their log ids."""
    latest = client.hget(attempts_key(run_id), step)
    last = int(latest) if latest is not None else 0
    if before is not None:
        last = min(last, before - 1)
    if last < 1:
        return []
    ids = [log_id(run_id, step, attempt) for attempt in range(1, last + 1)]
    pipe = client.pipeline(transaction=False)
    for attempt_log in ids:
        pipe.hget(meta_key(attempt_log), "finished")
    replies = zip(ids, pipe.execute(), strict=True)
    running = [attempt_log for attempt_log, finished in replies if redis_text(finished or "") == "0"]
    script = client.register_script(_END_LOST_SCRIPT)
    retention = client.ttl(attempts_key(run_id))
    keep = retention if isinstance(retention, int) and retention > 0 else DEFAULT_RETENTION_SECONDS
    ended = []
    marker = LOST_MARKER.format(reason=reason)
    for attempt_log in running:
        keys = [meta_key(attempt_log), stream_key(attempt_log), index_key(run_id)]
        if script(keys=keys, args=[LOST, now_ms(), marker, keep]):
            ended.append(attempt_log)
    if ended:
        log.info("%s: step %s: attempt(s) %s ended as lost (%s)", run_id, step, ended, reason)
    return ended


class ArchivedLogs(Protocol):
    """Where a finished log is read once its stream moved (statemachines/log_archive.LogArchive)."""

    def read(self, key: str, after: str = "0", limit: int = 1000) -> tuple[list[str], str, bool]: ...


# the archive every reader of this process finds finished logs in; log_archive.use_blob_store sets it,
# so this module never imports the archive (which builds on its keys)
_PROCESS_ARCHIVE: list[Callable[[redis.Redis], ArchivedLogs]] = []


def use_archive(archive_of: Callable[[redis.Redis], ArchivedLogs]) -> None:
    """Name, once at start-up, how every StepLogReader of this process reaches finished logs."""
    _PROCESS_ARCHIVE[:] = [archive_of]


class StepLogReader:
    """Reads step logs for the dashboard: list a run's logs, page through one, follow it live."""

    def __init__(self, client: redis.Redis, archive: ArchivedLogs | None = None) -> None:
        self.redis = client
        if archive is None and _PROCESS_ARCHIVE:  # the process's store (log_archive.use_blob_store)
            archive = _PROCESS_ARCHIVE[0](client)
        self.archive = archive  # where finished logs move (statemachines/log_archive.LogArchive)

    def list_logs(self, run_id: str) -> list[dict[str, Any]]:
        ids = [redis_text(v) for v in self.redis.zrange(index_key(run_id), 0, -1)]
        pipe = self.redis.pipeline(transaction=False)
        for log in ids:
            pipe.hgetall(meta_key(log))
        return [_meta(log, raw) for log, raw in zip(ids, pipe.execute(), strict=True) if raw]

    def resolve(self, run_id: str, step: str, attempt: int | None = None) -> str | None:
        """The log id of that attempt (None: the latest), or None when the step has no log."""
        if attempt is None:
            latest = self.redis.hget(attempts_key(run_id), step)
            if latest is None:
                return None
            attempt = int(latest)
        return log_id(run_id, step, attempt)

    def meta(self, run_id: str, step: str, attempt: int | None = None) -> dict[str, Any] | None:
        log = self.resolve(run_id, step, attempt)
        return self.meta_of(log) if log else None

    def meta_of(self, log: str) -> dict[str, Any] | None:
        raw = self.redis.hgetall(meta_key(log))
        return _meta(log, raw) if raw else None

    def read(
        self, run_id: str, step: str, attempt: int | None = None, after: str = "0", limit: int = 1000
    ) -> tuple[list[str], str, bool]:
        log = self.resolve(run_id, step, attempt)
        if log is None:
            return [], after, False
        return self.read_log(log, after, limit)

    def read_log(self, log: str, after: str = "0", limit: int = 1000) -> tuple[list[str], str, bool]:
        """Lines after the cursor (whole batches, stopping once `limit` lines are reached)."""
        meta = self.meta_of(log)
        if meta is None:
            return [], after, False
        lines: list[str] = []
        if meta["cut_bytes"] and stream_id_before(after or "0", meta.get("cut_until") or "0"):
            lines.append(CUT_MARKER.format(cut=meta["cut_bytes"], kept=meta["bytes"] - meta["cut_bytes"]))
        if meta.get("archive") and self.archive is not None:  # finished: its stream moved to the blob store
            more, cursor, finished = self.archive.read(meta["archive"], after, limit)
            return lines + more, cursor, finished
        cursor, ended = after or "0", False
        while len(lines) < limit:
            low = f"({cursor}" if cursor != "0" else "-"
            entries: list[Any] = self.redis.xrange(stream_key(log), min=low, count=16) or []
            for entry, fields in entries:
                cursor = redis_text(entry)
                ended = ended or _field(fields, "end") == "1"
                text = _field(fields, "t")
                if text is not None:
                    lines.extend(text.split("\n"))
            if len(entries) < 16:
                break
        if not lines and meta["finished"] and self.archive is not None and self._moved(log):
            return self.read_log(log, after, limit)  # archived between the meta and the stream read
        return lines, cursor, bool(meta["finished"]) and (ended or not self._has_after(log, cursor))

    def _moved(self, log: str) -> bool:
        return bool(self.redis.hget(meta_key(log), "archive"))

    def follow(
        self,
        run_id: str,
        step: str,
        attempt: int | None = None,
        after: str = "0",
        limit: int = 1000,
        block_ms: int = 5000,
    ) -> tuple[list[str], str, bool]:
        """As read(), but when nothing is new wait up to `block_ms` for the next lines (XREAD BLOCK)."""
        lines, cursor, finished = self.read(run_id, step, attempt, after, limit)
        log = self.resolve(run_id, step, attempt)
        if lines or finished or log is None:
            return lines, cursor, finished
        self.redis.xread({stream_key(log): cursor if cursor != "0" else "0-0"}, count=1, block=block_ms)
        return self.read(run_id, step, attempt, cursor, limit)

    def _has_after(self, log: str, cursor: str) -> bool:
        low = f"({cursor}" if cursor != "0" else "-"
        return bool(self.redis.xrange(stream_key(log), min=low, count=1))


def _field(fields: dict[Any, Any], name: str) -> str | None:
    value = fields.get(name, fields.get(name.encode()))
    return None if value is None else redis_text(value)


def _meta(log: str, raw: dict[Any, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {redis_text(k): redis_text(v) for k, v in raw.items()}
    for name in INT_FIELDS:
        meta[name] = int(meta.get(name) or 0)
    meta["finished"] = meta.get("finished") == "1"
    code = meta.get("exit_code")
    meta["exit_code"] = int(code) if code not in (None, "") else None
    meta["log_id"] = log
    return meta


class StepLogStore:
    """Retention's view of step logs: forget every log of a run trimmed before its logs expired."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def forget_runs(self, pipe: Any, run_ids: list[str]) -> None:
        """Queue on `pipe` the deletion of every key these runs' logs have (reads the log lists first)."""
        reader = self.redis.pipeline(transaction=False)
        for run_id in run_ids:
            reader.zrange(index_key(run_id), 0, -1)
        for run_id, logs in zip(run_ids, reader.execute(), strict=True):
            names = [redis_text(v) for v in logs]
            keys = [key for name in names for key in (stream_key(name), meta_key(name))]
            pipe.delete(index_key(run_id), attempts_key(run_id), *keys)
