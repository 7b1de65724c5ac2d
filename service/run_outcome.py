"""What an ended execution says about each build step and the whole run, read from its history (pure).

Input is what boto3 returns: DescribeExecution's dict and GetExecutionHistory's events (AWS's shapes,
timestamps as datetimes or epoch seconds), so tests can build them by hand and AWS and the local
engine read the same. A step is found by the `step` its Task passes (the status context's name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.run_record import RunStatus
from service.status_contexts import format_duration
from statemachines import outcomes
from statemachines.step_errors import REJECTED, STEP_FAILED, STEP_TIMED_OUT

SCHEDULED = {"ActivityScheduled": "input", "TaskScheduled": "parameters"}
STARTED = {"ActivityStarted", "TaskStarted"}
SUCCEEDED = {"ActivitySucceeded", "TaskSucceeded"}
FAILED = {"ActivityFailed", "ActivityTimedOut", "ActivityScheduleFailed", "TaskFailed", "TaskTimedOut"}
FAILED |= {"TaskStartFailed", "TaskSubmitFailed"}
# The build itself failed (GitHub "failure"); any other error means it could not run ("error").
BUILD_FAILURES = {STEP_FAILED, STEP_TIMED_OUT, REJECTED, "States.Timeout"}
TIMEOUTS = {"States.Timeout", STEP_TIMED_OUT}
ENDED: set[RunStatus] = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class Attempt:
    """One scheduling of a step's task: retries and Map iterations each make one."""

    step: str
    scheduled_at: float
    started_at: float | None = None
    ended_at: float | None = None
    result: str = "running"  # running, succeeded or failed
    error: str = ""
    cause: str = ""
    reused: str = ""  # how a re-run's worker answered with a recorded result (step_reuse), in its words
    resource: str = ""  # the activity (or service) ARN it was scheduled on

    @property
    def duration(self) -> str:
        end = self.ended_at
        begin = self.started_at or self.scheduled_at
        return format_duration(end - begin if end is not None else None)


@dataclass(frozen=True)
class Verdict:
    """The state, description and outcome (statemachines/outcomes.py) one context ends with."""

    state: str
    description: str
    outcome: str | None = None  # None: a verdict read back from a status without one


@dataclass(frozen=True)
class RunOutcome:
    """The run's final status for the run index, and the verdict of every context."""

    status: RunStatus  # the execution's: one of ENDED
    overall: Verdict
    steps: dict[str, Verdict] = field(default_factory=dict)
    finished_at: float | None = None


def read_attempts(history: list[dict[str, Any]]) -> list[Attempt]:
    """Every task attempt of a build step, in history order; later events follow previousEventId."""
    attempts: list[Attempt] = []
    by_event: dict[int, Attempt] = {}
    for event in sorted(history, key=lambda e: int(e["id"])):
        kind = event["type"]
        if kind in SCHEDULED:
            step = _step_of(event, kind)
            if step is not None:
                details = event.get(kind[0].lower() + kind[1:] + "EventDetails") or {}
                by_event[event["id"]] = Attempt(
                    step, _seconds(event["timestamp"]), resource=details.get("resource", "")
                )
                attempts.append(by_event[event["id"]])
            continue
        attempt = by_event.get(event.get("previousEventId", -1))
        if attempt is None or kind not in STARTED | SUCCEEDED | FAILED:
            continue
        by_event[event["id"]] = attempt
        _apply(attempt, event, kind)
    return attempts


def outcome_of(
    describe: dict[str, Any], history: list[dict[str, Any]], steps: list[str], reason: str = ""
) -> RunOutcome:
    """Final verdicts for an ended execution: `steps` are the pipeline's, `reason` why a run was stopped."""
    status = describe["status"]
    if status not in ENDED:
        raise ValueError(f"execution {describe.get('executionArn')} has not ended: {status}")
    last: dict[str, Attempt] = {}
    for attempt in read_attempts(history):
        last[attempt.step] = attempt  # a retry or a later iteration tells how the step ended
    failed = _failed_step(last)
    end_words = _end_words(status, describe, reason)
    verdicts = {step: _step_verdict(last.get(step), status, failed, end_words) for step in steps}
    verdicts |= {
        step: _step_verdict(a, status, failed, end_words) for step, a in last.items() if step not in verdicts
    }
    start, stop = _seconds(describe.get("startDate")), _seconds(describe.get("stopDate"))
    took = format_duration(stop - start if start and stop else None)
    overall = _overall_verdict(status, describe, failed, verdicts, took, end_words)
    return RunOutcome(status, overall, verdicts, stop)


def unreached_verdict(status: str, reason: str = "") -> Verdict:
    """The verdict of a step an ended run never ran (when the ledger holds none): the reconciler's rule."""
    return _step_verdict(None, status, None, _end_words(status, {}, reason))


