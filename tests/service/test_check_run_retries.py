"""A check-run create GitHub served but whose answer was lost (a 502 from a proxy, a read timeout): the retried
job adopts the check run it made rather than opening a second one left in progress for ever."""

from __future__ import annotations

from service.job_context import job_context
from service.reconcile import finalise_run
from statemachines.step_logs import StepLogWriter
from tests.service.reporting_support import REPO, History


def test_a_create_whose_answer_was_lost_makes_no_second_check_run(checks, fake_github):
    run = checks.new_run(steps=("build",), installation_id=42)
    fake_github.lose_next_answer("POST", "/check-runs")
    fake_github.lose_next_answer("POST", "/check-runs")
    checks.enqueue("report_run_started", run["run_id"])
    checks.drain(timeout=60)
    history = History()
    history.ran("build", "succeeded")
    finalise_run(job_context(), run, history.describe("SUCCEEDED"), history.events)
    checks.drain(timeout=60)

    made = fake_github.checks.all_runs(REPO, run["sha"])
    assert sorted(r["name"] for r in made) == ["stepline/ci", "stepline/ci/build"]
    assert {r["status"] for r in made} == {"completed"}


def test_a_newer_runs_lost_create_adopts_its_own_check_run_not_the_older_runs(checks, fake_github):
    first = checks.new_run(steps=("build",), installation_id=42)
    checks.enqueue("report_run_started", first["run_id"])
    checks.drain(timeout=60)
    second = checks.new_run(steps=("build",), installation_id=42, sha=first["sha"])
    fake_github.lose_next_answer("POST", "/check-runs")
    checks.enqueue("report_run_started", second["run_id"])
    checks.drain(timeout=60)

    made = fake_github.checks.all_runs(REPO, first["sha"])
    assert len(made) == 4  # two per run, none twice
    open_ones = [r["external_id"] for r in made if r["status"] != "completed"]
    assert sorted(open_ones) == sorted([f"{second['run_id']}:", f"{second['run_id']}:build"])


def test_an_annotation_batch_whose_answer_was_lost_is_not_sent_twice(checks, fake_github, redis_client):
    run = checks.new_run(steps=("build",), installation_id=42)
    checks.enqueue("report_run_started", run["run_id"])
    checks.drain(timeout=60)
    writer = StepLogWriter.start(redis_client, run["run_id"], "build", worker="w")
    for n in range(1, 121):
        writer.write_line(f"::error file=src/app.py,line={n}::undefined name x{n}")
    writer.finish("failed", 1)
    # the completion, then the first batch of 50: GitHub takes that batch, the proxy loses its answer
    fake_github.lose_next_answer("PATCH", "/check-runs/", skip=1)
    checks.enqueue("report_step", run["run_id"], "build", "failure", "", 5_000)
    checks.drain(timeout=60)

    build = fake_github.checks.runs(REPO, run["sha"])["stepline/ci/build"]
    lines = [a["start_line"] for a in fake_github.checks.annotations(build["id"])]
    assert sorted(lines) == list(range(1, 121))
