"""The web process as the Procfile runs it: health over HTTP, and bad settings stop it with one message."""

from __future__ import annotations

import subprocess
import sys

import requests

from tests.harness.processes import PROJECT, start_web


def test_healthz_reports_redis_reachable(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "redis": "reachable"}


def test_healthz_reports_redis_down(app, redis_server):
    redis_server.kill()
    try:
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.get_json()["redis"] == "unreachable"
    finally:
        redis_server.start()


def test_web_process_serves_healthz(processes, redis_url):
    url = start_web(processes, redis_url)
    answer = requests.get(f"{url}/healthz", timeout=5)
    assert answer.json()["redis"] == "reachable"


def _run_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service"],
        cwd=PROJECT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_bad_port_and_unreachable_redis_give_one_message_and_no_traceback():
    result = _run_with({"PORT": "http", "REDIS_URL": "redis://127.0.0.1:1/0", "GITHUB_WEBHOOK_SECRET": "s"})
    assert result.returncode == 2
    assert "PORT='http' is not a whole number" in result.stderr
    assert "REDIS_URL=redis://127.0.0.1:1/0 is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_webhook_secret_stops_the_web_process(redis_url):
    result = _run_with({"REDIS_URL": redis_url})
    assert result.returncode == 2
    assert "GITHUB_WEBHOOK_SECRET is not set" in result.stderr and "Traceback" not in result.stderr
