"""A push, end to end: webhook, the real jobs process, engine and build worker, statuses on the fake GitHub.

Every Stepline process runs as in production (`python -m service.jobs`, `python -m workers`,
`python -m statemachines.engine`); the webhook goes through the web app; only GitHub is faked.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from service.app import create_app
from service.run_index import RunIndex
from tests.harness.processes import python_module, start_engine
from tests.service.github_events import deliver, push_payload
from tests.service.reporting_support import never_pending_after_terminal
from tests.service.run_stack import jobs_settings

PIPELINE = {
    "StartAt": "Build",
    "States": {
        "Build": {
            "Type": "Task", "Resource": "${activity:build}", "HeartbeatSeconds": 10, "ResultPath": "$.steps.build",
            "Parameters": {"step": "build", "commands": ["test -f README.md", "echo built"], "run.$": "$$.Execution.Input"},
            "Next": "OnMain",
        },
        "OnMain": {
            "Type": "Choice", "Default": "Done",
            "Choices": [{"Variable": "$.branch", "StringEquals": "main", "Next": "Deploy"}],
        },
        "Deploy": {
            "Type": "Task", "Resource": "${activity:build}", "HeartbeatSeconds": 10, "End": True,
            "Parameters": {"step": "deploy", "commands": ["echo deploying"], "run.$": "$$.Execution.Input"},
        },
        "Done": {"Type": "Succeed"},
    },
}  # fmt: skip
CONTEXTS = ("stepline/ci", "stepline/ci/build", "stepline/ci/deploy")


@pytest.fixture
def stack(service_config, redis_url, redis_client, fake_github, processes, tmp_path):
    """Engine, jobs process and one build worker over the test Redis; returns the web test client."""
    engine = start_engine(processes, redis_url, ENGINE_POLL_SECONDS="5", LOG_LEVEL="INFO")
    jobs_env = jobs_settings(redis_url, engine, fake_github)
    worker_env = {
        "REDIS_URL": redis_url, "SFN_ENDPOINT_URL": engine, "WORKER_DIR": str(tmp_path / "worker"),
        "HEARTBEAT_SECONDS": "1", "WORKER_POLL_READ_TIMEOUT_SECONDS": "15",
        "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true", "LOG_LEVEL": "INFO",
    }  # fmt: skip
    jobs = processes("jobs", python_module("service.jobs"), jobs_env)
    worker = processes("worker", python_module("workers"), worker_env)
    config = dataclasses.replace(service_config, sfn_endpoint_url=engine, allow_local_repositories=True)
    fake_github.add_repo("octo/app")
    return create_app(config).test_client(), RunIndex(redis_client), (jobs, worker)


def _wait_for(condition: Any, watched: tuple[Any, ...], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process in watched:
            process.check_alive()
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.log()[-2500:]}" for p in watched)
            raise TimeoutError(f"condition not met:\n{logs}")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_push_reports_every_context_in_order_and_ends_them_all(stack, make_repo, fake_github):
    client, index, processes = stack
    repo = make_repo("app")
    sha = repo.commit(
        {"README.md": "app\n", ".stepline/pipeline.asl.json": json.dumps(PIPELINE)}, "add pipeline"
    )
    repo.checkout("feature/x")
    repo.push("feature/x")
    response = deliver(client, "push", push_payload(repo, "feature/x"))
    assert response.status_code == 202, response.json
    run_id = response.json["run_id"]

    def ended() -> bool:
        latest = fake_github.latest_statuses("octo/app", sha)
        return set(latest) == set(CONTEXTS) and "pending" not in {s["state"] for s in latest.values()}

    _wait_for(ended, processes)
    posted = fake_github.statuses("octo/app", sha)
    by_context = {c: [s["state"] for s in posted if s["context"] == c] for c in CONTEXTS}
    assert by_context["stepline/ci"] == ["pending", "success"]
    assert (
        by_context["stepline/ci/build"][0] == "pending" and by_context["stepline/ci/build"][-1] == "success"
    )
    assert by_context["stepline/ci/deploy"] == ["pending", "success"]
    latest = fake_github.latest_statuses("octo/app", sha)
    assert latest["stepline/ci/deploy"]["description"] == "skipped: not on this run's path"
    assert latest["stepline/ci/build"]["target_url"] == f"http://stepline.test/runs/{run_id}#step-build"
    assert all(never_pending_after_terminal(states) for states in by_context.values())
    _wait_for(lambda: (index.get(run_id) or {}).get("status") == "SUCCEEDED", processes, 10)
