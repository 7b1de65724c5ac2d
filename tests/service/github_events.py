"""Webhook deliveries for tests: recorded payloads, payloads made for a real git repository, signed with hmac."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import WEBHOOK_SECRET
from tests.harness.git_repos import GitRepo, git

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github"
ZERO = "0" * 40


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture_bytes(name))


def signed_headers(
    event: str, body: bytes, delivery_id: str | None = None, secret: str = WEBHOOK_SECRET, hook_id: str = "42"
) -> dict[str, str]:
    """Headers as GitHub sends them; the signature is computed here with hmac, not with our own code."""
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": hook_id,
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
    }


def deliver(
    client: Any, event: str, payload: dict[str, Any] | bytes, delivery_id: str | None = None, **kw: Any
):
    """POST a signed delivery through a Flask test client; returns the response."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/webhooks/github", data=body, headers=signed_headers(event, body, delivery_id, **kw))


def repository(full_name: str, clone_url: str, private: bool = False) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "full_name": full_name,
        "name": name,
        "owner": {"login": owner},
        "clone_url": clone_url,
        "private": private,
    }


def push_payload(
    repo: GitRepo, branch: str, before: str = ZERO, full_name: str = "octo/app", clone_url: str | None = None
) -> dict[str, Any]:
    """What GitHub sends for a push of `branch` of the repository's remote (its current tip)."""
    sha = repo.remote_ref(f"refs/heads/{branch}")
    message = git("log", "-1", "--format=%B", sha, cwd=repo.remote)
    head = {"id": sha, "message": message, "author": {"name": "Test Author", "email": "author@example.com"}}
    return {
        "ref": f"refs/heads/{branch}", "before": before, "after": sha, "created": before == ZERO,
        "deleted": False, "forced": False, "head_commit": head, "commits": [head],
        "repository": repository(full_name, clone_url or repo.url),
    }  # fmt: skip


def delete_payload(
    branch: str, before: str, full_name: str = "octo/app", clone_url: str = ""
) -> dict[str, Any]:
    return {
        "ref": f"refs/heads/{branch}", "before": before, "after": ZERO, "created": False, "deleted": True,
        "head_commit": None, "commits": [], "repository": repository(full_name, clone_url or "https://github.example/x.git"),
    }  # fmt: skip


def pull_request_payload(
    action: str, number: int, sha: str, base: dict[str, Any], head_repo: dict[str, Any] | None, head_ref: str
) -> dict[str, Any]:
    pr = {
        "number": number, "title": f"PR {number}", "draft": False, "user": {"login": "contributor"},
        "head": {"sha": sha, "ref": head_ref, "repo": head_repo},
        "base": {"sha": "b" * 40, "ref": "main", "repo": base},
    }  # fmt: skip
    return {"action": action, "number": number, "pull_request": pr, "repository": base}
