"""A GitHub App installed in several organisations (no token, no default installation): a manual or scheduled
run acts as the installation GitHub says covers its repository, to resolve its branch and to report (real
Redis, real git, the fake GitHub)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import pytest

from service.app import create_app
from service.job_context import job_context, use_config
from service.run_index import RunIndex
from service.scheduler import fire_due
from service.schedules import Schedule
from tests.service.dashboard_seed import ADMIN_TOKEN, with_users

PIPELINE = {
    "StartAt": "Show",
    "States": {"Show": {"Type": "Task", "Resource": "${activity:build}", "End": True, "Parameters": {
        "step": "show", "commands": ["true"], "run.$": "$$.Execution.Input"}}},
}  # fmt: skip


@pytest.fixture
def config(service_config: Any, make_repo: Any, fake_github: Any, app_pem: str) -> Any:
    repo = make_repo("app")
    repo.commit({".stepline/pipeline.asl.json": json.dumps(PIPELINE)}, "add the pipeline")
    repo.push("main")
    fake_github.add_repo("octo/app", clone_url=repo.url)
    fake_github.set_installation("octo/app", 55)
    app = {"github_token": "", "github_app_id": "4242", "github_app_private_key": app_pem}
    return with_users(service_config, allow_local_repositories=True, **app)


def asked_as_installation(fake_github: Any) -> bool:
    resolved = [
        r for r in fake_github.requests("GET", "/repos/octo/app") if not r.path.endswith("/installation")
    ]
    return bool(resolved) and all(
        r.headers.get("authorization", "").startswith("token ghs_") for r in resolved
    )


def test_a_manual_run_acts_as_its_repositorys_installation(
    config: Any, fake_github: Any, redis_client
) -> None:
    web = create_app(config).test_client()
    answer = web.post("/api/runs", json={"repository": "octo/app", "ref": "main"},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
    assert answer.status_code == 201, answer.get_json()
    assert RunIndex(redis_client).get(answer.get_json()["run_id"])["installation_id"] == 55
    assert asked_as_installation(fake_github)  # a private repository is found too


def test_a_scheduled_run_acts_as_its_repositorys_installation(config: Any, fake_github: Any) -> None:
    nightly = Schedule("nightly", "octo/app", "0 3 * * *", "main")
    use_config(dataclasses.replace(config, schedules=(nightly,)))
    ctx = job_context()
    fire_due(ctx, [nightly], datetime.fromisoformat("2026-12-06T01:00:00+00:00").timestamp())
    [run_id] = fire_due(ctx, [nightly], datetime.fromisoformat("2026-12-06T03:00:05+00:00").timestamp())
    assert RunIndex(ctx.redis).get(run_id)["installation_id"] == 55
    assert asked_as_installation(fake_github)


def test_a_repository_the_app_is_not_installed_on_falls_back_to_the_default(
    config: Any, fake_github: Any, redis_client
) -> None:
    fake_github.state.installations.clear()
    web = create_app(dataclasses.replace(config, github_app_installation_id=9)).test_client()
    answer = web.post("/api/runs", json={"repository": "octo/app", "ref": "main"},
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
    assert answer.status_code == 201, answer.get_json()
    assert RunIndex(redis_client).get(answer.get_json()["run_id"])["installation_id"] == 9


def test_a_private_repositorys_pipeline_is_read_as_its_installation_not_missed(
    config: Any, fake_github: Any
) -> None:
    """Read anonymously, a private repository has no files: its own pipeline would silently become the default."""
    from service.app_installations import repository_auth
    from service.pipeline_source import load_pipeline

    fake_github.add_repo("octo/private", private=True)
    fake_github.set_installation("octo/private", 77)
    fake_github.add_file("octo/private", "a" * 40, ".stepline/pipeline.asl.json", json.dumps(PIPELINE))
    use_config(config)
    run: Any = {
        "repository": "octo/private",
        "clone_url": "https://github.example/octo/private.git",
        "sha": "a" * 40,
    }
    assert load_pipeline(config, run).path == "default"  # what an anonymous read finds
    pipeline = load_pipeline(
        config, run, lambda: repository_auth(config, job_context().redis, "octo/private")
    )
    assert pipeline.path == ".stepline/pipeline.asl.json" and pipeline.steps == ["show"]
