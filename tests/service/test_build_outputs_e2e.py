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
from tests.service.dashboard_seed import ADMIN_TOKEN
from tests.service.github_events import deliver, pull_request_payload, push_payload, repository
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
    assert "artifact refused: dist/leak.whl is a symlink leaving the work tree" in build_log
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


INSTALL = (
    'if [ -f .venv/marker ]; then echo "using $(cat .venv/marker) deps"; '
    "else echo slow-install-$((1 + 1)); sleep 1; mkdir -p .venv; echo trusted > .venv/marker; fi"
)


def cached_step(commands: list[str]) -> dict[str, Any]:
    cache = {"key": "deps-{os}-{hash:requirements*.txt}", "restore_keys": ["deps-{os}-"], "paths": [".venv"]}
    return {"StartAt": "Deps", "States": {"Deps": {**task("deps", commands, cache=cache), "End": True}}}


def test_a_second_run_restores_the_cache_and_a_fork_cannot_poison_it(stack, make_repo):
    base_repo, fork = make_repo("app"), make_repo("fork")
    files = {
        "requirements.txt": "flask==3.0\n",
        ".stepline/pipeline.asl.json": json.dumps(cached_step([INSTALL])),
    }
    base_repo.commit(files, "deps")
    base_repo.push("main")

    # a fork's pull request, same repository and key, plants its own .venv in the cache first
    poison = cached_step(["mkdir -p .venv && echo poisoned > .venv/marker"])
    poison["States"]["Deps"]["Parameters"]["artifacts"] = [".venv/marker"]
    sha = fork.commit({**files, ".stepline/pipeline.asl.json": json.dumps(poison)}, "poison", branch="patch")
    fork.push("patch")
    head = repository("contributor/app", fork.url)
    payload = pull_request_payload("opened", 7, sha, repository("octo/app", base_repo.url), head, "patch")
    untrusted = deliver(stack.client, "pull_request", payload).json["run_id"]
    assert stack.ended(untrusted)["status"] == "SUCCEEDED"
    assert "[stepline] cache: saved pr-7/deps-linux-" in log_text(stack, untrusted, "deps")
    listed = stack.client.get(f"/api/runs/{untrusted}/artifacts").json["artifacts"]
    assert [(a["path"], a["untrusted"]) for a in listed] == [(".venv/marker", True)]  # marked as a fork's
    assert "(untrusted)" in stack.client.get(f"/runs/{untrusted}").get_data(as_text=True)

    first = deliver(stack.client, "push", push_payload(base_repo, "main")).json["run_id"]
    assert stack.ended(first)["status"] == "SUCCEEDED"
    first_log = log_text(stack, first, "deps")
    assert "slow-install-2" in first_log and "poisoned" not in first_log  # the fork's cache is not ours
    assert "[stepline] cache: no cache for key deps-linux-" in first_log
    assert "[stepline] cache: saved deps-linux-" in first_log

    base_repo.commit({"README": "again\n"}, "a change that keeps the key")
    base_repo.push("main")
    second = deliver(stack.client, "push", push_payload(base_repo, "main")).json["run_id"]
    assert stack.ended(second)["status"] == "SUCCEEDED"
    second_log = log_text(stack, second, "deps")
    assert "using trusted deps" in second_log and "slow-install-2" not in second_log
    assert "[stepline] cache: restored" in second_log and "by its key" in second_log
    assert "cache: saved" not in second_log  # an exact hit is not saved again

    base_repo.commit({"requirements.txt": "flask==3.1\n"}, "new requirements: a new key, restored by prefix")
    base_repo.push("main")
    third = deliver(stack.client, "push", push_payload(base_repo, "main")).json["run_id"]
    assert stack.ended(third)["status"] == "SUCCEEDED"
    third_log = log_text(stack, third, "deps")
    assert "using trusted deps" in third_log and "by restore key (saved as deps-linux-" in third_log
    assert "[stepline] cache: saved deps-linux-" in third_log


def test_a_rerun_that_reuses_the_build_still_hands_its_wheel_to_deploy(stack, make_repo, gate):
    gate.passing = False  # deploy fails in the first run, passes in the re-run
    ask = f"exec 3<>/dev/tcp/127.0.0.1/{gate.port}; read -r v <&3; test $v = pass"  # Gate.command() is Make's
    pipeline = {
        "StartAt": "Build",
        "States": {
            "Build": {
                **task("build", [f"mkdir -p dist && echo wheel > {WHEEL}"], artifacts=[WHEEL]),
                "Next": "Deploy",
            },
            "Deploy": {**task("deploy", [f"test -f {WHEEL}", ask], needs=["build"]), "End": True},
        },
    }
    first = push(stack, make_repo, pipeline)
    assert stack.ended(first)["status"] == "FAILED"
    gate.passing = True
    response = stack.client.post(
        f"/api/runs/{first}/redrive", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    second = str(response.json["run_id"])
    assert stack.ended(second)["status"] == "SUCCEEDED", {
        s: log_text(stack, second, s) for s in stack.steps(second)
    }
    assert stack.steps(second)["build"]["status"] == "reused"
    assert "[stepline] needs build: 1 artifact(s) placed in the work tree" in log_text(
        stack, second, "deploy"
    )
    listed = stack.client.get(f"/api/runs/{second}/artifacts").json["artifacts"]
    assert [(a["step"], a["path"]) for a in listed] == [("build", WHEEL)]
