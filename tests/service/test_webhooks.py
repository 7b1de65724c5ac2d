"""POST /webhooks/github through the Flask test client, against a real Redis."""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import quote

import pytest
from rq import Queue

from service.app import create_app
from service.run_index import RunIndex
from tests.service.github_events import deliver, fixture, fixture_bytes, signed_headers

PUSH = "push/branch-push.drone-go-scm.json"


def queued_jobs(redis_client, name: str = "runs") -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in Queue(name, connection=redis_client).jobs]


def stepline_keys(redis_client) -> list[bytes]:
    return redis_client.keys("stepline:*") + redis_client.keys("rq:*")


def test_signed_push_queues_a_run_and_answers_202(client, redis_client):
    response = deliver(client, "push", fixture_bytes(PUSH), delivery_id="d-1")
    assert response.status_code == 202, response.json
    run_id = response.json["run_id"]
    run = RunIndex(redis_client).get(run_id)
    assert run["status"] == "QUEUED" and run["delivery_id"] == "d-1" and run["branch"] == "master"
    assert run["execution_input"]["run_id"] == run_id and run["execution_input"]["sha"] == run["sha"]
    assert queued_jobs(redis_client) == [("service.runs.start_run", (run_id,))]


def test_redelivery_answers_200_with_the_same_run_and_starts_nothing(client, redis_client):
    first = deliver(client, "push", fixture_bytes(PUSH), delivery_id="d-1")
    again = deliver(client, "push", fixture_bytes(PUSH), delivery_id="d-1")
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert again.json["run_id"] == first.json["run_id"]
    assert len(queued_jobs(redis_client)) == 1 and len(RunIndex(redis_client).list_runs()) == 1


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "garbage"])
def test_missing_or_wrong_signature_is_401_and_records_nothing(client, redis_client, signature):
    body = fixture_bytes(PUSH)
    headers = signed_headers("push", body)
    headers.pop("X-Hub-Signature-256")
    if signature:
        headers["X-Hub-Signature-256"] = signature
    response = client.post("/webhooks/github", data=body, headers=headers)
    assert response.status_code == 401 and "X-Hub-Signature-256" in response.json["error"]
    assert stepline_keys(redis_client) == []


def test_signature_with_another_secret_is_401(client, redis_client):
    response = deliver(client, "push", fixture_bytes(PUSH), secret="not-the-secret")
    assert response.status_code == 401 and stepline_keys(redis_client) == []


def test_ping_answers_200(client, redis_client):
    response = deliver(client, "ping", fixture_bytes("ping/repo-hook.octokit.json"))
    assert response.status_code == 200 and response.json["status"] == "pong"
    assert stepline_keys(redis_client) == []


@pytest.mark.parametrize(
    ("event", "name"),
    [("status", "status/status.octokit.json"), ("create", "create/tag.octokit.json"),
     ("delete", "delete/branch.drone-go-scm.json"), ("check_suite", "check_suite/requested.octokit.json"),
     ("workflow_run", "workflow_run/completed.octokit.json"), ("issues", "issues/opened.octokit.json"),
     ("pull_request", "pull_request/labeled.octokit.json")],
)  # fmt: skip
def test_events_not_acted_on_answer_202_ignored_with_the_reason(client, redis_client, event, name):
    response = deliver(client, event, fixture_bytes(name))
    assert response.status_code == 202 and response.json["status"] == "ignored" and response.json["reason"]
    assert stepline_keys(redis_client) == []


def test_form_encoded_payload_variant_is_accepted(client, redis_client):
    body = ("payload=" + quote(fixture_bytes(PUSH).decode())).encode()
    headers = {**signed_headers("push", body), "Content-Type": "application/x-www-form-urlencoded"}
    response = client.post("/webhooks/github", data=body, headers=headers)
    assert response.status_code == 202 and RunIndex(redis_client).get(response.json["run_id"])


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        (b"{not json", "application/json", "not JSON"),
        (b"[1, 2]", "application/json", "object"),
        (b"\xff\xfe\x00garbage", "application/json", "not"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested"),
        (b"other=1", "application/x-www-form-urlencoded", "payload"),
    ],
)
def test_malformed_bodies_are_400_with_a_clear_message(client, redis_client, body, content_type, needle):
    headers = {**signed_headers("push", body), "Content-Type": content_type}
    response = client.post("/webhooks/github", data=body, headers=headers)
    assert response.status_code == 400 and needle in response.json["error"]
    assert stepline_keys(redis_client) == []


def test_payload_missing_repository_is_400_and_nothing_is_half_started(client, redis_client):
    payload = fixture(PUSH)
    del payload["repository"]
    response = deliver(client, "push", payload)
    assert response.status_code == 400 and "repository" in response.json["error"]
    assert stepline_keys(redis_client) == []


def test_missing_delivery_header_is_400(client, redis_client):
    body = fixture_bytes(PUSH)
    headers = signed_headers("push", body)
    del headers["X-GitHub-Delivery"]
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 400


def test_thirty_megabyte_body_is_413(client, redis_client):
    body = b'{"zen": "' + b"x" * (30 * 1024 * 1024) + b'"}'
    response = client.post("/webhooks/github", data=body, headers=signed_headers("push", body))
    assert response.status_code == 413 and stepline_keys(redis_client) == []


def test_skip_ci_records_a_skipped_run_and_queues_the_skip_job(client, redis_client):
    payload = fixture(PUSH)
    payload["head_commit"]["message"] = "docs only [skip ci]"
    response = deliver(client, "push", payload)
    run = RunIndex(redis_client).get(response.json["run_id"])
    assert response.status_code == 202 and run["status"] == "SKIPPED" and "skip ci" in run["status_reason"]
    assert queued_jobs(redis_client) == [("service.runs.skip_run", (run["run_id"],))]


def test_deleted_branch_queues_the_cancel_job(client, redis_client):
    response = deliver(client, "push", fixture_bytes("push/branch-deleted.drone-go-scm.json"))
    assert response.status_code == 202 and response.json["action"] == "cancel"
    assert queued_jobs(redis_client) == [
        (
            "service.cancellations.cancel_runs",
            (
                "bradrydzewski/drone-test-go",
                "feature-branch",
                None,
                None,
                "refs/heads/feature-branch was deleted",
            ),
        )
    ]


def test_hostile_branch_and_message_are_stored_verbatim_as_data(client, redis_client):
    payload = fixture(PUSH)
    payload["ref"] = "refs/heads/$(touch /tmp/pwned);`id`|é🙂"
    payload["head_commit"]["message"] = "$(reboot)\n`id`; echo hi\n\ud800 unicode ✓"
    response = deliver(client, "push", json.dumps(payload).encode())
    run = RunIndex(redis_client).get(response.json["run_id"])
    assert run["branch"] == "$(touch /tmp/pwned);`id`|é🙂"
    assert run["execution_input"]["message"].startswith("$(reboot)\n`id`; echo hi\n")


def test_unsigned_webhooks_only_with_the_insecure_setting_and_no_secret(service_config, redis_client):
    insecure = dataclasses.replace(service_config, webhook_secret="", insecure_no_webhook_secret=True)
    client = create_app(insecure).test_client()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-9", "Content-Type": "application/json"}
    assert client.post("/webhooks/github", data=fixture_bytes(PUSH), headers=headers).status_code == 202
    secure = create_app(dataclasses.replace(service_config, insecure_no_webhook_secret=True)).test_client()
    assert secure.post("/webhooks/github", data=fixture_bytes(PUSH), headers=headers).status_code == 401
