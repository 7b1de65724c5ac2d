"""Check runs end to end, as a GitHub App: webhook, the real jobs process, engine and build worker, the fake GitHub.

A pull request's pipeline with a Parallel (a step that fails with annotations, one that passes), a Choice
that skips a step, GitHub's re-run buttons (check_run and check_suite `rerequested`) and an approval gate
decided from a check run's `requested_action`. After each ending no check run is left open.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest

from service.app import create_app
from service.run_index import RunIndex
from statemachines.step_logs import StepLogReader
from tests.harness.processes import python_module, start_engine
from tests.service.github_events import deliver, pull_request_payload, push_payload, repository
from tests.service.run_stack import Gate, Stack, jobs_settings

INSTALLATION = 77
APP_ID = "4242"


def task(step: str, commands: list[str], **more: Any) -> dict[str, Any]:
    return {
        "Type": "Task", "Resource": "${activity:build}", "ResultPath": f"$.steps.{step}",
        "Parameters": {"step": step, "commands": commands}, **more,
    }  # fmt: skip


def pr_pipeline(gate: Gate) -> dict[str, Any]:
    unit = [
        "echo ::warning file=app.py,line=1::slow test",
        # the gate (tests/service/run_stack.py) answers `fail` until the test lets the step pass
        f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{gate.port}; read -r v <&3; echo gate: $v; test $v = pass'"
        " || { echo '::error file=app.py,line=3,col=5::assertion failed'; exit 1; }",
    ]
    return {
        "StartAt": "Checks",
        "States": {
            "Checks": {
                "Type": "Parallel", "ResultPath": "$.checks", "Next": "OnMain",
                "Branches": [
                    {"StartAt": "Lint", "States": {"Lint": task("lint", ["echo ::notice file=app.py,line=2::fine"], End=True)}},
                    {"StartAt": "Unit", "States": {"Unit": task("unit", unit, End=True)}},
                ],
            },
            "OnMain": {
                "Type": "Choice", "Default": "Done",
                "Choices": [{"Variable": "$.branch", "StringEquals": "main", "Next": "Deploy"}],
            },
            "Deploy": task("deploy", ["echo deploying"], End=True),
            "Done": {"Type": "Succeed"},
        },
    }  # fmt: skip


APPROVAL_PIPELINE = {
    "StartAt": "Build",
    "States": {
        "Build": task("build", ["echo built"], Next="ApproveDeploy"),
        "ApproveDeploy": {
            "Type": "Task", "Resource": "${activity:approval}", "ResultPath": "$.steps.approval",
            "Parameters": {"step": "approve-deploy", "message": "Deploy?"}, "Next": "Deploy",
        },
        "Deploy": task("deploy", ["echo deployed"], End=True),
    },
}  # fmt: skip


@pytest.fixture
def stack(service_config, redis_url, redis_client, fake_github, processes, tmp_path, app_pem) -> Stack:
    """Engine, a jobs process that is a GitHub App (approval poller on) and one build worker."""
    engine = start_engine(processes, redis_url, ENGINE_POLL_SECONDS="5", LOG_LEVEL="INFO")
    jobs_env = jobs_settings(redis_url, engine, fake_github) | {
        "GITHUB_TOKEN": "", "GITHUB_APP_ID": APP_ID, "GITHUB_APP_PRIVATE_KEY": app_pem.replace("\n", "\\n"),
        "STEPLINE_APPROVAL_POLLER": "true", "STEPLINE_STATUS_RETRY_INTERVALS": "0,1,1,2",
    }  # fmt: skip
    worker_env = {
        "REDIS_URL": redis_url, "SFN_ENDPOINT_URL": engine, "WORKER_DIR": str(tmp_path / "worker"),
        "HEARTBEAT_SECONDS": "1", "WORKER_POLL_READ_TIMEOUT_SECONDS": "15", "WORKER_SLOTS": "4",
        "WORKER_POOLS": "build", "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true", "LOG_LEVEL": "INFO",
    }  # fmt: skip
    jobs = processes("jobs", python_module("service.jobs"), jobs_env)
    worker = processes("worker", python_module("workers"), worker_env)
    config = dataclasses.replace(service_config, sfn_endpoint_url=engine, allow_local_repositories=True)
    fake_github.add_repo("octo/app")
    return Stack(
        create_app(config).test_client(), RunIndex(redis_client), StepLogReader(redis_client), jobs, worker
    )


def installed(payload: dict[str, Any]) -> dict[str, Any]:
    return payload | {"installation": {"id": INSTALLATION}}


def check_event(
    kind: str, action: str, check: dict[str, Any], login: str, identifier: str = ""
) -> dict[str, Any]:
    """A check_run or check_suite delivery as GitHub sends it for a button on one of our check runs."""
    body = {"id": check["id"], "head_sha": check["head_sha"], "app": {"id": int(APP_ID)}}
    if kind == "check_run":
        body |= {"external_id": check["external_id"], "name": check["name"], "status": check["status"]}
    payload = {
        "action": action, kind: body, "repository": repository("octo/app", "https://github.example/octo/app.git"),
        "sender": {"login": login}, "installation": {"id": INSTALLATION},
    }  # fmt: skip
    if identifier:
        payload["requested_action"] = {"identifier": identifier}
    return payload


def of_run(fake_github, sha: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's check runs by step ("" for the pipeline's)."""
    runs = fake_github.checks.all_runs("octo/app", sha)
    return {r["external_id"].split(":", 1)[1]: r for r in runs if r["external_id"].startswith(run_id + ":")}


