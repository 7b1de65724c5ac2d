"""A step's concurrency group on the worker: take its lease before the step runs, or answer "wait".

The rules and the Redis records are statemachines/step_concurrency.py's. A step that must wait is
answered at once with `Stepline.ConcurrencyWait` (its default Retry asks again with a back-off), so it
holds no slot while it waits; its status says which run holds the group. Runs to supersede are named
to the service (only it may stop executions, on AWS too) by an rq job.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import redis
from rq import Queue

from statemachines import queues
from statemachines.contract import StepTask
from statemachines.outcomes import FAILED, QUEUED
from statemachines.run_claims import Verdict, run_record_key
from statemachines.step_concurrency import (
    HOLD,
    MOOT,
    WAITING_WORDS,
    Claimant,
    Decision,
    claim,
    first_told,
    group_key,
    parse_declaration,
    release,
    renew,
)
from statemachines.step_errors import CONCURRENCY_WAIT, INVALID_TASK_INPUT
from workers.reporting import Reporter

log = logging.getLogger(__name__)

MIN_LEASE_SECONDS = 3.0
OPEN_STATUSES = ("QUEUED", "RUNNING")  # the service's run statuses of a run not ended (service/run_index.py)
BEATS_PER_LEASE = 3  # the lease outlives two missed renewals, and a dead worker's ends soon after


class GroupLease:
    """The group held while a step runs: renewed with the step's heartbeat, released when it ends."""

    def __init__(
        self, client: redis.Redis | None, key: str, lease: str, interval: float, run_id: str
    ) -> None:
        self.client, self.key, self.lease, self.interval, self.run_id = client, key, lease, interval, run_id
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="group-lease", daemon=True)
        if client is not None:
            self._thread.start()

    def release(self) -> None:
        if self.client is None:
            return
        self._done.set()
        self._thread.join(timeout=self.interval + 5)
        try:
            release(self.client, self.key, self.lease)
        except redis.RedisError as exc:  # it expires with its TTL
            log.warning(
                "%s: concurrency group %s not released (%s); it ends with its TTL", self.run_id, self.key, exc
            )

    def _renew(self) -> None:
        assert self.client is not None
        while not self._done.wait(self.interval):
            try:
                if not renew(self.client, self.key, self.lease, _ttl_ms(self.interval)):
                    log.warning(
                        "%s: the lease of concurrency group %s expired while the step ran",
                        self.run_id,
                        self.key,
                    )
                    return
            except redis.RedisError as exc:
                log.warning("%s: lease of concurrency group %s not renewed: %s", self.run_id, self.key, exc)


NO_GROUP = GroupLease(None, "", "", 1.0, "")


class StepGroups:
    """Admits a task's step into its concurrency group (if it names one)."""

    def __init__(self, client: redis.Redis, reporter: Reporter, heartbeat_seconds: float) -> None:
        self.redis = client
        self.reporter = reporter
        self.heartbeat_seconds = heartbeat_seconds
        self.runs = Queue(queues.RUNS, connection=client)

    def enter(
        self, task_input: str, token: str, task: StepTask, trusted: bool, verdict: Verdict
    ) -> GroupLease | None:
        """The step's lease (NO_GROUP when it names none); None when the task was answered instead."""
        run_id, step = task.run_id, task.step
        try:
            declaration = parse_declaration(json.loads(task_input).get("concurrency"))
        except ValueError as exc:  # a deployed pipeline was checked; an execution started by hand was not
            self.reporter.fail(run_id, token, INVALID_TASK_INPUT, f"invalid task input: {exc}")
            self.reporter.status(run_id, step, "error", "invalid concurrency group", FAILED)
            return None
        if declaration is None:
            return NO_GROUP
        name, key = group_key(declaration, task.run, trusted, verdict.verified)
        interval = self.heartbeat_seconds
        if task.heartbeat_seconds:
            interval = min(interval, task.heartbeat_seconds / 3)
        try:
            me = Claimant(run_id, step, self._order(run_id, verdict))
            decision = claim(self.redis, key, me, declaration.mode, _ttl_ms(interval), self._ended)
        except (redis.RedisError, ValueError) as exc:
            log.warning("%s: step %s: concurrency group %s not claimed: %s", run_id, step, name, exc)
            self._wait(task, token, f"{WAITING_WORDS} {name}: it could not be claimed ({exc})")
            return None
        if decision.kind == HOLD:
            log.info("%s: step %s holds concurrency group %s", run_id, step, name)
            self._news(task, None)
            return GroupLease(self.redis, key, decision.lease, interval, run_id)
        for victim in decision.supersede:
            self._ask_supersede(victim, run_id, name)
        if decision.kind == MOOT:
            by = str((decision.by or {}).get("run_id"))
            self._ask_supersede(run_id, by, name)
            self._wait(task, token, f"superseded in concurrency group {name} by run {by[:7]}", report=False)
        else:
            self._wait(task, token, _waiting(name, decision))
        return None

    def _order(self, run_id: str, verdict: Verdict) -> float:
        """The run's creation time, as the service recorded it; 0 (oldest) for a run it does not vouch for."""
        if not verdict.verified:
            return 0.0
        raw = self.redis.hget(run_record_key(run_id), "created_at")
        return float(json.loads(raw)) if raw is not None else 0.0

    def _ended(self, run_id: str) -> bool:
        """Whether the service recorded the run as ended (a run it never recorded is taken as live)."""
        raw = self.redis.hget(run_record_key(run_id), "status")
        return raw is not None and json.loads(raw) not in OPEN_STATUSES

    def _wait(self, task: StepTask, token: str, description: str, report: bool = True) -> None:
        log.info("%s: step %s: %s", task.run_id, task.step, description)
        self.reporter.fail(task.run_id, token, CONCURRENCY_WAIT, description)
        if report and self._news(task, description):
            self.reporter.status(task.run_id, task.step, "pending", description, QUEUED)

    def _news(self, task: StepTask, description: str | None) -> bool:
        try:
            return first_told(self.redis, task.run_id, task.step, description)
        except redis.RedisError:  # tell it again rather than not at all
            return True

    def _ask_supersede(self, victim: str, by: str, group: str) -> None:
        try:
            self.runs.enqueue(queues.SUPERSEDE_FOR_STEP_GROUP, victim, by, group)
        except redis.RedisError as exc:  # the next attempt asks again
            log.warning("%s: supersede of run %s not asked: %s", by, victim, exc)


def _waiting(name: str, decision: Decision) -> str:
    holder: dict[str, Any] = decision.holder or {}
    return f"{WAITING_WORDS} {name} held by run {str(holder.get('run_id'))[:7]} (step {holder.get('step')})"


def _ttl_ms(interval: float) -> int:
    return int(max(BEATS_PER_LEASE * interval, MIN_LEASE_SECONDS) * 1000)
