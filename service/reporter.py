"""The reporter: rq jobs on "statuses" that turn run events into commit statuses for every owned context.

Each job only decides what every context should say and claims it in the ledger (service/status_ledger.py);
service/publisher.py posts. So jobs may run, retry or repeat in any order: a claim older than what a
context already wants is dropped, and a terminal state is never replaced by a pending one of the same run.
Enqueued by path by the run jobs and the workers: report_run_started, report_step, report_run_skipped,
report_run_invalid, report_run_cancelled.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from rq import get_current_job

from service.job_context import JobContext, job_context
from service.publisher import submit
from service.run_index import OPEN_STATUSES
from service.run_outcome import task_phases
from service.run_record import RunRecord
from service.status_contexts import (
    PHASE_FINAL,
    PHASE_STARTED,
    PHASE_STEP_DONE,
    PHASE_STEP_PENDING,
    STATES,
    RunContexts,
    StatusUpdate,
    format_duration,
    order_key,
)
from service.status_ledger import ContextRef, StatusLedger
from statemachines import queues
from statemachines.contract import APPROVAL_POOL, activity_name
from statemachines.outcomes import CANCELLED, FAILED, OUTCOMES, QUEUED, RUNNING, SKIPPED
from statemachines.worker_presence import NO_WORKER, served, waiting_words

log = logging.getLogger(__name__)

STEP_WORDS = {"pending": "running", "success": "passed", "failure": "failed", "error": "could not run"}
DURATION_WORDS = {"success": "passed in", "failure": "failed after", "error": "could not run; ended after"}


def report_run_started(run_id: str) -> int:
    """Every context the run's pipeline owns becomes pending; returns how many updates were claimed."""
    ctx = job_context()
    run = load_run(ctx, run_id)
    if run is None:
        return 0
    run, keep = _start_generation(ctx, run)
    at_ms = _ms(run.get("started_at") or run["created_at"])
    contexts = run_contexts(ctx, run)
    updates = [contexts.overall("pending", "running", PHASE_STARTED, at_ms, RUNNING)]
    updates += [
        contexts.step(step, "pending", _waiting_words(ctx, run, step), PHASE_STARTED, at_ms, QUEUED)
        for step in contexts.steps
        if step not in keep
    ]
    claimed = _submit(ctx, run_id, "started", updates)
    # a pipeline that ends without any worker (Pass/Choice/Fail only, a failure in its first state)
    # has no step report to nudge the reconciler: look now rather than at the next sweep
    nudge_reconcile(ctx, run_id)
    return claimed


def _waiting_words(ctx: JobContext, run: RunRecord, step: str) -> str:
    """What a step waits for: a person, a worker, or a pool that no worker serves (worker_presence)."""
    pool = (run.get("step_pools") or {}).get(step)
    if pool is None:
        return "waiting for a worker"
    if pool == APPROVAL_POOL:
        return waiting_words(pool, True)
    activity = activity_name(pool, ctx.config.state_machine_prefix, run.get("trusted") is True)
    try:
        return waiting_words(pool, served(ctx.redis, activity))
    except redis.RedisError:  # cannot tell: say the common case
        return waiting_words(pool, True)


def report_waiting_steps(ctx: JobContext, run: RunRecord, history: Callable[[], list[dict[str, Any]]]) -> int:
    """A live run's steps that wait for a pool no worker serves now say so (and say "waiting for a
    worker" again once one does); the sweep asks, so a pool left without workers mid-run is told too.

    `history` is read only when some pool of the run has no worker: most sweeps cost no Step Functions call.
    """
    step_pools = {s: p for s, p in (run.get("step_pools") or {}).items() if p != APPROVAL_POOL}
    prefix, trusted = ctx.config.state_machine_prefix, run.get("trusted") is True
    contexts, ledger, at_ms = run_contexts(ctx, run), StatusLedger(ctx.redis), _ms(time.time())

    def wanted(step: str) -> StatusUpdate | None:
        return ledger.wanted(ContextRef.of(contexts.step(step, "pending", "", PHASE_STARTED, at_ms)))

    unserved = any(not served(ctx.redis, activity_name(p, prefix, trusted)) for p in set(step_pools.values()))
    # a step told "no worker serves" is told again once a worker is back, before that worker takes it
    told = any((w := wanted(step)) and w.description.startswith(NO_WORKER) for step in step_pools)
    if not unserved and not told:
        return 0
    updates = []
    for step, (phase, arn) in task_phases(history()).items():
        pool = step_pools.get(step)
        if phase != "scheduled" or pool is None:
            continue
        words = waiting_words(pool, served(ctx.redis, arn))
        now = wanted(step)
        if now is None or (now.phase == PHASE_STARTED and now.description != words):
            updates.append(contexts.step(step, "pending", words, PHASE_STARTED, at_ms, QUEUED))
    return _submit(ctx, str(run["run_id"]), "waiting", updates) if updates else 0