def all_completed(fake_github, sha: str) -> bool:
    runs = fake_github.checks.all_runs("octo/app", sha)
    return bool(runs) and all(r["status"] == "completed" for r in runs)


@pytest.mark.slow
def test_a_pull_request_fails_with_annotations_and_githubs_rerun_buttons_make_it_pass(
    stack, make_repo, fake_github
):
    gate = Gate()
    repo = make_repo("app")
    repo.commit({"README.md": "app\n"}, "init", branch="main")
    repo.push("main")
    sha = repo.commit(
        {".stepline/pipeline.asl.json": json.dumps(pr_pipeline(gate))}, "ci", branch="feature/x"
    )
    repo.push("feature/x")
    base = repository("octo/app", repo.url)
    payload = installed(pull_request_payload("opened", 3, sha, base, base, "feature/x"))
    fake_github.fail_next(3, 502)  # a storm as the run starts: 502s, then secondary rate limits
    fake_github.rate_limit_next(3, status=403, retry_after=1)
    gate.opened.clear()  # unit waits for its answer until lint has passed: a failure cancels the Parallel
    first = deliver(stack.client, "pull_request", payload).json["run_id"]
    stack.wait(lambda: (stack.steps(first).get("lint") or {}).get("status") == "succeeded")
    gate.opened.set()

    assert stack.ended(first)["status"] == "FAILED"
    stack.wait(lambda: all_completed(fake_github, sha) and len(of_run(fake_github, sha, first)) == 4)
    checks = of_run(fake_github, sha, first)
    assert {step: c["conclusion"] for step, c in checks.items()} == {
        "": "failure", "lint": "success", "unit": "failure", "deploy": "skipped",
    }  # fmt: skip
    unit = checks["unit"]
    assert [(a["path"], a["start_line"], a["annotation_level"]) for a in fake_github.checks.annotations(unit["id"])] == [
        ("app.py", 1, "warning"), ("app.py", 3, "failure"),
    ]  # fmt: skip
    assert (
        "| Worker pool | build |" in unit["output"]["summary"] and "gate: fail" in unit["output"]["summary"]
    )
    assert unit["details_url"] == f"http://stepline.test/runs/{first}#step-unit"
    assert [a["message"] for a in fake_github.checks.annotations(checks["lint"]["id"])] == ["fine"]
    assert not fake_github.statuses("octo/app", sha)  # a GitHub App reports with check runs
    assert len(fake_github.checks.all_runs("octo/app", sha)) == 4  # the storm made none twice

    # "Re-run" on the failed step's check run: a new run where lint is reused and unit runs again
    gate.passing = True
    fake_github.checks.set_permission("octo/app", "maintainer", "write")
    response = deliver(stack.client, "check_run", check_event("check_run", "rerequested", unit, "maintainer"))
    assert response.status_code == 202, response.json
    second = stack.wait(lambda: _rerun_of(stack.index, first))
    assert stack.ended(second)["status"] == "SUCCEEDED"
    stack.wait(lambda: all_completed(fake_github, sha) and len(of_run(fake_github, sha, second)) == 4)
    again = of_run(fake_github, sha, second)
    assert {step: c["conclusion"] for step, c in again.items()} == {
        "": "success", "lint": "success", "unit": "success", "deploy": "skipped",  # the Choice skipped deploy
    }  # fmt: skip
    assert "reused" in again["lint"]["output"]["title"]
    assert {"action": "rerun step", "by": "maintainer on GitHub"}.items() <= stack.index.audit(first)[
        -1
    ].items()

    # "Re-run all" on the check suite: the whole pipeline again
    suite = check_event("check_suite", "rerequested", again[""], "maintainer")
    assert deliver(stack.client, "check_suite", suite).status_code == 202
    third = stack.wait(lambda: _rerun_of(stack.index, second))
    assert stack.ended(third)["status"] == "SUCCEEDED"
    stack.wait(lambda: all_completed(fake_github, sha) and len(of_run(fake_github, sha, third)) == 4)
    assert of_run(fake_github, sha, third)[""]["conclusion"] == "success"


