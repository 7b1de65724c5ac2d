"""Stopping runs: superseded by a newer commit of the same branch or PR, or cancelled (ref deleted, PR closed).

A run is marked terminal in the run index first (only if still open, so a finished run is never
rewritten), then its execution is stopped, then the reporter is asked to close its open contexts.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from typing import Unpack

from botocore.exceptions import BotoCoreError, ClientError

from service.job_context import JobContext, job_context
from service.run_index import OPEN_STATUSES
from service.run_record import RunRecord, RunStatus
from statemachines import queues
from statemachines.run_stops import mark_stopped
from statemachines.step_errors import CANCELLED, SUPERSEDED

log = logging.getLogger(__name__)


def cancel_runs(
    repository: str, branch: str | None, tag: str | None, pull_request: int | None, reason: str
) -> list[str]:
    """rq job: stop every open run of a deleted branch or tag, or of a closed pull request."""
    ctx = job_context()
    if pull_request is not None:
        runs = ctx.index.open_runs(repository, pull_request=pull_request)
    elif branch is not None:
        runs = ctx.index.open_runs(repository, branch=branch)
    else:
        runs = [r for r in ctx.index.open_runs(repository) if tag is not None and r["tag"] == tag]
    stopped = [r["run_id"] for r in runs if stop_run(ctx, r, "ABORTED", reason)]
    log.info("cancelled %d run(s) of %s: %s", len(stopped), repository, reason)
    return stopped


def supersede_older(ctx: JobContext, run: RunRecord) -> list[str]:
    """Stop the open runs of the same branch or PR that are older than `run` (unless the branch is exempt)."""
    if run["tag"] is not None:
        return []
    if run["pull_request"] is None and _never_superseded(ctx, run["branch"]):
        return []
    candidates = ctx.index.open_runs(
        run["repository"], branch=run["branch"], pull_request=run["pull_request"]
    )
    reason = f"superseded by {run['sha'][:7]}"
    older = [r for r in candidates if r["run_id"] != run["run_id"] and r["created_at"] < run["created_at"]]
    return [r["run_id"] for r in older if stop_run(ctx, r, "SUPERSEDED", reason, superseded_by=run["run_id"])]


def stop_run(
    ctx: JobContext, run: RunRecord, status: RunStatus, reason: str, /, **fields: Unpack[RunRecord]
) -> bool:
    """Mark an open run terminal, stop its execution and have its contexts closed; False if it had ended."""
    run_id = run["run_id"]
    changes: RunRecord = {**fields, "status": status, "status_reason": reason, "finished_at": time.time()}
    stopped = ctx.index.transition(run_id, OPEN_STATUSES, **changes)
    if stopped is None:
        return False
    if arn := stopped.get("execution_arn"):
        error = SUPERSEDED if status == "SUPERSEDED" else CANCELLED
        stop_execution(ctx, run_id, arn, error, reason)
    log.info("%s: %s (%s)", run_id, status.lower(), reason)
    ctx.index.add_audit(run_id, {"action": status.lower(), "reason": reason, **fields})
    ctx.report(queues.REPORT_RUN_CANCELLED, run_id, reason)
    if stopped.get("concurrency_group"):  # runs waiting in its group may start (service/concurrency.py)
        ctx.statuses.enqueue(queues.RELEASE_RUN, run_id)
    return True


def stop_execution(ctx: JobContext, run_id: str, execution_arn: str, error: str, cause: str) -> None:
    """StopExecution, tolerating an execution that has already ended or vanished; running steps stop at once."""
    mark_stopped(
        ctx.redis, run_id
    )  # workers stop the run's steps within a second, not at their next heartbeat
    try:
        ctx.sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause)
    except ctx.sfn.exceptions.ExecutionDoesNotExist:
        log.info("%s: execution %s does not exist, nothing to stop", run_id, execution_arn)
    except (ClientError, BotoCoreError) as exc:
        # the run is already marked stopped; the reconciler sees the execution end either way
        log.error("%s: could not stop %s: %s", run_id, execution_arn, exc)


def _never_superseded(ctx: JobContext, branch: str | None) -> bool:
    return branch is not None and any(
        fnmatch.fnmatchcase(branch, p) for p in ctx.config.never_supersede_branches
    )
