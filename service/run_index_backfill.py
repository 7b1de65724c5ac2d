"""Adds runs recorded before the secondary indexes (layout v2) to them, in bounded batches.

Users upgrade in place: a Redis written by an older Stepline holds runs in the v1 sets only (all runs,
repository, branch, PR, sha, status). The jobs process's periodic sweep calls `backfill` until it
reports done; each call walks at most `limit` runs of `stepline:runs` with ZSCAN (whose cursor survives
runs added and trimmed meanwhile; the cursor is kept in Redis, so a restart resumes) and indexes each
batch in one transaction under WATCH of its records, so a status changed meanwhile is never indexed
stale. Runs created by the new code are indexed as they are written. Until the backfill ends,
`RunIndex.list_runs` answers filters that need v2 sets by scanning (correct, slower).
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from service import run_index_layout as layout
from service.run_index import OPEN_STATUSES, RunIndex
from statemachines.redis_text import redis_text

log = logging.getLogger(__name__)

CURSOR_KEY = f"{layout.PREFIX}runs:backfill-cursor"
BATCH = 500  # runs per transaction: a few thousand ZADDs, milliseconds of Redis
PER_SWEEP = 20_000  # runs per call; 100k runs are indexed within five sweeps
RETRIES = 3


def backfill(index: RunIndex, batch: int = BATCH, limit: int = PER_SWEEP) -> tuple[int, bool]:
    """Index up to about `limit` more runs into the v2 sets; returns (runs indexed, whether all are)."""
    if index.indexed():
        return 0, True
    client = index.redis
    cursor = int(client.get(CURSOR_KEY) or 0)
    indexed = 0
    while indexed < limit:
        next_cursor, pairs = client.zscan(layout.ALL_RUNS, cursor, count=batch)
        done = _index_batch(index, [member for member, _score in pairs])
        if done is None:
            log.warning("run index backfill: runs kept changing; the next sweep tries again")
            return indexed, False
        indexed += done
        cursor = int(next_cursor)
        if cursor == 0:
            client.set(layout.VERSION_KEY, layout.LAYOUT_VERSION)
            client.delete(CURSOR_KEY)
            log.info("run index: every run is in the v2 indexes (%d indexed in the last pass)", indexed)
            return indexed, True
        client.set(CURSOR_KEY, cursor)
    log.info("run index: %d run(s) added to the v2 indexes; more in the next sweep", indexed)
    return indexed, False


def _index_batch(index: RunIndex, ids: list[Any]) -> int | None:
    """Add these runs to every set of their layout in one transaction (None: they kept changing)."""
    if not ids:
        return 0
    for _ in range(RETRIES):
        with index.redis.pipeline() as pipe:
            pipe.watch(*(layout.run_key(redis_text(run_id)) for run_id in ids))
            runs = index.records(ids)  # read after WATCH: any later write aborts EXEC
            pipe.multi()
            for run in runs:
                score = {run["run_id"]: run["created_at"]}
                for key in layout.membership(run):
                    pipe.zadd(key, score)
                if run["status"] in OPEN_STATUSES:
                    pipe.zadd(layout.open_key(run["repository"]), score)
            try:
                pipe.execute()
                return len(runs)
            except redis.WatchError:
                continue
    return None
