"""Runs: the record a trigger becomes, and the rq jobs that start it or skip it.

The webhook creates the run (QUEUED, or SKIPPED for [skip ci]) and enqueues `start_run(run_id)` or
`skip_run(run_id)` on the "runs" queue. start_run loads and validates the commit's pipeline, deploys
it, starts the execution under a name derived from the delivery (a retried job never starts twice),
asks the reporter for pending statuses and stops the runs it supersedes. A re-run of failed steps
(`reuse_from`) first gets its reuse plan (service/reruns.py); a run whose pipeline names a concurrency
group may wait for it, or supersede its holder (service/concurrency.py).

An untrusted run (service/triggers.py decides) is deployed as its own state machine whose Tasks reach
only the untrusted activities of STEPLINE_UNTRUSTED_POOLS; a pipeline that names anything else is
refused (INVALID, an `error` status) before anything is deployed or started.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from github import Auth
from rq import get_current_job

from service.app_installations import repository_auth
from service.cancellations import stop_execution, supersede_older
from service.concurrency import admit, group_of, release
from service.deliveries import execution_name
from service.errors import InvalidPipelineError, PipelineSourceError, UntrustedPipelineError
from service.job_context import JobContext, job_context
from service.pipeline_source import Pipeline, check_untrusted, load_pipeline
from service.reruns import plan_reuse
from service.run_index import OPEN_STATUSES
from service.run_inputs import declared_inputs, fill_inputs
from service.run_record import RunRecord, execution_input_of
from service.sfn import role_arn
from service.triggers import SKIP, Trigger
from statemachines import queues, step_errors
from statemachines.contract import pipeline_steps
from statemachines.deploy import ensure_pipeline
from statemachines.redis_text import redis_text
from statemachines.run_claims import TICKET, claim_ticket
from statemachines.run_stages import EXECUTION_STARTED, RunStages

log = logging.getLogger(__name__)

# Deploying is 1 + (number of pools) API calls per run; a deployed definition never changes, so remember
# its ARN (in Redis: rq forks a work horse per job, so process memory forgets after every job)
DEPLOYED_KEY = "stepline:deployed:"
DEPLOYED_TTL_SECONDS = 24 * 3600
MAX_INPUT_BYTES = 32 * 1024  # Step Functions takes 256 KiB; ours is a few hundred bytes, bounded by triggers


def new_run(trigger: Trigger, hook_id: str) -> RunRecord:
    """The run record a build or skip trigger becomes (not yet stored)."""
    run_id = uuid.uuid4().hex
    # read in place, not through to_dict(): asdict's deep copy was half of this function's time
    data = vars(trigger)
    pr = trigger.pull_request
    execution_input = {
        "run_id": run_id,
        **{key: data[key] for key in ("delivery_id", "event", "repository", "clone_url", "private", "ref")},
        **{key: data[key] for key in ("branch", "tag", "sha", "before")},
        "pull_request": asdict(pr) if pr else None,
        "fork": data["fork"],
        "trusted": data["trusted"],
        "message": data["message"],
        "author": data["author"],
    }
    if len(json.dumps(execution_input)) > MAX_INPUT_BYTES:  # cannot happen with bounded triggers; be sure
        execution_input["message"] = execution_input["message"][:200]
    skipped = trigger.action == SKIP
    return {
        "repository": trigger.repository, "event": trigger.event, "ref": trigger.ref, "branch": trigger.branch,
        "tag": trigger.tag, "sha": trigger.sha, "before": trigger.before, "message": trigger.message,
        "author": trigger.author, "trusted": trigger.trusted, "fork": trigger.fork,
        "delivery_id": trigger.delivery_id, "clone_url": trigger.clone_url,
        "trust_reason": trigger.trust_reason,
        "run_id": run_id,
        "installation_id": trigger.installation_id,
        "pull_request": pr.number if pr else None,
        "execution_input": execution_input,
        "execution_name": execution_name(hook_id, trigger.delivery_id),
        "status": "SKIPPED" if skipped else "QUEUED",
        "status_reason": trigger.reason,
        "finished_at": time.time() if skipped else None,
    }  # fmt: skip


def start_run(run_id: str) -> str:
    """rq job: start a QUEUED run's execution; returns the run's status afterwards.

    Every run ends: whatever goes wrong here on the job's last attempt (GitHub unreachable, a bug, a
    pipeline that breaks the parser) ends the run ERRORED with an `error` status on its commit.
    """
    ctx = job_context()
    try:
        return _start_run(ctx, run_id)
    except Exception as exc:
        _error_on_last_attempt(ctx, run_id, exc)
        raise


def _start_run(ctx: JobContext, run_id: str) -> str:
    run = ctx.index.get(run_id)
    if run is None:
        log.warning("%s: no such run, nothing to start", run_id)
        return "MISSING"
    if run["status"] != "QUEUED":
        log.info("%s: already %s, not starting it", run_id, run["status"])
        return run["status"]
    try:
        pipeline = load_pipeline(ctx.config, run, _reading_auth(ctx, run))
    except InvalidPipelineError as exc:
        return _mark_invalid(ctx, run, exc)
    _record_pipeline(ctx, run_id, pipeline)
    run = _with_inputs(ctx, run, pipeline)
    if not _trusted(run):
        try:
            check_untrusted(pipeline, ctx.config.untrusted_pools, _why_untrusted(run))
        except UntrustedPipelineError as exc:
            return _mark_invalid(ctx, run, exc)
    group = group_of(pipeline.definition, run)
    if group is not None and not admit(ctx, run, group):  # waits for its concurrency group, or superseded
        return str((ctx.index.get(run_id) or run)["status"])
    plan_reuse(ctx, run, pipeline.definition)  # a re-run of failed steps: what passed is not run again
    arn, execution_arn = _deploy_and_start(ctx, run, pipeline)
    started = ctx.index.transition(
        run_id,
        ("QUEUED",),
        status="RUNNING",
        state_machine_arn=arn,
        execution_arn=execution_arn,
        started_at=time.time(),
    )
    if started is None:  # cancelled or superseded while we were starting it
        stop_execution(
            ctx, run_id, execution_arn, step_errors.CANCELLED, "the run was cancelled before it started"
        )
        return "ABORTED"
    log.info("%s: started %s for %s@%s", run_id, execution_arn, run["repository"], run["sha"][:12])
    ctx.index.add_audit(run_id, {"action": "started", "execution_arn": execution_arn})
    ctx.report(queues.REPORT_RUN_STARTED, run_id)
    if not started.get("rerun_of"):  # re-running an old commit must not stop the build of a newer one
        supersede_older(ctx, started)
    return "RUNNING"


def skip_run(run_id: str) -> str:
    """rq job: a [skip ci] run starts nothing, but the reporter marks every context it owns as skipped."""
    ctx = job_context()
    run = ctx.index.get(run_id)
    if run is None:
        log.warning("%s: no such run, nothing to skip", run_id)
        return "MISSING"
    try:
        pipeline = load_pipeline(ctx.config, run, _reading_auth(ctx, run))
        _record_pipeline(ctx, run_id, pipeline)
    except InvalidPipelineError as exc:
        # nothing runs either way; the overall context still gets its "skipped"
        log.info("%s: skipped commit has an invalid pipeline: %s", run_id, exc)
    log.info("%s: skipped (%s)", run_id, run["status_reason"])
    ctx.report(queues.REPORT_RUN_SKIPPED, run_id, run["status_reason"])
    return "SKIPPED"


def _record_pipeline(ctx: JobContext, run_id: str, pipeline: Pipeline) -> None:
    """What the run's pipeline is: its name, steps, file and contract warnings, on the run record."""
    ctx.index.update(
        run_id,
        pipeline=pipeline.name,
        steps=pipeline.steps,
        # which pool serves each step: its status says "no worker serves pool X" when none does
        step_pools={spec.step: spec.pool for spec in pipeline_steps(pipeline.definition)},
        # steps named at run time (a Map's `test-py{}`): the steps table lists their iterations
        # where the family stands in the pipeline, not after every later step
        step_families=step_families(pipeline.definition),
        pipeline_path=pipeline.path,
        pipeline_warnings=list(pipeline.warnings),
    )


