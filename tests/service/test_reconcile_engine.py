"""The reconciler against the real engine (`python -m statemachines.engine`) and a real jobs process.

The test plays the build worker through boto3 (GetActivityTask, SendTaskSuccess/Failure) and enqueues
its status jobs by path, as workers/ does; everything else is Stepline's own code over real Redis.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from service.job_context import job_context
from service.reconcile import sweep_open_runs
from service.reporter import run_contexts
from service.sfn import role_arn
from service.status_contexts import PHASE_STEP_PENDING
from service.status_ledger import DIRTY, ContextRef
from statemachines.contract import pipeline_steps
from statemachines.deploy import ensure_pipeline
from tests.harness.processes import python_module
from tests.service.reporting_support import REPO, Reporting, never_pending_after_terminal, reporting_config

BUILD_THEN_DEPLOY_ON_MAIN = {
    "StartAt": "Build",
    "States": {
        "Build": {
            "Type": "Task", "Resource": "${activity:build}", "HeartbeatSeconds": 60, "Next": "OnMain",
            "ResultPath": "$.steps.build",
            "Parameters": {"step": "build", "commands": ["make"], "run.$": "$$.Execution.Input"},
        },
        "OnMain": {
            "Type": "Choice", "Default": "Done",
            "Choices": [{"Variable": "$.branch", "StringEquals": "main", "Next": "Deploy"}],
        },
        "Deploy": {
            "Type": "Task", "Resource": "${activity:build}", "End": True,
            "Parameters": {"step": "deploy", "commands": ["make deploy"], "run.$": "$$.Execution.Input"},
        },
        "Done": {"Type": "Succeed"},
    },
}  # fmt: skip


class Pipeline:
    """One run of BUILD_THEN_DEPLOY_ON_MAIN on the engine, with the test as its build worker."""

    def __init__(self, reporting: Reporting, branch: str) -> None:
        self.reporting = reporting
        self.sfn = job_context().sfn
        config = reporting.config
        arn = ensure_pipeline(self.sfn, BUILD_THEN_DEPLOY_ON_MAIN, "ci", role_arn(config), "stepline")
        self.activity = next(
            a["activityArn"]
            for a in self.sfn.list_activities()["activities"]
            if a["name"] == "stepline-build"
        )
        steps = [spec.step for spec in pipeline_steps(BUILD_THEN_DEPLOY_ON_MAIN)]
        self.run = reporting.new_run(steps=tuple(steps), branch=branch)
        execution_input = {
            "run_id": self.run["run_id"],
            "repository": REPO,
            "sha": self.run["sha"],
            "branch": branch,
        }
        started = self.sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))
        self.run = reporting.index.update(self.run["run_id"], execution_arn=started["executionArn"]) or {}

    def work_one(self, state: str = "success", report: bool = True) -> str:
        """Take the next build task, report it pending, finish it with `state`; returns the step."""
        task = self.sfn.get_activity_task(activityArn=self.activity, workerName="test-worker")
        assert task.get("taskToken"), "no activity task was scheduled"
        step = json.loads(task["input"])["step"]
        rid = self.run["run_id"]
        if report:
            self.reporting.enqueue("report_step", rid, step, "pending", "running", _now_ms())
        if state == "success":
            self.sfn.send_task_success(taskToken=task["taskToken"], output=json.dumps({"step": step}))
        else:
            self.sfn.send_task_failure(
                taskToken=task["taskToken"], error="Stepline.StepFailed", cause="exit 2"
            )
        if report:
            self.reporting.enqueue("report_step", rid, step, state, f"{state} in 1s", _now_ms())
        return step

    def wait_closed(self, timeout: float = 15.0) -> dict[str, Any]:
        """Drain the jobs (the nudged reconcile included), sweeping when the nudge came too early."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.reporting.drain()
            run = self.reporting.index.get(self.run["run_id"]) or {}
            if run.get("status") not in ("QUEUED", "RUNNING"):
                self.reporting.drain()
                return run
            self.reporting.statuses.enqueue(sweep_open_runs)
            time.sleep(0.1)
        raise TimeoutError("the run was never finalised")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def reporting(service_config, redis_client, fake_github, sfn_engine):
    config = reporting_config(service_config, sfn_endpoint_url=sfn_engine)
    return Reporting(config, redis_client, fake_github)