def report_step(
    run_id: str, step: str, state: str, description: str, at_ms: int, outcome: str | None = None
) -> int:
    """A worker took (pending) or finished (success, failure, error) one step; `outcome` is what that means
    (statemachines/outcomes.py: a job enqueued by an older worker names none, and its words tell)."""
    ctx = job_context()
    run = load_run(ctx, run_id)
    if run is None or state not in STATES or (outcome is not None and outcome not in OUTCOMES):
        log.warning(
            "%s: status %r (%s) of step %r dropped (unknown run, state or outcome)",
            run_id,
            state,
            outcome,
            step,
        )
        return 0
    contexts = run_contexts(ctx, run)
    if step not in contexts.steps:
        log.info("%s: step %r is named at run time (not in %s)", run_id, step, contexts.steps)
    phase = PHASE_STEP_PENDING if state == "pending" else PHASE_STEP_DONE
    update = contexts.step(step, state, description.strip() or STEP_WORDS[state], phase, at_ms, outcome)
    if not description.strip() and state != "pending":
        update = _with_duration(StatusLedger(ctx.redis), update)
    claimed = _submit(ctx, run_id, f"step {step} {state}", [update])
    if state != "pending":
        reconcile_now(ctx, run_id)
    return claimed


def report_run_skipped(run_id: str, reason: str) -> int:
    """[skip ci] and the like: every owned context is a success that says it was skipped."""
    ctx = job_context()
    run = load_run(ctx, run_id)
    if run is None:
        return 0
    words = f"skipped: {reason or 'not built'}"
    updates = run_contexts(ctx, run).every("success", words, PHASE_FINAL, _event_ms(run), SKIPPED)
    return _submit(ctx, run_id, "skipped", updates)


def report_run_invalid(run_id: str) -> int:
    """The pipeline failed validation: the overall context is an error naming the problem."""
    ctx = job_context()
    run = load_run(ctx, run_id)
    if run is None:
        return 0
    problem = run.get("status_reason") or _first_problem(run.get("validation")) or "invalid pipeline"
    contexts = run_contexts(ctx, run)
    at_ms = _event_ms(run)
    updates = [contexts.overall("error", problem, PHASE_FINAL, at_ms, FAILED)]
    updates += [
        contexts.step(s, "error", "not run: invalid pipeline", PHASE_FINAL, at_ms, SKIPPED)
        for s in contexts.steps
    ]
    return _submit(ctx, run_id, "invalid", updates)


def report_run_cancelled(run_id: str, reason: str) -> int:
    """Superseded or cancelled: every context of the run that is still open gets an error saying so."""
    ctx = job_context()
    run = load_run(ctx, run_id)
    if run is None:
        return 0
    contexts = run_contexts(ctx, run)
    ledger = StatusLedger(ctx.redis)
    words = reason or "cancelled"
    at_ms = _event_ms(run)
    candidates = contexts.every("error", words, PHASE_FINAL, at_ms, CANCELLED)
    # steps named at run time (a Map's `step.$`) are known only from what the run claimed
    named = {step for ref in ledger.claimed(run_id) if (step := contexts.step_of(ref.context)) is not None}
    later = sorted(named - set(contexts.steps))
    candidates += [contexts.step(step, "error", words, PHASE_FINAL, at_ms, CANCELLED) for step in later]
    updates = [u for u in candidates if not closed_for_run(ledger, u)]
    return _submit(ctx, run_id, "cancelled", updates)


def load_run(ctx: JobContext, run_id: str) -> RunRecord | None:
    """The run record, with the redrive generation the reporter keeps beside it."""
    run = ctx.index.get(run_id)
    if run is None:
        log.warning("%s: no such run, no status to report", run_id)
        return None
    return {**run, "redrive_count": StatusLedger(ctx.redis).redrives(run_id)}


def note_redrives(ctx: JobContext, run: RunRecord, count: int) -> RunRecord:
    """Remember a redriven execution's count (only ever raised), so its new reports outrank the last end."""
    if count > int(run.get("redrive_count") or 0):
        StatusLedger(ctx.redis).note_redrives(run["run_id"], count)
        return {**run, "redrive_count": count}
    return run


