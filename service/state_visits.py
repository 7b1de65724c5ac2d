"""A run's execution history per state: each visit's input, output and failures, and each state's status.

History events have AWS's shapes; events of concurrent Parallel branches and Map iterations interleave,
so they are tied to their state through previousEventId, AWS's causal link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GROUP_TYPES = {"Parallel", "Map"}
OPEN = "RUNNING"
MAX_TEXT = 16 * 1024  # inputs and outputs are shown, not archived: bound what one page load carries

# History event types -> what they say about the state they belong to.
FAILURE_EVENTS = {
    "TaskFailed",
    "TaskTimedOut",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "ActivityFailed",
    "ActivityTimedOut",
    "ActivityScheduleFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionScheduleFailed",
    "LambdaFunctionStartFailed",
    "ParallelStateFailed",
    "MapStateFailed",
    "MapRunFailed",
}
SUCCESS_EVENTS = {
    "TaskSucceeded",
    "ActivitySucceeded",
    "LambdaFunctionSucceeded",
    "ParallelStateSucceeded",
    "MapStateSucceeded",
}
EXECUTION_END = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}
# an activity task scheduled and not yet taken by a worker: its state waits for one
TAKEN_EVENTS = {"ActivityStarted", "ActivitySucceeded", "ActivityFailed", "ActivityTimedOut"}


@dataclass
class Visit:
    """One entry into a state: what it got, what it gave, and the failures (retries) in between."""

    entered_at: float
    input: str | None = None
    exited_at: float | None = None
    output: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    succeeded: bool = False
    abandoned: bool = False  # left open by a failed execution that was then redriven
    waiting_on: str | None = None  # the activity (ARN) of a task no worker has taken yet

    def to_dict(self) -> dict[str, Any]:
        return {
            "entered_at": self.entered_at,
            "exited_at": self.exited_at,
            "input": _bounded(self.input),
            "output": _bounded(self.output),
            "failures": self.failures,
            "retries": max(0, len(self.failures) - (0 if self.succeeded or not self.failures else 1)),
        }


def _bounded(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… cut: {len(text) - MAX_TEXT} more characters"


def visits_by_state(
    events: list[dict[str, Any]], types: dict[str, str]
) -> tuple[dict[str, list[Visit]], dict[str, Any]]:
    """Visits per state name (names are unique in a state machine) and the execution's own outcome."""
    visits: dict[str, list[Visit]] = {}
    entered: dict[int, tuple[str, Visit]] = {}  # StateEntered event id -> its visit
    by_id: dict[int, dict[str, Any]] = {}
    execution: dict[str, Any] = {"status": OPEN, "error": None, "cause": None, "redrives": 0}
    for event in events:
        by_id[event.get("id", -1)] = event
        kind, details = str(event.get("type", "")), _details(event)
        name = details.get("name", "")
        if kind.endswith("StateEntered"):
            visit = Visit(event.get("timestamp", 0), input=details.get("input"))
            visits.setdefault(name, []).append(visit)
            entered[event["id"]] = (name, visit)
        elif kind.endswith("StateExited"):
            open_visit = next((v for v in reversed(visits.get(name, [])) if v.exited_at is None), None)
            if open_visit is not None:
                open_visit.exited_at, open_visit.output = event.get("timestamp", 0), details.get("output")
        elif kind.startswith("Execution"):
            _execution_event(kind, details, execution, visits)
        elif (
            kind in FAILURE_EVENTS
            or kind in SUCCESS_EVENTS
            or kind in TAKEN_EVENTS
            or kind == "ActivityScheduled"
        ):
            owner = _owner_of(event, by_id, entered, types)
            if owner is None:
                continue
            owner[1].waiting_on = details.get("resource") if kind == "ActivityScheduled" else None
            if kind in FAILURE_EVENTS or kind in SUCCESS_EVENTS:
                _record_outcome(owner[1], kind, event, details)
    return visits, execution


def _owner_of(
    event: dict[str, Any],
    by_id: dict[int, dict[str, Any]],
    entered: dict[int, tuple[str, Visit]],
    types: dict[str, str],
) -> tuple[str, Visit] | None:
    """The visit an event belongs to, following previousEventId (AWS's causal link: branches interleave).

    Task events belong to the nearest entered state; Parallel/Map events to the nearest entered group.
    """
    want_group = str(event.get("type", "")).startswith(("Parallel", "Map"))
    current = by_id.get(event.get("previousEventId", -1))
    for _ in range(len(by_id)):
        if current is None:
            return None
        found = entered.get(current.get("id", -1))
        if found is not None and (not want_group or types.get(found[0]) in GROUP_TYPES):
            return found
        current = by_id.get(current.get("previousEventId", -1))
    return None


def _record_outcome(visit: Visit, kind: str, event: dict[str, Any], details: dict[str, Any]) -> None:
    if kind in FAILURE_EVENTS:
        visit.failures.append(
            {
                "type": kind,
                "timestamp": event.get("timestamp"),
                "error": details.get("error"),
                "cause": _bounded(details.get("cause")),
            }
        )
        visit.succeeded = False
    else:
        visit.succeeded = True


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _execution_event(
    kind: str, details: dict[str, Any], execution: dict[str, Any], visits: dict[str, list[Visit]]
) -> None:
    if kind in EXECUTION_END:
        execution["status"] = kind.removeprefix("Execution").upper().replace("TIMEDOUT", "TIMED_OUT")
        execution["error"] = details.get("error")
        execution["cause"] = _bounded(details.get("cause"))
    elif kind == "ExecutionRedriven":
        execution.update(status=OPEN, error=None, cause=None, redrives=execution["redrives"] + 1)
        for state_visits in visits.values():  # what failed before the redrive is history, not running
            for visit in state_visits:
                if visit.exited_at is None:
                    visit.abandoned = True


def state_status(node: dict[str, Any], visits: list[Visit], execution: dict[str, Any]) -> str:
    """not_reached, waiting (for a worker), running, succeeded, failed, caught, retried or aborted.

    (skipped is decided afterwards; no_worker by the page, which knows which activities are served)
    """
    if not visits:
        return "not_reached"
    still_open = [visit for visit in visits if visit.exited_at is None and not visit.abandoned]
    if still_open:
        if execution["status"] == OPEN:
            return "waiting" if all(visit.waiting_on for visit in still_open) else "running"
        if node["type"] == "Fail" or any(visit.failures for visit in still_open):
            return "failed"
        return "failed" if execution["status"] == "TIMED_OUT" else "aborted"
    last = visits[-1]
    if last.abandoned or (last.failures and not last.succeeded):
        return "caught" if not last.abandoned else "failed"
    if any(visit.failures or visit.abandoned for visit in visits):
        return "retried"
    return "succeeded"
