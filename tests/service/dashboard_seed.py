"""Seeding the dashboard's data directly: runs through RunIndex, step logs through the workers' log writer."""

from __future__ import annotations

import time
import uuid
from typing import Any

from service.run_index import RunIndex
from statemachines.step_logs import StepLogWriter

HOSTILE_MESSAGE = 'Fix <script>alert("pwned")</script> & <img src=x onerror=alert(1)>\n\nsecond line'
HOSTILE_BRANCH = "feat/\"quoted\"-'single'<b>"


def seed_run(redis_client: Any, **fields: Any) -> dict[str, Any]:
    """A run record as the webhook and start_run leave it; `fields` override the defaults."""
    run_id = fields.pop("run_id", uuid.uuid4().hex)
    now = time.time()
    run = {
        "run_id": run_id,
        "repository": "octo/app",
        "event": "push",
        "ref": "refs/heads/main",
        "branch": "main",
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "message": "Fix the widget",
        "author": "Ada",
        "pipeline": "ci",
        "steps": ["build", "test"],
        "status": "SUCCEEDED",
        "created_at": now,
        "started_at": now,
        "finished_at": now + 42,
        "execution_input": {"run_id": run_id, "repository": "octo/app"},
        **fields,
    }
    if "execution_input" in fields and isinstance(fields["execution_input"], dict):
        run["execution_input"] = {"run_id": run_id, **fields["execution_input"]}
    return RunIndex(redis_client).create(run)


def seed_log(
    redis_client: Any, run_id: str, step: str, lines: list[str], finish: str | None = "succeeded"
) -> Any:
    """A step log written as a worker writes it; finished unless `finish` is None."""
    writer = StepLogWriter.start(redis_client, run_id, step, worker="test-worker")
    for line in lines:
        writer.write_line(line)
    writer.flush()
    if finish is not None:
        writer.finish(finish, 0 if finish == "succeeded" else 1)
    return writer


PASSWORD = "correct horse"
ADMIN_TOKEN = "admin-token-for-tests"


def with_users(config: Any, **changes: Any) -> Any:
    """The test settings plus one user (alice) and the admin token; cheap pbkdf2 rounds keep tests fast."""
    import dataclasses

    from werkzeug.security import generate_password_hash

    users = (("alice", generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")),)
    return dataclasses.replace(config, users=users, admin_token=ADMIN_TOKEN, **changes)


def csrf_of(client: Any) -> str:
    """The CSRF token of the test client's session (made by rendering any page)."""
    client.get("/login")
    with client.session_transaction() as session:
        return session["csrf_token"]


def sign_in(client: Any, name: str = "alice", password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token for the next POSTs."""
    token = csrf_of(client)
    response = client.post("/login", data={"username": name, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.data
    return csrf_of(client)  # signing in starts a new session, with a new token