def step_families(definition: dict[str, Any]) -> list[list[str | None]]:
    """[template, the step known before the run that it follows (None: first)] per family, in order."""
    placed: list[list[str | None]] = []
    before = None
    for spec in pipeline_steps(definition, include_dynamic=True):
        if spec.dynamic:
            placed.append([spec.step, before])
        else:
            before = spec.step
    return placed


def _with_inputs(ctx: JobContext, run: RunRecord, pipeline: Pipeline) -> RunRecord:
    """The run with `$.inputs` in its execution input when its pipeline declares inputs (service/run_inputs.py)."""
    given = execution_input_of(run)
    filled = fill_inputs(given, declared_inputs(pipeline.definition), run.get("inputs"))
    if filled is given:
        return run
    ctx.index.update(run["run_id"], execution_input=filled)
    return {**run, "execution_input": filled}


def _reading_auth(ctx: JobContext, run: RunRecord) -> Callable[[], Auth.Token | None]:
    """A private repository's pipeline is read as the App's installation when there is no token."""
    return lambda: repository_auth(ctx.config, ctx.redis, run["repository"], run.get("installation_id"))


def _trusted(run: RunRecord) -> bool:
    # the run record is the service's, written from the event: never the execution input a pipeline sees
    return run.get("trusted") is True


