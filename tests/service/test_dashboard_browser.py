"""The dashboard in real headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

The web process runs as the Procfile runs it (`python -m service` on a free port) over the test Redis and
the real engine. Screenshots are saved under data/artifacts/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from service.approvals import ApprovalPoller, ApprovalStore
from service.run_index import RunIndex
from statemachines.deploy import ensure_pipeline
from statemachines.worker_presence import record_serving
from tests.harness.processes import PROJECT, start_web
from tests.service.dashboard_seed import HOSTILE_MESSAGE, PASSWORD, seed_log, seed_run

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = PROJECT / "data" / "artifacts" / "screenshots"
ROLE = "arn:aws:iam::123456789012:role/stepline"
CHROME_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    "--window-size=1400,1800",
)  # fmt: skip


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium and chromedriver are not installed (scripts/ensure-chromium installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


@pytest.fixture
def web(processes: Callable[..., Any], redis_url: str, sfn_engine: str) -> str:
    """The web process with one user (alice); its base URL."""
    from werkzeug.security import generate_password_hash

    return start_web(
        processes, redis_url, SFN_ENDPOINT_URL=sfn_engine, SECRET_KEY="browser-test-secret", LOG_LEVEL="WARNING",
        STEPLINE_USERS="alice:" + generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
    )  # fmt: skip


@pytest.fixture
def sfn(sfn_engine: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(inject_host_prefix=False, read_timeout=70)
    return boto3.client(
        "stepfunctions", endpoint_url=sfn_engine, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test", config=config,
    )  # fmt: skip


def wait(driver: Any, check: Callable[[Any], Any], timeout: float = 30, what: str = "") -> Any:
    try:
        # parts of the page are swapped while it is live, and a navigation replaces the document: an
        # element found a moment ago may be gone (stale, or Chrome's "does not belong to the document")
        waiting = WebDriverWait(
            driver,
            timeout,
            poll_frequency=0.1,
            ignored_exceptions=[StaleElementReferenceException, WebDriverException],
        )
        return waiting.until(check)
    except TimeoutException:
        screenshot(driver, "timeout")
        raise AssertionError(f"timed out waiting for {what}") from None


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def start_execution(
    sfn: Any, redis_client: Any, name: str, states: dict[str, Any], **run: Any
) -> dict[str, Any]:
    definition = json.dumps({"StartAt": next(iter(states)), "States": states})
    machine = sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)["stateMachineArn"]
    record = seed_run(redis_client, status="RUNNING", finished_at=None, **run)
    arn = sfn.start_execution(
        stateMachineArn=machine, input=json.dumps({**record["execution_input"], **run.get("input", {})})
    )
    return RunIndex(redis_client).update(
        record["run_id"], state_machine_arn=machine, execution_arn=arn["executionArn"]
    )  # type: ignore[return-value]


def next_task(sfn: Any, activity: str) -> dict[str, Any]:
    for _ in range(20):
        task = sfn.get_activity_task(activityArn=activity, workerName="browser-test")
        if task.get("taskToken"):
            return task
    raise AssertionError("no activity task")


def test_runs_page_lists_a_finished_and_a_running_run_and_updates_in_place(web, browser, redis_client):
    finished = seed_run(
        redis_client, status="SUCCEEDED", message="Finished change", created_at=time.time() - 5
    )
    running = seed_run(
        redis_client, status="RUNNING", finished_at=None, message=HOSTILE_MESSAGE, author="Grace"
    )
    browser.get(web + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#run-rows tr.run")
    assert [row.get_attribute("data-run-id") for row in rows] == [running["run_id"], finished["run_id"]]
    assert "running" in rows[0].get_attribute("class") and "succeeded" in rows[1].get_attribute("class")
    assert '<script>alert("pwned")</script>' in rows[0].text  # shown as text, never run
    assert browser.execute_script("return window.pwned === undefined && document.scripts.length") == 1
    browser.execute_script("window.stillTheSamePage = true")
    RunIndex(redis_client).update(running["run_id"], status="FAILED", finished_at=time.time())
    wait(
        browser,
        lambda d: (
            "failed"
            in d.find_element(By.CSS_SELECTOR, f'tr[data-run-id="{running["run_id"]}"]').get_attribute(
                "class"
            )
        ),
        what="the row to turn failed",
    )
    assert browser.execute_script("return window.stillTheSamePage") is True  # updated without a reload
    screenshot(browser, "runs-page")


def test_run_page_draws_the_graph_coloured_and_follows_the_live_log(web, browser, redis_client, sfn):
    activity = sfn.create_activity(name="stepline-build")["activityArn"]
    task = {
        "Type": "Task",
        "Resource": activity,
        "Parameters": {"step": "build", "run.$": "$$.Execution.Input"},
    }
    states = {
        "Route": {"Type": "Choice", "Choices": [{"Variable": "$.branch", "StringEquals": "main", "Next": "Checks"}], "Default": "Docs"},
        "Docs": {"Type": "Pass", "End": True},
        "Checks": {"Type": "Parallel", "Next": "Pause", "Branches": [
            {"StartAt": "Build", "States": {"Build": {**task, "End": True}}},
            {"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "End": True,
                "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}}}}},
        ]},
        "Pause": {"Type": "Wait", "Seconds": 0, "Next": "Test"},
        "Test": {**task, "Parameters": {"step": "test", "run.$": "$$.Execution.Input"}, "End": True},
    }  # fmt: skip
    run = start_execution(
        sfn,
        redis_client,
        "browser-graph",
        states,
        input={"branch": "main", "items": [1, 2, 3]},
        steps=["build", "test"],
    )
    sfn.send_task_success(taskToken=next_task(sfn, activity)["taskToken"], output="{}")
    sfn.send_task_failure(
        taskToken=next_task(sfn, activity)["taskToken"], error="Stepline.StepFailed", cause="2 tests failed"
    )
    seed_log(redis_client, run["run_id"], "build", ["\x1b[32mcompiled\x1b[0m"])
    writer = seed_log(
        redis_client,
        run["run_id"],
        "test",
        ["\x1b[1;31mFAIL\x1b[0m test_widget <b>not bold</b>"],
        finish=None,
    )
    deadline = time.monotonic() + 10
    while (
        sfn.describe_execution(executionArn=run["execution_arn"])["status"] == "RUNNING"
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    RunIndex(redis_client).update(run["run_id"], status="FAILED", finished_at=time.time())

    browser.get(f"{web}/runs/{run['run_id']}")
    wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#graph [data-state="Test"].st-failed'),
        what="the failed state",
    )
    status = {
        el.get_attribute("data-state"): el.get_attribute("data-status")
        for el in browser.find_elements(By.CSS_SELECTOR, "#graph g.g-node[data-status]")
    }
    assert (
        status["Test"] == "failed" and status["Checks/0/Build"] == "succeeded" and status["Docs"] == "skipped"
    )
    assert status["Checks/1/Each/Item"] == "succeeded" and status["Pause"] == "succeeded"
    fill = browser.execute_script(
        "return getComputedStyle(document.querySelector('#graph [data-state=\"Test\"] rect')).fill"
    )
    assert fill == "rgb(255, 235, 233)"  # the failed colour
    labels = [el.text for el in browser.find_elements(By.CSS_SELECTOR, "#graph .g-edge-label text")]
    assert '$.branch == "main"' in labels and "Default" in labels
    assert len(browser.find_elements(By.CSS_SELECTOR, "#graph g.g-cluster")) == 2  # Parallel and Map

    browser.find_element(By.CSS_SELECTOR, '#graph [data-state="Test"]').click()
    detail = wait(browser, lambda d: d.find_element(By.ID, "state-detail").text, what="the state's details")
    assert "Stepline.StepFailed" in detail and "2 tests failed" in detail

    wait(browser, lambda d: "FAIL" in d.find_element(By.ID, "log").text, what="the test step's log")
    red = browser.find_element(By.XPATH, "//pre[@id='log']//span[contains(., 'FAIL') and @style]")
    assert (
        "color" in red.get_attribute("style") and "<b>not bold</b>" in browser.find_element(By.ID, "log").text
    )
    for number in range(3):
        writer.write_line(f"live line {number}")
        writer.flush()
    wait(browser, lambda d: "live line 2" in d.find_element(By.ID, "log").text, what="new log lines")
    assert "ExecutionFailed" in browser.find_element(By.ID, "history-rows").text
    screenshot(browser, "run-page")
    for number in range(6000):  # a long log: the page keeps the newest lines and links to the whole log
        writer.write_line(f"bulk line {number}")
    writer.finish("failed", 1)
    wait(
        browser, lambda d: "bulk line 5999" in d.find_element(By.ID, "log").text, what="the end of a long log"
    )
    kept = browser.execute_script("return document.querySelectorAll('#log .line').length")
    assert kept == 5000 and browser.find_element(By.ID, "log-dropped").is_displayed()
    assert "finished: failed (exit 1)" in browser.find_element(By.ID, "log-status").text


def sign_in(browser: Any, web: str) -> None:
    browser.get(web + "/login")
    fill_sign_in(browser)


def fill_sign_in(browser: Any) -> None:
    for name in ("username", "password"):  # a form shown again (Back) may keep what was typed
        browser.find_element(By.NAME, name).clear()
    browser.find_element(By.NAME, "username").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, ".login button[type=submit]").click()
    wait(browser, lambda d: "alice" in d.find_element(By.CSS_SELECTOR, ".who").text, what="the sign-in")


def test_approve_and_cancel_through_the_ui_and_anonymous_cannot_act(web, browser, redis_client, sfn):
    approval = sfn.create_activity(name="stepline-approval")["activityArn"]
    build = sfn.create_activity(name="stepline-build")["activityArn"]
    gate = {
        "Approve": {"Type": "Task", "Resource": approval, "Parameters": {"step": "approve", "message": "Ship it?", "run.$": "$$.Execution.Input"}, "Next": "Ship"},
        "Ship": {"Type": "Pass", "End": True},
    }  # fmt: skip
    gated = start_execution(sfn, redis_client, "browser-approval", gate)
    slow = start_execution(
        sfn, redis_client, "browser-cancel", {"Build": {"Type": "Task", "Resource": build, "End": True}}
    )
    poller = ApprovalPoller(sfn, ApprovalStore(redis_client), "stepline-approval", threading.Event())
    poller.activity_arn = approval
    assert poller.poll_once() is not None

    browser.get(f"{web}/runs/{gated['run_id']}")
    assert "Ship it?" in browser.find_element(By.CSS_SELECTOR, ".approvals").text
    assert not browser.find_elements(By.CSS_SELECTOR, ".approvals button")  # anonymous: nothing to press
    assert not browser.find_elements(By.ID, "action-cancel")
    refused = browser.execute_script(
        "return fetch(arguments[0], {method: 'POST'}).then(r => r.status)",
        f"/api/runs/{slow['run_id']}/cancel",
    )
    assert refused == 401

    sign_in(browser, web)
    browser.get(f"{web}/runs/{gated['run_id']}")
    wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#graph [data-state="Approve"].st-running'),
        what="a running approval",
    )
    screenshot(browser, "approval")
    browser.find_element(By.CSS_SELECTOR, ".approvals button.ok").click()
    wait(browser, lambda d: "Approved." in d.page_source, what="the approval")
    # the page stays live while the run is open: the graph turns the approval step green by itself
    wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#graph [data-state="Ship"].st-succeeded'),
        what="Ship to turn green",
    )
    assert (
        browser.find_element(By.CSS_SELECTOR, '#graph [data-state="Approve"]').get_attribute("data-status")
        == "succeeded"
    )
    deadline = time.monotonic() + 10
    while (
        sfn.describe_execution(executionArn=gated["execution_arn"])["status"] == "RUNNING"
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert sfn.describe_execution(executionArn=gated["execution_arn"])["status"] == "SUCCEEDED"

    browser.get(f"{web}/runs/{slow['run_id']}")
    browser.find_element(By.ID, "action-cancel").click()
    wait(browser, lambda d: "Cancelled the run." in d.page_source, what="the cancel")
    assert sfn.describe_execution(executionArn=slow["execution_arn"])["status"] == "ABORTED"
    assert "cancel" in browser.find_element(By.CSS_SELECTOR, ".audit").text
    assert requests.get(f"{web}/api/runs/{slow['run_id']}", timeout=5).json()["run"]["status"] == "ABORTED"


def test_sign_out_then_sign_in_again_on_the_form_back_leads_to(web, browser):
    sign_in(browser, web)
    browser.find_element(By.CSS_SELECTOR, ".who button").click()  # Sign out
    wait(browser, lambda d: "Sign in" in d.find_element(By.CSS_SELECTOR, ".who").text, what="the sign-out")
    browser.back()
    browser.back()  # the sign-in form, from before signing in and out
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".login form"), what="the sign-in form")
    fill_sign_in(browser)
    assert "CSRF" not in browser.find_element(By.TAG_NAME, "body").text
    browser.find_element(By.CSS_SELECTOR, ".who button").click()  # and out and in once more, by the links
    wait(browser, lambda d: "Sign in" in d.find_element(By.CSS_SELECTOR, ".who").text, what="the sign-out")
    browser.find_element(By.LINK_TEXT, "Sign in").click()
    fill_sign_in(browser)


def test_a_next_and_a_catch_to_the_same_state_are_drawn_as_one_straight_edge(web, browser, redis_client, sfn):
    definition = json.loads((PROJECT / "statemachines" / "pipelines" / "parallel.asl.json").read_text())
    machine = ensure_pipeline(sfn, definition, "parallel")
    record = seed_run(redis_client, status="RUNNING", finished_at=None, pipeline="parallel")
    started = sfn.start_execution(stateMachineArn=machine, input=json.dumps(record["execution_input"]))
    RunIndex(redis_client).update(
        record["run_id"], state_machine_arn=machine, execution_arn=started["executionArn"]
    )

    browser.get(f"{web}/runs/{record['run_id']}")
    wait(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#graph [data-state="ChecksFailed"]'),
        what="the graph",
    )
    # Cleanup has `Next: ChecksFailed` and a Catch to ChecksFailed: one edge carrying both labels
    edges = browser.find_elements(By.CSS_SELECTOR, '#graph g.g-edge[data-source="Cleanup"]')
    assert [edge.get_attribute("data-target") for edge in edges] == ["ChecksFailed"]
    assert edges[0].find_element(By.CSS_SELECTOR, ".g-edge-label text").text == "Next · Catch: States.ALL"
    box = browser.execute_script(
        """const rect = (s) => document.querySelector(`#graph [data-state="${s}"] rect`).getBBox();
        const a = rect("Cleanup"), b = rect("ChecksFailed");
        const path = document.querySelector('#graph g.g-edge[data-source="Cleanup"] path').getBBox();
        return {left: Math.min(a.x, b.x), right: Math.max(a.x + a.width, b.x + b.width),
                pathLeft: path.x, pathRight: path.x + path.width, top: a.y + a.height, bottom: b.y,
                pathTop: path.y, pathBottom: path.y + path.height};"""
    )
    # no detour: the path stays between the two boxes, straight down from one to the other
    assert box["left"] <= box["pathLeft"] and box["pathRight"] <= box["right"], box
    assert box["top"] - 1 <= box["pathTop"] and box["pathBottom"] <= box["bottom"] + 1, box
    screenshot(browser, "parallel-pipeline-graph")


def test_a_step_no_worker_serves_is_drawn_as_such_not_as_running(web, browser, redis_client, sfn):
    build = sfn.create_activity(name="stepline-build")["activityArn"]
    deploy = sfn.create_activity(name="stepline-deploy")["activityArn"]
    record_serving(redis_client, "host/1", ["stepline-build"])  # a worker serves build; none serves deploy
    record = start_execution(
        sfn, redis_client, "waits", {
            "Both": {"Type": "Parallel", "End": True, "Branches": [
                {"StartAt": "Build", "States": {"Build": {"Type": "Task", "Resource": build, "End": True}}},
                {"StartAt": "Deploy", "States": {"Deploy": {"Type": "Task", "Resource": deploy, "End": True}}},
            ]},
        },
    )  # fmt: skip
    browser.get(f"{web}/runs/{record['run_id']}")

    def status_of(state: str) -> str | None:
        found = browser.find_elements(By.CSS_SELECTOR, f'.g-node[data-state="{state}"]')
        return found[0].get_attribute("data-status") if found else None

    wait(
        browser, lambda d: status_of("Both/1/Deploy") == "no_worker", what="the deploy step without a worker"
    )
    assert status_of("Both/0/Build") == "waiting"
    browser.find_element(By.CSS_SELECTOR, '.g-node[data-state="Both/1/Deploy"]').click()
    wait(
        browser,
        lambda d: "no worker serves pool deploy" in d.find_element(By.ID, "state-detail").text,
        what="why",
    )
    legend = browser.find_element(By.CSS_SELECTOR, ".legend").text
    assert "waiting" in legend and "no worker" in legend
    screenshot(browser, "waiting-and-no-worker")


def test_the_steps_table_tells_not_reached_from_waiting_and_no_worker(web, browser, redis_client, sfn):
    build = sfn.create_activity(name="stepline-build")["activityArn"]
    deploy = sfn.create_activity(name="stepline-deploy")["activityArn"]
    record_serving(redis_client, "host/1", ["stepline-build"])  # nobody serves deploy

    def task(step: str, resource: str, **more: Any) -> dict[str, Any]:
        return {"Type": "Task", "Resource": resource, "Parameters": {"step": step}, **more}

    record = start_execution(
        sfn, redis_client, "steps-waiting", {
            "Both": {"Type": "Parallel", "Next": "Publish", "Branches": [
                {"StartAt": "Build", "States": {"Build": task("build", build, End=True)}},
                {"StartAt": "Deploy", "States": {"Deploy": task("deploy", deploy, End=True)}},
            ]},
            "Publish": task("publish", build, End=True),
        },
        steps=["build", "deploy", "publish"],
    )  # fmt: skip
    browser.get(f"{web}/runs/{record['run_id']}")

    def row(step: str) -> str:
        return browser.find_element(By.ID, f"step-{step}").text

    wait(browser, lambda d: "no worker" in row("deploy"), what="the deploy row without a worker")
    assert "no worker serves pool deploy" in row("deploy")
    assert "waiting" in row("build") and "waiting for a worker (pool build)" in row("build")
    assert "not reached" in row("publish")
    next_task(sfn, build)  # a worker takes build: it is starting (checking out) until its log begins
    wait(browser, lambda d: "starting" in row("build"), what="the build row once a worker took it")
    screenshot(browser, "steps-waiting-no-worker-not-reached")


@pytest.mark.parametrize("width", [1280, 1400])
def test_the_runs_list_fits_the_window(web, browser, redis_client, width):
    for number in range(3):
        seed_run(
            redis_client,
            status=["RUNNING", "FAILED", "SUCCEEDED"][number],
            finished_at=None if number == 0 else time.time(),
            message="A long commit message that goes on and on " * 4,
            repository="an-organisation-with-a-long-name/a-repository-with-a-long-name",
            branch="feature/a-branch-with-a-rather-long-name-" + "x" * 30,
        )
    browser.set_window_size(width, 900)
    browser.get(web + "/")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#run-rows tr.run"), what="the runs")
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    screenshot(browser, f"runs-{width}")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
