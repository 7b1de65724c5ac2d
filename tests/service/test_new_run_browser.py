"""The New run form in real headless Chromium, against the web process as the Procfile runs it.

The whole stack runs (engine, jobs process, build worker, web process, the fake GitHub): alice signs in,
opens New run, names a repository and branch, sees the commit and the pipeline's input with its default,
changes it and starts the run, which runs its step with her value and shows "started manually by alice".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from tests.harness.processes import start_web
from tests.service.dashboard_seed import PASSWORD
from tests.service.run_stack import Stack
from tests.service.test_dashboard_browser import browser, screenshot, sign_in, wait  # noqa: F401 - fixture
from tests.service.test_manual_runs_e2e import PIPELINE

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def stack_web(
    run_stack: Stack, processes: Any, redis_url: str, fake_github: Any, make_repo: Any
) -> tuple[str, str]:
    """(web URL, sha of main) with octo/app a real repository carrying the inputs pipeline."""
    repo = make_repo("app")
    sha = repo.commit({".stepline/pipeline.asl.json": json.dumps(PIPELINE)}, "add the pipeline")
    repo.push("main")
    fake_github.add_repo("octo/app", clone_url=repo.url)
    url = start_web(
        processes, redis_url, SFN_ENDPOINT_URL=run_stack.jobs.env["SFN_ENDPOINT_URL"], LOG_LEVEL="WARNING",
        SECRET_KEY="browser-test-secret", GITHUB_API_URL=fake_github.url, GITHUB_TOKEN="test-token",
        STEPLINE_ALLOW_LOCAL_REPOSITORIES="true",
        STEPLINE_USERS="alice:" + generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
    )  # fmt: skip
    return url, sha


def test_alice_starts_a_run_with_an_input_from_the_form(stack_web, browser, run_stack: Stack) -> None:  # noqa: F811
    web, sha = stack_web
    sign_in(browser, web)
    browser.find_element(By.ID, "nav-new-run").click()
    wait(browser, lambda d: d.find_elements(By.ID, "new-run-repository"), what="the New run form")
    browser.find_element(By.ID, "new-run-repository").send_keys("octo/app")
    browser.find_element(By.ID, "new-run-ref").send_keys("main")
    browser.find_element(By.ID, "new-run-next").click()
    wait(browser, lambda d: d.find_elements(By.ID, "new-run-confirm"), what="the resolved commit")
    assert browser.find_element(By.ID, "new-run-sha").text == sha
    field = browser.find_element(By.ID, "input-environment")
    assert field.get_attribute("value") == "staging"  # the pipeline's default
    field.clear()
    field.send_keys("qa")
    screenshot(browser, "new-run-form")
    browser.find_element(By.ID, "new-run-start").click()
    wait(browser, lambda d: "/runs/" in d.current_url and "/new" not in d.current_url, what="the run page")
    run_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
    run = run_stack.ended(run_id)
    assert run["status"] == "SUCCEEDED" and run["inputs"] == {"environment": "qa"}
    lines, _, _ = run_stack.logs.read(run_id, "show", None, "0", 200)
    assert any("deploying to qa" in line for line in lines)
    browser.get(f"{web}/runs/{run_id}")
    audit = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".audit").text, what="the audit trail")
    assert "started manually by alice" in audit
    screenshot(browser, "new-run-started")


def test_the_form_answers_a_hostile_ref_with_its_reason(stack_web, browser) -> None:  # noqa: F811
    web, _ = stack_web
    sign_in(browser, web)
    browser.get(f"{web}/runs/new")
    browser.find_element(By.ID, "new-run-repository").send_keys("octo/app")
    browser.find_element(By.ID, "new-run-ref").send_keys("$(rm -rf ~)")
    browser.find_element(By.ID, "new-run-next").click()
    error = wait(browser, lambda d: d.find_elements(By.ID, "new-run-error"), what="the error")[0].text
    assert "is not a branch or tag name" in error
    assert not browser.find_elements(By.ID, "new-run-start")
