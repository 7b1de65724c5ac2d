"""Jobs queued by an older release still run: rq stores a job's function as its dotted path in Redis."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.utils import import_attribute

from statemachines import queues
from tests.service.reporting_support import Reporting, reporting_config

# Written out, not read from statemachines.queues: these strings may wait in a Redis across an upgrade.
RELEASED_QUEUES = ("runs", "statuses", "default")
RELEASED_JOB_PATHS = (
    "service.runs.start_run",
    "service.runs.skip_run",
    "service.cancellations.cancel_runs",
    "service.check_requests.handle_check_request",
    "service.reporter.report_step",
    "service.reporter.report_run_started",
    "service.reporter.report_run_skipped",
    "service.reporter.report_run_cancelled",
    "service.reporter.report_run_invalid",
    "service.reconcile.reconcile_run",
    "service.reconcile.sweep_open_runs",
    "service.concurrency.release_run",
    "service.step_concurrency.supersede_for_step_group",
    "service.publisher.publish_status",
    "service.repository_schedules.refresh_repository",
)


@pytest.fixture
def reporting(service_config, redis_client, fake_github):
    return Reporting(reporting_config(service_config), redis_client, fake_github)


def test_the_queues_and_job_paths_are_the_released_ones():
    assert queues.QUEUE_NAMES == RELEASED_QUEUES
    assert sorted(queues.JOB_PATHS) == sorted(RELEASED_JOB_PATHS)


@pytest.mark.parametrize("path", RELEASED_JOB_PATHS)
def test_every_released_job_path_still_names_a_function(path):
    assert callable(import_attribute(path))  # what rq's Job.func does before it runs a job


def test_a_job_enqueued_by_its_released_path_string_runs(reporting, redis_client):
    run = reporting.new_run(steps=("build",))
    statuses = Queue("statuses", connection=redis_client)
    started = statuses.enqueue("service.reporter.report_run_started", run["run_id"])
    step = statuses.enqueue(
        "service.reporter.report_step", run["run_id"], "build", "success", "passed", 2_000
    )
    reporting.drain()

    assert started.get_status() == "finished" and step.get_status() == "finished"
    assert reporting.states(run, "stepline/ci/build") == ["success"]
