"""Step concurrency groups, end to end: two runs whose deploy steps share a group, through real processes.

Engine, jobs and a real worker with 2 slots (tests/service/run_stack.py). The deploy step holds on a
TCP gate of this test, so the first run's step certainly holds the group when the second arrives.
Orderings are read from the step logs' recorded start and end times, never from elapsed time.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness.processes import python_module
from tests.service.github_events import deliver, pull_request_payload, push_payload, repository
from tests.service.run_stack import Gate, Stack, start_stack

pytestmark = pytest.mark.slow

GROUP_KEY = "stepline:step-concurrency:octo/app:deploy-production"


@pytest.fixture
def stack(service_config, redis_url, redis_client, fake_github, processes, tmp_path) -> Stack:
    """Two slots: the holder's step takes one; a waiting step must leave the other free."""
    return start_stack(
        service_config, redis_url, redis_client, fake_github, processes, tmp_path,
        worker_settings={"WORKER_SLOTS": "2"},
    )  # fmt: skip


def pipeline(command: str, concurrency: str | None = "deploy-production", **fields: Any) -> str:
    params: dict[str, Any] = {"step": "deploy", "commands": [command]}
    if concurrency:
        params["concurrency"] = concurrency
    deploy = {"Type": "Task", "Resource": "${activity:build}", "End": True, "Parameters": params, **fields}
    return json.dumps({"Comment": "Deploys.", "StartAt": "Deploy", "States": {"Deploy": deploy}})


def gated(gate: Gate) -> str:
    return gate.command().replace("$$", "$")


class Pushes:
    """One repository; each push is a commit of its own on a branch of its own (statuses per commit)."""

    def __init__(self, stack: Stack, make_repo: Any) -> None:
        self.stack = stack
        self.repo = make_repo("app")
        self.repo.commit({"README.md": "app\n"}, "start")

    def push(self, branch: str, definition: str) -> tuple[str, str]:
        self.repo.checkout(branch, create_from="main")
        sha = self.repo.commit({".stepline/pipeline.asl.json": definition, "branch.txt": branch}, branch)
        self.repo.push(branch)
        response = deliver(self.stack.client, "push", push_payload(self.repo, branch))
        assert response.status_code == 202, response.json
        return response.json["run_id"], sha


def deploy_log(stack: Stack, run_id: str) -> dict[str, Any]:
    return stack.steps(run_id)["deploy"]


def waiting_run(redis_client) -> str | None:
    raw = redis_client.get(GROUP_KEY + ":waiting")
    return json.loads(raw)["run_id"] if raw else None


def run_page(stack: Stack, run_id: str) -> str:
    return stack.client.get(f"/runs/{run_id}").get_data(as_text=True)


def status_of(fake_github, sha: str) -> dict[str, Any]:
    found = fake_github.latest_statuses("octo/app", sha)
    return next((s for context, s in found.items() if context.endswith("/deploy")), {})


def test_queue_the_second_deploy_starts_after_the_first_ended_and_waits_without_a_slot(
    stack, gate, make_repo, redis_client, fake_github
):
    gate.passing = True
    gate.opened.clear()
    pushes = Pushes(stack, make_repo)
    first, _ = pushes.push("feature/a", pipeline(gated(gate)))
    stack.wait(lambda: gate.asked >= 1)  # the first deploy runs, holding the group
    second, second_sha = pushes.push("feature/b", pipeline(gated(gate)))
    stack.wait(lambda: waiting_run(redis_client) == second)
    description = stack.wait(lambda: status_of(fake_github, second_sha).get("description"))
    assert description.startswith(f"waiting for concurrency group deploy-production held by run {first[:7]}")
    assert status_of(fake_github, second_sha)["state"] == "pending"
    page = stack.wait(lambda: "waiting for group" in (text := run_page(stack, second)) and text)
    assert f"concurrency group deploy-production held by run {first[:7]}" in page

    # the worker's other slot is free while the second deploy waits: another run's step runs in it
    other, _ = pushes.push("docs", pipeline("echo other", concurrency=None))
    assert stack.ended(other)["status"] == "SUCCEEDED"
    assert gate.asked == 1 and stack.index.get(first)["status"] == "RUNNING"
    assert "deploy" not in stack.steps(second)  # it never started: no log, no attempt

    gate.opened.set()
    assert stack.ended(first)["status"] == "SUCCEEDED"
    assert stack.ended(second)["status"] == "SUCCEEDED"
    before, after = deploy_log(stack, first), deploy_log(stack, second)
    assert after["started_ms"] >= before["finished_ms"]
    assert after["attempt"] == 1  # the waits were no attempts of the step
    assert gate.asked == 2


