"""Slow and incomplete requests against the real web process (gunicorn with service/web_worker.py): they hold
sockets, never the threads /healthz and webhooks are answered on. Hang detectors, never timings."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

from tests.harness.processes import start_web
from tests.service.github_events import fixture_bytes, signed_headers

ANSWER_DEADLINE_S = 5  # /healthz answers in milliseconds; before, it waited as long as the slow clients


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@contextmanager
def slow_clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    """Half of them send a whole head announcing 100,000 bytes and then `{`; half, half a head."""
    opened = []
    try:
        for index in range(count):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            if index % 2:
                client.sendall(
                    b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"X-GitHub-Event: push\r\nContent-Length: 100000\r\n\r\n{"
                )
            else:
                client.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-")
            opened.append(client)
        yield opened
    finally:
        for client in opened:
            client.close()


def deliver(url: str, event: str, body: bytes) -> requests.Response:
    return requests.post(
        url + "/webhooks/github", data=body, headers=signed_headers(event, body), timeout=ANSWER_DEADLINE_S
    )


def test_a_hundred_slow_clients_leave_healthz_and_signed_webhooks_answering(processes, redis_url) -> None:
    url = start_web(processes, redis_url)
    push = fixture_bytes("push/branch-push.drone-go-scm.json")
    ping = fixture_bytes("ping/repo-hook.octokit.json")
    with slow_clients(port_of(url), 100):
        time.sleep(0.5)  # every slow client is in and waiting
        for _ in range(3):
            assert requests.get(url + "/healthz", timeout=ANSWER_DEADLINE_S).status_code == 200
            assert deliver(url, "ping", ping).status_code == 200
            answer = deliver(url, "push", push)
            assert answer.status_code == 202, answer.text


def test_a_request_not_whole_in_time_is_answered_408_and_closed(processes, redis_url) -> None:
    url = start_web(processes, redis_url)
    with slow_clients(port_of(url), 2) as (half_head, half_body):
        for client in (half_head, half_body):
            client.settimeout(60)  # a hang detector: the worker gives a request 10 s
            answer = b""
            while chunk := client.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_pipelined_requests_and_100_continue_still_work(processes, redis_url) -> None:
    port = port_of(start_web(processes, redis_url))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        reader = client.makefile("rb")
        for _ in range(2):
            assert reader.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert json.loads(reader.read(length))["status"] == "ok"
    ping = fixture_bytes("ping/repo-hook.octokit.json")
    headers = {**signed_headers("ping", ping), "Expect": "100-continue", "Content-Length": str(len(ping))}
    head = "POST /webhooks/github HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(head.encode() + b"\r\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 100 Continue")
        client.sendall(ping)
        answer = b""
        while b"pong" not in answer:
            chunk = client.recv(4096)
            assert chunk, answer
            answer += chunk
        assert b"HTTP/1.1 200 " in answer
