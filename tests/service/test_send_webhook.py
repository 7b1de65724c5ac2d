"""The developer command against the real web process (gunicorn): a local repository's push becomes a run."""

from __future__ import annotations

import subprocess

import redis

from service.run_index import RunIndex
from tests.harness.processes import PROJECT, python_module, start_web


def start_dev_web(processes, redis_url: str, **extra: str) -> str:
    return start_web(processes, redis_url, GITHUB_WEBHOOK_SECRET="dev-secret", **extra)


def send(repo, url: str, key: str = "dev-secret") -> subprocess.CompletedProcess[str]:
    args = python_module(
        "service.send_webhook", "--repo", str(repo.work), "--url", url, "--secret-file", "/nonexistent"
    )
    env = {"PATH": "/usr/bin:/bin", "GITHUB_WEBHOOK_SECRET": key, "REDIS_URL": "redis://127.0.0.1:1/0"}
    return subprocess.run(args, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=30, check=False)


def test_send_webhook_queues_a_run_for_the_local_repository(processes, redis_url, make_repo):
    repo = make_repo("demo")
    sha = repo.commit({"Makefile": "test:\n\ttrue\n"}, "first")
    url = start_dev_web(processes, redis_url, STEPLINE_ALLOW_LOCAL_REPOSITORIES="true")
    result = send(repo, url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("202 ")
    runs = RunIndex(redis.Redis.from_url(redis_url)).list_runs()
    assert [(r["repository"], r["sha"], r["branch"], r["status"]) for r in runs] == [
        ("local/demo-work", sha, "main", "QUEUED")
    ]
    assert runs[0]["clone_url"] == repo.work.resolve().as_uri()


def test_send_webhook_is_ignored_without_the_local_repositories_setting(processes, redis_url, make_repo):
    repo = make_repo("demo")
    repo.commit({"a": "b"}, "first")
    url = start_dev_web(processes, redis_url)
    result = send(repo, url)
    assert result.stdout.startswith("202 ") and "STEPLINE_ALLOW_LOCAL_REPOSITORIES" in result.stdout
    assert send(repo, url, key="wrong").stdout.startswith("401 ")
