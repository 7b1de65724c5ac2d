"""Runs without a push: a person (dashboard, `POST /api/runs`, service/run_client.py) or a schedule starts one.

The source is resolved and its trust decided by service/ref_resolver.py (a fork's ref stays untrusted
whoever asks), the inputs are checked against what the commit's pipeline declares (service/run_inputs.py),
and the run is created and its start job enqueued in one Redis transaction, as a webhook's run is. From
then on it is a run like any other: the same start job, statuses, page and re-runs. `event` in its
execution input is `manual` or `schedule`; the audit trail says who started it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue, Retry

from service.app_installations import repository_installation
from service.errors import (
    InvalidPipelineError,
    PipelineSourceError,
    RunNotRecordedError,
    RunRequestError,
    SourceUnavailableError,
)
from service.job_context import JobContext
from service.pipeline_source import load_pipeline
from service.ref_resolver import RefRequest, RefResolver
from service.run_inputs import check_inputs, declared_inputs
from service.run_record import RunRecord
from service.runs import new_run
from service.triggers import BUILD, Source, Trigger
from statemachines import queues

log = logging.getLogger(__name__)

JOB_RETRY = Retry(max=3, interval=[2, 10, 30])  # as a webhook's start job
MANUAL, SCHEDULE = "manual", "schedule"


@dataclass(frozen=True)
class Prepared:
    """A resolved source and what its pipeline declares (None: the pipeline is not valid, and why)."""

    source: Source
    inputs: dict[str, str] | None
    pipeline_problem: str = ""


class ManualRuns:
    """Resolve, check and queue runs that no webhook asked for."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.resolver = RefResolver(ctx.config, ctx.redis)

    def prepare(self, request: RefRequest) -> Prepared:
        """The source and the inputs its pipeline declares (the form shows them with their defaults)."""
        source = self.resolver.resolve(request)
        record: RunRecord = {
            "repository": source.repository, "clone_url": source.clone_url, "sha": source.sha,
            "execution_input": {"pull_request": vars(source.pull_request) if source.pull_request else None},
        }  # fmt: skip
        try:
            pipeline = load_pipeline(self.ctx.config, record)
        except InvalidPipelineError as exc:
            return Prepared(source, None, exc.reason)
        except PipelineSourceError as exc:
            raise SourceUnavailableError(source.repository, str(exc)) from exc
        return Prepared(source, declared_inputs(pipeline.definition))

    def start(self, request: RefRequest, inputs: Any, user: str) -> RunRecord:
        """Queue a run of the request's source for `user`; RunRequestError and kin say what is wrong."""
        prepared = self.prepare(request)
        if prepared.inputs is None and inputs:
            raise RunRequestError(
                "inputs", f"the pipeline at that commit is not valid: {prepared.pipeline_problem}"
            )
        checked = check_inputs(inputs, prepared.inputs or {})
        run = make_run(prepared.source, checked, MANUAL, f"manual-{uuid.uuid4().hex}", f"started by {user}")
        run["installation_id"] = repository_installation(self.ctx.config, self.ctx.redis, run["repository"])
        try:
            # audited first: the start job's own entries come after it
            self.ctx.index.add_audit(
                run["run_id"], {"action": "started manually", "by": user, "ref": run["ref"]}
            )
            with self.ctx.redis.pipeline() as pipe:
                pipe.multi()  # as rq expects of a caller's pipeline: the run and its job land together
                queue_run(self.ctx, run, pipe)
                pipe.execute()
        except redis.RedisError as exc:
            log.error("%s: not recorded, Redis failed: %s", run["run_id"], exc)
            raise RunNotRecordedError(str(exc)) from exc
        log.info(
            "%s: started by %s: %s %s@%s (%s)",
            run["run_id"], user, run["repository"], run["ref"], run["sha"][:12],
            "trusted" if run["trusted"] else "untrusted",
        )  # fmt: skip
        return run


def make_run(source: Source, inputs: dict[str, str], event: str, delivery_id: str, why: str) -> RunRecord:
    """The run record (not yet stored) of a source; the execution name follows `delivery_id`."""
    trigger = Trigger(**vars(source), action=BUILD, delivery_id=delivery_id, event=event, before="")
    run = new_run(trigger, event)
    return {**run, "inputs": inputs, "status_reason": why}


def queue_run(ctx: JobContext, run: RunRecord, pipe: Any) -> None:
    """Create the run and enqueue its start on a Redis pipeline already in MULTI (rq's expectation)."""
    ctx.index.create(run, pipeline=pipe)
    Queue(queues.RUNS, connection=ctx.redis).enqueue_call(
        queues.START_RUN, args=(run["run_id"],), job_id=f"run-{run['run_id']}", retry=JOB_RETRY, pipeline=pipe
    )
