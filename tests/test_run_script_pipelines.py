"""`scripts/run` as a new user runs it: a Parallel's steps run at once, "re-run failed steps" re-runs them.

One `scripts/run` with its default worker settings (no WORKER_SLOTS, no WORKER_POOLS), real git
repositories pushed through a signed webhook, the dashboard's JSON API. Only local repositories are
allowed in (the machines have no GitHub), and no GitHub token is set, so no status is posted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from service.run_index import RunIndex
from statemachines.step_logs import StepLogReader
from tests.harness.git_repos import GitRepo
from tests.service.github_events import push_payload, signed_headers
from tests.service.run_stack import Gate
from tests.test_run_script import Stepline, free_ports, make_root, sfn_client, start_run

pytestmark = pytest.mark.slow

PIPELINES = Path(__file__).resolve().parents[1] / "statemachines" / "pipelines"
SECRET = "make-run-webhook-secret"
ADMIN_TOKEN = "make-run-admin-token"
FANOUT = 4  # the default worker runs at least 4 steps at once on any machine


@pytest.fixture(scope="module")
def stepline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stepline]:
    base = tmp_path_factory.mktemp("make-run-pipelines")
    (base / "logs").mkdir()
    settings = {
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "STEPLINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",
    }
    running = start_run(make_root(base / "stepline"), base / "logs", free_ports(), settings)
    try:
        yield running
    finally:
        running.run.stop(timeout=20)


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], GitRepo]:
    base = tmp_path_factory.mktemp("make-run-repos")
    return lambda name: GitRepo(base, name)


def push(stepline: Stepline, repo: GitRepo, files: dict[str, str], branch: str) -> str:
    """Commit `files`, push `branch`, deliver the push; the new run's id."""
    repo.commit(files, "the pipeline")
    repo.checkout(branch)
    repo.push(branch)
    body = json.dumps(push_payload(repo, branch, full_name=f"octo/{repo.name}")).encode()
    answer = requests.post(
        f"{stepline.web_url}/webhooks/github",
        data=body,
        headers=signed_headers("push", body, secret=SECRET),
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["run_id"])


def ended(stepline: Stepline, run_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = requests.get(f"{stepline.web_url}/api/runs/{run_id}", timeout=30).json()
        if run["run"]["status"] not in {"QUEUED", "RUNNING"}:
            return dict(run)
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not end: {stepline.run.log()[-3000:]}")


def redis_of(stepline: Stepline) -> redis.Redis:
    return redis.Redis(port=stepline.redis_port, password=stepline.secret("redis-password"))


def step_logs(stepline: Stepline, run_id: str) -> dict[str, dict[str, Any]]:
    return {meta["step"]: meta for meta in StepLogReader(redis_of(stepline)).list_logs(run_id)}


def test_a_parallel_runs_its_steps_at_once_on_the_default_worker(stepline, repos):
    branches = [
        {"StartAt": f"Sleep{i}", "States": {f"Sleep{i}": {
            "Type": "Task", "Resource": "${activity:build}",
            "Parameters": {"step": f"sleep-{i}", "commands": ["sleep 2"]}, "End": True,
        }}}
        for i in range(FANOUT)
    ]  # fmt: skip
    pipeline = {"StartAt": "All", "States": {"All": {"Type": "Parallel", "Branches": branches, "End": True}}}
    run_id = push(stepline, repos("fanout"), {".stepline/pipeline.asl.json": json.dumps(pipeline)}, "main")
    assert ended(stepline, run_id)["run"]["status"] == "SUCCEEDED"
    logs = step_logs(stepline, run_id)
    assert len(logs) == FANOUT
    # all at once: every step had started before any of them finished
    assert max(m["started_ms"] for m in logs.values()) < min(m["finished_ms"] for m in logs.values()), logs


def test_rerun_failed_steps_of_the_parallel_example_reruns_only_the_failed_branch(stepline, repos):
    gate = Gate()
    makefile = {"lint": "echo linted", "build": "echo built", "test": gate.command(), "clean": "echo cleaned"}
    files = {
        "Makefile": "".join(f"{target}:\n\t{recipe}\n" for target, recipe in makefile.items()),
        ".stepline/pipeline.asl.json": (PIPELINES / "parallel.asl.json").read_text(),
    }
    runs: list[str] = []

    def siblings_passed() -> None:
        """The gated step fails once Step Functions holds its siblings' results (what a re-run reuses)."""
        sfn = sfn_client(stepline, *stepline.engine_key())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = RunIndex(redis_of(stepline)).get(runs[0]) if runs else None
            if run and run.get("execution_arn"):
                events = sfn.get_execution_history(executionArn=run["execution_arn"], maxResults=1000)[
                    "events"
                ]
                if sum(e["type"] == "ActivitySucceeded" for e in events) >= 2:
                    return
            time.sleep(0.1)

    gate.before_failing = siblings_passed
    old = push(stepline, repos("parallel"), files, "feature/parallel")
    runs.append(old)
    assert ended(stepline, old)["run"]["status"] == "FAILED"
    assert {s: m["status"] for s, m in step_logs(stepline, old).items()} == {
        "lint": "succeeded", "build": "succeeded", "unit-tests": "failed", "cleanup": "succeeded"
    }  # fmt: skip

    gate.passing = True
    answer = requests.post(
        f"{stepline.web_url}/api/runs/{old}/redrive",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    new = str(answer.json()["run_id"])
    assert ended(stepline, new)["run"]["status"] == "SUCCEEDED"
    statuses = {s: m["status"] for s, m in step_logs(stepline, new).items()}
    assert statuses == {"lint": "reused", "build": "reused", "unit-tests": "succeeded"}, statuses
