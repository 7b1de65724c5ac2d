"""Driving executions in tests: execution input, the workers' side of activities, and what path a run took."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from statemachines.contract import walk_states

SHA = "0123456789abcdef0123456789abcdef01234567"


def event_input(
    branch: str = "main", event: str = "push", fork: bool = False, **extra: Any
) -> dict[str, Any]:
    """A normalised execution input as statemachines/PIPELINES.md describes it."""
    pull_request = None
    if event == "pull_request":
        pull_request = {
            "number": 7,
            "base_ref": "main",
            "head_ref": branch,
            "head_repository": "x/app",
            "draft": False,
        }
    return {
        "run_id": "run-1",
        "delivery_id": "d-1",
        "event": event,
        "repository": "octo/app",
        "clone_url": "https://github.com/octo/app.git",
        "private": False,
        "ref": f"refs/heads/{branch}",
        "branch": branch,
        "tag": None,
        "sha": SHA,
        "before": "f" * 40,
        "pull_request": pull_request,
        "fork": fork,
        "trusted": not fork,
        "message": "Fix the widget",
        "author": "Ada",
        **extra,
    }


@dataclass
class ActivityTask:
    token: str
    input: dict[str, Any]

    @property
    def step(self) -> str:
        return self.input["step"]


class Workers:
    """Plays the workers' (and the approver's) role on activities, without the workers package."""

    def __init__(self, sfn: Any, activity_arns: dict[str, str]) -> None:
        self.sfn = sfn
        self.arns = activity_arns

    def take(self, pool: str, timeout: float = 15.0) -> ActivityTask:
        """The next task of a pool; fail the test if none comes in `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.poll(pool)
            if task is not None:
                return task
        raise AssertionError(f"no task on the {pool} activity in {timeout}s")

    def poll(self, pool: str) -> ActivityTask | None:
        """One GetActivityTask long poll (the engine answers empty after ENGINE_POLL_SECONDS)."""
        answer = self.sfn.get_activity_task(activityArn=self.arns[pool], workerName="test-worker")
        if not answer.get("taskToken"):
            return None
        return ActivityTask(answer["taskToken"], json.loads(answer["input"]))

    def succeed(self, task: ActivityTask, **result: Any) -> None:
        output = {"step": task.step, "status": "succeeded", "exit_code": 0, "duration_seconds": 1, **result}
        self.sfn.send_task_success(taskToken=task.token, output=json.dumps(output))

    def fail(self, task: ActivityTask, error: str, cause: str = "") -> None:
        self.sfn.send_task_failure(taskToken=task.token, error=error, cause=cause or f"{task.step} failed")


def start(sfn: Any, state_machine_arn: str, payload: dict[str, Any]) -> str:
    return sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(payload))["executionArn"]


def wait_done(sfn: Any, execution_arn: str, timeout: float = 20.0) -> dict[str, Any]:
    """DescribeExecution once the execution has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError(f"{execution_arn} still running after {timeout}s")


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def states_entered(sfn: Any, execution_arn: str) -> list[str]:
    """The names of the states the execution entered, in history order."""
    return [
        event["stateEnteredEventDetails"]["name"]
        for event in history(sfn, execution_arn)
        if event["type"].endswith("StateEntered")
    ]


def fast_timings(definition: dict[str, Any], seconds: int = 1) -> dict[str, Any]:
    """A copy of a definition whose Waits, soak periods and Retry intervals last `seconds`, so tests stay fast."""
    copy = json.loads(json.dumps(definition))
    for _, _, state in walk_states(copy):
        if state.get("Type") == "Wait" and "Seconds" in state:
            state["Seconds"] = seconds
        params = state.get("Parameters")
        if state.get("Type") == "Pass" and isinstance(params, dict) and "soak_seconds" in params:
            params["soak_seconds"] = seconds
        for retrier in state.get("Retry") or []:
            retrier.update(IntervalSeconds=seconds, BackoffRate=1)
    return copy
