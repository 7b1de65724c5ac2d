"""Approval steps: the service polls the `approval` activity, keeps each task pending in Redis, and a person decides.

A pipeline waiting for approval holds no build worker, and the same pipeline works on AWS: approve is
SendTaskSuccess, reject is SendTaskFailure with `Stepline.Rejected`. The poller runs as a thread of the
jobs process (`start_poller`); the web process only reads the pending list and decides.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any

import redis
from botocore.exceptions import BotoCoreError, ClientError
from rq import Queue

from service.config import ServiceConfig
from service.errors import ApprovalNotPendingError, StepFunctionsUnavailableError
from service.sfn import make_sfn_client
from statemachines import queues
from statemachines.contract import APPROVAL_POOL, activity_name
from statemachines.outcomes import AWAITING_APPROVAL
from statemachines.redis_text import redis_text
from statemachines.step_errors import REJECTED

log = logging.getLogger(__name__)

PREFIX = "stepline:approvals:"
PENDING = PREFIX + "pending"
HEARTBEAT_SECONDS = 60.0  # also how soon an approval whose execution was stopped leaves the list
GONE_ERRORS = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


def approval_id(token: str) -> str:
    """A short public id: the task token itself never leaves the server (it can decide the step)."""
    return hashlib.sha256(token.encode()).hexdigest()[:20]


class ApprovalStore:
    """Pending approvals in Redis, by id and by run."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def add(self, token: str, task_input: str) -> dict[str, Any]:
        data = _parse_input(task_input)
        record: dict[str, Any] = {
            "approval_id": approval_id(token),
            "run_id": data["run_id"],
            "step": data["step"],
            "message": data["message"],
            "created_at": time.time(),
            "task_token": token,
        }
        pipe = self.redis.pipeline()
        pipe.set(PREFIX + record["approval_id"], json.dumps(record))
        pipe.sadd(PENDING, record["approval_id"])
        pipe.sadd(f"{PREFIX}run:{record['run_id']}", record["approval_id"])
        pipe.execute()
        log.info(
            "%s: approval %s pending for step %s", record["run_id"], record["approval_id"], record["step"]
        )
        return record

    def get(self, approval: str) -> dict[str, Any] | None:
        raw = self.redis.get(PREFIX + approval)
        return json.loads(raw) if raw else None

    def for_run(self, run_id: str) -> list[dict[str, Any]]:
        """Pending approvals of a run, without their task tokens, oldest first."""
        ids = sorted(redis_text(i) for i in self.redis.smembers(f"{PREFIX}run:{run_id}"))
        records = [r for r in (self.get(i) for i in ids) if r]
        return sorted(({k: v for k, v in r.items() if k != "task_token"} for r in records), key=_created)

    def pending_ids(self) -> list[str]:
        return [redis_text(i) for i in self.redis.smembers(PENDING)]

    def remove(self, record: dict[str, Any]) -> None:
        pipe = self.redis.pipeline()
        pipe.delete(PREFIX + record["approval_id"])
        pipe.srem(PENDING, record["approval_id"])
        pipe.srem(f"{PREFIX}run:{record['run_id']}", record["approval_id"])
        pipe.execute()

    def forget_runs(self, pipe: Any, run_ids: list[str]) -> None:
        """Queue on `pipe` the deletion of every approval the runs still hold (an ended run's are stale)."""
        reader = self.redis.pipeline(transaction=False)
        for run_id in run_ids:
            reader.smembers(f"{PREFIX}run:{run_id}")
        for run_id, members in zip(run_ids, reader.execute(), strict=True):
            ids = [redis_text(member) for member in members]
            pipe.delete(f"{PREFIX}run:{run_id}", *(PREFIX + approval for approval in ids))
            if ids:
                pipe.srem(PENDING, *ids)

    def claim(self, approval: str) -> dict[str, Any]:
        """The record, locked for 30 s so two clicks cannot send two answers for one task."""
        record = self.get(approval)
        if record is None or not self.redis.set(f"{PREFIX}{approval}:claim", "1", nx=True, ex=30):
            raise ApprovalNotPendingError(approval)
        return record

    def release(self, approval: str) -> None:
        self.redis.delete(f"{PREFIX}{approval}:claim")


