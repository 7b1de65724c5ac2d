"""Build outputs end to end, on each blob store backend (a directory; S3 on moto's server).

The webhook, the jobs process, the real engine over HTTP, a real worker (real sandbox) and a real git
repository: a build step makes a wheel, steps in a Parallel and a Map receive it, and a deploy step
imports from it; a symlink out of the work tree and a pattern reaching out of it are refused in the
build's log; finished logs are read after Redis gave them up.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from statemachines.step_logs import stream_key
from tests.service.github_events import deliver, push_payload
from tests.service.run_stack import Stack, start_stack

pytestmark = pytest.mark.slow

WHEEL = "dist/app-1.0-py3-none-any.whl"


def task(step: str, commands: list[str], **params: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "${activity:build}",
        "Parameters": {"step": step, "commands": commands, **params},
    }


def build_test_deploy() -> dict[str, Any]:
    build = task(
        "build",
        [
            "mkdir -p dist && printf 'print(\"hello from the wheel\")\\n' > dist/app.py",
            f"python3 -m zipfile -c {WHEEL} dist/app.py",
            "ln -s /etc/passwd dist/leak.whl",
        ],
        artifacts=["dist/*.whl", "../*", "/etc/passwd"],
    )
    matrix_test = task("test-{}", [f"test -f {WHEEL}", "test ! -e dist/leak.whl"], needs=["build"])
    matrix_test["Parameters"].pop("step")
    matrix_test["Parameters"]["step.$"] = "States.Format('test-py{}', $.version)"
    matrix = {
        "Type": "Map", "ItemsPath": "$.versions", "ItemSelector": {"version.$": "$$.Map.Item.Value"},
        "ItemProcessor": {"StartAt": "Test", "States": {"Test": {**matrix_test, "End": True}}}, "End": True,
    }  # fmt: skip
    lint = task("lint", [f"test ! -e {WHEEL}"])  # needs nothing: gets nothing
    deploy = task("deploy", [f"PYTHONPATH={WHEEL} python3 -c 'import app'"], needs=["build"])
    return {
        "StartAt": "Build",
        "States": {
            "Build": {**build, "Next": "Versions"},
            "Versions": {
                "Type": "Pass",
                "Result": ["3.11", "3.12"],
                "ResultPath": "$.versions",
                "Next": "Checks",
            },
            "Checks": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Matrix", "States": {"Matrix": matrix}},
                    {"StartAt": "Lint", "States": {"Lint": {**lint, "End": True}}},
                ],
                "ResultPath": None,
                "Next": "Deploy",
            },
            "Deploy": {**deploy, "End": True},
        },
    }


@pytest.fixture
def stack(service_config, redis_url, redis_client, fake_github, processes, tmp_path, blob_settings) -> Stack:
    return start_stack(
        service_config, redis_url, redis_client, fake_github, processes, tmp_path, blob_settings
    )


def push(stack: Stack, make_repo: Any, pipeline: dict[str, Any], files: dict[str, str] | None = None) -> str:
    repo = make_repo("app")
    repo.commit({".stepline/pipeline.asl.json": json.dumps(pipeline), **(files or {})}, "pipeline")
    repo.push("main")
    response = deliver(stack.client, "push", push_payload(repo, "main"))
    assert response.status_code == 202, response.json
    return str(response.json["run_id"])


def log_text(stack: Stack, run_id: str, step: str) -> str:
    response = stack.client.get(f"/api/runs/{run_id}/logs/{step}?limit=2000")
    assert response.status_code == 200, response.json
    assert response.json["finished"]
    return "\n".join(response.json["lines"])


def test_a_wheel_built_once_reaches_test_and_deploy_steps(stack, make_repo, redis_client):
    run_id = push(stack, make_repo, build_test_deploy())
    run = stack.ended(run_id)
    assert run["status"] == "SUCCEEDED", {s: log_text(stack, run_id, s) for s in stack.steps(run_id)}

    assert "hello from the wheel" in log_text(stack, run_id, "deploy")
    for step in ("test-py3.11", "test-py3.12", "deploy"):
        assert "[stepline] needs build: 1 artifact(s) placed in the work tree" in log_text(
            stack, run_id, step
        )
    build_log = log_text(stack, run_id, "build")
    assert "artifact refused: dist/leak.whl is a symlink leaving the work tree (to /etc/passwd)" in build_log
    assert "artifact refused: pattern '../*' must be relative to the work tree, without '..'" in build_log
    assert "artifact refused: pattern '/etc/passwd' must be relative to the work tree" in build_log

    listed = stack.client.get(f"/api/runs/{run_id}/artifacts").json["artifacts"]
    assert [(a["step"], a["path"], a["untrusted"]) for a in listed] == [("build", WHEEL, False)]
    download = stack.client.get(listed[0]["url"])
    assert download.status_code == 200 and len(download.data) == listed[0]["size"]
    assert zipfile.ZipFile(io.BytesIO(download.data)).namelist() == ["app.py"]
    assert "attachment" in download.headers["Content-Disposition"]
    page = stack.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert 'data-part="artifacts"' in page and WHEEL in page
    # only listed files are served, by lookup: no path reaches another run's or another step's blobs
    other = stack.client.get(f"/api/runs/{run_id}/artifacts/download?step=build&path=../../etc/passwd")
    assert other.status_code == 404
    assert stack.client.get("/api/runs/no-such-run/artifacts").status_code == 404

    # every finished log left Redis; the dashboard, the API and the raw log still read it
    for meta in stack.logs.list_logs(run_id):
        assert meta.get("archive"), meta
        assert not redis_client.exists(stream_key(meta["log_id"]))
    raw = stack.client.get(f"/runs/{run_id}/logs/deploy.txt").get_data(as_text=True)
    assert "hello from the wheel" in raw
