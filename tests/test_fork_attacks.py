"""A fork's pull request attacks a running Stepline (`scripts/run`: web, jobs, engine, worker, Redis with
its password, the real sandbox) with a pipeline it wrote; the same steps pushed to the repository still
get their secrets.

Every probe prints `LEAK:<what>` only when its attack works. Webhooks are signed with hmac here, with the
secret `make run` generated; GitHub is the fake one (statuses land there).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness.fake_github import FakeGitHub
from tests.harness.git_repos import GitRepo
from tests.service.github_events import pull_request_payload, push_payload, repository
from tests.test_run_script import Stepline, free_ports, make_root, start_run

pytestmark = pytest.mark.slow

ADMIN = "fork-attack-admin-token"
SHARED, APP, OTHER = "shared-secret-value", "app-secret-value", "other-repository-secret"
FORGED_RUN = (
    'States.JsonMerge($$.Execution.Input, States.StringToJson(\'{"trusted": true, "fork": false}\'), false)'
)
ENDED = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "INVALID", "ERRORED", "CANCELLED"}


@dataclass
class Stack:
    stepline: Stepline
    github: FakeGitHub
    base: Path

    def deliver(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        secret = self.stepline.secret("webhook-secret").encode()
        headers = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json",
        }
        answer = requests.post(
            f"{self.stepline.web_url}/webhooks/github", data=body, headers=headers, timeout=30
        )
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    def api(self, path: str, method: str = "GET") -> Any:
        answer = requests.request(
            method,
            self.stepline.web_url + "/api" + path,
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=30,
        )
        assert answer.status_code < 500, answer.text
        return answer.json()

    def wait_run(self, run_id: str, timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.api(f"/runs/{run_id}")["run"]
            if run["status"] in ENDED:
                return dict(run)
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']}:\n{self.stepline.run.log()[-5000:]}")
            time.sleep(0.3)

    def log(self, run_id: str, step: str) -> list[str]:
        return list(self.api(f"/runs/{run_id}/logs/{step}?limit=5000")["lines"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, fake_github_server: FakeGitHub) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("fork-attacks")
    secrets = base / "worker-secrets"
    secrets.write_text(f"DEPLOY_KEY={SHARED}\n[octo/app]\nAPP_KEY={APP}\n[octo/other]\nOTHER_KEY={OTHER}\n")
    env = {
        "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",
        "GITHUB_API_URL": fake_github_server.url,
        "GITHUB_TOKEN": "test-token",
        "GITHUB_WEBHOOK_SECRET": "",
        "STEPLINE_ADMIN_TOKEN": ADMIN,
        "WORKER_SECRETS_FILE": str(secrets),
        "WORKER_POOLS": "",
        "WORKER_SLOTS": "4",
        "STEPLINE_NEVER_SUPERSEDE_BRANCHES": "main,victim",
    }
    log_dir = base / "logs"
    log_dir.mkdir()
    stepline = start_run(make_root(base / "stepline"), log_dir, free_ports(), env)
    yield Stack(stepline, fake_github_server, base)
    stepline.run.stop(timeout=15)


def probes(stack: Stack) -> str:
    """One command of every attack on the machine; only a successful one prints LEAK."""
    data = stack.stepline.root / "data"
    worker_dir = data / "worker"
    engine_port = stack.stepline.engine_url.rsplit(":", 1)[1]
    web_port = stack.stepline.web_url.rsplit(":", 1)[1]
    return f"""set +e +o pipefail
for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < "$f"; done 2>/dev/null \\
  | grep -qE '^(REDIS_URL|GITHUB_TOKEN|GITHUB_WEBHOOK_SECRET|AWS_SECRET_ACCESS_KEY|WORKER_SECRETS_FILE)=' && echo LEAK:environ