def decide(
    store: ApprovalStore, sfn: Any, approval: str, approved: bool, user: str, comment: str = ""
) -> dict:
    """Answer the approval task: SendTaskSuccess when approved, SendTaskFailure `Stepline.Rejected` otherwise."""
    record = store.claim(approval)
    try:
        if approved:
            # what the approval Task's ResultPath receives (statemachines/pipelines/approval.asl.yaml)
            output = {"step": record["step"], "status": "approved", "by": user, "at": time.time()}
            output |= {"comment": comment} if comment else {}
            sfn.send_task_success(taskToken=record["task_token"], output=json.dumps(output))
        else:
            cause = f"rejected by {user}" + (f": {comment}" if comment else "")
            sfn.send_task_failure(taskToken=record["task_token"], error=REJECTED, cause=cause[:32768])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in GONE_ERRORS:
            store.remove(record)
            raise ApprovalNotPendingError(approval) from exc
        store.release(approval)
        raise StepFunctionsUnavailableError(
            record["run_id"], "approve" if approved else "reject", str(exc)
        ) from exc
    except BotoCoreError as exc:
        store.release(approval)
        raise StepFunctionsUnavailableError(
            record["run_id"], "approve" if approved else "reject", str(exc)
        ) from exc
    store.remove(record)
    log.info(
        "%s: approval %s %s by %s", record["run_id"], approval, "approved" if approved else "rejected", user
    )
    return {k: v for k, v in record.items() if k != "task_token"}


def _parse_input(task_input: str) -> dict[str, str]:
    """The approval Task's input: `step`, an optional `message`, and `run` (the execution input)."""
    try:
        data = json.loads(task_input)
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    run = data["run"] if isinstance(data.get("run"), dict) else {}
    return {
        "run_id": str(run.get("run_id") or data.get("run_id") or "unknown"),
        "step": str(data.get("step") or "approval")[:80],
        "message": str(data.get("message") or data.get("prompt") or "")[:2000],
    }


def _created(record: dict[str, Any]) -> float:
    return float(record.get("created_at") or 0)


class ApprovalPoller:
    """Long-polls GetActivityTask on the approval activity and records what it gets; heartbeats the pending."""

    def __init__(self, sfn: Any, store: ApprovalStore, activity: str, stop: threading.Event) -> None:
        self.sfn = sfn
        self.store = store
        self.activity = activity
        self.activity_arn = ""
        self.stop = stop
        self.worker_name = f"stepline-approvals-{threading.get_native_id()}"
        self._last_heartbeat = 0.0
        self._failing = False

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                if not self.activity_arn:  # CreateActivity is idempotent; the engine may start after us
                    self.activity_arn = self.sfn.create_activity(name=self.activity)["activityArn"]
                    log.info("approval poller: polling %s", self.activity_arn)
                self.poll_once()
                if time.monotonic() - self._last_heartbeat > HEARTBEAT_SECONDS:
                    self.heartbeat_pending()
                if self._failing:
                    log.info("approval poller: polling again")
                    self._failing = False
            except (ClientError, BotoCoreError, redis.RedisError) as exc:
                # one line per outage: Redis or the engine stopping (`make run`'s Ctrl-C) is no news
                # worth a line every 5 s
                if self.stop.is_set():
                    break
                log.log(
                    logging.DEBUG if self._failing else logging.WARNING, "approval poller: %s; retrying", exc
                )
                self._failing = True
                self.stop.wait(5)
            except Exception:  # a dead poller strands every approval: log it and keep polling
                log.exception("approval poller: unexpected error; retrying in 5 s")
                self.stop.wait(5)

    def poll_once(self) -> dict[str, Any] | None:
        task = self.sfn.get_activity_task(activityArn=self.activity_arn, workerName=self.worker_name)
        if not task.get("taskToken"):
            return None
        record = self.store.add(task["taskToken"], task.get("input") or "{}")
        # the step now waits for a person: its check run shows Approve / Reject (service/check_runs.py)
        Queue(queues.STATUSES, connection=self.store.redis).enqueue(
            queues.REPORT_STEP, record["run_id"], record["step"], "pending",
            "waiting for approval", int(time.time() * 1000), AWAITING_APPROVAL,
        )  # fmt: skip
        return record

    def heartbeat_pending(self) -> None:
        """Keeps approval tasks with HeartbeatSeconds alive, and drops those whose execution ended."""
        self._last_heartbeat = time.monotonic()
        for pending in self.store.pending_ids():
            record = self.store.get(pending)
            if record is None:
                continue
            try:
                self.sfn.send_task_heartbeat(taskToken=record["task_token"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in GONE_ERRORS:
                    log.info("%s: approval %s is gone (%s)", record["run_id"], pending, exc)
                    self.store.remove(record)


def long_poll_client(config: ServiceConfig) -> Any:
    """The service's client with a read timeout above GetActivityTask's 60 s long poll."""
    return make_sfn_client(config, read_timeout=70)


def start_poller(
    config: ServiceConfig, redis_client: redis.Redis, stop: threading.Event | None = None
) -> threading.Thread | None:
    """The jobs process's hook: a daemon thread polling the approval activity (None when switched off)."""
    if not config.approval_poller:
        return None
    activity = activity_name(APPROVAL_POOL, config.state_machine_prefix)
    poller = ApprovalPoller(
        long_poll_client(config), ApprovalStore(redis_client), activity, stop or threading.Event()
    )
    thread = threading.Thread(target=poller.run, name="approval-poller", daemon=True)
    thread.start()
    return thread
