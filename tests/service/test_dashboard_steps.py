"""The run page's Steps table once a run has ended: steps that never ran say "skipped" or "not run".

The run is a real execution on the engine, finished by the test as its build worker, then closed by the
reconciler (rq jobs drained in-process); the dashboard reads what the reconciler left.
"""

from __future__ import annotations

import re

import pytest

from service.app import create_app
from tests.service.dashboard_seed import seed_run
from tests.service.reporting_support import Reporting, reporting_config
from tests.service.test_reconcile_engine import Pipeline


@pytest.fixture
def reporting(service_config, redis_client, fake_github, sfn_engine):
    config = reporting_config(service_config, sfn_endpoint_url=sfn_engine)
    return Reporting(config, redis_client, fake_github)


def step_cells(page: str) -> dict[str, str]:
    """Each step row's status words, as the page shows them."""
    rows = re.findall(
        r'<tr id="step-([^"]+)" class="step ([^"]*)".*?class="step-status"[^>]*>([^<]*)<', page, re.S
    )
    return {step: words for step, _, words in rows}


def deploy_step(reporting, pipeline) -> tuple[dict, str]:
    """The deploy step as the run API shows it, and the run page's HTML."""
    client = create_app(reporting.config).test_client()
    body = client.get(f"/api/runs/{pipeline.run['run_id']}").get_json()
    deploy = next(step for step in body["steps"] if step["step"] == "deploy")
    return deploy, client.get(f"/runs/{pipeline.run['run_id']}").get_data(as_text=True)


def test_a_step_the_choice_skipped_reads_skipped_once_the_run_succeeded(reporting):
    pipeline = Pipeline(reporting, branch="feature/x")
    reporting.enqueue("report_run_started", pipeline.run["run_id"])
    pipeline.work_one()
    assert pipeline.wait_closed()["status"] == "SUCCEEDED"

    deploy, page = deploy_step(reporting, pipeline)
    assert deploy["status"] == "skipped" and deploy["detail"] == "skipped: not on this run's path"
    assert step_cells(page)["deploy"] == "skipped" and "st-skipped" in page


def test_a_step_never_reached_after_a_failure_reads_not_run(reporting):
    pipeline = Pipeline(reporting, branch="main")
    reporting.enqueue("report_run_started", pipeline.run["run_id"])
    pipeline.work_one("failure")
    assert pipeline.wait_closed()["status"] == "FAILED"

    deploy, page = deploy_step(reporting, pipeline)
    assert deploy["status"] == "not run" and deploy["detail"] == "not run: build failed"
    assert step_cells(page)["deploy"] == "not run" and "(build failed)" in page


def test_steps_of_an_active_run_not_reached_yet_and_without_statuses_the_run_status_decides(
    client, redis_client
):
    active = seed_run(redis_client, status="RUNNING", finished_at=None)  # no execution yet: nothing scheduled
    assert step_cells(client.get(f"/runs/{active['run_id']}").get_data(as_text=True)) == {
        "build": "not reached",
        "test": "not reached",
    }
    passed = seed_run(redis_client, status="SUCCEEDED")  # no statuses recorded: the reconciler's rule
    failed = seed_run(redis_client, status="FAILED")
    assert set(step_cells(client.get(f"/runs/{passed['run_id']}").get_data(as_text=True)).values()) == {
        "skipped"
    }
    assert set(step_cells(client.get(f"/runs/{failed['run_id']}").get_data(as_text=True)).values()) == {
        "not run"
    }