def test_a_step_the_choice_skipped_ends_as_skipped(reporting):
    pipeline = Pipeline(reporting, branch="feature/x")
    reporting.enqueue("report_run_started", pipeline.run["run_id"])
    assert pipeline.work_one() == "build"
    run = pipeline.wait_closed()

    latest = reporting.latest(run)
    assert run["status"] == "SUCCEEDED"
    assert latest["stepline/ci/build"]["state"] == "success"
    assert latest["stepline/ci/deploy"]["state"] == "success"
    assert latest["stepline/ci/deploy"]["description"] == "skipped: not on this run's path"
    assert latest["stepline/ci"]["state"] == "success"


def test_steps_after_a_failed_step_are_not_run(reporting):
    pipeline = Pipeline(reporting, branch="main")
    reporting.enqueue("report_run_started", pipeline.run["run_id"])
    pipeline.work_one("failure")
    run = pipeline.wait_closed()

    latest = reporting.latest(run)
    assert run["status"] == "FAILED"
    assert latest["stepline/ci/build"]["state"] == "failure"
    assert latest["stepline/ci/deploy"] == {
        **latest["stepline/ci/deploy"],
        "state": "error",
        "description": "not run: build failed",
    }
    assert latest["stepline/ci"]["state"] == "failure"


def test_a_redriven_run_reports_again_and_ends_as_its_last_attempt(reporting):
    pipeline = Pipeline(reporting, branch="main")
    rid = pipeline.run["run_id"]
    reporting.enqueue("report_run_started", rid)
    pipeline.work_one("failure")
    pipeline.wait_closed()
    pipeline.sfn.redrive_execution(executionArn=pipeline.run["execution_arn"])
    reporting.index.update(rid, status="RUNNING", finished_at=None)  # as the dashboard's re-run does
    reporting.enqueue("report_run_started", rid)
    reporting.drain()
    assert reporting.latest(pipeline.run)["stepline/ci"]["state"] == "pending"
    pipeline.work_one()
    pipeline.work_one()
    run = pipeline.wait_closed()

    assert run["status"] == "SUCCEEDED"
    assert {c: s["state"] for c, s in reporting.latest(run).items()} == dict.fromkeys(
        ("stepline/ci", "stepline/ci/build", "stepline/ci/deploy"), "success"
    )


def test_an_execution_stopped_outside_stepline_is_closed_by_the_sweep(reporting):
    pipeline = Pipeline(reporting, branch="main")
    reporting.enqueue("report_run_started", pipeline.run["run_id"])
    reporting.drain()
    pipeline.sfn.stop_execution(
        executionArn=pipeline.run["execution_arn"], cause="stopped in the AWS console"
    )
    run = pipeline.wait_closed()

    latest = reporting.latest(run)
    assert run["status"] == "ABORTED"
    assert latest["stepline/ci"] == {
        **latest["stepline/ci"],
        "state": "error",
        "description": "stopped in the AWS console",
    }
    assert latest["stepline/ci/build"]["description"] == "stopped: stopped in the AWS console"
    assert latest["stepline/ci/deploy"]["description"] == "not run: stopped in the AWS console"


@pytest.mark.slow
@pytest.mark.fault
def test_a_killed_jobs_process_leaves_nothing_pending(
    reporting, processes, sfn_engine, redis_url, fake_github
):
    env = {
        "REDIS_URL": redis_url, "SFN_ENDPOINT_URL": sfn_engine, "GITHUB_TOKEN": "test-token",
        "GITHUB_API_URL": fake_github.url, "GITHUB_WEBHOOK_SECRET": "s", "STEPLINE_PUBLIC_URL": "http://stepline.test",
        "STEPLINE_RECONCILE_INTERVAL_SECONDS": "1", "STEPLINE_STATUS_RETRY_INTERVALS": "0,1",
        "STEPLINE_APPROVAL_POLLER": "false", "LOG_LEVEL": "INFO",
    }  # fmt: skip
    jobs = processes("jobs", python_module("service.jobs"), env)
    pipeline = Pipeline(reporting, branch="main")
    rid = pipeline.run["run_id"]
    reporting.enqueue("report_run_started", rid)
    _wait(lambda: len(reporting.latest(pipeline.run)) >= 1, jobs, 20)
    jobs.kill()  # SIGKILL while it posts the pending statuses; the build waits for a worker

    pipeline.work_one()  # its status jobs wait in Redis for a jobs process
    pipeline.work_one(report=False)  # these were lost: the worker could not enqueue them
    jobs = processes("jobs-restarted", python_module("service.jobs"), env)
    # killed mid-post, the first jobs process may still hold a context's posting lock: it lapses after
    # publisher.LOCK_SECONDS (60 s), and the sweep posts that context then
    _wait(lambda: "pending" not in {s["state"] for s in reporting.latest(pipeline.run).values()}, jobs, 120)

    latest = reporting.latest(pipeline.run)
    assert {c: s["state"] for c, s in latest.items()} == dict.fromkeys(
        ("stepline/ci", "stepline/ci/build", "stepline/ci/deploy"), "success"
    )
    _wait(lambda: reporting.index.get(rid)["status"] == "SUCCEEDED", jobs)
    for context in latest:
        assert never_pending_after_terminal(reporting.states(pipeline.run, context))


