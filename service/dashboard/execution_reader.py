"""What the run page reads from Step Functions for one run: the definition and the execution history.

Finished executions never change, so their history is kept in Redis for a day: a popular failed run's
page then costs no Step Functions calls (AWS throttles GetExecutionHistory to a few calls per second).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import redis
from botocore.exceptions import BotoCoreError, ClientError

from service.errors import StepFunctionsUnavailableError
from service.run_record import RunRecord
from statemachines.run_claims import redact, ticket_of

log = logging.getLogger(__name__)

MAX_EVENTS = 10_000  # a page shows what it can: a 25,000-event history is cut, and says so
CACHE_SECONDS = 24 * 3600
MAX_CACHED_BYTES = 4 * 1024 * 1024  # Redis holds logs and queues too: a huge history is re-read instead
CACHE_PREFIX = "stepline:dashboard:history:"


class ExecutionReader:
    """Reads definitions and histories through a boto3 Step Functions client; errors become typed ones."""

    def __init__(self, sfn: Any, redis_client: redis.Redis) -> None:
        self.sfn = sfn
        self.redis = redis_client
        self._definitions: dict[str, dict[str, Any]] = {}

    def definition(self, run: RunRecord) -> dict[str, Any] | None:
        """The ASL the execution ran (state machines are content-addressed: cached per ARN in memory)."""
        arn = run.get("execution_arn")
        if not arn:
            return None
        if arn in self._definitions:
            return self._definitions[arn]
        answer = self._call(run, "describe_state_machine_for_execution", executionArn=arn)
        definition = json.loads(answer["definition"])
        if len(self._definitions) > 256:
            self._definitions.clear()
        self._definitions[arn] = definition
        return definition

    def history(self, run: RunRecord) -> tuple[list[dict[str, Any]], bool]:
        """(events oldest first, cut) for the run's execution, its ticket hidden; ([], False) before it started."""
        arn = run.get("execution_arn")
        if not arn:
            return [], False
        cached = None if run.get("status") in {"QUEUED", "RUNNING"} else self.redis.get(CACHE_PREFIX + arn)
        if cached:
            data = json.loads(cached)
            return data["events"], data["cut"]
        events: list[dict[str, Any]] = []
        token: str | None = None
        while len(events) < MAX_EVENTS:
            params: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
            if token:
                params["nextToken"] = token
            page = self._call(run, "get_execution_history", **params)
            events += [_plain(event) for event in page.get("events", [])]
            token = page.get("nextToken")
            if not token:
                break
        cut = bool(token) or len(events) > MAX_EVENTS
        # the run's ticket vouches for its tasks (statemachines/run_claims.py): no page may show it
        events = redact(events[:MAX_EVENTS], ticket_of(self.redis, str(run.get("run_id") or "")))
        if events and events[-1].get("type") in {
            "ExecutionSucceeded",
            "ExecutionFailed",
            "ExecutionTimedOut",
        }:
            # ExecutionAborted is left out: a redrive cannot follow it, but it is rare and cheap to re-read
            payload = json.dumps({"events": events, "cut": cut})
            if len(payload) <= MAX_CACHED_BYTES:
                self.redis.set(CACHE_PREFIX + arn, payload, ex=CACHE_SECONDS)
        return events, cut

    def forget(self, run: RunRecord) -> None:
        """Drop the cached history: a redrive makes a finished execution run again."""
        if arn := run.get("execution_arn"):
            self.redis.delete(CACHE_PREFIX + arn)

    def _call(self, run: RunRecord, method: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self.sfn, method)(**params)
        except (ClientError, BotoCoreError) as exc:
            log.warning("%s: %s failed: %s", run.get("run_id"), method, exc)
            raise StepFunctionsUnavailableError(str(run.get("run_id")), method, str(exc)) from exc


def _plain(event: dict[str, Any]) -> dict[str, Any]:
    """boto3 gives timestamps as datetimes: epoch seconds, as the engine and the JSON API use."""
    stamp = event.get("timestamp")
    if isinstance(stamp, datetime):
        return {**event, "timestamp": stamp.timestamp()}
    return event
