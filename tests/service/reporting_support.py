"""Shared by the reporter and reconcile tests: runs in the real run index, rq jobs drained in-process.

Jobs run in real rq SimpleWorkers (burst) against the real Redis, scheduled jobs (retries with backoff,
rate-limit deferrals) included: the worker's scheduler moves them when due. Only GitHub is faked.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

from rq import Queue, SimpleWorker

from service.config import ServiceConfig
from service.job_context import use_config
from service.run_index import RunIndex
from service.status_ledger import StatusLedger
from tests.harness.fake_github import FakeGitHub

QUEUES = ("runs", "statuses", "default")
REPO = "octo/app"


class BurstWorker(SimpleWorker):
    """rq's SimpleWorker for burst runs in tests: no pubsub channel for remote commands (none are sent),
    whose listener thread takes up to a second to stop after every burst."""

    def subscribe(self) -> None:
        pass


class Reporting:
    """The jobs as the jobs process runs them, over the test Redis and the fake GitHub."""

    def __init__(self, config: ServiceConfig, redis_client: Any, github: FakeGitHub) -> None:
        use_config(config)
        self.config = config
        self.redis = redis_client
        self.github = github
        self.index = RunIndex(redis_client)
        self.ledger = StatusLedger(redis_client)
        self.queues = [Queue(name, connection=redis_client) for name in QUEUES]
        self.statuses = self.queues[1]
        github.add_repo(REPO)

    def new_run(self, steps: tuple[str, ...] = ("build", "test"), **fields: Any) -> dict[str, Any]:
        run = {
            "run_id": uuid.uuid4().hex,
            "repository": REPO,
            "sha": uuid.uuid4().hex + "0" * 8,
            "branch": "main",
            "pipeline": "ci",
            "steps": list(steps),
            "status": "RUNNING",
            "created_at": time.time(),
            "started_at": time.time(),
            **fields,
        }
        return self.index.create(run)

    def enqueue(self, function: str, *args: Any) -> None:
        """As the run jobs and the workers do: by path, on the statuses queue, without options."""
        self.statuses.enqueue(f"service.reporter.{function}", *args)

    def drain(self, timeout: float = 30.0) -> None:
        """Run jobs until no queue and no scheduled registry holds any (retries and deferrals included)."""
        deadline = time.monotonic() + timeout
        while True:
            BurstWorker(self.queues, connection=self.redis).work(
                burst=True, with_scheduler=True, logging_level="WARNING"
            )
            if not any(q.count or q.scheduled_job_registry.count for q in self.queues):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("rq jobs still queued or scheduled")
            time.sleep(0.05)

    def states(self, run: dict[str, Any], context: str) -> list[str]:
        """Every state GitHub received for one context of the run's commit, oldest first."""
        return [s["state"] for s in self.github.statuses(REPO, run["sha"]) if s["context"] == context]

    def latest(self, run: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return self.github.latest_statuses(REPO, run["sha"])


def reporting_config(config: ServiceConfig, **changes: Any) -> ServiceConfig:
    """Short backoff so retry tests take seconds: 0 s (straight back on the queue), then 1 s."""
    return dataclasses.replace(
        config, **{"status_retry_intervals": (0, 1, 1), "reconcile_interval": 1, **changes}
    )


def app_config(config: ServiceConfig, app_pem: str, **changes: Any) -> ServiceConfig:
    """reporting_config as a GitHub App (check runs) with no token: App 12345 with this private key."""
    return reporting_config(
        config, github_token="", github_app_id="12345", github_app_private_key=app_pem, **changes
    )


def never_pending_after_terminal(states: list[str]) -> bool:
    """GitHub's history of a context never goes back from a terminal state to pending."""
    seen_terminal = False
    for state in states:
        if state == "pending" and seen_terminal:
            return False
        seen_terminal = seen_terminal or state != "pending"
    return True


class History:
    """An execution history in AWS's shapes (GetExecutionHistory events), built step by step."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.events: list[dict[str, Any]] = []
        self.clock = start
        self.start = start

    def add(
        self, kind: str, details: dict[str, Any] | None = None, previous: int | None = None, took: float = 1.0
    ) -> int:
        self.clock += took
        event_id = len(self.events) + 1
        event: dict[str, Any] = {
            "id": event_id,
            "previousEventId": previous if previous is not None else event_id - 1,
            "timestamp": self.clock,
            "type": kind,
        }
        if details is not None:
            event[kind[0].lower() + kind[1:] + "EventDetails"] = details
        self.events.append(event)
        return event_id

    def scheduled(self, step: str, previous: int | None = None) -> int:
        task_input = json.dumps({"step": step, "commands": ["make"], "run": {"run_id": "x"}})
        details = {"resource": "arn:aws:states:us-east-1:1:activity:stepline-build", "input": task_input}
        return self.add("ActivityScheduled", details, previous, took=0.5)

    def ran(
        self, step: str, result: str = "succeeded", error: str = "", cause: str = "", took: float = 12.0
    ) -> int:
        """Schedule, start and end one attempt of a step; returns the last event id."""
        started = self.add("ActivityStarted", {"workerName": "w1"}, self.scheduled(step), took=0.5)
        if result == "succeeded":
            return self.add("ActivitySucceeded", {"output": "{}"}, started, took=took)
        kind = "ActivityTimedOut" if error.endswith("Timeout") else "ActivityFailed"
        return self.add(kind, {"error": error, "cause": cause}, started, took=took)

    def describe(self, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "executionArn": "arn:aws:states:us-east-1:1:execution:sm:x",
            "status": status,
            "startDate": self.start,
            "stopDate": self.clock + 1,
            **extra,
        }
