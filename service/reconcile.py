"""The reconciler: when an execution ends, its run gets its final status and every owned context ends.

Runs as rq jobs: `reconcile_run` after each step report (a nudge) and `sweep_open_runs` every
STEPLINE_RECONCILE_INTERVAL_SECONDS (enqueued by a thread of the jobs process, `start_sweeper`). The sweep
is what makes a crash harmless: whatever died (a worker, the jobs process mid-job), open runs whose
execution ended are finalised, and statuses claimed but never posted are posted again. The sweep also
trims runs past their retention (service/retention.py), a bounded batch each time.
Works the same on AWS: only DescribeExecution and GetExecutionHistory are called.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from botocore.exceptions import BotoCoreError, ClientError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from service.concurrency import release, retry_waiting
from service.job_context import JobContext, job_context
from service.output_retention import blob_store, trim_build_outputs
from service.publisher import enqueue_publish, submit
from service.reporter import (
    closed_for_run,
    load_run,
    note_redrives,
    report_run_cancelled,
    report_waiting_steps,
    run_contexts,
)
from service.retention import trim_finished_runs
from service.run_index import OPEN_STATUSES
from service.run_index_backfill import backfill
from service.run_outcome import ENDED, RunOutcome, outcome_of, read_attempts
from service.run_record import RunRecord
from service.status_contexts import PHASE_FINAL
from service.status_ledger import StatusLedger
from statemachines import queues
from statemachines.outcomes import FAILED
from statemachines.step_logs import end_lost_attempts

log = logging.getLogger(__name__)

SWEEP_BATCH = 500  # open runs looked at per sweep; more wait for the next one
MAX_HISTORY_EVENTS = 25_000  # AWS's own limit per execution
LOST_AFTER = 600  # seconds: a run whose execution is gone this long after creation is closed as lost
GIVE_UP_AFTER = 24 * 3600  # a status GitHub has refused for a day is stale news: stop trying
STOPPED_STATUSES = ("SUPERSEDED", "ABORTED")
STOPPED_WITHIN = 3600  # seconds: how far back the sweep checks that stopped runs' contexts were closed
SWEEP_JOB = "stepline-reconcile-sweep"
SWEEP_TICK_KEY = "stepline:reconcile:sweep-tick"
# the start job's three retries (2, 10, 30 s apart) and four tries of up to rq's 180 s each are over
STUCK_QUEUED_AFTER = 15 * 60
PENDING_JOB_STATUSES = ("queued", "started", "scheduled", "deferred")
# the engine ended the task (no heartbeat, or its TimeoutSeconds): its worker never reported
ENGINE_TIMEOUTS = ("States.HeartbeatTimeout", "States.Timeout")


def reconcile_run(run_id: str) -> str:
    """rq job: finalise the run if its execution has ended; returns the run's status."""
    ctx = job_context()
    run = load_run(ctx, run_id)
    if run is None:
        return "MISSING"
    return reconcile(ctx, run)


def reconcile(ctx: JobContext, run: RunRecord) -> str:
    """Ask Step Functions how the run's execution is doing; finalise it when it has ended."""
    arn = run.get("execution_arn")
    if run["status"] not in OPEN_STATUSES or not arn:
        retry_waiting(ctx, run)  # a run waiting in a concurrency group whose holder ended unnoticed
        return str(run["status"])  # stopped runs are closed by report_run_cancelled; unstarted by start_run
    try:
        describe = ctx.sfn.describe_execution(executionArn=arn)
    except ctx.sfn.exceptions.ExecutionDoesNotExist:
        if time.time() - float(run["created_at"]) < LOST_AFTER:
            return str(run["status"])
        describe = {"status": "ABORTED", "cause": "execution lost: Step Functions no longer knows it"}
        return finalise_run(ctx, run, describe, [])
    if describe["status"] not in ENDED:
        try:
            report_waiting_steps(ctx, run, lambda: read_history(ctx.sfn, arn))
        except redis.RedisError as exc:  # the statuses say "waiting" a while longer; the next sweep tells
            log.warning("%s: waiting steps not reported: %s", run["run_id"], exc)
        return str(run["status"])
    return finalise_run(ctx, run, describe, read_history(ctx.sfn, arn))


