"""The reconciler: every kind of run end closes every owned context, from AWS-shaped histories.

The first tests read histories built by hand (the seam: DescribeExecution and GetExecutionHistory
results); the last ones finalise runs through rq jobs and the fake GitHub.
"""

from __future__ import annotations

import json
import time

import pytest
from rq import Queue

from service.job_context import job_context
from service.reconcile import finalise_run, sweep_open_runs
from service.reporter import run_contexts
from service.run_outcome import Verdict, outcome_of, read_attempts
from service.status_contexts import PHASE_STARTED
from service.status_ledger import DIRTY, ContextRef
from statemachines.outcomes import CANCELLED, FAILED, PASSED, SKIPPED, TIMED_OUT
from statemachines.step_logs import StepLogReader, StepLogWriter
from tests.service.reporting_support import History, Reporting, reporting_config


def test_a_succeeded_run_passes_and_a_step_its_choice_skipped_is_skipped():
    history = History()
    history.ran("build", took=65)
    history.add("ChoiceStateEntered", {"name": "OnMain?"})
    outcome = outcome_of(history.describe("SUCCEEDED"), history.events, ["build", "deploy"])

    assert outcome.status == "SUCCEEDED"
    assert outcome.steps["build"] == Verdict("success", "passed in 1m 05s", PASSED)
    assert outcome.steps["deploy"] == Verdict("success", "skipped: not on this run's path", SKIPPED)
    assert outcome.overall.state == "success" and outcome.overall.description.startswith("passed in 1m")


def test_steps_after_a_failure_are_not_run_and_the_run_fails():
    history = History()
    history.ran("build", "failed", "Stepline.StepFailed", "`make test` exited with 2")
    outcome = outcome_of(
        history.describe("FAILED", error="Stepline.StepFailed"), history.events, ["build", "test"]
    )

    assert outcome.steps["build"] == Verdict(
        "failure", "failed after 12s: Stepline.StepFailed: `make test` exited with 2", FAILED
    )
    assert outcome.steps["test"] == Verdict("error", "not run: build failed", SKIPPED)
    assert outcome.overall.state == "failure" and outcome.overall.description.endswith("build failed")


def test_a_rejected_approval_says_rejected_on_the_run_too():
    history = History()
    history.ran("build")
    history.ran("approve-deploy", "failed", "Stepline.Rejected", "rejected by alice: not today")
    describe = history.describe("FAILED", error="Stepline.Rejected")
    outcome = outcome_of(describe, history.events, ["build", "approve-deploy", "deploy"])

    assert outcome.steps["approve-deploy"] == Verdict(
        "failure", "rejected: rejected by alice: not today", FAILED
    )
    assert outcome.overall == Verdict(
        "failure", "failed in 27s: approve-deploy rejected by alice: not today", FAILED
    )


def test_a_retried_step_ends_as_its_last_attempt_and_a_lost_worker_is_an_error():
    history = History()
    history.ran("build", "failed", "States.HeartbeatTimeout")
    history.ran("build")
    history.ran("test", "failed", "States.HeartbeatTimeout", took=60)
    outcome = outcome_of(history.describe("FAILED"), history.events, ["build", "test"])

    assert outcome.steps["build"].state == "success"
    assert outcome.steps["test"] == Verdict("error", "worker lost after 1m 00s (no heartbeat)", FAILED)
    assert outcome.overall.state == "error"


def test_parallel_branches_interleave_and_are_told_apart_by_previous_event_id():
    history = History()
    lint = history.scheduled("lint")
    unit = history.scheduled("unit")
    lint_started = history.add("ActivityStarted", {"workerName": "a"}, lint)
    unit_started = history.add("ActivityStarted", {"workerName": "b"}, unit)
    history.add("ActivityFailed", {"error": "Stepline.StepFailed", "cause": "lint"}, lint_started)
    history.add("ActivitySucceeded", {"output": "{}"}, unit_started)
    attempts = {a.step: a.result for a in read_attempts(history.events)}

    assert attempts == {"lint": "failed", "unit": "succeeded"}


def test_timed_out_and_aborted_runs_close_what_was_running_and_what_never_ran():
    history = History()
    started = history.add("ActivityStarted", {"workerName": "w"}, history.scheduled("build"))
    assert started
    timed_out = outcome_of(history.describe("TIMED_OUT"), history.events, ["build", "test"])
    aborted = outcome_of(
        history.describe("ABORTED", cause="cancelled by ada"), history.events, ["build", "test"]
    )
    superseded = outcome_of(history.describe("ABORTED"), history.events, ["build"], "superseded by 1a2b3c4")

    assert timed_out.steps == {
        "build": Verdict("error", "stopped: run timed out", TIMED_OUT),
        "test": Verdict("error", "not run: run timed out", CANCELLED),
    }
    assert timed_out.overall.description.startswith("timed out after")
    assert aborted.steps["build"] == Verdict("error", "stopped: cancelled by ada", CANCELLED)
    assert aborted.overall == Verdict("error", "cancelled by ada", CANCELLED)
    assert superseded.overall == Verdict("error", "superseded by 1a2b3c4", CANCELLED)


def test_a_500_character_cause_is_cut_to_140_when_posted(service_config, redis_client, fake_github):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = reporting.new_run(steps=("build",))
    history = History()
    history.ran("build", "failed", "Stepline.StepFailed", "E" * 500)
    finalise_run(job_context(), run, history.describe("FAILED"), history.events)
    reporting.drain()

    description = reporting.latest(run)["stepline/ci/build"]["description"]
    assert len(description) == 140 and description.endswith("…")


