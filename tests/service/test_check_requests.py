"""check_run and check_suite deliveries at the webhook: what is queued, what is ignored, and redeliveries."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest
from rq import Queue

from service.app import create_app
from service.check_requests import CheckRequest, handle_check_request
from tests.service.github_events import deliver
from tests.service.reporting_support import Reporting, reporting_config


@pytest.fixture
def client(service_config):
    return create_app(dataclasses.replace(service_config, github_app_id="4242")).test_client()


def check_run_payload(action: str = "rerequested", **changes: Any) -> dict[str, Any]:
    check = {"id": 9, "head_sha": "a" * 40, "external_id": "run123:unit", "app": {"id": 4242}}
    payload = {
        "action": action, "check_run": check | changes.pop("check_run", {}),
        "repository": {"full_name": "octo/app"}, "sender": {"login": "maintainer"}, "installation": {"id": 7},
    }  # fmt: skip
    return payload | changes


def queued_jobs(redis_client) -> list[Any]:
    queue = Queue("runs", connection=redis_client)
    return [queue.fetch_job(job_id) for job_id in queue.job_ids]


def test_a_rerequested_check_run_queues_one_job_however_often_it_is_delivered(client, redis_client):
    delivery = str(uuid.uuid4())
    first = deliver(client, "check_run", check_run_payload(), delivery)
    again = deliver(client, "check_run", check_run_payload(), delivery)

    assert first.status_code == 202 and first.json["status"] == "queued"
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    jobs = queued_jobs(redis_client)
    assert [job.func_name for job in jobs] == ["service.check_requests.handle_check_request"]
    request = jobs[0].args[0]
    assert (request["run_id"], request["step"], request["sender"], request["installation_id"]) == (
        "run123", "unit", "maintainer", 7,
    )  # fmt: skip


def test_an_approval_button_carries_its_identifier(client, redis_client):
    payload = check_run_payload("requested_action", requested_action={"identifier": "approve"})
    assert deliver(client, "check_run", payload).status_code == 202
    assert queued_jobs(redis_client)[0].args[0]["identifier"] == "approve"


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("check_run", check_run_payload("created"), "starts nothing"),
        ("check_run", check_run_payload("completed"), "starts nothing"),
        ("check_run", check_run_payload(check_run={"app": {"id": 1}}), "another app's"),
        ("check_run", check_run_payload(check_run={"external_id": ""}), "not one of Stepline's"),
        ("check_run", check_run_payload("requested_action", requested_action={"identifier": "rm"}), "no action"),
        ("check_run", check_run_payload("requested_action", check_run={"external_id": "run123:"},
                                        requested_action={"identifier": "approve"}), "no action"),
    ],
)  # fmt: skip
def test_other_check_deliveries_are_ignored_with_the_reason(client, redis_client, event, payload, reason):
    response = deliver(client, event, payload)
    assert response.status_code == 202 and response.json["status"] == "ignored"
    assert reason in response.json["reason"]
    assert queued_jobs(redis_client) == []


@pytest.mark.parametrize(
    "payload",
    [
        check_run_payload(sender="octocat"),
        check_run_payload(check_run={"head_sha": 5}),
        {**check_run_payload(), "repository": {"full_name": ""}},
        {**check_run_payload(), "check_run": []},
    ],
)
def test_a_malformed_check_delivery_is_a_400(client, redis_client, payload):
    response = deliver(client, "check_run", json.dumps(payload).encode())
    assert response.status_code == 400 and response.json["error"]
    assert queued_jobs(redis_client) == []


def test_an_unsigned_check_delivery_is_refused(client, redis_client):
    response = deliver(client, "check_run", check_run_payload(), secret="wrong")
    assert response.status_code == 401 and queued_jobs(redis_client) == []


def test_re_run_failed_checks_presses_every_failed_check_run_and_makes_one_re_run(
    service_config, redis_client, fake_github
):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    fake_github.checks.set_permission("octo/app", "maintainer", "write")
    run = reporting.new_run(
        steps=("lint", "unit"), status="FAILED", finished_at=1.0, execution_input={"run_id": "x"}
    )
    presses = [
        CheckRequest("check_run", "rerequested", str(uuid.uuid4()), "octo/app", "maintainer", run["sha"],
                     run_id=run["run_id"], step=step).to_dict()
        for step in ("lint", "unit")
    ]  # fmt: skip

    first = handle_check_request(presses[0])
    assert first.startswith("re-run step ")
    assert handle_check_request(presses[0]).startswith("re-run step ")  # rq's retry of the same delivery
    assert handle_check_request(presses[1]) == f"already re-run: {run['run_id']}"
    reruns = [e for e in reporting.index.audit(run["run_id"]) if e.get("new_run_id")]
    assert len(reruns) == 2 and {e["by"] for e in reruns} == {"maintainer on GitHub"}


def test_a_reader_cannot_press_githubs_buttons(service_config, redis_client, fake_github):
    reporting = Reporting(reporting_config(service_config), redis_client, fake_github)
    run = reporting.new_run(status="FAILED", finished_at=1.0, execution_input={"run_id": "x"})
    press = CheckRequest("check_suite", "rerequested", "d1", "octo/app", "visitor", run["sha"]).to_dict()

    assert handle_check_request(press) == "refused: read"
    assert [e["action"] for e in reporting.index.audit(run["run_id"])] == ["refused rerequested"]
    other_commit = {**press, "head_sha": "f" * 40}
    assert handle_check_request(other_commit) == "no such run"