def test_queue_only_the_newest_waits(stack, gate, make_repo, redis_client):
    gate.passing = True
    gate.opened.clear()
    pushes = Pushes(stack, make_repo)
    first, _ = pushes.push("feature/a", pipeline(gated(gate)))
    stack.wait(lambda: gate.asked >= 1)
    second, _ = pushes.push("feature/b", pipeline(gated(gate)))
    stack.wait(lambda: waiting_run(redis_client) == second)
    third, _ = pushes.push("feature/c", pipeline(gated(gate)))
    superseded = stack.ended(second)
    assert superseded["status"] == "SUPERSEDED" and superseded["superseded_by"] == third
    assert "in concurrency group deploy-production" in superseded["status_reason"]
    gate.opened.set()
    assert stack.ended(first)["status"] == "SUCCEEDED"
    assert stack.ended(third)["status"] == "SUCCEEDED"
    assert deploy_log(stack, third)["started_ms"] >= deploy_log(stack, first)["finished_ms"]
    assert "deploy" not in stack.steps(second) and gate.asked == 2


def test_newest_wins_supersedes_the_older_run_and_deploys_once_its_step_stopped(stack, gate, make_repo):
    gate.passing = True
    gate.opened.clear()
    pushes = Pushes(stack, make_repo)
    declared = "deploy-production newest-wins"
    first, _ = pushes.push("feature/a", pipeline(gated(gate), declared))
    stack.wait(lambda: gate.asked >= 1)
    second, _ = pushes.push("feature/b", pipeline(gated(gate), declared))
    old = stack.ended(first)
    assert old["status"] == "SUPERSEDED" and old["superseded_by"] == second
    assert "in concurrency group deploy-production" in old["status_reason"]
    stack.wait(lambda: gate.asked >= 2)  # the newer deploy runs, the gate still closed
    stopped = stack.wait(lambda: (log := deploy_log(stack, first))["finished"] and log)
    assert stopped["status"] == "stopped"
    assert deploy_log(stack, second)["started_ms"] >= stopped["finished_ms"]
    gate.opened.set()
    assert stack.ended(second)["status"] == "SUCCEEDED"


def test_a_forks_step_naming_the_group_neither_waits_for_nor_supersedes_a_trusted_deploy(
    stack, gate, make_repo, redis_client
):
    gate.passing = True
    gate.opened.clear()
    pushes = Pushes(stack, make_repo)
    trusted, _ = pushes.push("main", pipeline(gated(gate), "deploy-production newest-wins"))
    stack.wait(lambda: gate.asked >= 1)
    fork = make_repo("fork")
    sha = fork.commit(
        {".stepline/pipeline.asl.json": pipeline("true", "deploy-production newest-wins")}, "mine"
    )
    fork.push("main")
    base = repository("octo/app", make_repo("base").url)
    payload = pull_request_payload("opened", 9, sha, base, repository("evil/app", fork.url), "main")
    response = deliver(stack.client, "pull_request", payload)
    assert response.status_code == 202, response.json
    attack = stack.ended(response.json["run_id"])
    assert attack["status"] == "SUCCEEDED"  # it ran at once: the trusted holder is not its group's
    assert "holds concurrency group untrusted/pr-9/deploy-production" in stack.worker.log()
    assert stack.index.get(trusted)["status"] == "RUNNING"  # neither superseded
    assert json.loads(redis_client.get(GROUP_KEY))["run_id"] == trusted  # nor did it take the group
    gate.opened.set()
    assert stack.ended(trusted)["status"] == "SUCCEEDED"


def test_a_worker_killed_while_holding_the_group_frees_it(stack, gate, make_repo, redis_client, processes):
    gate.passing = True
    gate.opened.clear()
    pushes = Pushes(stack, make_repo)
    definition = pipeline(gated(gate), HeartbeatSeconds=5)  # the lost step is retried soon
    first, _ = pushes.push("feature/a", definition)
    stack.wait(lambda: gate.asked >= 1)
    second, _ = pushes.push("feature/b", definition)
    stack.wait(lambda: waiting_run(redis_client) == second)

    stack.worker.kill()  # as a crash would: the lease is never released, only no longer renewed
    stack.worker = processes("worker-2", python_module("workers"), stack.worker.env)
    stack.wait(lambda: gate.asked >= 2)  # a deploy runs again: the dead worker's lease expired
    assert json.loads(redis_client.get(GROUP_KEY))["run_id"] == second  # the newest waiter's
    # the first run's lost step came back after its heartbeat timeout, older than the waiting run:
    # it never deploys after it, it is superseded
    old = stack.ended(first)
    assert old["status"] == "SUPERSEDED" and old["superseded_by"] == second
    gate.opened.set()
    assert stack.ended(second)["status"] == "SUCCEEDED"
    assert stack.attempts(first)["deploy"] == 1 and gate.asked == 2