@pytest.mark.parametrize(
    ("status", "overall"),
    [("SUCCEEDED", "success"), ("FAILED", "failure"), ("TIMED_OUT", "error"), ("ABORTED", "error")],
)
def test_every_kind_of_end_leaves_no_context_pending(
    service_config, redis_client, fake_github, status, overall
):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = reporting.new_run(steps=("build", "test", "deploy"))
    reporting.enqueue("report_run_started", run["run_id"])
    reporting.drain()
    history = History()
    history.ran("build", *(("failed", "Stepline.StepFailed", "boom") if status == "FAILED" else ()))
    finalise_run(job_context(), run, history.describe(status), history.events)
    finalise_run(job_context(), run, history.describe(status), history.events)  # a repeated reconcile
    reporting.drain()

    latest = reporting.latest(run)
    assert set(latest) == {"stepline/ci", "stepline/ci/build", "stepline/ci/test", "stepline/ci/deploy"}
    assert "pending" not in {s["state"] for s in latest.values()}
    assert latest["stepline/ci"]["state"] == overall
    assert reporting.index.get(run["run_id"])["status"] == status
    assert len(fake_github.requests("POST", "/statuses/")) == 8  # 4 pending + 4 final, none twice


def test_a_step_a_worker_already_closed_keeps_its_words(service_config, redis_client, fake_github):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = reporting.new_run(steps=("build",))
    reporting.enqueue("report_step", run["run_id"], "build", "success", "passed in 12s on worker-3", 5_000)
    reporting.drain()
    history = History()
    history.ran("build")
    finalise_run(job_context(), run, history.describe("SUCCEEDED"), history.events)
    reporting.drain()

    assert reporting.states(run, "stepline/ci/build") == ["success"]
    assert reporting.latest(run)["stepline/ci/build"]["description"] == "passed in 12s on worker-3"


def test_a_step_whose_task_timed_out_has_its_log_ended_as_lost(service_config, redis_client, fake_github):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = reporting.new_run(steps=("build", "test"))
    StepLogWriter.start(redis_client, run["run_id"], "build").finish("succeeded", 0)
    StepLogWriter.start(redis_client, run["run_id"], "test").write_line("working")  # then SIGKILLed
    history = History()
    history.ran("build")
    history.ran("test", "failed", "States.HeartbeatTimeout", took=60)
    finalise_run(job_context(), run, history.describe("FAILED"), history.events)

    logs = StepLogReader(redis_client)
    assert logs.meta(run["run_id"], "build")["status"] == "succeeded"
    lost = logs.meta(run["run_id"], "test")
    assert lost["finished"] and lost["status"] == "lost"
    assert "task timed out" in logs.read(run["run_id"], "test")[0][-1]


def explode_like_a_deep_pipeline(run_id: str) -> None:
    """A start job failing in a way start_run does not expect."""
    raise RecursionError("maximum recursion depth exceeded while decoding a JSON object")


def test_a_run_whose_start_job_gave_up_unexpectedly_ends_errored(service_config, redis_client, fake_github):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    an_hour_ago = time.time() - 3600
    stuck = reporting.new_run(steps=("build",), status="QUEUED", started_at=None, created_at=an_hour_ago)
    fresh = reporting.new_run(steps=("build",), status="QUEUED", started_at=None)  # its start job may run
    Queue("runs", connection=redis_client).enqueue(
        explode_like_a_deep_pipeline, stuck["run_id"], job_id=f"run-{stuck['run_id']}"
    )
    reporting.drain()  # the start job fails for good
    reporting.statuses.enqueue(sweep_open_runs)
    reporting.drain()

    ended = reporting.index.get(stuck["run_id"])
    assert ended["status"] == "ERRORED" and "RecursionError" in ended["status_reason"]
    latest = reporting.latest(stuck)
    assert {c: s["state"] for c, s in latest.items()} == {
        "stepline/ci": "error",
        "stepline/ci/build": "error",
    }
    assert "not started: RecursionError" in latest["stepline/ci"]["description"]
    assert reporting.index.get(fresh["run_id"])["status"] == "QUEUED"


def test_a_status_github_refused_for_a_day_is_given_up_and_recorded(
    service_config, redis_client, fake_github
):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = reporting.new_run(steps=())
    update = run_contexts(job_context(), run).overall("pending", "running", PHASE_STARTED, 1_000)
    reporting.ledger.claim(update)
    key = ContextRef.of(update).key
    redis_client.hset(key, "wanted_at", time.time() - 2 * 24 * 3600)
    redis_client.zadd(DIRTY, {json.dumps(list(ContextRef.of(update))): time.time() - 2 * 24 * 3600})
    reporting.statuses.enqueue(sweep_open_runs)
    reporting.drain()

    assert fake_github.requests("POST") == []
    assert reporting.ledger.dirty(time.time()) == []
    assert "not posted after 24 h" in reporting.ledger.errors(run["run_id"])[0]["error"]


def test_a_stopped_run_whose_closing_job_was_lost_is_closed_by_the_sweep(
    service_config, redis_client, fake_github
):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = reporting.new_run(steps=("build",))
    reporting.enqueue("report_run_started", run["run_id"])
    reporting.drain()
    # superseded, but its report_run_cancelled job never ran (lost with a crashed jobs process)
    reporting.index.update(
        run["run_id"], status="SUPERSEDED", status_reason="superseded by 9f8e7d6", finished_at=time.time()
    )
    reporting.statuses.enqueue(sweep_open_runs)
    reporting.statuses.enqueue(sweep_open_runs)  # a second sweep finds nothing left to do
    reporting.drain()

    assert {c: (s["state"], s["description"]) for c, s in reporting.latest(run).items()} == {
        "stepline/ci": ("error", "superseded by 9f8e7d6"),
        "stepline/ci/build": ("error", "superseded by 9f8e7d6"),
    }
    assert len(fake_github.requests("POST", "/statuses/")) == 4