cat {stack.base / "worker-secrets"} >/dev/null 2>&1 && echo LEAK:secrets-file
ls {data} >/dev/null 2>&1 && echo LEAK:data
cat {data / "redis-password"} >/dev/null 2>&1 && echo LEAK:redis-password
ls {worker_dir}/tasks {worker_dir}/mirrors >/dev/null 2>&1 && echo LEAK:other-tasks
touch {worker_dir}/tasks/planted 2>/dev/null && echo LEAK:wrote-outside
(echo PING > /dev/tcp/127.0.0.1/{stack.stepline.redis_port}) 2>/dev/null && echo LEAK:redis
(echo > /dev/tcp/127.0.0.1/{engine_port}) 2>/dev/null && echo LEAK:engine
(echo > /dev/tcp/127.0.0.1/{web_port}) 2>/dev/null && echo LEAK:web
[ "$(ls /proc | grep -c '^[0-9]')" -gt 10 ] && echo LEAK:other-processes
[ "$(id -u)" = 0 ] && echo LEAK:root
echo "TRUSTED=$STEPLINE_TRUSTED SHARED=${{DEPLOY_KEY:-none}} APP=${{APP_KEY:-none}} OTHER=${{OTHER_KEY:-none}}"
"""


def attack_pipeline(script: str, resource: str = "${activity:build}") -> str:
    step = {
        "Type": "Task",
        "Resource": resource,
        "Parameters": {"step": "attack", "commands": [script], "run.$": FORGED_RUN},
        "HeartbeatSeconds": 30,
        "TimeoutSeconds": 300,
        "Retry": [{"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 2}],
        "End": True,
    }
    return json.dumps({"StartAt": "Attack", "States": {"Attack": step}})


def repos(stack: Stack, name: str) -> tuple[GitRepo, GitRepo]:
    root = stack.base / f"git-{name}"
    root.mkdir()
    return GitRepo(root, "app"), GitRepo(root, "fork")


def fork_pull_request(stack: Stack, pipeline: str, name: str) -> tuple[str, str]:
    app, fork = repos(stack, name)
    app.commit({"README.md": "app\n"})
    app.push("main")
    sha = fork.commit({"README.md": "app\n", ".stepline/pipeline.asl.json": pipeline}, "improve")
    fork.push("main")
    payload = pull_request_payload(
        "opened", 7, sha, repository("octo/app", app.url), repository("evil/app", fork.url), "main"
    )
    return stack.deliver("pull_request", payload)["run_id"], sha


def test_a_forks_pipeline_finds_nothing_forges_nothing_and_still_builds(stack):
    # a trusted build of another repository runs meanwhile: the fork must not see, touch or stop it
    app, _ = repos(stack, "victim")
    app.commit(
        {".stepline/pipeline.asl.json": attack_pipeline("echo victim > mark; sleep 20; cat mark")},
        branch="victim",
    )
    app.push("victim")
    victim = stack.deliver("push", push_payload(app, "victim", full_name="octo/other"))["run_id"]

    run_id, sha = fork_pull_request(stack, attack_pipeline(probes(stack)), "fork")
    run = stack.wait_run(run_id)
    lines = stack.log(run_id, "attack")
    assert run["status"] == "SUCCEEDED", (run, lines)
    assert [line for line in lines if line.startswith("LEAK:")] == [], lines
    assert "TRUSTED=false SHARED=none APP=none OTHER=none" in lines
    statuses = stack.github.latest_statuses("octo/app", sha)
    assert (
        statuses["stepline/ci/attack"]["state"] == "success" and statuses["stepline/ci"]["state"] == "success"
    )
    assert stack.api(f"/runs/{victim}")["run"]["status"] == "RUNNING"
    assert stack.wait_run(victim)["status"] == "SUCCEEDED" and "victim" in stack.log(victim, "attack")


def test_the_same_steps_pushed_to_the_repository_get_its_secrets(stack):
    app, _ = repos(stack, "push")
    sha = app.commit({".stepline/pipeline.asl.json": attack_pipeline(probes(stack))})
    app.push("main")
    run_id = stack.deliver("push", push_payload(app, "main"))["run_id"]
    run = stack.wait_run(run_id)
    lines = stack.log(run_id, "attack")
    assert run["status"] == "SUCCEEDED", (run, lines)
    # a trusted step shares the machine's network; everything else stays out of its reach
    assert {line for line in lines if line.startswith("LEAK:")} <= {"LEAK:redis", "LEAK:engine", "LEAK:web"}
    assert "TRUSTED=true SHARED=*** APP=*** OTHER=none" in lines  # its repository's, not another's
    assert stack.github.latest_statuses("octo/app", sha)["stepline/ci/attack"]["state"] == "success"


@pytest.mark.parametrize(
    "resource, why",
    [
        ("${activity:deploy}", "uses pool 'deploy', which untrusted runs may not use"),
        (
            "arn:aws:states:us-east-1:123456789012:activity:stepline-deploy",
            "may name only ${activity:<pool>}",
        ),
        ("arn:aws:states:::states:startExecution", "may name only ${activity:<pool>}"),
    ],
)
def test_a_fork_naming_another_activity_is_refused_with_an_error_status(stack, resource, why):
    run_id, sha = fork_pull_request(
        stack, attack_pipeline("true", resource), f"refused-{abs(hash(resource))}"
    )
    run = stack.wait_run(run_id, timeout=60)
    assert run["status"] == "INVALID" and why in run["status_reason"], run
    assert run["execution_arn"] is None  # nothing was deployed or started
    deadline = time.monotonic() + 60  # the status job runs after the run is recorded INVALID
    while "stepline/ci" not in stack.github.latest_statuses("octo/app", sha) and time.monotonic() < deadline:
        time.sleep(0.2)
    overall = stack.github.latest_statuses("octo/app", sha)["stepline/ci"]
    assert overall["state"] == "error"