@pytest.mark.slow
def test_an_approval_gate_is_approved_from_its_check_run_by_a_writer_only(stack, make_repo, fake_github):
    repo = make_repo("app")
    sha = repo.commit({".stepline/pipeline.asl.json": json.dumps(APPROVAL_PIPELINE)}, "ci", branch="main")
    repo.push("main")
    run_id = deliver(stack.client, "push", installed(push_payload(repo, "main"))).json["run_id"]

    def gate_waits() -> dict[str, Any] | None:
        gate = of_run(fake_github, sha, run_id).get("approve-deploy")
        return gate if gate and gate["conclusion"] == "action_required" else None

    gate = stack.wait(gate_waits)
    assert [a["identifier"] for a in gate["actions"]] == ["approve", "reject"]
    assert of_run(fake_github, sha, run_id)["deploy"]["status"] == "queued"

    # a reader's click is refused (GitHub's permission, asked by the jobs process), and audited
    reader = check_event("check_run", "requested_action", gate, "reader", "approve")
    assert deliver(stack.client, "check_run", reader).status_code == 202
    stack.wait(lambda: any(e["action"].startswith("refused") for e in stack.index.audit(run_id)))
    assert stack.index.get(run_id)["status"] == "RUNNING"

    fake_github.checks.set_permission("octo/app", "lead", "admin")
    fake_github.rate_limit_next(1, status=429, retry_after=1)  # the permission look-up waits it out
    fake_github.fail_next(1, 502)
    delivery = str(uuid.uuid4())
    approve = check_event("check_run", "requested_action", gate, "lead", "approve")
    assert deliver(stack.client, "check_run", approve, delivery).status_code == 202
    assert deliver(stack.client, "check_run", approve, delivery).json["status"] == "duplicate"
    assert stack.ended(run_id)["status"] == "SUCCEEDED"
    stack.wait(lambda: all_completed(fake_github, sha) and of_run(fake_github, sha, run_id)[""]["conclusion"])
    checks = of_run(fake_github, sha, run_id)
    assert {step: c["conclusion"] for step, c in checks.items()} == {
        "": "success", "build": "success", "approve-deploy": "success", "deploy": "success",
    }  # fmt: skip
    assert checks["approve-deploy"]["actions"] == []
    decisions = [e for e in stack.index.audit(run_id) if e["action"] == "approve"]
    assert [e["by"] for e in decisions] == ["lead on GitHub"]  # once, though delivered twice


def _rerun_of(index: RunIndex, run_id: str) -> str | None:
    created = [entry["new_run_id"] for entry in index.audit(run_id) if entry.get("new_run_id")]
    return created[-1] if created else None
