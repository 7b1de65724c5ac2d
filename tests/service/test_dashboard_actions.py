"""Actions against the real engine: cancel, re-run failed steps (redrive), re-run, approve and reject; all audited."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any

import pytest
from rq import Queue

from service.app import create_app
from service.approvals import ApprovalPoller, ApprovalStore, long_poll_client
from service.run_index import RunIndex
from tests.service.dashboard_seed import seed_run, sign_in, with_users

ROLE = "arn:aws:iam::123456789012:role/stepline"


class World:
    """The web app on the real engine, a signed-in browser session, and a Step Functions client."""

    def __init__(self, config: Any, redis_client: Any) -> None:
        self.config = config
        self.redis = redis_client
        self.client = create_app(config).test_client()
        self.csrf = sign_in(self.client)
        self.sfn = long_poll_client(config)
        self.index = RunIndex(redis_client)

    def start(self, name: str, states: dict[str, Any], **run_fields: Any) -> dict[str, Any]:
        """A state machine, an execution of it and its run record, as start_run leaves them."""
        definition = json.dumps({"StartAt": next(iter(states)), "States": states})
        machine = self.sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)[
            "stateMachineArn"
        ]
        run = seed_run(self.redis, status="RUNNING", finished_at=None, **run_fields)
        execution = self.sfn.start_execution(
            stateMachineArn=machine, input=json.dumps(run["execution_input"])
        )
        arn = execution["executionArn"]
        return self.index.update(run["run_id"], state_machine_arn=machine, execution_arn=arn)  # type: ignore[return-value]

    def activity(self, pool: str) -> str:
        return self.sfn.create_activity(name=f"stepline-{pool}")["activityArn"]

    def task(self, activity: str) -> dict[str, Any]:
        for _ in range(20):
            task = self.sfn.get_activity_task(activityArn=activity, workerName="test")
            if task.get("taskToken"):
                return task
        raise AssertionError("no task")

    def wait_status(self, run: dict[str, Any], wanted: str) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while True:
            described = self.sfn.describe_execution(executionArn=run["execution_arn"])
            if described["status"] == wanted or time.monotonic() > deadline:
                assert described["status"] == wanted
                return described
            time.sleep(0.05)

    def post(self, url: str, **data: str) -> Any:
        return self.client.post(url, data={"csrf_token": self.csrf, **data})


@pytest.fixture
def world(service_config, sfn_engine, redis_client):
    return World(with_users(dataclasses.replace(service_config, sfn_endpoint_url=sfn_engine)), redis_client)


def build_task(activity: str, step: str = "build", **more: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": activity,
        "Parameters": {"step": step, "run.$": "$$.Execution.Input"},
        **more,
    }


@pytest.mark.slow
def test_cancel_stops_the_execution_and_asks_the_reporter_to_close_statuses(world):
    run = world.start("cancel-me", {"Build": build_task(world.activity("build"), End=True)})
    response = world.post(f"/runs/{run['run_id']}/cancel")
    assert response.status_code == 302
    described = world.wait_status(run, "ABORTED")
    assert described["error"] == "Stepline.Cancelled"
    assert world.index.get(run["run_id"])["status"] == "ABORTED"
    jobs = Queue("statuses", connection=world.redis).jobs
    assert [(job.func_name, job.args) for job in jobs] == [
        ("service.reporter.report_run_cancelled", (run["run_id"], "cancelled by alice"))
    ]
    graph = world.client.get(f"/api/runs/{run['run_id']}/graph").get_json()["graph"]
    assert {n["id"]: n["status"] for n in graph["nodes"]}["Build"] == "aborted"


def test_rerun_failed_steps_starts_a_new_run_that_reuses_what_passed_and_keeps_its_trust(world):
    # the whole path (a worker answering with recorded results) is tests/service/test_reruns_e2e.py
    old = seed_run(
        world.redis, status="FAILED", trusted=False, fork=True, trust_reason="pull request from a fork",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:m:e",
        execution_input={"repository": "octo/app", "sha": "a" * 40, "trusted": False},
    )  # fmt: skip
    assert 'id="action-redrive"' in world.client.get(f"/runs/{old['run_id']}").get_data(as_text=True)
    response = world.post(f"/runs/{old['run_id']}/redrive")
    assert response.status_code == 302
    new_id = response.location.rsplit("/", 1)[-1]
    new = world.index.get(new_id)
    assert new_id != old["run_id"] and new["status"] == "QUEUED"
    assert (new["rerun_of"], new["reuse_from"]) == (old["run_id"], old["run_id"])
    assert (new["trusted"], new["fork"], new["trust_reason"]) == (False, True, "pull request from a fork")
    assert new["execution_input"] == {**old["execution_input"], "run_id": new_id}
    job = Queue("runs", connection=world.redis).jobs[0]
    assert (job.func_name, job.args) == ("service.runs.start_run", (new_id,))
    assert world.index.audit(old["run_id"])[-1]["action"] == "rerun failed"
    assert world.index.get(old["run_id"])["status"] == "FAILED"  # the old run is history, not reopened
    assert world.post(f"/runs/{new_id}/redrive").status_code == 409  # still queued

    api = world.client.post(
        f"/api/runs/{old['run_id']}/steps/build/rerun", headers={"X-CSRF-Token": world.csrf}
    )
    assert api.status_code == 201, api.get_data(as_text=True)
    one = world.index.get(api.get_json()["run_id"])
    assert (one["reuse_from"], one["rerun_steps"], one["trusted"]) == (old["run_id"], ["build"], False)


def test_rerun_creates_a_new_run_with_the_same_input_and_enqueues_its_start(world):
    old = seed_run(world.redis, status="FAILED", execution_input={"repository": "octo/app", "sha": "a" * 40})
    response = world.post(f"/runs/{old['run_id']}/rerun")
    new_id = response.location.rsplit("/", 1)[-1]
    new = world.index.get(new_id)
    assert new_id != old["run_id"] and new["status"] == "QUEUED" and new["rerun_of"] == old["run_id"]
    assert new["execution_input"] == {**old["execution_input"], "run_id": new_id}
    assert new["sha"] == old["sha"] and new["branch"] == old["branch"]
    job = Queue("runs", connection=world.redis).jobs[0]
    assert (job.func_name, job.args) == ("service.runs.start_run", (new_id,))
    assert world.index.audit(old["run_id"])[-1]["new_run_id"] == new_id
    assert world.post(f"/runs/{new_id}/rerun").status_code == 409  # still queued


@pytest.mark.slow
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_approval_step_waits_for_a_person_on_the_dashboard(world, decision):
    approval = world.activity("approval")
    states = {
        "Approve": {
            **build_task(approval, "approve-deploy"),
            "ResultPath": "$.steps.approval",
            "Next": "Deploy",
        },
        "Deploy": {"Type": "Pass", "End": True},
    }
    states["Approve"]["Parameters"]["message"] = "Deploy <b>this</b>?"
    run = world.start(f"approve-{decision}", states, steps=["approve-deploy"])
    poller = ApprovalPoller(world.sfn, ApprovalStore(world.redis), "stepline-approval", threading.Event())
    poller.activity_arn = approval
    recorded = poller.poll_once()
    assert (
        recorded is not None and recorded["run_id"] == run["run_id"] and recorded["step"] == "approve-deploy"
    )
    page = world.client.get(f"/runs/{run['run_id']}").get_data(as_text=True)
    assert "Waiting for approval" in page and "Deploy &lt;b&gt;this&lt;/b&gt;?" in page
    assert '<span class="step-status">waiting for approval</span>' in page
    assert recorded["task_token"] not in page  # the token can decide the step: it stays on the server
    approval_id = recorded["approval_id"]

    response = world.post(f"/approvals/{approval_id}/{decision}", comment="not today")
    assert response.status_code == 302
    if decision == "approve":
        described = world.wait_status(run, "SUCCEEDED")
        result = json.loads(described["output"])["steps"]["approval"]
        assert result | {"at": 0} == {
            "step": "approve-deploy",
            "status": "approved",
            "by": "alice",
            "at": 0,
            "comment": "not today",
        }
    else:
        described = world.wait_status(run, "FAILED")
        assert (described["error"], described["cause"]) == (
            "Stepline.Rejected",
            "rejected by alice: not today",
        )
    assert ApprovalStore(world.redis).for_run(run["run_id"]) == []
    assert world.index.audit(run["run_id"])[-1]["action"] == decision
    # the decision may have ended the run: the reconciler looks now, not at the next sweep
    jobs = [(job.func_name, job.args) for job in Queue("statuses", connection=world.redis).jobs]
    assert ("service.reconcile.reconcile_run", (run["run_id"],)) in jobs
    words = "approved" if decision == "approve" else "rejected"
    page = world.client.get(f"/runs/{run['run_id']}").get_data(as_text=True)
    assert f'<span class="step-status">{words} by alice</span>' in page
    assert world.post(f"/approvals/{approval_id}/{decision}").status_code == 409  # decided once only


@pytest.mark.slow
def test_poller_drops_an_approval_whose_execution_was_stopped(world):
    approval = world.activity("approval")
    run = world.start("approve-stopped", {"Approve": {**build_task(approval, "approve"), "End": True}})
    store = ApprovalStore(world.redis)
    poller = ApprovalPoller(world.sfn, store, "stepline-approval", threading.Event())
    poller.activity_arn = approval
    recorded = poller.poll_once()
    poller.heartbeat_pending()
    assert [a["approval_id"] for a in store.for_run(run["run_id"])] == [
        recorded["approval_id"]
    ]  # still wanted
    world.sfn.stop_execution(executionArn=run["execution_arn"], error="Stepline.Cancelled")
    poller.heartbeat_pending()
    assert store.for_run(run["run_id"]) == []


@pytest.mark.slow
def test_jobs_process_polls_the_approval_activity(world, processes, redis_url, sfn_engine):
    from tests.harness.processes import python_module

    approval = world.activity("approval")
    run = world.start("approve-from-jobs", {"Approve": {**build_task(approval, "approve"), "End": True}})
    env = {"REDIS_URL": redis_url, "GITHUB_WEBHOOK_SECRET": "s", "SFN_ENDPOINT_URL": sfn_engine}
    jobs = processes("jobs", python_module("service.jobs"), env)
    store = ApprovalStore(world.redis)
    deadline = time.monotonic() + 15
    while not store.for_run(run["run_id"]) and time.monotonic() < deadline:
        jobs.check_alive()
        time.sleep(0.1)
    assert [a["step"] for a in store.for_run(run["run_id"])] == ["approve"], jobs.log()
