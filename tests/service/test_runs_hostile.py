"""Hostile pipelines pushed to a repository, from the signed webhook to the final GitHub status: the real
engine (`python -m statemachines.engine`), Redis, git repositories and the jobs run in-process; GitHub is
the fake one.

- A pipeline nested 200,000 levels deep (JSON or YAML) is an INVALID run with an `error` status and one
  log line, not a RecursionError retried for ever with a 30,000-line traceback each time.
- A catastrophic regular expression fails its state at the time limit while the engine keeps answering,
  and the run ends FAILED with a terminal `stepline/ci` status.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest

from service.app import create_app
from service.reconcile import sweep_open_runs
from tests.engine_service.conftest import make_client
from tests.service.github_events import deliver, push_payload
from tests.service.reporting_support import REPO, Reporting, reporting_config

BUILD = {
    "Type": "Task", "Resource": "${activity:build}", "End": True, "HeartbeatSeconds": 60, "TimeoutSeconds": 600,
    "Parameters": {"step": "build", "commands": ["make"], "run.$": "$$.Execution.Input"},
    "Retry": [{"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 1}],
}  # fmt: skip
CATASTROPHIC = "{% $match('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!', /^(a+)+$/) %}"
TERMINAL = {"success", "failure", "error"}


class Stack:
    """The web app and the jobs over the real engine; `push` delivers a commit carrying `files`."""

    def __init__(self, reporting: Reporting, make_repo: Any) -> None:
        self.reporting = reporting
        self.client = create_app(reporting.config).test_client()
        self.repo = make_repo("app")

    def push(self, files: dict[str, str]) -> str:
        self.repo.commit(files, "pipeline", branch="main")
        self.repo.push("main")
        answer = deliver(self.client, "push", push_payload(self.repo, "main"))
        assert answer.status_code == 202, answer.get_json()
        return str(answer.get_json()["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        return self.reporting.index.get(run_id) or {}

    def wait_closed(self, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.reporting.drain()
            if self.run(run_id).get("status") not in ("QUEUED", "RUNNING"):
                self.reporting.drain()
                return self.run(run_id)
            self.reporting.statuses.enqueue(sweep_open_runs)
            time.sleep(0.2)
        raise TimeoutError(f"run {run_id} still {self.run(run_id).get('status')}")


@pytest.fixture
def stack(service_config, redis_client, fake_github, sfn_engine, make_repo) -> Stack:
    config = reporting_config(service_config, sfn_endpoint_url=sfn_engine, allow_local_repositories=True)
    return Stack(Reporting(config, redis_client, fake_github), make_repo)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (
            ".stepline/pipeline.asl.json",
            json.dumps({"StartAt": "B", "States": {"B": BUILD}})[:-1]
            + ', "Comment": '
            + "[" * 200_000
            + "]" * 200_000
            + "}",
        ),
        (".stepline/pipeline.asl.yaml", "StartAt: B\nComment: " + "[" * 50_000 + "]" * 50_000 + "\n"),
    ],
    ids=["json", "yaml"],
)
def test_a_pipeline_nested_too_deeply_is_an_invalid_run_with_an_error_status(
    stack: Stack, path: str, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    run_id = stack.push({path: text})
    run = stack.wait_closed(run_id)
    assert run["status"] == "INVALID" and "nested more than 100 levels" in run["status_reason"]
    assert [d["code"] for d in run["validation"]] == ["TOO_DEEPLY_NESTED"]
    latest = stack.reporting.latest(run)
    assert latest["stepline/ci"]["state"] == "error"
    # the run job says why in one line (the status posted to GitHub is logged by its own job)
    about_it = [r for r in caplog.records if r.name == "service.runs" and run_id in r.getMessage()]
    assert len(about_it) == 1 and "nested more than 100 levels" in about_it[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_a_catastrophic_regex_fails_the_run_while_the_engine_keeps_answering(stack: Stack) -> None:
    pipeline = {
        "StartAt": "Greet",
        "States": {
            "Greet": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": CATASTROPHIC, "Next": "B"},
            "B": BUILD,
        },
    }
    run_id = stack.push({".stepline/pipeline.asl.json": json.dumps(pipeline)})
    watcher = make_client(stack.reporting.config.sfn_endpoint_url or "", read_timeout=3)
    stop = threading.Event()
    slow: list[float] = []

    def watch() -> None:  # a hang detector: ListStateMachines normally answers in milliseconds
        while not stop.is_set():
            began = time.monotonic()
            try:
                watcher.list_state_machines(maxResults=1)
            except Exception:  # a read timeout: the engine stopped answering
                slow.append(time.monotonic() - began)
                return
            if time.monotonic() - began > 2.5:
                slow.append(time.monotonic() - began)
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        run = stack.wait_closed(run_id, timeout=120)
    finally:
        stop.set()
        thread.join(10)
    assert slow == [], f"the engine stopped answering for {slow} s"
    assert run["status"] == "FAILED"
    execution = stack.reporting.config  # the execution itself, as the engine tells it
    described = make_client(execution.sfn_endpoint_url or "").describe_execution(
        executionArn=run["execution_arn"]
    )
    assert described["error"] == "States.QueryEvaluationError" and "D1012" in described["cause"]
    latest = stack.reporting.latest(run)
    assert latest["stepline/ci"]["state"] in TERMINAL - {"success"}
    assert all(status["state"] in TERMINAL for status in latest.values()), latest
    assert stack.reporting.github.statuses(REPO, run["sha"])