def _why_untrusted(run: RunRecord) -> str:
    # a re-run copies `trusted` and `fork`, not always the reason
    return run.get("trust_reason") or (
        "pull request from a fork" if run.get("fork") else "not trusted when created"
    )


def _deploy_and_start(ctx: JobContext, run: RunRecord, pipeline: Pipeline) -> tuple[str, str]:
    """(state machine ARN, execution ARN); a deployment is remembered in Redis, redeployed if it vanished."""
    config = ctx.config
    trusted = _trusted(run)
    # trust is part of what was deployed: an untrusted run's pipeline resolves to other activities
    identity = f"{config.sfn_endpoint_url}\n{config.state_machine_prefix}\n{pipeline.name}\n{trusted}\n"
    key = (
        DEPLOYED_KEY
        + hashlib.sha256((identity + json.dumps(pipeline.definition, sort_keys=True)).encode()).hexdigest()
    )
    remembered = ctx.redis.get(key)
    if remembered:
        arn = redis_text(remembered)
        try:
            return arn, _start_execution(ctx, run, arn)
        except ctx.sfn.exceptions.StateMachineDoesNotExist:
            log.info("%s: %s is gone, deploying the pipeline again", run["run_id"], arn)
    arn = ensure_pipeline(
        ctx.sfn, pipeline.definition, pipeline.name, role_arn(config), config.state_machine_prefix, trusted
    )
    ctx.redis.set(key, arn, ex=DEPLOYED_TTL_SECONDS)
    return arn, _start_execution(ctx, run, arn)


def _start_execution(ctx: JobContext, run: RunRecord, state_machine_arn: str) -> str:
    name = run["execution_name"]
    # the ticket lets workers tell this run's tasks from a pipeline's pretence (statemachines/run_claims.py);
    # it lives only in the execution, never in the run record the API and pages show
    given = execution_input_of(run)
    ticket = claim_ticket(ctx.redis, run["run_id"], given, _trusted(run))
    execution_input = {**given, TICKET: ticket}
    try:
        response = ctx.sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
        )
        RunStages(ctx.redis).stamp(run["run_id"], EXECUTION_STARTED)
        return response["executionArn"]
    except ctx.sfn.exceptions.ExecutionAlreadyExists:
        # a retry of this job after StartExecution succeeded: the delivery's execution already runs
        log.info("%s: execution %s already exists", run["run_id"], name)
        return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def _error_on_last_attempt(ctx: JobContext, run_id: str, exc: Exception) -> None:
    """rq retries the job; when no retry is left, the run must not stay QUEUED for ever."""
    job = get_current_job()
    if job is not None and (job.retries_left or 0) > 0:
        log.warning("%s: %s (will retry)", run_id, exc)
        return
    why = str(exc) if isinstance(exc, PipelineSourceError) else f"{type(exc).__name__}: {exc}"
    reason = f"not started: {why}"[:500]
    log.error("%s: giving up: %s", run_id, reason)
    ended = ctx.index.transition(
        run_id, ("QUEUED",), status="ERRORED", status_reason=reason, finished_at=time.time()
    )
    if ended is not None:
        ctx.report(queues.REPORT_RUN_CANCELLED, run_id, reason)  # every open context: error, saying why
        release(ctx, ended)


def _mark_invalid(ctx: JobContext, run: RunRecord, exc: InvalidPipelineError) -> str:
    reason = exc.reason
    updated = ctx.index.transition(
        run["run_id"], OPEN_STATUSES, status="INVALID", status_reason=reason, validation=exc.diagnostics,
        finished_at=time.time(), pipeline_path=exc.path,
    )  # fmt: skip
    if updated is None:  # it ended meanwhile (or retention dropped it): say how
        current = ctx.index.get(run["run_id"])
        return current["status"] if current is not None else "MISSING"
    log.info("%s: %s", run["run_id"], reason)
    ctx.report(queues.REPORT_RUN_INVALID, run["run_id"])
    return "INVALID"