def _step_verdict(attempt: Attempt | None, status: str, failed: Attempt | None, end_words: str) -> Verdict:
    if attempt is None:
        if status == "SUCCEEDED":
            return Verdict("success", "skipped: not on this run's path", outcomes.SKIPPED)
        if failed:  # not run because another step failed: skipped, as GitHub Actions shows it
            return Verdict("error", f"not run: {failed.step} failed", outcomes.SKIPPED)
        # a failed run with no failed step (its own Fail state) skipped the rest; a stopped one cancelled it
        return Verdict(
            "error", f"not run: {end_words}", outcomes.SKIPPED if status == "FAILED" else outcomes.CANCELLED
        )
    if attempt.result == "succeeded" and attempt.reused:
        # the words the worker posted: the final report must not turn them into "passed in 0s"
        return Verdict("success", attempt.reused, outcomes.PASSED)
    if attempt.result == "succeeded":
        return Verdict("success", f"passed in {attempt.duration}", outcomes.PASSED)
    if attempt.result == "running":
        return Verdict(
            "error",
            f"stopped: {end_words}",
            outcomes.TIMED_OUT if status == "TIMED_OUT" else outcomes.CANCELLED,
        )
    state = "failure" if attempt.error in BUILD_FAILURES else "error"
    if attempt.error in TIMEOUTS:
        return Verdict(state, f"timed out after {attempt.duration}", outcomes.TIMED_OUT)
    if attempt.error == "States.HeartbeatTimeout":
        return Verdict(state, f"worker lost after {attempt.duration} (no heartbeat)", outcomes.FAILED)
    if attempt.error == REJECTED:
        return Verdict(state, f"rejected: {attempt.cause}" if attempt.cause else "rejected", outcomes.FAILED)
    detail = f"{attempt.error}: {attempt.cause}" if attempt.cause else attempt.error
    return Verdict(state, f"failed after {attempt.duration}: {detail}", outcomes.FAILED)


def _overall_verdict(
    status: str,
    describe: dict[str, Any],
    failed: Attempt | None,
    verdicts: dict[str, Verdict],
    took: str,
    end_words: str,
) -> Verdict:
    if status == "SUCCEEDED":
        return Verdict("success", f"passed in {took}", outcomes.PASSED)
    if status == "TIMED_OUT":
        return Verdict("error", f"timed out after {took}", outcomes.TIMED_OUT)
    if status == "ABORTED":
        return Verdict("error", end_words, outcomes.CANCELLED)
    if failed is not None and failed.error == REJECTED and failed.cause:
        # the person who rejected it and why, not "failed": nothing broke
        return Verdict(
            verdicts[failed.step].state, f"failed in {took}: {failed.step} {failed.cause}", outcomes.FAILED
        )
    if failed is not None:
        return Verdict(
            verdicts[failed.step].state, f"failed in {took}: {failed.step} failed", outcomes.FAILED
        )
    detail = ": ".join(str(part) for part in (describe.get("error"), describe.get("cause")) if part)
    return Verdict("failure", f"failed in {took}: {detail or 'the pipeline failed'}", outcomes.FAILED)


def _failed_step(last: dict[str, Attempt]) -> Attempt | None:
    """The step whose failure ended the run: the last attempt that failed, by when it ended."""
    failures = [a for a in last.values() if a.result == "failed"]
    return max(failures, key=lambda a: a.ended_at or 0.0) if failures else None


def _end_words(status: str, describe: dict[str, Any], reason: str) -> str:
    """How a run that did not succeed ended, for the contexts it never reached."""
    if status == "ABORTED":
        return reason or str(describe.get("cause") or "") or "run aborted"
    if status == "TIMED_OUT":
        return "run timed out"
    return "run failed"


def _apply(attempt: Attempt, event: dict[str, Any], kind: str) -> None:
    at = _seconds(event["timestamp"])
    if kind in STARTED:
        attempt.started_at = at
        return
    attempt.ended_at = at
    details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
    if kind in SUCCEEDED:
        attempt.result = "succeeded"
        attempt.reused = _reused_words(details.get("output"))
        return
    attempt.result = "failed"
    attempt.error = str(
        details.get("error") or ("States.Timeout" if kind.endswith("TimedOut") else "States.TaskFailed")
    )
    attempt.cause = str(details.get("cause") or "")


def _reused_words(output: Any) -> str:
    """As workers/activity_task.py says it: `reused from run <id> (passed in <n>s)`; "" when not reused."""
    try:
        data = json.loads(output) if isinstance(output, str) else None
    except ValueError:
        return ""
    if (
        not isinstance(data, dict)
        or data.get("reused") is not True
        or not isinstance(data.get("reused_from"), str)
    ):
        return ""
    took = data.get("duration_seconds")
    took = float(took) if isinstance(took, int | float) else 0.0
    return f"reused from run {data['reused_from'][:7]} (passed in {took:.0f}s)"


def _step_of(event: dict[str, Any], kind: str) -> str | None:
    details = event.get(kind[0].lower() + kind[1:] + "EventDetails") or {}
    try:
        data = json.loads(details.get(SCHEDULED[kind]) or "null")
    except ValueError:
        return None
    step = data.get("step") if isinstance(data, dict) else None
    return step if isinstance(step, str) and step else None


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value) if value is not None else 0.0


def task_phases(history: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Steps whose newest task is open: ("scheduled", activity ARN) while no worker has taken it,
    ("started", activity ARN) once one has (it may still be checking out: the log tells the rest)."""
    phases: dict[str, tuple[str, str]] = {}
    for attempt in read_attempts(history):
        if attempt.ended_at is not None:
            phases.pop(attempt.step, None)
        else:
            phases[attempt.step] = ("started" if attempt.started_at else "scheduled", attempt.resource)
    return phases
