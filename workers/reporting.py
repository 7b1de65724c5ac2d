"""Reporting a step: its result or failure to Step Functions, its GitHub status as a job for the reporter."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from botocore.exceptions import BotoCoreError, ClientError
from rq import Queue

from statemachines import queues
from workers.heartbeat import GONE_ERRORS, error_code

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 256
MAX_CAUSE_CHARS = 32_768
MAX_DESCRIPTION_CHARS = 140  # GitHub rejects longer status descriptions
RETRY_DELAYS = (0.5, 1, 2, 4, 8, 15)  # about 30 s: long enough to ride out an engine restart


class Reporter:
    """Tells Step Functions how a task ended (retrying transient errors) and enqueues status jobs."""

    def __init__(self, sfn: Any, connection: redis.Redis) -> None:
        self.sfn = sfn
        self.queue = Queue(queues.STATUSES, connection=connection)

    def succeed(self, run_id: str, token: str, result: dict[str, Any]) -> bool:
        output = json.dumps(result)
        return self._send(
            run_id, "SendTaskSuccess", self.sfn.send_task_success, taskToken=token, output=output
        )

    def fail(self, run_id: str, token: str, error: str, cause: str) -> bool:
        return self._send(
            run_id,
            "SendTaskFailure",
            self.sfn.send_task_failure,
            taskToken=token,
            error=error[:MAX_ERROR_CHARS],
            cause=cause[:MAX_CAUSE_CHARS],
        )

    def status(self, run_id: str, step: str, state: str, description: str, outcome: str) -> None:
        """Enqueue the step's GitHub status (pending, success, failure, error) and what it means
        (statemachines/outcomes.py: a check run's conclusion is never read from the words); never per heartbeat."""
        description = description if len(description) <= MAX_DESCRIPTION_CHARS else description[:139] + "…"
        at_ms = time.time_ns() // 1_000_000
        try:
            self.queue.enqueue(queues.REPORT_STEP, run_id, step, state, description, at_ms, outcome)
        except redis.RedisError as exc:  # a lost status is repaired by the reconcile job; the step goes on
            log.warning("%s: status %s of step %s not enqueued: %s", run_id, state, step, exc)

    def _send(self, run_id: str, action: str, call: Any, **params: Any) -> bool:
        """Call until it lands; False when the task is gone (nothing more to tell) or it never landed."""
        for delay in (*RETRY_DELAYS, None):
            try:
                call(**params)
                return True
            except ClientError as exc:
                if error_code(exc) in GONE_ERRORS:
                    log.info("%s: %s not needed: the task is gone (%s)", run_id, action, error_code(exc))
                    return False
                if not _transient(exc):
                    log.error("%s: %s refused: %s", run_id, action, exc)
                    return False
                problem: Exception = exc
            except BotoCoreError as exc:
                problem = exc
            if delay is None:
                break
            log.warning("%s: %s failed (%s); retrying in %ss", run_id, action, problem, delay)
            time.sleep(delay)
        log.error("%s: %s gave up; the task ends at its heartbeat timeout", run_id, action)
        return False


def _transient(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = error_code(exc)
    return status >= 500 or code in {"ThrottlingException", "ServiceUnavailable", "InternalFailure"}