def test_a_claimed_status_whose_job_died_is_posted_by_the_sweep(reporting):
    run = reporting.new_run(steps=("build",))
    update = run_contexts(job_context(), run).step("build", "pending", "running", PHASE_STEP_PENDING, 1_000)
    assert reporting.ledger.claim(update)  # claimed, then the process died before its publish job ran
    reporting.redis.zadd(DIRTY, {json.dumps(list(ContextRef.of(update))): time.time() - 3600})
    reporting.statuses.enqueue(sweep_open_runs)
    reporting.drain()

    assert reporting.states(run, "stepline/ci/build") == ["pending"]
    assert reporting.ledger.dirty(time.time()) == []


def _wait(condition: Any, process: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        process.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met; {process.name} log:\n{process.log()[-3000:]}")
        time.sleep(0.1)


def test_a_run_that_ends_without_any_worker_is_closed_without_waiting_for_the_sweep(reporting):
    failing = {
        "StartAt": "Nope",
        "States": {"Nope": {"Type": "Fail", "Error": "Stepline.NotOnMain", "Cause": "no"}},
    }
    sfn = job_context().sfn
    arn = ensure_pipeline(sfn, failing, "ci", role_arn(reporting.config), "stepline")
    run = reporting.new_run(steps=(), branch="feature")
    started = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"run_id": run["run_id"]}))
    reporting.index.update(run["run_id"], execution_arn=started["executionArn"])
    reporting.enqueue("report_run_started", run["run_id"])
    reporting.drain()  # no sweep: the start report itself must lead to the reconcile
    closed = reporting.index.get(run["run_id"]) or {}
    assert closed["status"] == "FAILED"
    overall = reporting.github.latest_statuses(REPO, run["sha"])["stepline/ci"]
    assert overall["state"] in ("failure", "error") and "Stepline.NotOnMain" in overall["description"]


def test_a_step_scheduled_after_its_pools_workers_left_says_no_worker_serves_it(reporting, redis_client):
    from statemachines.worker_presence import forget_serving, record_serving

    record_serving(redis_client, "host/1", ["stepline-build"])
    pipeline = Pipeline(reporting, branch="main")
    reporting.index.update(
        pipeline.run["run_id"], step_pools={"build": "build", "deploy": "build"}, trusted=True
    )
    reporting.enqueue("report_run_started", pipeline.run["run_id"])
    reporting.drain()
    assert (
        reporting.latest(pipeline.run)["stepline/ci/deploy"]["description"]
        == "waiting for a worker (pool build)"
    )

    pipeline.work_one()  # build passes; deploy is scheduled next, and the only worker leaves
    forget_serving(redis_client, "host/1", ["stepline-build"])

    def deploy_says() -> str:
        reporting.statuses.enqueue(sweep_open_runs)
        reporting.drain()
        return str(reporting.latest(pipeline.run)["stepline/ci/deploy"]["description"])

    deadline = time.monotonic() + 15
    while deploy_says() != "no worker serves pool build" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert deploy_says() == "no worker serves pool build"
    record_serving(redis_client, "host/2", ["stepline-build"])  # a worker is back: it will take deploy
    assert deploy_says() == "waiting for a worker (pool build)"