def run_contexts(ctx: JobContext, run: RunRecord) -> RunContexts:
    return RunContexts(run, ctx.config.status_prefix, ctx.config.public_url)


def closed_for_run(ledger: StatusLedger, update: StatusUpdate) -> bool:
    """True when the context already holds a terminal state of this run and generation (or anything newer)."""
    wanted = ledger.wanted(ContextRef.of(update))
    if wanted is None:
        return False
    if wanted.order[:3] == update.order[:3]:
        return wanted.terminal
    return wanted.order > update.order  # a newer run owns it now


def nudge_reconcile(ctx: JobContext, run_id: str) -> None:
    """Have the reconciler look at the run now: workers report a step after telling Step Functions, so
    after the last step the execution has ended (if not, the periodic sweep finds it)."""
    ctx.statuses.enqueue(queues.RECONCILE_RUN, run_id, result_ttl=60)


def reconcile_now(ctx: JobContext, run_id: str) -> None:
    """The reconciler's look at the run, in this job: after the last step the execution has ended,
    and a job of its own would put one more queue hop (and every job queued meanwhile) between the
    run's end and its final status. Should the look fail, the reconcile job tries again."""
    # service.reconcile imports this module: imported here, when the first step report runs
    from service.reconcile import reconcile

    run = load_run(ctx, run_id)
    if run is None:
        return
    try:
        reconcile(ctx, run)
    except Exception as exc:
        log.warning("%s: reconcile after the step report failed (%s); queued to try again", run_id, exc)
        nudge_reconcile(ctx, run_id)


def _start_generation(ctx: JobContext, run: RunRecord) -> tuple[RunRecord, set[str]]:
    """A redrive starts the run's next generation; steps that passed before it keep their success.

    A start reported for an open run whose overall context already ended in this generation is a
    redrive (a repeated job of an ended run finds the run closed): only the failed part runs again.
    """
    ledger = StatusLedger(ctx.redis)
    contexts = run_contexts(ctx, run)
    overall = ledger.wanted(ContextRef.of(contexts.overall("pending", "", PHASE_STARTED, 0)))
    if overall is None or run["status"] not in OPEN_STATUSES or not overall.terminal:
        return run, set()
    if overall.order[:3] != order_key(run, PHASE_STARTED, 0)[:3]:
        return run, set()  # another run, or a generation already started
    run = note_redrives(ctx, run, int(run.get("redrive_count") or 0) + 1)
    kept = set()
    for step in contexts.steps:
        wanted = ledger.wanted(ContextRef.of(contexts.step(step, "pending", "", PHASE_STARTED, 0)))
        if wanted is not None and wanted.run_id == run["run_id"] and wanted.state == "success":
            kept.add(step)
    log.info(
        "%s: redriven (generation %s); passed steps stay passed: %s",
        run["run_id"],
        run["redrive_count"],
        sorted(kept),
    )
    return run, kept


def _with_duration(ledger: StatusLedger, update: StatusUpdate) -> StatusUpdate:
    """A worker gave no words: say how long the step ran, measured from its pending report."""
    wanted = ledger.wanted(ContextRef.of(update))
    if wanted is None or wanted.order[:3] != update.order[:3] or wanted.order[3] != PHASE_STEP_PENDING:
        return update
    took = format_duration((update.order[4] - wanted.order[4]) / 1000)
    return dataclasses.replace(update, description=f"{DURATION_WORDS[update.state]} {took}")


def _submit(ctx: JobContext, run_id: str, what: str, updates: list[StatusUpdate]) -> int:
    claimed = submit(ctx, updates)
    log.info("%s: %s: %d of %d status update(s) are the newest", run_id, what, claimed, len(updates))
    return claimed


def _event_ms(run: RunRecord) -> int:
    """When the event happened: the run's end, else when this job was enqueued (the same on every retry)."""
    if finished_at := run.get("finished_at"):
        return _ms(finished_at)
    job = get_current_job()
    if job is not None and job.created_at is not None:
        return int(job.created_at.timestamp() * 1000)
    return int(time.time() * 1000)


def _first_problem(validation: Any) -> str:
    if isinstance(validation, list) and validation:
        first = validation[0]
        return str(first.get("message") if isinstance(first, dict) else first)
    return str(validation or "")


def _ms(seconds: float) -> int:
    return int(float(seconds) * 1000)
