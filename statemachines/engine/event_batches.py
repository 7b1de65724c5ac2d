"""Per-execution event batching: concurrent events of one execution share one load, core run and commit.

Eight Parallel branches answered at once would otherwise be eight serial load-run-commit rounds.
Threads of this process queue their event on the execution; one of them (the leader) takes
everything queued, feeds the events to the core one after another, and commits once. Other
engines are still kept out by the commit's version guard.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .api_errors import InternalFailure
from .backend import Backend, now_ms
from .loop_calls import leave_the_loop, on_the_loop
from .store import Op, execution_key
from .transitions import MAX_ATTEMPTS, is_empty, outcome_ops

log = logging.getLogger(__name__)


@dataclass
class Request:
    """One event waiting to be applied, with the guards and writes that belong to it."""

    event: dict[str, Any]
    guards: Sequence[Op]
    first_ops: Sequence[Op]
    result: Any = None
    error: BaseException | None = None
    lead: bool = False
    settled: threading.Event = field(default_factory=threading.Event)

    @property
    def alone(self) -> bool:
        # a timer's guard is its score as read before the batch: an earlier event of the batch
        # may re-arm the same timer id, which the guard could not see, so timers run alone
        return self.event["type"] == "TimerFired"


@dataclass
class _Merged:
    """The outcomes of a batch as one Outcome for outcome_ops."""

    state: dict[str, Any]
    events: list[dict[str, Any]]
    effects: list[dict[str, Any]]


def advance(
    svc: Backend,
    exec_arn: str,
    event: dict[str, Any],
    guards: Sequence[Op] = (),
    first_ops: Sequence[Op] = (),
) -> Any | None:
    """Feed `event` to the execution and commit the result, retrying while other writers race us.

    `guards` must hold for the commit (else None returns and nothing is written); `first_ops`
    are written with it, before the outcome's own writes. Returns the Outcome, or None when the
    execution is gone, closed, or a guard failed; `first_ops` are still written when it is closed.
    """
    return BATCHER.submit(svc, exec_arn, Request(event, guards, first_ops))


class EventBatcher:
    """Queues per execution; hands leadership from one thread to the next."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queues: dict[str, list[Request]] = {}

    def submit(self, svc: Backend, exec_arn: str, request: Request) -> Any:
        with self._mutex:
            queue = self._queues.get(exec_arn)
            if queue is None:
                self._queues[exec_arn] = []
                request.lead = True
            else:
                leave_the_loop()  # the event loop never waits for a thread that holds the execution
                queue.append(request)
        if not request.lead:
            request.settled.wait()
            if not request.lead:
                return self._answer(request)
        self._lead(svc, exec_arn, request)
        return self._answer(request)

    def _lead(self, svc: Backend, exec_arn: str, request: Request) -> None:
        batch = [request]
        with self._mutex:
            queue = self._queues[exec_arn]
            # on the event loop a batch is the loop's own event: should the core move the call to
            # a thread (loop_calls.py), no other thread's event goes with it
            if not request.alone and not on_the_loop():
                while queue and not queue[0].alone:
                    batch.append(queue.pop(0))
        try:
            apply_batch(svc, exec_arn, batch)
        except Exception as exc:  # every waiter gets the failure, not only the leader
            for item in batch:
                item.error = exc
        finally:
            self._hand_over(exec_arn, batch)

    def _hand_over(self, exec_arn: str, batch: list[Request]) -> None:
        with self._mutex:
            queue = self._queues[exec_arn]
            if queue:
                successor = queue.pop(0)
                successor.lead = True
                successor.settled.set()
            else:
                del self._queues[exec_arn]
        for item in batch:
            item.settled.set()

    @staticmethod
    def _answer(request: Request) -> Any:
        if request.error is not None:
            raise request.error
        return request.result


def apply_batch(svc: Backend, exec_arn: str, batch: list[Request]) -> None:
    """Commit every request's event (dropping requests whose guards fail); results in place."""
    pending = list(batch)
    for _ in range(MAX_ATTEMPTS):
        failed = _attempt(svc, exec_arn, pending)
        if failed is None:
            return
        if failed is not _LOST_RACE:
            failed.result = None
            pending.remove(failed)
            if not pending:
                return
    log.error("%s: gave up after %s conflicting commits", exec_arn, MAX_ATTEMPTS)
    raise InternalFailure("The execution is being changed concurrently; try again.")


_LOST_RACE = Request({"type": "-"}, (), ())


def _attempt(svc: Backend, exec_arn: str, batch: list[Request]) -> Request | None:
    """One load-run-commit round: None when settled, else the request whose guard failed
    (or _LOST_RACE when another writer changed the execution first)."""
    key = execution_key(exec_arn)
    ver_text, state_text, def_digest = svc.redis.hmget(key, "ver", "state", "def")
    if ver_text is None:
        for request in batch:
            request.result = None
        return None
    version = int(ver_text)
    state = json.loads(state_text)
    running = state["status"] == "RUNNING"
    outs = []
    if running:
        interp = svc.interpreter(def_digest)
        outs = [interp.advance(state, request.event, now_ms(), svc.ids) for request in batch]
    guards: list[Op] = [["HGET", key, "ver", str(version)]]
    owners: list[Request | None] = [None]
    ops: list[Op] = []
    for request in batch:
        guards.extend(request.guards)
        owners.extend([request] * len(request.guards))
        ops.extend(request.first_ops)
    if any(not is_empty(out) for out in outs):
        merged = _Merged(state, [e for o in outs for e in o.events], [e for o in outs for e in o.effects])
        ops.extend(outcome_ops(svc, exec_arn, version, merged))
    result = svc.store.commit(guards, ops) if ops else 0
    if result == 0:
        for index, request in enumerate(batch):
            request.result = outs[index] if running else None
        return None
    return owners[result - 1] or _LOST_RACE


BATCHER = EventBatcher()
