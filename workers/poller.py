"""Polling: one long poll per pool while a slot is free; each task runs in its own thread; back-off on errors."""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from statemachines.contract import activity_name
from workers.activity_task import Received
from workers.heartbeat import error_code
from workers.slots import SlotPool

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


def backoff_seconds(failures: int, jitter: Callable[[], float] = random.random) -> float:
    """0.5 s, 1 s, 2 s … up to 30 s, each scaled by 50-100 % so restarted pollers do not stampede."""
    return min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (failures - 1)) * (0.5 + jitter() / 2)


class ActivityArns:
    """Activity ARNs by pool, resolved with CreateActivity (idempotent: it returns the existing ARN)."""

    def __init__(self, sfn: Any, prefix: str) -> None:
        self.sfn = sfn
        self.prefix = prefix
        self._arns: dict[str, str] = {}
        self._lock = threading.Lock()

    def arn(self, pool: str) -> str:
        with self._lock:
            if pool not in self._arns:
                self._arns[pool] = self._resolve(activity_name(pool, self.prefix))
                log.info("pool %s: polling activity %s", pool, self._arns[pool])
            return self._arns[pool]

    def _resolve(self, name: str) -> str:
        try:
            return str(self.sfn.create_activity(name=name)["activityArn"])
        except ClientError as exc:
            if error_code(exc) != "AccessDeniedException":
                raise
        # on AWS a worker's role may only read: find the activity the deploy created
        for page in self.sfn.get_paginator("list_activities").paginate():
            for activity in page["activities"]:
                if activity["name"] == name:
                    return str(activity["activityArn"])
        raise LookupError(f"activity {name} does not exist and this worker may not create it")

    def forget(self, pool: str) -> None:
        with self._lock:
            self._arns.pop(pool, None)


class Poller:
    """One polling loop on one pool; a worker runs one per pool, all sharing its slots."""

    def __init__(
        self,
        pool: str,
        sfn: Any,
        activities: ActivityArns,
        slots: SlotPool,
        accept: Callable[[Received], None],
        stop: threading.Event,
        worker_name: str,
    ) -> None:
        self.pool = pool
        self.sfn = sfn
        self.activities = activities
        self.slots = slots
        self.accept = accept
        self.stop = stop
        self.worker_name = worker_name
        self._tasks = itertools.count(1)

    def run(self) -> None:
        failures = 0
        while self.slots.wait_free(self.stop):
            ok = self._poll_once()
            failures = 0 if ok else failures + 1
            if failures:
                self.stop.wait(backoff_seconds(failures))

    def _poll_once(self) -> bool:
        """Poll once; a task that arrives runs in a thread of its own, holding a slot. False: back off."""
        try:
            arn = self.activities.arn(self.pool)
            response = self.sfn.get_activity_task(
                activityArn=arn, workerName=f"{self.worker_name}/{self.pool}"
            )
        except ClientError as exc:
            if error_code(exc) == "ActivityDoesNotExist":
                self.activities.forget(self.pool)
            log.warning("pool %s: poll failed, backing off: %s", self.pool, exc)
            return False
        except (BotoCoreError, LookupError) as exc:  # the engine is down, a poll dropped, no activity
            log.warning("pool %s: poll failed, backing off: %s", self.pool, exc)
            return False
        token = response.get("taskToken")
        if token:
            self.slots.take()
            name = f"{self.worker_name}/{self.pool}-{next(self._tasks)}"
            received = Received(self.pool, token, response.get("input") or "", name)
            threading.Thread(target=self._run, args=(received,), name=f"task-{name}", daemon=True).start()
        return True

    def _run(self, received: Received) -> None:
        try:
            self.accept(received)
        finally:
            self.slots.release()