def finalise_run(
    ctx: JobContext, run: RunRecord, describe: dict[str, Any], history: list[dict[str, Any]]
) -> str:
    """Close every context of an ended run from DescribeExecution and GetExecutionHistory results.

    Contexts already closed by this run (a worker's final report, a cancel) keep what they say; the
    rest get the execution's verdict. Statuses are claimed before the run leaves the open set, so a
    crash in between is repaired by the next sweep, never left pending.
    """
    run = note_redrives(ctx, run, int(describe.get("redriveCount") or 0))
    # an open run was stopped by no one here: how it ended is the execution's own error and cause
    outcome = outcome_of(describe, history, list(run.get("steps") or []))
    at_ms = int((outcome.finished_at or time.time()) * 1000)
    contexts = run_contexts(ctx, run)
    overall = outcome.overall
    updates = [contexts.overall(overall.state, overall.description, PHASE_FINAL, at_ms, overall.outcome)]
    updates += [
        contexts.step(s, v.state, v.description, PHASE_FINAL, at_ms, v.outcome)
        for s, v in outcome.steps.items()
    ]
    ledger = StatusLedger(ctx.redis)
    claimed = submit(ctx, [update for update in updates if not closed_for_run(ledger, update)])
    end_lost_logs(ctx, run["run_id"], history)
    _close_run(ctx, run, outcome)
    log.info("%s: execution %s; %d context(s) closed", run["run_id"], outcome.status.lower(), claimed)
    return outcome.status


def end_lost_logs(ctx: JobContext, run_id: str, history: list[dict[str, Any]]) -> None:
    """A step whose last task the engine timed out lost its worker: its log still says running."""
    timed_out = {a.step for a in read_attempts(history) if a.error in ENGINE_TIMEOUTS}
    for step in sorted(timed_out):
        try:
            end_lost_attempts(ctx.redis, run_id, step, "the worker was lost; its task timed out")
        except redis.RedisError as exc:  # the log says "running" a while longer; statuses matter more
            log.warning("%s: step %s: lost attempt not marked in its log: %s", run_id, step, exc)


def read_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every history event (with inputs: they name the steps), following nextToken."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000, "includeExecutionData": True}
    while len(events) < MAX_HISTORY_EVENTS:
        page = sfn.get_execution_history(**params)
        events += page["events"]
        if not page.get("nextToken"):
            break
        params["nextToken"] = page["nextToken"]
    return events


def sweep_open_runs() -> dict[str, int]:
    """rq job: reconcile every open run, and post again statuses whose job died; returns counts."""
    ctx = job_context()
    runs = [r for status in OPEN_STATUSES for r in ctx.index.list_runs(limit=SWEEP_BATCH, status=status)]
    finalised = 0
    for listed in runs:
        run = load_run(ctx, listed["run_id"])
        try:
            finalised += run is not None and reconcile(ctx, run) in ENDED
        except (ClientError, BotoCoreError) as exc:  # Step Functions unreachable: the next sweep tries again
            log.warning("%s: reconcile failed: %s", listed["run_id"], exc)
    closed = close_stopped_runs(ctx)
    errored = end_stuck_queued(ctx)
    reposted = repost_unposted(ctx)
    trimmed = trim_finished_runs(ctx.index, ctx.config.run_retention_days)
    outputs = blob_store(ctx.config.blob)
    trim_build_outputs(
        ctx.redis, outputs, ctx.config.artifact_retention_days, ctx.config.cache_retention_days
    )
    backfill(ctx.index)  # runs recorded before the secondary indexes (a no-op once done)
    if runs or closed or reposted:
        log.info(
            "sweep: %d open run(s), %d finalised, %d stopped run(s) closed, %d status(es) posted again",
            *(len(runs), finalised, closed, reposted),
        )
    counts = {"open": len(runs), "finalised": finalised, "closed": closed, "reposted": reposted}
    counts["errored"] = errored
    return counts | {"trimmed": trimmed}


def close_stopped_runs(ctx: JobContext) -> int:
    """Runs stopped lately (superseded, cancelled) whose closing job was lost: close their contexts now.

    Stopped runs leave the open set before their report_run_cancelled job runs; if that job is lost
    (the jobs process died, Redis failed it), nothing else would ever end their pending contexts.
    """
    ledger = StatusLedger(ctx.redis)
    since = time.time() - STOPPED_WITHIN
    closed = 0
    for status in STOPPED_STATUSES:
        for run in ctx.index.list_runs(limit=SWEEP_BATCH, status=status):
            if float(run.get("finished_at") or 0) < since or not _has_open_context(ledger, run):
                continue
            log.warning("%s: %s but statuses still pending; closing them", run["run_id"], status.lower())
            report_run_cancelled(run["run_id"], run.get("status_reason") or status.lower())
            closed += 1
    return closed


