"""Check runs as a GitHub App: the reporter's jobs in real rq workers, the real Redis, the fake GitHub's Checks API."""

from __future__ import annotations

import json

import pytest

from service.config import ServiceConfig
from service.job_context import job_context
from service.reconcile import finalise_run
from service.status_contexts import PHASE_FINAL, RunContexts
from service.status_ledger import ContextRef
from statemachines.errors import ConfigError
from statemachines.outcomes import FAILED, QUEUED
from statemachines.step_logs import StepLogWriter
from tests.service.reporting_support import REPO, History, Reporting, app_config, reporting_config

OPEN = ("queued", "in_progress")


def write_log(redis_client, run_id: str, step: str, lines: list[str], status: str = "failed") -> None:
    writer = StepLogWriter.start(redis_client, run_id, step, worker="worker-7")
    for line in lines:
        writer.write_line(line)
    writer.finish(status, 1 if status == "failed" else 0)


def assert_none_open(fake_github, run) -> None:
    runs = fake_github.checks.all_runs(REPO, run["sha"])
    assert runs and [r["name"] for r in runs if r["status"] in OPEN] == []


def test_a_run_opens_a_check_run_per_step_and_one_for_the_pipeline(checks, fake_github):
    run = checks.new_run(steps=("build", "test"), installation_id=42, step_pools={"build": "build"})
    checks.enqueue("report_run_started", run["run_id"])
    checks.drain()
    checks.enqueue("report_step", run["run_id"], "build", "pending", "", 1_000)
    checks.drain()

    shown = fake_github.checks.runs(REPO, run["sha"])
    assert {name: r["status"] for name, r in shown.items()} == {
        "stepline/ci": "in_progress", "stepline/ci/build": "in_progress", "stepline/ci/test": "queued",
    }  # fmt: skip
    build = shown["stepline/ci/build"]
    assert build["details_url"] == f"http://stepline.test/runs/{run['run_id']}#step-build"
    assert build["external_id"] == f"{run['run_id']}:build"
    assert fake_github.checks.history(build["id"]) == [("queued", None), ("in_progress", None)]
    assert fake_github.statuses(REPO, run["sha"]) == []  # an App reports with checks only, by default


def test_a_failing_step_sends_its_annotations_fifty_at_a_time_and_its_log_tail(
    checks, fake_github, redis_client
):
    run = checks.new_run(steps=("build", "test"), installation_id=42, step_pools={"build": "build"})
    checks.enqueue("report_run_started", run["run_id"])
    checks.drain()
    lines = [f"::error file=src/app.py,line={n},col=2::undefined name x{n}" for n in range(1, 121)]
    lines += ["::notice::no file given", "compiling", "make: *** [build] Error 1"]
    write_log(redis_client, run["run_id"], "build", lines)
    checks.enqueue("report_step", run["run_id"], "build", "failure", "", 5_000)
    checks.drain()

    build = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/build"]
    assert (build["status"], build["conclusion"]) == ("completed", "failure")
    annotations = fake_github.checks.annotations(build["id"])
    assert len(annotations) == 120 and annotations[0]["annotation_level"] == "failure"
    assert annotations[2] == {
        "path": "src/app.py", "start_line": 3, "end_line": 3, "annotation_level": "failure",
        "message": "undefined name x3", "start_column": 2, "end_column": 2,
    }  # fmt: skip
    sent = [
        len((r.body.get("output") or {}).get("annotations") or [])
        for r in fake_github.requests(path_contains="/check-runs")
    ]
    assert max(sent) == 50 and sum(sent) == 120  # each annotation once, at most 50 a request
    summary = build["output"]["summary"]
    for words in (
        "| Attempt | 1 |",
        "| Worker pool | build |",
        "| Worker | worker-7 |",
        "make: *** [build] Error 1",
    ):
        assert words in summary
    assert (
        "no file given" in summary
    )  # an annotation without a file has no line to sit on: the summary says it


def test_a_huge_log_tail_is_cut_to_githubs_summary_limit(checks, fake_github, redis_client):
    run = checks.new_run(steps=("build",), installation_id=42)
    write_log(redis_client, run["run_id"], "build", ["y" * 9000 for _ in range(30)], status="passed")
    checks.enqueue("report_step", run["run_id"], "build", "success", "", 5_000)
    checks.drain()

    build = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/build"]
    assert build["conclusion"] == "success"
    assert 60_000 < len(build["output"]["summary"]) <= 65_535


