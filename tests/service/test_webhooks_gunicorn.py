"""Hostile requests against the real web process (gunicorn): clear 4xx answers, never a 5xx."""

from __future__ import annotations

import http.client
import json

import redis

from tests.harness.processes import start_web
from tests.service.github_events import fixture_bytes, signed_headers


def post(port: int, body: bytes, headers: dict[str, str], chunked: bool = False) -> tuple[int, dict]:
    """Send as a client would; a server that answers early (413) may close before the body is all sent."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest("POST", "/webhooks/github")
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.putheader(
        *(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(len(body))))
    )
    connection.endheaders()
    try:
        for start in range(0, len(body), 1 << 20):
            chunk = body[start : start + (1 << 20)]
            connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
        if chunked:
            connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the answer is already waiting
    response = connection.getresponse()
    answer = response.read()
    try:
        return response.status, json.loads(answer)
    except ValueError:
        return response.status, {"raw": answer.decode(errors="replace")}


def test_hostile_requests_get_clear_4xx_from_gunicorn(processes, redis_url):
    port = int(start_web(processes, redis_url).rsplit(":", 1)[1])
    huge = b'{"zen": "' + b"x" * (30 * 1024 * 1024) + b'"}'
    assert post(port, huge, signed_headers("push", huge))[0] == 413
    assert post(port, huge, signed_headers("push", huge), chunked=True)[0] == 413
    bad = b'{"ref": "refs/heads/x", '
    status, answer = post(port, bad, signed_headers("push", bad))
    assert status == 400 and "not JSON" in answer["error"]
    no_repo = json.dumps({"ref": "refs/heads/$(id)", "head_commit": {"id": "a" * 40}}).encode()
    status, answer = post(port, no_repo, signed_headers("push", no_repo))
    assert status == 400 and "repository" in answer["error"]
    body = fixture_bytes("push/branch-push.drone-go-scm.json")
    assert post(port, body, signed_headers("push", body, secret="wrong"))[0] == 401
    assert redis.Redis.from_url(redis_url).keys("stepline:*") == []
    status, answer = post(port, body, signed_headers("push", body), chunked=True)
    assert status == 202 and answer["run_id"]
