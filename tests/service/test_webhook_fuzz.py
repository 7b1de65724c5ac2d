"""A property-based fuzz of POST /webhooks/github on the real web process: signed or not, JSON or not, shaped
like GitHub's payloads or mutated anywhere, the answer is never a 5xx and the process logs no traceback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.processes import ManagedProcess, start_web
from tests.service.github_events import fixture, signed_headers

RECORDED = [
    ("push", "push/branch-push.drone-go-scm.json"),
    ("push", "push/branch-deleted.drone-go-scm.json"),
    ("push", "push/tag-created.drone-go-scm.json"),
    ("pull_request", "pull_request/opened.octokit.json"),
    ("pull_request", "pull_request/opened-from-fork.reallyfastci.json"),
    ("pull_request", "pull_request/closed-unmerged.octokit.json"),
    ("pull_request", "pull_request/edited-body.drone-go-scm.json"),
    ("ping", "ping/repo-hook.octokit.json"),
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    """A recorded delivery with a few values anywhere in it replaced by anything."""
    event, name = draw(st.sampled_from(RECORDED))
    payload = fixture(name)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        node: Any = payload
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
            if not isinstance(node[key], dict | list) or not node[key]:
                break
            node = node[key]
        if isinstance(node, dict) and node:
            node[draw(st.sampled_from(sorted(node)))] = draw(JSON)
        elif isinstance(node, list) and node:
            node[draw(st.integers(min_value=0, max_value=len(node) - 1))] = draw(JSON)
    return event, payload


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    kind = draw(st.sampled_from(["mutated"] * 6 + ["json", "bytes", "deep", "form"]))
    event, payload = (
        draw(mutated())
        if kind in ("mutated", "form")
        else (draw(st.sampled_from(["push", "pull_request", "ping"])), None)
    )
    if kind == "json":
        body = json.dumps(draw(JSON)).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=300))
    elif kind == "deep":
        depth = draw(st.sampled_from([99, 100, 101, 5000, 200_000]))
        body = ('{"a": ' * depth + "1" + "}" * depth).encode()
    elif kind == "form":
        body = urlencode({"payload": json.dumps(payload)}).encode()
    else:
        body = json.dumps(payload).encode()
    event = draw(st.sampled_from([event, event, event, "status", "create", "issues"]) | st.text(max_size=12))
    headers = signed_headers("x", body)
    headers["X-GitHub-Event"] = event
    headers["X-GitHub-Delivery"] = draw(st.just(str(uuid.uuid4())) | st.text(max_size=40))
    headers["Content-Type"] = (
        "application/x-www-form-urlencoded"
        if kind == "form"
        else draw(
            st.sampled_from(
                ["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded"]
            )
        )
    )
    signature = draw(st.sampled_from(["right", "right", "right", "wrong", "missing"]))
    if signature == "wrong":
        headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    elif signature == "missing":
        del headers["X-Hub-Signature-256"]
    return {k: v for k, v in headers.items() if _header_safe(v)}, body


def _header_safe(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return value == value.strip() and "\r" not in value and "\n" not in value


@pytest.fixture
def web(processes: Any, redis_url: str) -> Iterator[str]:
    started: list[ManagedProcess] = []

    def start(*args: Any) -> ManagedProcess:
        process = processes(*args)
        started.append(process)
        return process

    url = start_web(start, redis_url, LOG_LEVEL="INFO")
    yield url
    log = started[0].log()
    assert "Traceback" not in log and "Error handling request" not in log, log[-4000:]


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(delivery=deliveries())
def test_no_delivery_gets_a_5xx(web: str, delivery: tuple[dict[str, str], bytes]) -> None:
    headers, body = delivery
    answer = requests.post(web + "/webhooks/github", data=body, headers=headers, timeout=30)
    assert answer.status_code < 500, (headers, body[:300], answer.status_code, answer.text[:300])
