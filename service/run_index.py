"""The run index in Redis: every run's record, found by id, execution, repository, branch, PR or commit.

Read by the dashboard and the reporter; written by the webhook and the run jobs. API:

- `RunIndex(redis_client)`
- `create(run, pipeline=None) -> dict`: store a new record (fills the defaults of RUN_FIELDS); with a
  Redis pipeline the writes are only queued on it (the webhook claims, creates and enqueues atomically)
- `get(run_id)`, `by_execution_arn(arn)` -> dict | None
- `update(run_id, **fields) -> dict | None`: set fields (None if the run does not exist)
- `transition(run_id, from_statuses, **fields) -> dict | None`: update only while the run's status is
  one of `from_statuses` (None otherwise): how a terminal status is never overwritten by a late writer
- `list_runs(limit=50, offset=0, repository=None, branch=None, pull_request=None, status=None)`, newest first
- `runs_for_sha(repository, sha)`, newest first
- `open_runs(repository, branch=None, pull_request=None)`: QUEUED or RUNNING runs; `branch` matches push
  runs of that branch only (a PR's runs are found by `pull_request`)
- `add_audit(run_id, entry)` / `audit(run_id)`: who did what to a run, oldest first
- `delete_finished(run_ids, finished_before, also=None) -> (deleted, kept)`: drop ended runs and every
  index entry of them in one transaction (retention; an open or re-opened run is always kept)

Besides the fields the issue lists, a record has `execution_name` (derived from the delivery: a
retried start never starts twice) and `pipeline_path` (".stepline/pipeline.asl.json", ".yaml" or
"default"). A pull request's run has `pull_request` = its number and `branch` = its head branch.

Layout: one hash per run (`stepline:run:<id>`, each field JSON-encoded, so concurrent writers of
different fields never clobber each other), sorted sets by created_at per repository, branch, PR, sha
and status, a set of open runs per repository, and a hash from execution ARN to run id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis

PREFIX = "stepline:"
OPEN_STATUSES = ("QUEUED", "RUNNING")
STATUSES = (
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "ABORTED",
    "SKIPPED",
    "INVALID",
    "SUPERSEDED",
    "ERRORED",  # its start failed in a way start_run did not expect (service/reconcile.py)
)
RUN_FIELDS: dict[str, Any] = {
    "run_id": "", "repository": "", "event": "", "ref": "", "branch": None, "tag": None,
    "pull_request": None, "sha": "", "before": "", "message": "", "author": "", "trusted": False,
    "fork": False, "pipeline": "ci", "steps": [], "state_machine_arn": None, "execution_arn": None,
    "execution_input": None, "status": "QUEUED", "status_reason": "", "superseded_by": None,
    "validation": [], "delivery_id": "", "created_at": 0.0, "started_at": None, "finished_at": None,
    "clone_url": "", "execution_name": "", "pipeline_path": None,
}  # fmt: skip
SCAN_BATCH = 200


def _run_key(run_id: str) -> str:
    return f"{PREFIX}run:{run_id}"


def _index_keys(run: dict[str, Any]) -> list[str]:
    """The sorted sets a run belongs to by its immutable fields (status sets are kept apart)."""
    repo = run["repository"]
    keys = [f"{PREFIX}runs", f"{PREFIX}runs:repo:{repo}", f"{PREFIX}runs:sha:{repo}:{run['sha']}"]
    if run.get("pull_request") is not None:
        keys.append(f"{PREFIX}runs:pr:{repo}:{run['pull_request']}")
    elif run.get("branch"):
        keys.append(f"{PREFIX}runs:branch:{repo}:{run['branch']}")
    return keys


def _status_key(status: str) -> str:
    return f"{PREFIX}runs:status:{status}"


def _open_key(repository: str) -> str:
    return f"{PREFIX}runs:open:{repository}"


EXECUTIONS = f"{PREFIX}runs:by-execution"


class RunIndex:
    """Runs in Redis; every method is one or two round trips."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def create(self, run: dict[str, Any], pipeline: Any = None) -> dict[str, Any]:
        record = {**RUN_FIELDS, "created_at": time.time(), **run}
        pipe = pipeline if pipeline is not None else self.redis.pipeline()
        pipe.hset(_run_key(record["run_id"]), mapping={k: json.dumps(v) for k, v in record.items()})
        for key in _index_keys(record):
            pipe.zadd(key, {record["run_id"]: record["created_at"]})
        self._index_status(pipe, record, None)
        if record.get("execution_arn"):
            pipe.hset(EXECUTIONS, record["execution_arn"], record["run_id"])
        if pipeline is None:
            pipe.execute()
        return record

    def get(self, run_id: str) -> dict[str, Any] | None:
        raw = self.redis.hgetall(_run_key(run_id))
        return _decode(raw) if raw else None

    def by_execution_arn(self, arn: str) -> dict[str, Any] | None:
        run_id = self.redis.hget(EXECUTIONS, arn)
        return self.get(_str(run_id)) if run_id else None

    def update(self, run_id: str, **fields: Any) -> dict[str, Any] | None:
        return self.transition(run_id, None, **fields)

    def transition(
        self, run_id: str, from_statuses: tuple[str, ...] | None, **fields: Any
    ) -> dict[str, Any] | None:
        key = _run_key(run_id)
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
                    new = {**old, **fields}
                    pipe.multi()
                    pipe.hset(key, mapping={k: json.dumps(v) for k, v in fields.items()})
                    self._index_status(pipe, new, old)
                    if fields.get("execution_arn"):
                        pipe.hset(EXECUTIONS, fields["execution_arn"], run_id)
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
    ) -> list[dict[str, Any]]:
        if repository is None:
            key = _status_key(status) if status else f"{PREFIX}runs"
            ids = self.redis.zrevrange(key, offset, offset + limit - 1)
            return self._load(ids)
        if pull_request is not None:
            key = f"{PREFIX}runs:pr:{repository}:{pull_request}"
        elif branch is not None:
            key = f"{PREFIX}runs:branch:{repository}:{branch}"
        else:
            key = f"{PREFIX}runs:repo:{repository}"
        if status is None:
            return self._load(self.redis.zrevrange(key, offset, offset + limit - 1))
        return self._scan_filtered(key, limit, offset, status)

    def runs_for_sha(self, repository: str, sha: str) -> list[dict[str, Any]]:
        return self._load(self.redis.zrevrange(f"{PREFIX}runs:sha:{repository}:{sha}", 0, -1))

    def open_runs(
        self, repository: str, branch: str | None = None, pull_request: int | None = None
    ) -> list[dict[str, Any]]:
        runs = self._load(self.redis.zrevrange(_open_key(repository), 0, -1))
        if pull_request is not None:
            return [r for r in runs if r["pull_request"] == pull_request]
        if branch is not None:
            return [r for r in runs if r["pull_request"] is None and r["branch"] == branch]
        return runs

    def add_audit(self, run_id: str, entry: dict[str, Any]) -> None:
        self.redis.rpush(f"{_run_key(run_id)}:audit", json.dumps({"at": time.time(), **entry}))

    def audit(self, run_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.redis.lrange(f"{_run_key(run_id)}:audit", 0, -1)]

    def delete_finished(
        self, run_ids: Any, finished_before: float, also: Callable[[str], list[str]] | None = None
    ) -> tuple[int, int]:
        """Delete those of `run_ids` that ended before `finished_before`, with every entry pointing at them.

        One MULTI per call, under WATCH of the records: a run re-opened meanwhile (a redrive) makes the
        transaction fail and is kept. `also(run_id)` names other keys of the run to delete with it.
        Returns (deleted, kept); a conflict keeps the whole batch for the next sweep.
        """
        ids = [_str(run_id) for run_id in run_ids]
        if not ids:
            return 0, 0
        with self.redis.pipeline() as pipe:
            pipe.watch(*(_run_key(run_id) for run_id in ids))
            reader = self.redis.pipeline(transaction=False)  # read after WATCH: any later write aborts EXEC
            for run_id in ids:
                reader.hgetall(_run_key(run_id))
            records = [_decode(raw) if raw else None for raw in reader.execute()]
            pipe.multi()
            deleted = 0
            for run_id, run in zip(ids, records, strict=True):
                if run is not None and not _ended_before(run, finished_before):
                    continue
                self._queue_delete(pipe, run_id, run, also(run_id) if also else [])
                deleted += 1
            try:
                pipe.execute()
            except redis.WatchError:
                return 0, len(ids)
        return deleted, len(ids) - deleted

    def _queue_delete(self, pipe: Any, run_id: str, run: dict[str, Any] | None, also: list[str]) -> None:
        # a record already gone (a dangling id) only leaves the sets that can be named without it
        pipe.delete(_run_key(run_id), f"{_run_key(run_id)}:audit", *also)
        for key in [f"{PREFIX}runs", *(_status_key(status) for status in STATUSES)]:
            pipe.zrem(key, run_id)
        if run is None:
            return
        for key in [*_index_keys(run), _open_key(run["repository"])]:
            pipe.zrem(key, run_id)  # Redis deletes a sorted set with its last member: no empty keys stay
        if run.get("execution_arn"):
            pipe.hdel(EXECUTIONS, run["execution_arn"])

    def _index_status(self, pipe: Any, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        run_id, score = new["run_id"], new["created_at"]
        if old is not None and old["status"] != new["status"]:
            pipe.zrem(_status_key(old["status"]), run_id)
        pipe.zadd(_status_key(new["status"]), {run_id: score})
        if new["status"] in OPEN_STATUSES:
            pipe.zadd(_open_key(new["repository"]), {run_id: score})
        else:
            pipe.zrem(_open_key(new["repository"]), run_id)

    def _scan_filtered(self, key: str, limit: int, offset: int, status: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        start = 0
        while len(found) < offset + limit:
            ids = self.redis.zrevrange(key, start, start + SCAN_BATCH - 1)
            if not ids:
                break
            found += [r for r in self._load(ids) if r["status"] == status]
            start += SCAN_BATCH
        return found[offset : offset + limit]

    def _load(self, ids: Any) -> list[dict[str, Any]]:
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hgetall(_run_key(_str(run_id)))
        return [_decode(raw) for raw in pipe.execute() if raw]


def _ended_before(run: dict[str, Any], moment: float) -> bool:
    """An ended run whose end (its creation, for runs never started) is older than `moment`."""
    if run["status"] in OPEN_STATUSES:
        return False
    return float(run.get("finished_at") or run.get("created_at") or 0) < moment


def _decode(raw: dict[Any, Any]) -> dict[str, Any]:
    return {_str(key): json.loads(value) for key, value in raw.items()}


def _str(value: bytes | str) -> str:
    """Clients made with decode_responses=True answer str, others bytes: accept both."""
    return value.decode() if isinstance(value, bytes) else value
