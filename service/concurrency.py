"""Concurrency groups: at most one active run per group of a repository, as GitHub Actions' `concurrency:`.

A pipeline names its group in its top-level `Comment` (AWS accepts no other top-level field, and keeps
the Comment as written), e.g. `"Comment": "Release. concurrency: deploy-production"`:

    concurrency: <group>                 queue: a newer run waits until the active one ends; a run that
                                         was already waiting is superseded by the newer one (only the
                                         newest waits, as on GitHub)
    concurrency: <group> newest-wins     a newer run starts and the active (or waiting) one is superseded
                                         (`cancel-in-progress` is accepted as a synonym)

`{branch}` in the group is the run's branch (or tag), for a group per branch: `ci-{branch}`. The service
enforces it when it starts a run (service/runs.py), so it is the same on AWS Step Functions.

Redis (the one home of this key):
    stepline:concurrency:<repository>:<group>   the run id holding the group (a run that ended, or vanished,
                                                 holds it no more: the next start takes it over)
A waiting run stays QUEUED with `waiting_for`; when the holder ends (reconcile, cancel) the waiting runs
are started again, and every sweep retries a waiting run whose holder is gone.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue

from service.cancellations import stop_run
from service.job_context import JobContext, job_context
from service.run_index import OPEN_STATUSES
from service.run_record import RunRecord
from statemachines import queues

log = logging.getLogger(__name__)

KEY = "stepline:concurrency:"
QUEUE, NEWEST_WINS = "queue", "newest-wins"
MODES = {"queue": QUEUE, "newest-wins": NEWEST_WINS, "cancel-in-progress": NEWEST_WINS}
DECLARATION = re.compile(
    r"\bconcurrency:\s*(?P<group>[A-Za-z0-9{][A-Za-z0-9._/{}-]{0,99})"
    r"(?:[\s,(]+(?P<mode>queue|newest-wins|cancel-in-progress)\)?)?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Group:
    """A run's concurrency group: its name (branch filled in) and mode."""

    name: str
    mode: str


def group_of(definition: dict[str, Any], run: RunRecord) -> Group | None:
    """The group a pipeline's top-level Comment names, for this run; None when it names none."""
    comment = definition.get("Comment")
    match = DECLARATION.search(comment) if isinstance(comment, str) else None
    if match is None:
        return None
    name = match["group"].replace("{branch}", str(run.get("branch") or run.get("tag") or ""))
    if run.get("trusted") is not True:
        # an untrusted pipeline (a fork's) writes its own Comment: it must never queue behind, nor
        # supersede, the repository's trusted runs or another pull request's, so its groups are its own
        name = f"untrusted/pr-{run.get('pull_request') or 'none'}/{name}"
    return Group(name, MODES[(match["mode"] or QUEUE).lower()])


def admit(ctx: JobContext, run: RunRecord, group: Group) -> bool:
    """Whether the run may start now (it then holds the group); else it waits, or was superseded."""
    run_id, key = run["run_id"], _key(run, group)
    ctx.index.update(run_id, concurrency_group=group.name, concurrency_mode=group.mode)
    for _ in range(10):  # a compare-and-set loop: another start may take the group meanwhile
        holder_id = _text(ctx.redis.get(key))
        holder = ctx.index.get(holder_id) if holder_id and holder_id != run_id else None
        if holder is not None and holder["status"] in OPEN_STATUSES:
            if holder["created_at"] > run["created_at"]:  # a newer run got here first: this one is moot
                _supersede(ctx, run, group, holder)
                return False
            if group.mode == QUEUE:
                _wait(ctx, run, group, holder)
                return False
            _supersede(ctx, holder, group, run)  # newest wins: the holder stops, this run takes over
        if _take(ctx.redis, key, holder_id, run_id):
            ctx.index.update(run_id, waiting_for=None)
            _supersede_waiting(ctx, run, group)
            return True
    raise redis.WatchError(f"concurrency group {group.name} kept changing")


def release(ctx: JobContext, run: RunRecord) -> int:
    """A run ended: free its group and start the runs waiting for it again; how many were started."""
    name = run.get("concurrency_group")
    if not name:
        return 0
    key = KEY + f"{run['repository']}:{name}"
    if _text(ctx.redis.get(key)) == run["run_id"]:
        _take(ctx.redis, key, run["run_id"], None)
    waiting = [r for r in _members(ctx, run["repository"], str(name)) if r.get("waiting_for")]
    for found in waiting:
        log.info("%s: concurrency group %s is free: starting it again", found["run_id"], name)
        Queue(queues.RUNS, connection=ctx.redis).enqueue(queues.START_RUN, found["run_id"])
    return len(waiting)


def release_run(run_id: str) -> int:
    """rq job: `release` for a run stopped by service/cancellations.py (which cannot import this module)."""
    ctx = job_context()
    run = ctx.index.get(run_id)
    return release(ctx, run) if run is not None else 0


def retry_waiting(ctx: JobContext, run: RunRecord) -> bool:
    """The sweep: a waiting run whose holder ended (its release lost) is started again."""
    holder_id = run.get("waiting_for")
    if run["status"] != "QUEUED" or not holder_id:
        return False
    holder = ctx.index.get(str(holder_id))
    if holder is not None and holder["status"] in OPEN_STATUSES:
        return False
    Queue(queues.RUNS, connection=ctx.redis).enqueue(queues.START_RUN, run["run_id"])
    return True


def _wait(ctx: JobContext, run: RunRecord, group: Group, holder: RunRecord) -> None:
    reason = f"waiting for {holder['sha'][:7]} (run {holder['run_id'][:7]}) in concurrency group {group.name}"
    ctx.index.transition(run["run_id"], ("QUEUED",), waiting_for=holder["run_id"], status_reason=reason)
    ctx.index.add_audit(run["run_id"], {"action": "waiting", "group": group.name, "for": holder["run_id"]})
    log.info("%s: %s", run["run_id"], reason)
    _supersede_waiting(ctx, run, group)


def _supersede_waiting(ctx: JobContext, run: RunRecord, group: Group) -> None:
    """Only the newest run waits: an older one still waiting in the group is superseded by this one."""
    for other in _members(ctx, run["repository"], group.name):
        if (
            other.get("waiting_for")
            and other["run_id"] != run["run_id"]
            and other["created_at"] < run["created_at"]
        ):
            _supersede(ctx, other, group, run)


def _supersede(ctx: JobContext, old: RunRecord, group: Group, new: RunRecord) -> None:
    reason = f"superseded by {new['sha'][:7]} in concurrency group {group.name}"
    stop_run(ctx, old, "SUPERSEDED", reason, superseded_by=new["run_id"])


def _members(ctx: JobContext, repository: str, name: str) -> list[RunRecord]:
    return [r for r in ctx.index.open_runs(repository) if r.get("concurrency_group") == name]


def _take(client: redis.Redis, key: str, expected: str | None, run_id: str | None) -> bool:
    """Set the holder to `run_id` (None: free) if it is still `expected`."""
    with client.pipeline() as pipe:
        try:
            pipe.watch(key)
            if _text(pipe.get(key)) != expected:
                return False
            pipe.multi()
            if run_id is None:
                pipe.delete(key)
            else:
                pipe.set(key, run_id)
            pipe.execute()
            return True
        except redis.WatchError:
            return False


def _key(run: RunRecord, group: Group) -> str:
    return KEY + f"{run['repository']}:{group.name}"


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
