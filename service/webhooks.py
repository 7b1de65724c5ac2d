"""POST /webhooks/github: verify, parse, record the delivery once and enqueue its job; nothing slower.

Answers: 202 queued (with the run id) · 200 for ping and for a redelivery (with what the first one
started) · 202 ignored (with the reason) · 400 malformed · 401 bad signature · 413 too large.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs

import redis
from flask import Blueprint, current_app, jsonify, request
from rq import Queue, Retry

from service.check_requests import CHECK_EVENTS, CheckRequest, parse_check_event, record_check_request
from service.config import ServiceConfig
from service.deliveries import DeliveryLog
from service.errors import MalformedPayloadError, PayloadTooLargeError, WebhookError
from service.repository_schedules import schedule_file_pushed
from service.run_index import RunIndex
from service.runs import new_run
from service.signatures import verify_signature
from service.triggers import CANCEL, SKIP, Ignored, Trigger, TriggerSettings, parse_event
from statemachines import nesting, queues, run_stages
from statemachines.run_stages import RunStages

log = logging.getLogger(__name__)
webhooks = Blueprint("webhooks", __name__)

HEADER_VALUE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
FORM = "application/x-www-form-urlencoded"
# GitHub gives up after 10 s: the job, not this request, talks to GitHub and Step Functions
JOB_RETRY = Retry(max=3, interval=[2, 10, 30])


@webhooks.post("/webhooks/github")
def receive_github():
    received_ms = run_stages.now_ms()
    config: ServiceConfig = current_app.config["STEPLINE"]
    try:
        body = _read_body(config.webhook_max_bytes)
        if config.webhook_secret or not config.insecure_no_webhook_secret:
            verify_signature(config.webhook_secret, body, request.headers.get("X-Hub-Signature-256"))
        event = _header("X-GitHub-Event")
        delivery_id = _header("X-GitHub-Delivery")
        hook_id = request.headers.get("X-GitHub-Hook-ID", "")
        payload = _parse_body(body, request.mimetype)
        if event == "ping":
            return jsonify(status="pong", zen=str(payload.get("zen", ""))[:200]), 200
        if event == "push":  # whatever the push starts ([skip ci] too), its schedules file may have changed
            _refresh_schedules(config, payload, delivery_id)
        outcome: Trigger | Ignored | CheckRequest
        if event in CHECK_EVENTS:  # GitHub's buttons on Stepline's check runs (service/check_requests.py)
            outcome = parse_check_event(event, payload, delivery_id, config)
        else:
            outcome = parse_event(event, payload, delivery_id, TriggerSettings.from_config(config))
    except WebhookError as exc:
        log.info("webhook refused (%s): %s", exc.status, exc.reason)
        return jsonify(error=exc.reason), exc.status
    if isinstance(outcome, Ignored):
        log.info("delivery %s (%s) ignored: %s", delivery_id, event, outcome.reason)
        return jsonify(status="ignored", reason=outcome.reason), 202
    try:
        if isinstance(outcome, CheckRequest):
            return _record_check(outcome, hook_id)
        return _record(outcome, hook_id, received_ms)
    except redis.RedisError as exc:
        log.error("delivery %s not recorded, Redis failed: %s", delivery_id, exc)
        return jsonify(error="temporarily unable to record the delivery; redeliver it"), 503


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"the body is over {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLargeError(f"the body is over {limit} bytes")
    return body


def _header(name: str) -> str:
    value = request.headers.get(name, "")
    if not HEADER_VALUE.match(value):
        raise MalformedPayloadError(f"{name} header is missing or malformed")
    return value


def _parse_body(body: bytes, mimetype: str) -> Any:
    try:
        if mimetype == FORM:
            # GitHub's "application/x-www-form-urlencoded" content type: the JSON is in the payload field
            fields = parse_qs(body.decode("utf-8"), max_num_fields=20)
            if "payload" not in fields:
                raise MalformedPayloadError("form-encoded body without a 'payload' field")
            return _json(fields["payload"][0])
        return _json(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayloadError(f"the body is not valid: {exc}") from None


def _json(text: str | bytes) -> dict[str, Any]:
    try:
        payload = nesting.loads(text)
    except nesting.TooDeep as exc:
        raise MalformedPayloadError(f"the JSON body is not valid: {exc}") from None
    except ValueError as exc:
        raise MalformedPayloadError(f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedPayloadError("the JSON body must be an object")
    return payload


def _record(trigger: Trigger, hook_id: str, received_ms: int):
    client: redis.Redis = current_app.extensions["redis"]
    stages = RunStages(client)
    queue = Queue(queues.RUNS, connection=client)
    if trigger.action == CANCEL:
        pr = trigger.pull_request.number if trigger.pull_request else None
        args = (trigger.repository, trigger.branch if pr is None else None, trigger.tag, pr, trigger.reason)
        outcome: dict[str, Any] = {"action": CANCEL, "reason": trigger.reason}

        def then(pipe: Any) -> None:
            queue.enqueue_call(queues.CANCEL_RUNS, args=args, retry=JOB_RETRY, pipeline=pipe)
    else:
        run = new_run(trigger, hook_id)
        job = queues.SKIP_RUN if trigger.action == SKIP else queues.START_RUN
        outcome = {"action": trigger.action, "run_id": run["run_id"]}

        def then(pipe: Any) -> None:
            RunIndex(client).create(run, pipeline=pipe)
            stages.stamp(run["run_id"], run_stages.WEBHOOK_RECEIVED, received_ms, pipe=pipe)
            queue.enqueue_call(
                job, args=(run["run_id"],), job_id=f"run-{run['run_id']}", retry=JOB_RETRY, pipeline=pipe
            )

    first, record = DeliveryLog(client).record_once(hook_id, trigger.delivery_id, outcome, then)
    if not first:
        log.info("delivery %s is a redelivery: %s", trigger.delivery_id, record)
        return jsonify(status="duplicate", **_public(record)), 200
    if "run_id" in outcome:
        stages.stamp(outcome["run_id"], run_stages.DELIVERY_RECORDED)
        log.info(
            "%s: queued (%s) from delivery %s of %s",
            outcome["run_id"],
            trigger.action,
            trigger.delivery_id,
            trigger.repository,
        )
    else:
        log.info(
            "delivery %s: cancelling open runs of %s: %s",
            trigger.delivery_id,
            trigger.repository,
            trigger.reason,
        )
    return jsonify(status="queued", **_public(record)), 202


def _refresh_schedules(config: ServiceConfig, payload: dict[str, Any], delivery_id: str) -> None:
    repository = schedule_file_pushed(config, payload)
    if repository is None:
        return
    try:
        queue = Queue(queues.DEFAULT, connection=current_app.extensions["redis"])
        queue.enqueue(queues.REFRESH_REPOSITORY_SCHEDULES, repository, retry=JOB_RETRY)
    except redis.RedisError as exc:  # the scheduler's periodic read sees the change later
        log.warning("delivery %s: schedules of %s not queued for reading: %s", delivery_id, repository, exc)


def _record_check(request: CheckRequest, hook_id: str):
    first, record = record_check_request(current_app.extensions["redis"], request, hook_id)
    if not first:
        log.info("delivery %s is a redelivery: %s", request.delivery_id, record)
        return jsonify(status="duplicate", **_public(record)), 200
    return jsonify(status="queued", **_public(record)), 202


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in ("action", "run_id", "reason", "delivery_id") if key in record}
