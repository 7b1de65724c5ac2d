"""Artifacts: files a step kept, stored as blobs and listed per run; the worker writes, the web reads.

    blob  artifacts/<trusted|untrusted>/<run_id>/<step>/<path in the work tree>
    stepline:artifacts:<run_id>   Hash step -> JSON {"trusted", "attempt", "files": [{"path", "size", "key"}],
                                  "refused": [reason, …] (the first 20), "refused_count"}; the latest
                                  attempt of a step replaces its entry
    stepline:artifact-runs        Sorted set run_id -> when its last artifacts were kept (retention's order)

Names are scoped by the run id the service vouched for (statemachines/run_claims.py): a worker records
and hands out artifacts only for a task whose run claim matched, so a pipeline naming another run or
repository reaches nothing of theirs. `trusted` is the side of the worker that polled the task (its
activity), never the task input; a trusted step is never handed an untrusted entry.
"""

from __future__ import annotations

import json
import logging
import time
from typing import IO, Any
from urllib.parse import quote

import redis

from statemachines.blob_store import BlobStore
from statemachines.redis_text import redis_text

log = logging.getLogger(__name__)

INDEX_PREFIX = "stepline:artifacts:"
RUNS_KEY = "stepline:artifact-runs"
TRIM_BATCH = 100  # runs per batch


def index_key(run_id: str) -> str:
    return INDEX_PREFIX + run_id


def blob_key(run_id: str, step: str, path: str, trusted: bool) -> str:
    side = "trusted" if trusted else "untrusted"
    return f"artifacts/{side}/{quote(run_id, safe='')}/{quote(step, safe='')}/{quote(path, safe='/')}"


class ArtifactStore:
    """A run's artifacts: recorded by the worker after a step, listed and served by the web."""

    def __init__(self, client: redis.Redis, store: BlobStore) -> None:
        self.redis = client
        self.store = store

    def record(self, run_id: str, step: str, entry: dict[str, Any]) -> None:
        """Note a step's uploaded files (entry: trusted, attempt, files, refused)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(index_key(run_id), step, json.dumps(entry))
        pipe.zadd(RUNS_KEY, {run_id: time.time()})
        pipe.execute()

    def listing(self, run_id: str) -> dict[str, dict[str, Any]]:
        """step -> its entry, for every step of the run that kept artifacts."""
        raw = self.redis.hgetall(index_key(run_id)) or {}
        return {redis_text(step): json.loads(value) for step, value in sorted(raw.items())}

    def file(self, run_id: str, step: str, path: str) -> dict[str, Any] | None:
        """One listed file of a step (with its entry's `trusted`), or None when the run has no such file."""
        raw = self.redis.hget(index_key(run_id), step)
        if raw is None:
            return None
        entry = json.loads(raw)
        for item in entry.get("files") or []:
            if item["path"] == path:
                return dict(item, trusted=entry.get("trusted") is True)
        return None

    def open(self, key: str) -> IO[bytes]:
        return self.store.open(key)

    def trim(
        self, retention_days: float, now: float | None = None, batch: int = TRIM_BATCH, limit: int = 1000
    ) -> int:
        """Delete the artifacts of up to `limit` runs that kept them over `retention_days` ago (0: never)."""
        if retention_days <= 0:
            return 0
        done = 0
        cutoff = (time.time() if now is None else now) - retention_days * 86_400
        while done < limit:
            runs = [
                redis_text(r)
                for r in self.redis.zrangebyscore(RUNS_KEY, "-inf", cutoff, 0, min(batch, limit - done))
            ]
            if not runs:
                break
            self.forget_runs(runs)
            done += len(runs)
        if done:
            log.info("retention: artifacts of %d run(s) deleted", done)
        return done

    def forget_runs(self, run_ids: list[str]) -> None:
        """Delete every artifact of these runs, blobs and index."""
        for run_id in run_ids:  # by prefix: blobs of an attempt the index no longer lists go too
            for side in ("trusted", "untrusted"):
                prefix = f"artifacts/{side}/{quote(run_id, safe='')}/"
                self.store.delete([info.key for info in self.store.list(prefix)])
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(*(index_key(run_id) for run_id in run_ids))
        pipe.zrem(RUNS_KEY, *run_ids)
        pipe.execute()

    def usage(self) -> dict[str, int]:
        """Runs holding artifacts (for /metrics)."""
        return {"runs": int(self.redis.zcard(RUNS_KEY))}
