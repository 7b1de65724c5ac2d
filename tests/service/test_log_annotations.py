"""A step's workflow commands on the dashboard: the log API names them and the log view highlights them."""

from __future__ import annotations

import pytest

from service.app import create_app
from tests.service.dashboard_seed import seed_log, seed_run
from tests.service.test_dashboard_browser import (  # noqa: F401 - fixtures
    By,
    browser,
    next_task,
    screenshot,
    sfn,
    start_execution,
    wait,
    web,
)

LINES = [
    "compiling",
    "::error file=app.py,line=3,col=5::name 'x' is not defined",
    "::warning file=app.py,line=9::unused import",
    "::notice::3 tests skipped",
    "done",
]


@pytest.fixture
def client(service_config):
    return create_app(service_config).test_client()


def test_the_log_api_names_the_annotations_among_its_lines(client, redis_client):
    run = seed_run(redis_client)
    seed_log(redis_client, run["run_id"], "build", LINES)
    body = client.get(f"/api/runs/{run['run_id']}/logs/build").get_json()

    assert body["lines"] == LINES
    assert [(a["index"], a["level"], a["file"], a["line"]) for a in body["annotations"]] == [
        (1, "error", "app.py", 3), (2, "warning", "app.py", 9), (3, "notice", "", None),
    ]  # fmt: skip


def test_the_log_view_highlights_annotations(web, browser, redis_client, sfn):  # noqa: F811
    activity = sfn.create_activity(name="stepline-build")["activityArn"]
    states = {"Build": {"Type": "Task", "Resource": activity, "Parameters": {"step": "build"}, "End": True}}
    run = start_execution(sfn, redis_client, "annotated-log", states, steps=["build"])
    sfn.send_task_failure(taskToken=next_task(sfn, activity)["taskToken"], error="Stepline.StepFailed")
    seed_log(redis_client, run["run_id"], "build", LINES, finish="failed")

    browser.get(f"{web}/runs/{run['run_id']}")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#graph [data-state="Build"]'), what="the graph")
    browser.find_element(By.CSS_SELECTOR, '#graph [data-state="Build"]').click()
    wait(browser, lambda d: "done" in d.find_element(By.ID, "log").text, what="the build step's log")

    marked = browser.find_elements(By.CSS_SELECTOR, "#log .line.annotation")
    assert [m.get_attribute("class").split()[-1] for m in marked] == [
        "annotation-error", "annotation-warning", "annotation-notice",
    ]  # fmt: skip
    assert marked[0].get_attribute("title") == "error app.py:3"
    assert (
        browser.execute_script(
            "return getComputedStyle(document.querySelector('#log .annotation-error')).borderLeftStyle"
        )
        == "solid"
    )
    screenshot(browser, "log-annotations")
