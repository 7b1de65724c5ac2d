"""Superseding a run for a step concurrency group, as a worker asks (statemachines/step_concurrency.py).

Only the service stops executions (on AWS a worker has no right to), so a worker names the run to
supersede and the newer run it yields to. The service checks the ask against its own records: the
same repository, a truly newer run, and never an untrusted run against a trusted one or another pull
request's, whatever a worker (or a step's group name) says.
"""

from __future__ import annotations

import logging

from service.cancellations import stop_run
from service.job_context import job_context
from service.run_record import RunRecord

log = logging.getLogger(__name__)

MAX_GROUP_CHARS = 200


def supersede_for_step_group(run_id: str, by_run_id: str, group: str) -> bool:
    """rq job: stop `run_id` in favour of the newer `by_run_id` in a step's group; whether it was stopped."""
    ctx = job_context()
    old, new = ctx.index.get(run_id), ctx.index.get(by_run_id)
    if old is None or new is None:
        log.warning("%s: not superseded for step concurrency group: run %s is unknown", run_id, by_run_id)
        return False
    refusal = refusal_of(old, new)
    if refusal:
        log.warning("%s: not superseded by %s in concurrency group: %s", run_id, by_run_id, refusal)
        return False
    name = "".join(c for c in str(group) if c.isprintable())[:MAX_GROUP_CHARS]
    reason = f"superseded by {new['sha'][:7]} in concurrency group {name}"
    return stop_run(ctx, old, "SUPERSEDED", reason, superseded_by=by_run_id)


def refusal_of(old: RunRecord, new: RunRecord) -> str:
    """Why `new` may not supersede `old` ("" when it may)."""
    if old["run_id"] == new["run_id"]:
        return "a run cannot supersede itself"
    if old["repository"] != new["repository"]:
        return "the runs are of different repositories"
    if new["created_at"] <= old["created_at"]:
        return "the superseding run is not newer"
    trusted_old, trusted_new = old.get("trusted") is True, new.get("trusted") is True
    if trusted_old != trusted_new:
        return "a trusted and an untrusted run never share a group"
    if not trusted_new and old.get("pull_request") != new.get("pull_request"):
        return "untrusted runs of different pull requests never share a group"
    return ""
