"""The run index in Redis: every run's record, found by id, execution, repository, branch, PR or commit.

Read by the dashboard and the reporter; written by the webhook and the run jobs. API:

- `RunIndex(redis_client)`
- `create(run, pipeline=None) -> RunRecord`: store a new record (fills the defaults of RUN_FIELDS); with
  a Redis pipeline the writes are only queued on it (the webhook claims, creates and enqueues atomically)
- `get(run_id)`, `by_execution_arn(arn)` -> RunRecord | None (its keys: service/run_record.py)
- `update(run_id, **fields) -> RunRecord | None`: set fields (None if the run does not exist)
- `transition(run_id, from_statuses, **fields) -> dict | None`: update only while the run's status is
  one of `from_statuses` (None otherwise): how a terminal status is never overwritten by a late writer
- `list_runs(limit=50, offset=0, repository=None, branch=None, pull_request=None, status=None)`, newest
  first; any combination of filters is one sorted set (service/run_index_layout.py), a page is O(log n)
- `count_by_status() -> {status: count}`; `indexed()`: whether runs older than the v2 sets are in them
- `runs_for_sha(repository, sha)`, newest first
- `open_runs(repository, branch=None, pull_request=None)`: QUEUED or RUNNING runs; `branch` matches push
  runs of that branch only (a PR's runs are found by `pull_request`)
- `add_audit(run_id, entry)` / `audit(run_id)`: who did what to a run, oldest first
- `ended_before(status, cutoff, skip, count)`: ids of runs created before `cutoff` (retention's candidates)
- `delete_finished(run_ids, finished_before, stores=()) -> (deleted ids, kept)`: drop ended runs, every
  index entry of them and what each `RunStore` keeps for them in one transaction (retention; an open or
  re-opened run is always kept)

A pull request's run has `pull_request` = its number and `branch` = its head branch.

Layout: one hash per run (`stepline:run:<id>`, each field JSON-encoded, so concurrent writers of
different fields never clobber each other), sorted sets by created_at per filter scope and per scope and
status (service/run_index_layout.py), a set of open runs per repository, and a hash from execution ARN
to run id.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, Unpack, cast, get_args

import redis

from service import run_index_layout as layout
from service.run_index_layout import EXECUTIONS
from service.run_record import RUN_FIELDS, RunRecord, RunStatus
from statemachines.redis_text import redis_text

__all__ = ["EXECUTIONS", "OPEN_STATUSES", "RUN_FIELDS", "STATUSES", "RunIndex", "RunRecord", "RunStore"]

OPEN_STATUSES: tuple[RunStatus, ...] = ("QUEUED", "RUNNING")
STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
SCAN_BATCH = 200
SCAN_LIMIT = 5000  # runs a filter looks through at most beyond its page (a branch within a PR's runs)


class RunIndex:
    """Runs in Redis; every method is one or two round trips."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client
        self._v2 = False  # once the backfill ended (service/run_index_backfill.py) it never goes back

    def create(self, run: RunRecord, pipeline: Any = None) -> RunRecord:
        record: RunRecord = {**copy.deepcopy(RUN_FIELDS), "created_at": time.time(), **run}
        pipe = pipeline if pipeline is not None else self.redis.pipeline()
        pipe.hset(layout.run_key(record["run_id"]), mapping={k: json.dumps(v) for k, v in record.items()})
        for key in layout.membership(record):
            pipe.zadd(key, {record["run_id"]: record["created_at"]})
        if record["status"] in OPEN_STATUSES:
            pipe.zadd(layout.open_key(record["repository"]), {record["run_id"]: record["created_at"]})
        if record.get("execution_arn"):
            pipe.hset(layout.EXECUTIONS, record["execution_arn"], record["run_id"])
        if pipeline is None:
            pipe.execute()
        return record

    def get(self, run_id: str) -> RunRecord | None:
        raw = self.redis.hgetall(layout.run_key(run_id))
        return _decode(raw) if raw else None

    def by_execution_arn(self, arn: str) -> RunRecord | None:
        run_id = self.redis.hget(layout.EXECUTIONS, arn)
        return self.get(redis_text(run_id)) if run_id else None

    def update(self, run_id: str, /, **fields: Unpack[RunRecord]) -> RunRecord | None:
        return self.transition(run_id, None, **fields)

    def transition(
        self, run_id: str, from_statuses: tuple[str, ...] | None, /, **fields: Unpack[RunRecord]
    ) -> RunRecord | None:
        key = layout.run_key(run_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hgetall(key)
                    if not raw:
                        return None
                    old = _decode(raw)
                    if from_statuses is not None and old["status"] not in from_statuses:
                        return None
                    new: RunRecord = {**old, **fields}
                    pipe.multi()
                    pipe.hset(key, mapping={k: json.dumps(v) for k, v in fields.items()})
                    self._index_status(pipe, new, old)
                    if fields.get("execution_arn"):
                        pipe.hset(layout.EXECUTIONS, fields["execution_arn"], run_id)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue

    def list_runs(
        self,
        limit: int = 50,
        offset: int = 0,
        repository: str | None = None,
        branch: str | None = None,
        pull_request: int | None = None,
        status: str | None = None,
    ) -> list[RunRecord]:
        """One page of the runs matching every filter given, newest first: one sorted set answers each
        filter, so a page costs the same at any size of the index (a branch within a pull request's
        runs is checked run by run, through at most SCAN_LIMIT of them)."""
        filters = (repository, branch, pull_request, status)
        if layout.needs_v2(*filters) and not self.indexed():
            return self._scan_legacy(limit, offset, *filters)
        found = layout.query(*filters)
        if found.branch is None:
            return self._load(self.redis.zrevrange(found.key, offset, offset + limit - 1))
        return self._scan(found.key, found.accepts, limit, offset)

    def count_by_status(self) -> dict[str, int]:
        """How many runs the index holds in each status (for /metrics)."""
        pipe = self.redis.pipeline(transaction=False)
        for status in STATUSES:
            pipe.zcard(layout.status_key(status))
        return dict(zip(STATUSES, pipe.execute(), strict=True))

    def indexed(self) -> bool:
        """Whether every run is in the v2 sets (the backfill of runs recorded before them ended)."""
        if not self._v2:
            self._v2 = redis_text(self.redis.get(layout.VERSION_KEY) or "0") == str(layout.LAYOUT_VERSION)
        return self._v2

    def runs_for_sha(self, repository: str, sha: str) -> list[RunRecord]:
        return self._load(self.redis.zrevrange(layout.sha_key(repository, sha), 0, -1))

    def open_runs(
        self, repository: str, branch: str | None = None, pull_request: int | None = None
    ) -> list[RunRecord]:
        runs = self._load(self.redis.zrevrange(layout.open_key(repository), 0, -1))
        if pull_request is not None:
            return [r for r in runs if r["pull_request"] == pull_request]
        if branch is not None:
            return [r for r in runs if r["pull_request"] is None and r["branch"] == branch]
        return runs

    def add_audit(self, run_id: str, entry: dict[str, Any]) -> None:
        self.redis.rpush(layout.audit_key(run_id), json.dumps({"at": time.time(), **entry}))

    def audit(self, run_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.redis.lrange(layout.audit_key(run_id), 0, -1)]

    def ended_before(self, status: str, cutoff: float, skip: int, count: int) -> list[str]:
        """Up to `count` ids of runs in `status` created before `cutoff`, oldest first, after `skip`."""
        ids: Any = self.redis.zrangebyscore(
            layout.status_key(status), "-inf", f"({cutoff}", start=skip, num=count
        )
        return [redis_text(run_id) for run_id in ids]

    def delete_finished(
        self, run_ids: Any, finished_before: float, stores: Sequence[RunStore] = ()
    ) -> tuple[list[str], int]:
        """Delete those of `run_ids` that ended before `finished_before`, with every entry pointing at
        them and what each of `stores` keeps for them, in one transaction.

        One MULTI per call, under WATCH of the records: a run re-opened meanwhile (a redrive) makes the
        transaction fail and is kept. Returns (ids deleted, how many kept); a conflict keeps the whole
        batch for the next sweep.
        """
        ids = [redis_text(run_id) for run_id in run_ids]
        if not ids:
            return [], 0
        with self.redis.pipeline() as pipe:
            pipe.watch(*(layout.run_key(run_id) for run_id in ids))
            reader = self.redis.pipeline(transaction=False)  # read after WATCH: any later write aborts EXEC
            for run_id in ids:
                reader.hgetall(layout.run_key(run_id))
            records = [_decode(raw) if raw else None for raw in reader.execute()]
            going = [
                (run_id, run)
                for run_id, run in zip(ids, records, strict=True)
                if run is None or _ended_before(run, finished_before)
            ]
            pipe.multi()
            for run_id, run in going:
                self._queue_delete(pipe, run_id, run)
            for store in stores:
                store.forget_runs(pipe, [run_id for run_id, _ in going])
            try:
                pipe.execute()
            except redis.WatchError:
                return [], len(ids)
        return [run_id for run_id, _ in going], len(ids) - len(going)

    def _queue_delete(self, pipe: Any, run_id: str, run: RunRecord | None) -> None:
        # a record already gone (a dangling id) only leaves the sets that can be named without it
        pipe.delete(layout.run_key(run_id), layout.audit_key(run_id))
        for key in [layout.ALL_RUNS, *(layout.status_key(status) for status in STATUSES)]:
            pipe.zrem(key, run_id)
        if run is None:
            return
        for key in [*layout.membership(run), layout.open_key(run["repository"])]:
            pipe.zrem(key, run_id)  # Redis deletes a sorted set with its last member: no empty keys stay
        if run.get("execution_arn"):
            pipe.hdel(layout.EXECUTIONS, run["execution_arn"])

    def _index_status(self, pipe: Any, new: RunRecord, old: RunRecord | None) -> None:
        run_id, score = new["run_id"], new["created_at"]
        if old is not None and old["status"] != new["status"]:
            for key in layout.status_sets(old, old["status"]):
                pipe.zrem(key, run_id)
        for key in layout.status_sets(new, new["status"]):
            pipe.zadd(key, {run_id: score})
        if new["status"] in OPEN_STATUSES:
            pipe.zadd(layout.open_key(new["repository"]), {run_id: score})
        else:
            pipe.zrem(layout.open_key(new["repository"]), run_id)

    def _scan(
        self,
        key: str,
        accepts: Callable[[RunRecord], bool],
        limit: int,
        offset: int,
        most: int = SCAN_LIMIT,
    ) -> list[RunRecord]:
        found: list[RunRecord] = []
        start, batch = 0, offset + limit  # most listed runs match: the first batch is the page itself
        while len(found) < offset + limit and start < offset + limit + most:
            ids = self.redis.zrevrange(key, start, start + batch - 1)
            if not ids:
                break
            found += [run for run in self._load(ids) if accepts(run)]
            start, batch = start + batch, SCAN_BATCH
        return found[offset : offset + limit]

    def _scan_legacy(
        self,
        limit: int,
        offset: int,
        repository: str | None,
        branch: str | None,
        pr: int | None,
        status: str | None,
    ) -> list[RunRecord]:
        """Before the backfill ended: scan a set every version kept (correct, but slow on big indexes)."""
        if repository is None:
            base = layout.query(None, None, None, status).key
        else:
            base = layout.query(repository, branch, pr, None).key

        def accepts(run: RunRecord) -> bool:
            if status is not None and run["status"] != status:
                return False
            if pr is not None:
                return run.get("pull_request") == pr and (branch is None or run.get("branch") == branch)
            return branch is None or (run.get("pull_request") is None and run.get("branch") == branch)

        return self._scan(base, accepts, limit, offset, most=10**9)

    def records(self, ids: Any) -> list[RunRecord]:
        """The records of these ids that still exist, in order (one pipelined round trip)."""
        return self._load(ids)

    def _load(self, ids: Any) -> list[RunRecord]:
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hgetall(layout.run_key(redis_text(run_id)))
        return [_decode(raw) for raw in pipe.execute() if raw]


class RunStore(Protocol):
    """A store that keeps something per run in Redis and forgets it when retention trims the run."""

    def forget_runs(self, pipe: Any, run_ids: list[str]) -> None:
        """Queue on `pipe` (the MULTI deleting the runs' records) the deletion of what it keeps for
        them; it may read first through its own client. Idempotent: a failed MULTI asks again later."""


def _ended_before(run: RunRecord, moment: float) -> bool:
    """An ended run whose end (its creation, for runs never started) is older than `moment`."""
    if run["status"] in OPEN_STATUSES:
        return False
    return float(run.get("finished_at") or run.get("created_at") or 0) < moment


def _decode(raw: dict[Any, Any]) -> RunRecord:
    # kept as stored: a field this version does not know (a newer writer's) survives a read-modify-write
    return cast(RunRecord, {redis_text(key): json.loads(value) for key, value in raw.items()})
