"""A manual run names its repository as GitHub does, whatever case was typed: the run, its concurrency group,
statuses and check-run buttons all key on that name (real Redis, real git, the fake GitHub)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.app import create_app
from service.run_index import RunIndex
from tests.service.dashboard_seed import ADMIN_TOKEN, with_users

PIPELINE = {
    "Comment": "Deploy. concurrency: deploy",
    "StartAt": "Show",
    "States": {"Show": {"Type": "Task", "Resource": "${activity:build}", "End": True, "Parameters": {
        "step": "show", "commands": ["true"], "run.$": "$$.Execution.Input"}}},
}  # fmt: skip


@pytest.fixture
def web(service_config: Any, make_repo: Any, fake_github: Any) -> Any:
    repo = make_repo("app")
    repo.commit({".stepline/pipeline.asl.json": json.dumps(PIPELINE)}, "add the pipeline")
    repo.push("main")
    fake_github.add_repo("octo/app", clone_url=repo.url)
    return create_app(with_users(service_config, allow_local_repositories=True)).test_client()


def test_a_repository_typed_in_another_case_is_run_under_githubs_name(web: Any, redis_client: Any) -> None:
    answer = web.post(
        "/api/runs",
        json={"repository": "OCTO/App", "ref": "main"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert answer.status_code == 201, answer.get_json()
    run = RunIndex(redis_client).get(answer.get_json()["run_id"])
    # "OCTO/App" would be a concurrency group, cache scope and status key of its own beside octo/app's
    assert run["repository"] == "octo/app" and answer.get_json()["repository"] == "octo/app"
