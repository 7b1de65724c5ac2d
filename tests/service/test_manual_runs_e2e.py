"""A manual run and a scheduled run, end to end: engine, jobs processes and a build worker (real sandbox).

The manual run is started through `POST /api/runs`; the scheduled one by the scheduler threads of two jobs
processes at once, its slot made due by the schedule's first-seen time (set a year back), not by waiting.
Both must run their step (the input reaching it) and post their commit statuses like a push's run.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from service.job_context import job_context, use_config
from service.scheduler import fire_due, last_key, since_key, slot_key
from service.schedules import Schedule
from tests.harness.processes import python_module
from tests.service.dashboard_seed import ADMIN_TOKEN
from tests.service.run_stack import Stack, jobs_settings

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PIPELINE = {
    "Comment": "Deploy. inputs: environment=staging",
    "StartAt": "Show",
    "States": {"Show": {"Type": "Task", "Resource": "${activity:build}", "End": True, "Parameters": {
        "step": "show", "commands": ["echo deploying to $ENVIRONMENT"], "run.$": "$$.Execution.Input",
        "env": {"ENVIRONMENT.$": "$.inputs.environment"}}}},
}  # fmt: skip
YEARLY = Schedule("yearly", "octo/app", "0 0 1 1 *", "main", "UTC")


@pytest.fixture
def repo(make_repo: Any, fake_github: Any, run_stack: Stack) -> Any:
    repo = make_repo("app")
    repo.sha = repo.commit({".stepline/pipeline.asl.json": json.dumps(PIPELINE)}, "add the pipeline")
    repo.push("main")
    fake_github.add_repo("octo/app", clone_url=repo.url)  # after run_stack's own add_repo
    return repo


def step_output(run_stack: Stack, run_id: str) -> str:
    lines, _, _ = run_stack.logs.read(run_id, "show", None, "0", 200)
    return "\n".join(lines)


def test_a_manual_run_from_the_api_runs_with_its_input_and_reports(
    run_stack: Stack, repo, fake_github
) -> None:
    body = {"repository": "octo/app", "ref": "main", "inputs": {"environment": "production"}}
    response = run_stack.client.post("/api/runs", json=body, headers=ADMIN)
    assert response.status_code == 201, response.json
    run = run_stack.ended(response.json["run_id"])
    assert run["status"] == "SUCCEEDED", run
    assert "deploying to production" in step_output(run_stack, run["run_id"])
    statuses = run_stack.wait(lambda: fake_github.latest_statuses("octo/app", repo.sha).get("stepline/ci"))
    assert run_stack.wait(
        lambda: fake_github.latest_statuses("octo/app", repo.sha)["stepline/ci"]["state"] == "success"
    ), statuses
    audit = [(e["action"], e.get("by")) for e in run_stack.index.audit(run["run_id"])]
    assert audit[0] == ("started manually", "admin") and ("started", None) in audit


def test_a_schedule_fires_once_from_two_jobs_processes(
    run_stack: Stack, repo, fake_github, processes, redis_url, redis_client
) -> None:
    redis_client.set(since_key(YEARLY), 0)  # first seen long ago: this year's 1 January slot is due now
    schedules = json.dumps(
        [{"name": "yearly", "repository": "octo/app", "branch": "main", "cron": "0 0 1 1 *"}]
    )
    engine = run_stack.jobs.env["SFN_ENDPOINT_URL"]
    settings = {
        **jobs_settings(redis_url, engine, fake_github),
        "STEPLINE_SCHEDULES": schedules, "STEPLINE_SCHEDULE_TICK_SECONDS": "1",
    }  # fmt: skip
    twins = [processes(f"jobs-scheduler-{n}", python_module("service.jobs"), settings) for n in (1, 2)]
    # both schedulers up before the run is looked at (one may start well after the other on a loaded machine)
    run_stack.wait(lambda: all("scheduler: 1 schedule(s)" in twin.log() for twin in twins))
    run_id = run_stack.wait(lambda: _scheduled_run(run_stack))
    run = run_stack.ended(run_id)
    assert run["status"] == "SUCCEEDED" and run["trusted"] is True and run["event"] == "schedule"
    assert "deploying to staging" in step_output(run_stack, run_id)  # no inputs given: the default
    # both processes ran the scheduler, ticking each second all the while the run ran: still one run
    assert [r["run_id"] for r in run_stack.index.list_runs(limit=20)] == [run_id]
    assert fake_github.latest_statuses("octo/app", repo.sha)["stepline/ci"]["state"] == "success"


def _scheduled_run(run_stack: Stack) -> str | None:
    found = [r["run_id"] for r in run_stack.index.list_runs(limit=20) if r["event"] == "schedule"]
    return found[0] if found else None


def test_a_slot_claimed_again_after_a_lost_write_starts_no_second_execution(
    run_stack: Stack, repo, redis_client, service_config
) -> None:
    engine = run_stack.jobs.env["SFN_ENDPOINT_URL"]
    config = dataclasses.replace(service_config, sfn_endpoint_url=engine, allow_local_repositories=True)
    use_config(config)
    ctx = job_context()
    redis_client.set(since_key(YEARLY), 0)
    now = time.time()
    [first] = fire_due(ctx, [YEARLY], now)
    # a Redis failover lost the claim and the schedule's last slot (asynchronous replication)
    redis_client.delete(slot_key(YEARLY, YEARLY.latest_slot(now)), last_key(YEARLY))
    [second] = fire_due(ctx, [YEARLY], now)
    runs = [run_stack.ended(run_id) for run_id in (first, second)]
    assert runs[0]["execution_arn"] == runs[1]["execution_arn"]
    executions = ctx.sfn.list_executions(stateMachineArn=runs[0]["state_machine_arn"])["executions"]
    assert len(executions) == 1
