"""Concurrency groups, end to end: two runs of one group, on different branches, queue or newest wins.

The same processes as tests/service/test_reruns_e2e.py (engine, jobs, a real build worker). The group's
step holds on a TCP gate of this test, so the first run is certainly active when the second arrives.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.service.github_events import deliver, pull_request_payload, push_payload, repository
from tests.service.run_stack import Gate

pytestmark = pytest.mark.slow


def deploy_pipeline(gate: Gate, declaration: str) -> str:
    step = {
        "Type": "Task", "Resource": "${activity:build}", "End": True,
        "Parameters": {"step": "deploy", "commands": [gate.command().replace("$$", "$")]},
    }  # fmt: skip
    return json.dumps({"Comment": f"Deploys. {declaration}", "StartAt": "Deploy", "States": {"Deploy": step}})


def push_branches(run_stack, make_repo, gate: Gate, declaration: str, branches: list[str]) -> list[str]:
    """One commit with the pipeline, pushed as each branch in turn; the run ids, once each has started or waits."""
    repo = make_repo("app")
    repo.commit(
        {"README.md": "app\n", ".stepline/pipeline.asl.json": deploy_pipeline(gate, declaration)}, "go"
    )
    run_ids: list[str] = []
    for branch in branches:
        repo.checkout(branch, create_from="main")
        repo.push(branch)
        response = deliver(run_stack.client, "push", push_payload(repo, branch))
        assert response.status_code == 202, response.json
        run_ids.append(response.json["run_id"])
        run_stack.wait(lambda: _started_or_waiting(run_stack.index.get(run_ids[-1])))
        if len(run_ids) == 1:
            run_stack.wait(lambda: gate.asked >= 1)  # the first run's step is running, holding the group
    return run_ids


def _started_or_waiting(run: dict[str, Any] | None) -> bool:
    return run is not None and (run["status"] != "QUEUED" or bool(run.get("waiting_for")))


def test_queue_a_newer_run_waits_for_the_active_one_and_only_the_newest_waits(run_stack, gate, make_repo):
    gate.passing = True
    gate.opened.clear()
    first, second, third = push_branches(
        run_stack, make_repo, gate, "concurrency: deploy-production", ["feature/a", "feature/b", "feature/c"]
    )
    assert run_stack.index.get(first)["status"] == "RUNNING"
    waiting = run_stack.index.get(third)
    assert (waiting["status"], waiting["waiting_for"]) == ("QUEUED", first)
    assert "in concurrency group deploy-production" in waiting["status_reason"]
    superseded = run_stack.wait(
        lambda: (r := run_stack.index.get(second)) and r["status"] == "SUPERSEDED" and r
    )
    assert superseded["superseded_by"] == third and superseded["execution_arn"] is None  # it never started
    assert gate.asked == 1  # nothing but the first run's step has run

    gate.opened.set()
    done = run_stack.ended(first)
    assert done["status"] == "SUCCEEDED"
    last = run_stack.ended(third)
    assert last["status"] == "SUCCEEDED" and last["started_at"] >= done["finished_at"]
    assert gate.asked == 2


def test_newest_wins_a_newer_run_supersedes_the_active_one(run_stack, gate, make_repo):
    gate.passing = True
    gate.opened.clear()
    first, second = push_branches(
        run_stack, make_repo, gate, "concurrency: deploy-production newest-wins", ["feature/a", "feature/b"]
    )
    old = run_stack.wait(lambda: (r := run_stack.index.get(first)) and r["status"] == "SUPERSEDED" and r)
    assert old["superseded_by"] == second
    assert "in concurrency group deploy-production" in old["status_reason"]
    assert run_stack.index.get(second)["status"] == "RUNNING"
    gate.opened.set()
    assert run_stack.ended(second)["status"] == "SUCCEEDED"


def test_a_forks_pipeline_naming_the_group_never_touches_the_repositorys_runs(run_stack, gate, make_repo):
    gate.passing = True
    gate.opened.clear()
    (trusted,) = push_branches(
        run_stack, make_repo, gate, "concurrency: deploy-production newest-wins", ["main"]
    )
    fork = make_repo("fork")
    pipeline = json.loads(deploy_pipeline(gate, "concurrency: deploy-production newest-wins"))
    pipeline["States"]["Deploy"]["Parameters"]["commands"] = ["true"]
    sha = fork.commit({".stepline/pipeline.asl.json": json.dumps(pipeline)}, "take over the deploy")
    fork.push("main")
    base = repository("octo/app", make_repo("base").url)
    payload = pull_request_payload("opened", 9, sha, base, repository("evil/app", fork.url), "main")
    response = deliver(run_stack.client, "pull_request", payload)
    assert response.status_code == 202, response.json
    attack = run_stack.ended(response.json["run_id"])
    assert attack["status"] == "SUCCEEDED" and attack["concurrency_group"].startswith("untrusted/pr-9/")
    assert run_stack.index.get(trusted)["status"] == "RUNNING"  # neither superseded nor queued behind
    gate.opened.set()
    assert run_stack.ended(trusted)["status"] == "SUCCEEDED"