@pytest.mark.parametrize(
    ("status", "steps"),
    [
        ("SUCCEEDED", {"build": "success", "test": "success", "deploy": "skipped"}),
        ("FAILED", {"build": "failure", "test": "skipped", "deploy": "skipped"}),
        ("TIMED_OUT", {"build": "success", "test": "cancelled", "deploy": "cancelled"}),
        ("ABORTED", {"build": "success", "test": "cancelled", "deploy": "cancelled"}),
    ],
)
def test_every_kind_of_end_completes_every_check_run(checks, fake_github, status, steps):
    run = checks.new_run(steps=("build", "test", "deploy"), installation_id=42)
    checks.enqueue("report_run_started", run["run_id"])
    checks.drain()
    history = History()
    history.ran("build", *(("failed", "Stepline.StepFailed", "boom") if status == "FAILED" else ()))
    if status == "SUCCEEDED":
        history.ran("test")
    describe = history.describe(status, **({"cause": "cancelled by alice"} if status == "ABORTED" else {}))
    finalise_run(job_context(), run, describe, history.events)
    checks.drain()

    shown = fake_github.checks.runs(REPO, run["sha"])
    assert {
        name.rsplit("/", 1)[-1]: r["conclusion"] for name, r in shown.items() if name != "stepline/ci"
    } == steps
    assert_none_open(fake_github, run)
    assert len(fake_github.checks.all_runs(REPO, run["sha"])) == 4  # one each, updated in place


def test_a_newer_run_of_the_commit_closes_the_older_open_check_runs(checks, fake_github):
    first = checks.new_run(steps=("build",), installation_id=42)
    checks.enqueue("report_run_started", first["run_id"])
    checks.drain()
    second = checks.new_run(steps=("build",), installation_id=42, sha=first["sha"])
    checks.enqueue("report_run_started", second["run_id"])
    checks.drain()

    runs = fake_github.checks.all_runs(REPO, first["sha"])
    older = [r for r in runs if r["external_id"].startswith(first["run_id"])]
    newer = [r for r in runs if r["external_id"].startswith(second["run_id"])]
    assert {(r["status"], r["conclusion"]) for r in older} == {("completed", "cancelled")}
    assert {r["status"] for r in newer} == {"in_progress", "queued"}


def test_an_approval_gate_waits_with_approve_and_reject_buttons(checks, fake_github):
    run = checks.new_run(
        steps=("approve-deploy",), installation_id=42, step_pools={"approve-deploy": "approval"}
    )
    checks.enqueue("report_run_started", run["run_id"])
    checks.drain()
    gate = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/approve-deploy"]
    assert gate["status"] == "queued" and gate["actions"] == []  # not reached yet: nothing to approve

    checks.enqueue("report_step", run["run_id"], "approve-deploy", "pending", "waiting for approval", 2_000)
    checks.drain()
    gate = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/approve-deploy"]
    assert (gate["status"], gate["conclusion"]) == ("completed", "action_required")
    assert [a["identifier"] for a in gate["actions"]] == ["approve", "reject"]

    checks.enqueue(
        "report_step", run["run_id"], "approve-deploy", "success", "approved by octo on GitHub", 3_000
    )
    checks.drain()
    gate = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/approve-deploy"]
    assert (gate["conclusion"], gate["actions"]) == ("success", [])


def test_502_and_rate_limit_storms_end_with_every_check_run_completed_once(checks, fake_github, redis_client):
    run = checks.new_run(steps=("build", "test"), installation_id=42)
    write_log(
        redis_client, run["run_id"], "build", [f"::warning file=a.py,line={n}::w" for n in range(1, 76)]
    )
    fake_github.fail_next(4, 502)
    checks.enqueue("report_run_started", run["run_id"])
    checks.drain()
    fake_github.rate_limit_next(3, status=403, retry_after=1)
    checks.enqueue("report_step", run["run_id"], "build", "failure", "", 5_000)
    checks.drain()
    fake_github.fail_next(2, 502)
    fake_github.rate_limit_next(2, status=429, retry_after=1)
    history = History()
    history.ran("build", "failed", "Stepline.StepFailed", "boom")
    finalise_run(job_context(), run, history.describe("FAILED"), history.events)
    checks.drain(timeout=60)

    assert_none_open(fake_github, run)
    assert len(fake_github.checks.all_runs(REPO, run["sha"])) == 3  # a retried create made no second one
    build = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/build"]
    assert len(fake_github.checks.annotations(build["id"])) == 75  # none sent twice
    assert checks.ledger.errors(run["run_id"]) == []


def test_both_posts_check_runs_and_commit_statuses(service_config, redis_client, fake_github, app_pem):
    both = Reporting(app_config(service_config, app_pem, github_reporting="both"), redis_client, fake_github)
    run = both.new_run(steps=("build",), installation_id=42)
    both.enqueue("report_run_started", run["run_id"])
    both.drain()

    assert set(fake_github.checks.runs(REPO, run["sha"])) == {"stepline/ci", "stepline/ci/build"}
    assert set(both.latest(run)) == {"stepline/ci", "stepline/ci/build"}


def test_a_plain_token_posts_commit_statuses_only(service_config, redis_client, fake_github):
    token = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = token.new_run(steps=("build",), installation_id=42)
    token.enqueue("report_run_started", run["run_id"])
    token.drain()

    assert fake_github.checks.all_runs(REPO, run["sha"]) == []
    assert set(token.latest(run)) == {"stepline/ci", "stepline/ci/build"}