def end_stuck_queued(ctx: JobContext) -> int:
    """Runs still QUEUED after their start job and every retry of it ended: ERRORED, with an error status.

    start_run ends the runs it knows how to fail (INVALID, FAILED on its last retry); anything it did
    not expect (a RecursionError from a deeply nested pipeline file, the job killed by its timeout)
    would leave the run QUEUED for ever with its commit pending. A run waiting for its concurrency
    group is QUEUED on purpose, and a start job still queued (the jobs process busy or down) will run.
    """
    cutoff = time.time() - STUCK_QUEUED_AFTER
    ended = 0
    for run in ctx.index.list_runs(limit=SWEEP_BATCH, status="QUEUED"):
        run_id = run["run_id"]
        if run.get("waiting_for") or float(run.get("created_at") or 0) > cutoff:
            continue
        job = _start_job(ctx, run_id)
        if job is not None and job.get_status(refresh=False) in PENDING_JOB_STATUSES:
            continue
        reason = f"not started: {_job_error(job) or 'its start job ended without starting it'}"[:500]
        closed = ctx.index.transition(
            run_id, ("QUEUED",), status="ERRORED", status_reason=reason, finished_at=time.time()
        )
        if closed is None:  # started or stopped meanwhile
            continue
        log.error("%s: still queued after its start job gave up; errored: %s", run_id, reason)
        contexts = run_contexts(ctx, closed)
        submit(ctx, contexts.every("error", reason, PHASE_FINAL, int(time.time() * 1000), FAILED))
        release(ctx, closed)
        ended += 1
    return ended


def _start_job(ctx: JobContext, run_id: str) -> Job | None:
    try:  # the webhook names the start job after the run (service/webhooks.py)
        return Job.fetch(f"run-{run_id}", connection=ctx.redis)
    except NoSuchJobError:
        return None


def _job_error(job: Job | None) -> str:
    """The last line of the job's traceback (`RecursionError: maximum recursion depth exceeded`)."""
    if job is None or job.get_status(refresh=False) != "failed":
        return ""
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or job.exc_info or ""
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _has_open_context(ledger: StatusLedger, run: RunRecord) -> bool:
    for ref in ledger.claimed(run["run_id"]):
        wanted = ledger.wanted(ref)
        if wanted is not None and wanted.run_id == run["run_id"] and not wanted.terminal:
            return True
    return False


def repost_unposted(ctx: JobContext) -> int:
    """Statuses claimed long enough ago that their publish job (and all its retries) must have died."""
    patience = sum(ctx.config.status_retry_intervals) + 2 * ctx.config.reconcile_interval
    ledger = StatusLedger(ctx.redis)
    stale = ledger.dirty(time.time() - patience)
    for ref, _ in stale:
        if ledger.wanted_for(ref) > GIVE_UP_AFTER:
            ledger.give_up_old(ref, f"not posted after {GIVE_UP_AFTER // 3600} h of retries")
            continue
        ledger.touch_dirty(ref)  # the next sweep waits a full patience again
        enqueue_publish(ctx, ref)
    return len(stale)


def start_sweeper(
    connection: redis.Redis, interval: int, stop: threading.Event | None = None
) -> threading.Thread:
    """A thread of the jobs process that enqueues `sweep_open_runs` every `interval` seconds.

    A loop rather than rq's scheduler: after a SIGKILL rq's scheduler lock outlives the dead process
    for a minute, and recovering from exactly that crash is the sweep's job. One sweep per interval
    across all jobs processes (a Redis key), and none while the last one still waits or runs.
    """
    queue = Queue(queues.STATUSES, connection=connection)
    stop = stop or threading.Event()

    def loop() -> None:
        failing = False
        while not stop.is_set():
            try:
                enqueue_sweep(queue, interval)
                if failing:
                    log.info("sweeper: Redis answers again")
                failing = False
            except redis.RedisError as exc:  # Redis restarting or stopped first: the next tick tries again
                if not failing and not stop.is_set():
                    log.warning("sweeper: sweep not enqueued (%s); retrying every %d s", exc, interval)
                failing = True
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="stepline-sweeper", daemon=True)
    thread.start()
    return thread


def enqueue_sweep(queue: Queue, interval: int) -> bool:
    """Enqueue one sweep unless another process did this interval or the last one is not done."""
    if not queue.connection.set(SWEEP_TICK_KEY, 1, nx=True, ex=interval):
        return False
    last = queue.fetch_job(SWEEP_JOB)
    if last is not None and last.get_status(refresh=False) in ("queued", "started", "scheduled", "deferred"):
        return False
    queue.enqueue(sweep_open_runs, job_id=SWEEP_JOB, result_ttl=interval * 4, failure_ttl=24 * 3600)
    return True


def _close_run(ctx: JobContext, run: RunRecord, outcome: RunOutcome) -> None:
    closed = ctx.index.transition(
        run["run_id"],
        OPEN_STATUSES,
        status=outcome.status,
        status_reason=outcome.overall.description,
        finished_at=outcome.finished_at or time.time(),
    )
    if closed is not None:
        release(ctx, closed)  # the next run waiting in its concurrency group starts
