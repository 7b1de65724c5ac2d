"""GitHub's buttons pressed by someone who should not move Stepline: another repository's admin naming our run,
a reader, a sender GitHub cannot vouch for; the real job against real Redis and the fake GitHub."""

from __future__ import annotations

import dataclasses

from service.check_requests import CheckRequest, handle_check_request
from service.job_context import use_config
from tests.service.reporting_support import Reporting, reporting_config


def press(run, **changes) -> dict:
    request = CheckRequest("check_run", "rerequested", "d-" + run["run_id"][:8], run["repository"], "mallory",
                           run["sha"], installation_id=99, run_id=run["run_id"], step="build")  # fmt: skip
    return {**request.to_dict(), **changes}


def test_another_repositorys_admin_cannot_re_run_our_run(service_config, redis_client, fake_github):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    fake_github.add_repo("mallory/fork")
    fake_github.checks.set_permission("mallory/fork", "mallory", "admin")
    run = reporting.new_run(
        steps=("build",), status="FAILED", finished_at=1.0, execution_input={"run_id": "x"}
    )

    # a check run on mallory's repository (same commit, e.g. a fork's head) whose external_id names our run
    assert handle_check_request(press(run, repository="mallory/fork")) == "no such run"
    assert handle_check_request(press(run, repository="mallory/fork", event="check_suite")) == "no such run"
    assert reporting.index.audit(run["run_id"]) == []


def test_a_sender_github_cannot_vouch_for_is_refused(service_config, redis_client, fake_github):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = reporting.new_run(
        steps=("build",), status="FAILED", finished_at=1.0, execution_input={"run_id": "x"}
    )
    fake_github.checks.set_permission("octo/app", "mallory", "none")
    assert handle_check_request(press(run)) == "refused: none"
    fake_github.fail_next(1, 404)  # the App cannot see the repository
    assert handle_check_request(press(run, delivery_id="d2")).startswith("refused: none (404)")
    use_config(dataclasses.replace(reporting.config, github_token=""))  # nothing to ask GitHub with
    assert handle_check_request(press(run, delivery_id="d3")).startswith("refused: unknown")
    assert [e for e in reporting.index.audit(run["run_id"]) if e.get("new_run_id")] == []


def test_a_press_with_no_installation_to_ask_as_is_refused_and_audited(
    service_config, redis_client, fake_github
):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = reporting.new_run(
        steps=("build",), status="FAILED", finished_at=1.0, execution_input={"run_id": "x"}
    )
    # a GitHub App without a token or default installation, and a delivery naming none: nobody to ask
    app = {
        "github_token": "",
        "github_app_id": "4242",
        "github_app_private_key": "k",
        "github_app_installation_id": 0,
    }
    use_config(dataclasses.replace(reporting.config, **app))
    assert handle_check_request(press(run, installation_id=None)).startswith("refused: unknown")
    assert [e["action"] for e in reporting.index.audit(run["run_id"])] == ["refused rerequested"]