def test_a_lost_worker_fails_its_check_run_and_a_cancel_closes_the_rest(checks, fake_github):
    run = checks.new_run(steps=("build", "test"), installation_id=42)
    checks.enqueue("report_run_started", run["run_id"])
    checks.drain()
    history = History()
    history.ran("build", "failed", "States.HeartbeatTimeout", "", took=60)
    finalise_run(job_context(), run, history.describe("FAILED"), history.events)
    checks.drain()
    build = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/build"]
    assert build["conclusion"] == "failure" and "worker lost" in build["output"]["title"]

    cancelled = checks.new_run(steps=("build", "test"), installation_id=42)
    checks.enqueue("report_run_started", cancelled["run_id"])
    checks.enqueue("report_run_cancelled", cancelled["run_id"], "superseded by 1234567")
    checks.drain()
    shown = fake_github.checks.runs(REPO, cancelled["sha"])
    assert {r["conclusion"] for r in shown.values()} == {"cancelled"}
    assert_none_open(fake_github, cancelled)


def test_the_reporting_setting_is_read_and_checked_at_start_up():
    base = {"GITHUB_WEBHOOK_SECRET": "s"}
    assert ServiceConfig.from_env(base, check_services=False).github_reporting == "checks"
    both = ServiceConfig.from_env(base | {"STEPLINE_GITHUB_REPORTING": " Both "}, check_services=False)
    assert both.github_reporting == "both"
    with pytest.raises(ConfigError, match="STEPLINE_GITHUB_REPORTING='check-runs' is not one of"):
        ServiceConfig.from_env(base | {"STEPLINE_GITHUB_REPORTING": "check-runs"}, check_services=False)


def test_a_conclusion_is_the_outcome_named_with_the_update_not_read_from_its_words(checks, fake_github):
    """Words that once steered the mapping ("stopped", "timed out") no longer decide a conclusion."""
    run = checks.new_run(steps=("build", "test", "lint"), installation_id=42)
    checks.enqueue("report_run_started", run["run_id"])
    checks.enqueue(
        "report_step", run["run_id"], "build", "error", "the mirror stopped answering", 2_000, FAILED
    )
    checks.enqueue(
        "report_step", run["run_id"], "test", "error", "timed out waiting for the db", 2_000, FAILED
    )
    checks.enqueue(
        "report_step", run["run_id"], "lint", "pending", "waiting for concurrency group l", 2_000, QUEUED
    )
    checks.drain()
    shown = fake_github.checks.runs(REPO, run["sha"])
    assert shown["stepline/ci/build"]["conclusion"] == "failure"
    assert shown["stepline/ci/test"]["conclusion"] == "failure"
    assert shown["stepline/ci/lint"]["status"] == "queued"  # waits for its group: not in progress

    checks.enqueue("report_run_cancelled", run["run_id"], "branch deleted")  # no word of cancelling in it
    checks.drain()
    shown = fake_github.checks.runs(REPO, run["sha"])
    assert (shown["stepline/ci"]["conclusion"], shown["stepline/ci/lint"]["conclusion"]) == ("cancelled",) * 2
    assert shown["stepline/ci/build"]["conclusion"] == "failure"  # closed before the cancel: kept
    assert_none_open(fake_github, run)


def test_a_worker_shut_down_mid_step_fails_its_check_run_though_its_cause_says_stopped(checks, fake_github):
    run = checks.new_run(steps=("build",), installation_id=42)
    checks.enqueue("report_run_started", run["run_id"])
    checks.drain()
    history = History()
    history.ran("build", "failed", "Stepline.WorkerShutdown", "the worker was stopped while the step ran")
    finalise_run(job_context(), run, history.describe("FAILED"), history.events)
    checks.drain()
    shown = fake_github.checks.runs(REPO, run["sha"])
    assert {name: r["conclusion"] for name, r in shown.items()} == {
        "stepline/ci": "failure", "stepline/ci/build": "failure",
    }  # fmt: skip


def test_updates_without_an_outcome_are_still_read_from_their_words(checks, fake_github, redis_client):
    """Ledger entries and worker jobs from before outcomes were carried keep today's conclusions."""
    run = checks.new_run(steps=("build", "test"), installation_id=42)
    checks.enqueue("report_run_started", run["run_id"])
    checks.enqueue("report_step", run["run_id"], "build", "error", "stopped: the run was cancelled", 2_000)
    checks.drain()
    contexts = RunContexts(run, checks.config.status_prefix, checks.config.public_url)
    written = contexts.step("test", "error", "not run: build failed", PHASE_FINAL, 3_000).to_dict()
    del written["outcome"]  # as an older release wrote it
    ref = ContextRef(REPO, run["sha"], "stepline/ci/test")
    redis_client.hset(ref.key, "wanted", json.dumps(written))
    checks.statuses.enqueue("service.publisher.publish_status", *ref)
    checks.drain()
    shown = fake_github.checks.runs(REPO, run["sha"])
    assert shown["stepline/ci/build"]["conclusion"] == "cancelled"
    assert shown["stepline/ci/test"]["conclusion"] == "skipped"
