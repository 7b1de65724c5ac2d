"""The reporter: a run's statuses reach the fake GitHub right, in order, whatever order the jobs run in."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.job_context import job_context
from service.publisher import PAUSE_KEY
from service.reconcile import finalise_run
from statemachines.worker_presence import record_serving
from tests.service.reporting_support import (
    REPO,
    BurstWorker,
    History,
    Reporting,
    never_pending_after_terminal,
    reporting_config,
)


@pytest.fixture
def reporting(service_config, redis_client, fake_github):
    return Reporting(reporting_config(service_config), redis_client, fake_github)


def test_a_run_posts_pending_then_each_step_then_the_final_status(reporting):
    run = reporting.new_run(steps=("build", "test"))
    rid = run["run_id"]
    reporting.enqueue("report_run_started", rid)
    reporting.drain()
    for step, state, words, at_ms in [
        ("build", "pending", "running on worker-1", 1_000),
        ("build", "success", "passed in 12s", 2_000),
        ("test", "pending", "", 3_000),
        ("test", "success", "passed in 3s", 4_000),
    ]:
        reporting.enqueue("report_step", rid, step, state, words, at_ms)
        reporting.drain()
    history = History()
    history.ran("build")
    history.ran("test")
    finalise_run(job_context(), run, history.describe("SUCCEEDED"), history.events)
    reporting.drain()

    assert reporting.states(run, "stepline/ci") == ["pending", "success"]
    assert reporting.states(run, "stepline/ci/build") == ["pending", "pending", "success"]
    latest = reporting.latest(run)
    assert latest["stepline/ci/build"]["description"] == "passed in 12s"
    assert latest["stepline/ci/build"]["target_url"] == f"http://stepline.test/runs/{rid}#step-build"
    assert latest["stepline/ci"]["target_url"] == f"http://stepline.test/runs/{rid}"
    assert latest["stepline/ci"]["description"].startswith("passed in ")
    assert reporting.index.get(rid)["status"] == "SUCCEEDED"
    posts = reporting.github.requests("POST", "/statuses/")
    assert posts[0].headers["authorization"] == "token test-token"
    assert len(posts) == 8  # each change once: 2 overall, 3 per step


def test_every_final_status_arrives_through_a_502_storm(reporting):
    run = reporting.new_run(steps=("build", "test", "lint"))
    rid = run["run_id"]
    reporting.github.fail_next(6, status=502)
    reporting.enqueue("report_run_started", rid)
    for at, step in enumerate(("build", "test", "lint")):
        reporting.enqueue("report_step", rid, step, "pending", "", 10 * at + 1)
        reporting.enqueue(
            "report_step", rid, step, "failure" if step == "lint" else "success", "done", 10 * at + 2
        )
    reporting.drain()

    latest = reporting.latest(run)
    assert {c: s["state"] for c, s in latest.items()} == {
        "stepline/ci": "pending",
        "stepline/ci/build": "success",
        "stepline/ci/test": "success",
        "stepline/ci/lint": "failure",
    }
    for context in latest:
        assert never_pending_after_terminal(reporting.states(run, context)), context
    assert reporting.ledger.errors(rid) == []


@pytest.mark.parametrize("status", [403, 429])
def test_rate_limits_defer_every_status_job_until_retry_after(reporting, status):
    run = reporting.new_run(steps=("build", "test"))
    rid = run["run_id"]
    reporting.github.rate_limit_next(1, status=status, retry_after=1)
    reporting.enqueue("report_run_started", rid)
    reporting.drain()
    assert {s["state"] for s in reporting.latest(run).values()} == {"pending"}
    # one refused request, then the shared pause held the other jobs back: no hammering
    assert len(reporting.github.requests("POST", "/statuses/")) == 3 + 1

    reporting.github.rate_limit_next(2, status=status, retry_after=1)
    reporting.enqueue("report_step", rid, "build", "success", "passed in 1s", 1_000)
    reporting.enqueue("report_step", rid, "test", "failure", "failed after 2s", 2_000)
    reporting.drain()

    assert reporting.states(run, "stepline/ci/build") == ["pending", "success"]
    assert reporting.states(run, "stepline/ci/test") == ["pending", "failure"]
    assert reporting.ledger.errors(rid) == []


def test_jobs_run_out_of_order_never_post_a_stale_state(reporting):
    run = reporting.new_run(steps=("build",))
    rid = run["run_id"]
    # the worker's reports reach the queue newest first, and the start comes last of all
    reporting.enqueue("report_step", rid, "build", "failure", "failed after 3s: make test exited 2", 3_000)
    reporting.enqueue("report_step", rid, "build", "pending", "running", 1_000)
    reporting.enqueue("report_run_started", rid)
    reporting.drain()

    assert reporting.states(run, "stepline/ci/build") == ["failure"]
    assert reporting.states(run, "stepline/ci") == ["pending"]


def test_a_retried_stale_post_never_overwrites_a_newer_one(reporting):
    run = reporting.new_run(steps=("build",))
    rid = run["run_id"]
    reporting.github.fail_next(1, status=502)  # the pending post fails; rq puts its job back on the queue
    reporting.enqueue("report_step", rid, "build", "pending", "running", 1_000)
    BurstWorker([reporting.statuses], connection=reporting.redis).work(burst=True, max_jobs=2)
    assert reporting.statuses.count == 1  # the retry of the pending post waits its turn
    # the step's success is reported before that retry runs
    reporting.statuses.enqueue(
        "service.reporter.report_step", rid, "build", "success", "passed", 2_000, at_front=True
    )
    reporting.drain()

    assert reporting.states(run, "stepline/ci/build") == ["success"]
    assert len(reporting.github.requests("POST", "/statuses/")) == 2  # the failed pending, then success


def test_a_terminal_state_is_never_replaced_by_pending_of_the_same_run(reporting):
    run = reporting.new_run(steps=("build",))
    rid = run["run_id"]
    reporting.enqueue("report_step", rid, "build", "failure", "worker stopped", 1_000)
    reporting.drain()
    reporting.enqueue("report_step", rid, "build", "pending", "running again", 2_000)  # a Retry re-ran it
    reporting.enqueue("report_step", rid, "build", "success", "passed in 2s", 3_000)
    reporting.drain()

    assert reporting.states(run, "stepline/ci/build") == ["failure", "success"]


def test_a_newer_run_of_the_same_commit_owns_the_contexts(reporting):
    old = reporting.new_run(steps=("build",))
    new = reporting.new_run(steps=("build",), sha=old["sha"], created_at=old["created_at"] + 5)
    reporting.enqueue("report_run_started", new["run_id"])
    reporting.enqueue("report_run_cancelled", old["run_id"], "superseded by a re-run")
    reporting.drain()

    assert {s["state"] for s in reporting.latest(new).values()} == {"pending"}
    assert all(
        s["target_url"].startswith(f"http://stepline.test/runs/{new['run_id']}")
        for s in reporting.latest(new).values()
    )


def test_a_long_failure_description_is_cut_to_140_characters(reporting):
    run = reporting.new_run(steps=("build",))
    cause = "make: *** [test] Error 2 " + "x" * 480
    reporting.enqueue("report_step", run["run_id"], "build", "failure", cause, 1_000)
    reporting.drain()

    posted = reporting.latest(run)["stepline/ci/build"]["description"]
    assert len(posted) == 140 and posted.endswith("…") and posted.startswith("make: *** [test] Error 2")


def test_skip_ci_marks_every_owned_context_skipped(reporting):
    run = reporting.new_run(steps=("build", "test"), status="SKIPPED", finished_at=1.0)
    reporting.enqueue("report_run_skipped", run["run_id"], "[skip ci] in the commit message")
    reporting.drain()

    latest = reporting.latest(run)
    assert set(latest) == {"stepline/ci", "stepline/ci/build", "stepline/ci/test"}
    assert {s["state"] for s in latest.values()} == {"success"}
    assert latest["stepline/ci/test"]["description"] == "skipped: [skip ci] in the commit message"


def test_an_invalid_pipeline_is_an_error_naming_the_problem(reporting):
    reason = "invalid pipeline .stepline/pipeline.asl.json: States.Build.Next names no state 'Tset'"
    run = reporting.new_run(steps=(), status="INVALID", status_reason=reason, finished_at=1.0)
    reporting.enqueue("report_run_invalid", run["run_id"])
    reporting.drain()

    assert reporting.latest(run)["stepline/ci"]["state"] == "error"
    assert "names no state 'Tset'" in reporting.latest(run)["stepline/ci"]["description"]


def test_a_superseded_run_closes_its_open_contexts_and_keeps_finished_ones(reporting):
    run = reporting.new_run(steps=("build", "test"))
    rid = run["run_id"]
    reporting.enqueue("report_run_started", rid)
    reporting.enqueue("report_step", rid, "build", "success", "passed in 4s", 1_000)
    reporting.drain()
    reporting.index.update(rid, status="SUPERSEDED", finished_at=2.0)
    reporting.enqueue("report_run_cancelled", rid, "superseded by 1a2b3c4")
    reporting.drain()

    latest = reporting.latest(run)
    assert latest["stepline/ci/build"]["state"] == "success"
    assert latest["stepline/ci/test"]["state"] == "error"
    assert latest["stepline/ci/test"]["description"] == "superseded by 1a2b3c4"
    assert latest["stepline/ci"]["description"] == "superseded by 1a2b3c4"


def test_a_status_that_finally_fails_is_recorded_for_the_dashboard(reporting):
    run = reporting.new_run(steps=())
    reporting.github.fail_next(10, status=502)
    reporting.enqueue("report_run_started", run["run_id"])
    reporting.drain()

    errors = reporting.ledger.errors(run["run_id"])
    assert len(errors) == 1 and "502" in errors[0]["error"] and errors[0]["context"] == "stepline/ci"
    assert reporting.index.get(run["run_id"])["reporting_errors"][0]["context"] == "stepline/ci"
    assert reporting.ledger.run_statuses(run["run_id"])[0]["error"]
    assert reporting.statuses.failed_job_registry.count == 1  # rq shows it too


def test_a_refused_status_is_recorded_and_not_retried(reporting):
    run = reporting.new_run(steps=())
    reporting.github.fail_next(1, status=403)  # no rate-limit headers: missing permission
    reporting.enqueue("report_run_started", run["run_id"])
    reporting.drain()

    assert len(reporting.github.requests("POST", "/statuses/")) == 1
    assert "403" in reporting.ledger.errors(run["run_id"])[0]["error"]


def test_without_credentials_statuses_are_only_recorded(service_config, redis_client, fake_github):
    config = reporting_config(service_config, github_token="")
    reporting = Reporting(config, redis_client, fake_github)
    run = reporting.new_run(steps=("build",))
    reporting.enqueue("report_run_started", run["run_id"])
    reporting.drain()

    assert fake_github.requests("POST") == []
    rows = reporting.ledger.run_statuses(run["run_id"])
    assert [(r["context"], r["state"], r["recorded_only"]) for r in rows] == [
        ("stepline/ci", "pending", True),
        ("stepline/ci/build", "pending", True),
    ]


def test_enterprise_api_url_and_a_custom_prefix(service_config, redis_client, fake_github):
    config = reporting_config(
        service_config, github_api_url=fake_github.enterprise_url, status_prefix="acme/ci"
    )
    reporting = Reporting(config, redis_client, fake_github)
    run = reporting.new_run(steps=("build",), pipeline="release")
    reporting.enqueue("report_run_started", run["run_id"])
    reporting.drain()

    assert set(reporting.latest(run)) == {"acme/ci/release", "acme/ci/release/build"}
    assert all(r.path.startswith("/api/v3/repos/") for r in fake_github.requests("POST"))
    assert REPO in fake_github.requests("POST")[0].path


def test_a_step_reported_without_words_says_how_long_it_ran(reporting):
    run = reporting.new_run(steps=("build",))
    reporting.enqueue("report_step", run["run_id"], "build", "pending", "", 10_000)
    reporting.drain()
    reporting.enqueue("report_step", run["run_id"], "build", "failure", "", 75_000)
    reporting.drain()

    assert reporting.latest(run)["stepline/ci/build"]["description"] == "failed after 1m 05s"


@pytest.mark.parametrize(
    ("status", "message", "headers", "delay"),
    [
        (
            403,
            "API rate limit exceeded for installation",
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1030"},
            31.0,
        ),
        (
            403,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            {},
            60.0,
        ),
        (429, "Too many requests", {"Retry-After": "7"}, 7.0),
        (403, "Resource not accessible by integration", {}, None),
        (502, "Server Error", {"Retry-After": "7"}, None),
    ],
)
def test_rate_limit_answers_give_the_wait_github_asks_for(status, message, headers, delay):
    from github import GithubException

    from service.publisher import rate_limit_delay

    exc = GithubException(status, {"message": message}, headers, message)
    assert rate_limit_delay(exc, now=1000.0) == delay


STEP_REPORTS = [
    ("build", "pending", 1_000),
    ("build", "success", 2_000),
    ("test", "pending", 3_000),
    ("test", "failure", 4_000),
    ("test", "pending", 5_000),  # a Retry ran it again: never shown over the failure
    ("test", "success", 6_000),
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(STEP_REPORTS))), fail_at=st.integers(0, 8), batch=st.integers(1, 6))
def test_any_order_of_reports_and_failures_ends_with_the_newest_states(reporting, order, fail_at, batch):
    reporting.redis.flushdb()
    reporting.github.reset()
    reporting.github.add_repo(REPO)
    run = reporting.new_run(steps=("build", "test"))
    for count, index in enumerate(order, 1):
        step, state, at_ms = STEP_REPORTS[index]
        if count == fail_at:
            reporting.github.fail_next(1, status=502)
        reporting.enqueue("report_step", run["run_id"], step, state, f"{state} at {at_ms}", at_ms)
        if count % batch == 0:
            reporting.drain()
    reporting.drain()

    latest = reporting.latest(run)
    assert latest["stepline/ci/build"]["description"] == "success at 2000"
    assert latest["stepline/ci/test"]["description"] == "success at 6000"
    for context in ("stepline/ci/build", "stepline/ci/test"):
        assert never_pending_after_terminal(reporting.states(run, context))


def test_a_cancel_also_closes_steps_named_at_run_time(reporting):
    run = reporting.new_run(steps=())  # a Map's `step.$`: no step name is known before the run
    rid = run["run_id"]
    reporting.enqueue("report_run_started", rid)
    reporting.enqueue("report_step", rid, "test-py3.12", "pending", "running", 1_000)
    reporting.enqueue("report_step", rid, "test-py3.11", "success", "passed in 9s", 1_500)
    reporting.drain()
    reporting.index.update(rid, status="ABORTED", finished_at=2.0)
    reporting.enqueue("report_run_cancelled", rid, "cancelled by ada")
    reporting.drain()

    assert {c: s["state"] for c, s in reporting.latest(run).items()} == {
        "stepline/ci": "error",
        "stepline/ci/test-py3.11": "success",
        "stepline/ci/test-py3.12": "error",
    }


def test_an_unreachable_github_is_retried_then_recorded(service_config, redis_client, fake_github):
    from tests.harness.ports import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused, a requests error
    config = reporting_config(service_config, github_api_url=nowhere, status_retry_intervals=(0, 0))
    reporting = Reporting(config, redis_client, fake_github)
    run = reporting.new_run(steps=())
    reporting.enqueue("report_run_started", run["run_id"])
    reporting.drain()

    errors = reporting.ledger.errors(run["run_id"])
    assert (
        len(errors) == 1
        and "ConnectionError" in errors[0]["error"]
        and "no retries left" in errors[0]["error"]
    )
    assert reporting.statuses.failed_job_registry.count == 1


def test_a_deferral_is_due_no_sooner_than_the_pause_ends(reporting):
    """rq rounds scheduled times down to whole seconds: a deferral must not come due inside the pause."""
    run = reporting.new_run(steps=("build",))
    pause_end = time.time() + 5  # still paused when the job runs, however slow the machine
    reporting.redis.set(PAUSE_KEY, pause_end, ex=30)
    reporting.enqueue("report_step", run["run_id"], "build", "success", "passed", 1_000)
    BurstWorker(reporting.queues, connection=reporting.redis).work(burst=True, logging_level="WARNING")
    registry = reporting.statuses.scheduled_job_registry
    due = [registry.get_scheduled_time(job_id).timestamp() for job_id in registry.get_job_ids()]
    assert due and all(at >= pause_end for at in due), (due, pause_end)


def test_a_started_run_says_what_each_step_waits_for(reporting, redis_client):
    run = reporting.new_run(
        steps=("build", "deploy", "approve", "lint"),
        step_pools={"build": "build", "deploy": "deploy", "approve": "approval"},
        trusted=True,
    )
    record_serving(redis_client, "host/1", ["stepline-build"])  # a worker serves build, none deploy
    reporting.enqueue("report_run_started", run["run_id"])
    reporting.drain()
    latest = reporting.latest(run)
    assert latest["stepline/ci/build"]["description"] == "waiting for a worker (pool build)"
    assert latest["stepline/ci/deploy"]["description"] == "no worker serves pool deploy"
    assert latest["stepline/ci/approve"]["description"] == "waiting for approval"
    assert latest["stepline/ci/lint"]["description"] == "waiting for a worker"  # a run recorded before pools
