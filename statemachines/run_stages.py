"""Stage timing of a run: when each stage between the push and the final status happened, in Redis.

The service and the workers both stamp, so the stage names live here. One hash per run,
`stepline:stages:<run_id>`: stage name -> epoch milliseconds. A stage that can happen more than
once in a run (several steps, a redrive) keeps its first stamp if it marks a beginning and its last
if it marks an end, so a run's timeline reads from its first task to its last answer. Stamps are
best effort: a Redis failure is logged and never fails the run. The key expires `keep_seconds` after
its last stamp (the step logs' retention) and goes with the run when retention trims it.

Workers stamp only runs the service vouches for (statemachines/run_claims.py): a pipeline cannot
write into another run's timeline by naming it in its task input.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

import redis

from statemachines.redis_text import redis_text
from statemachines.step_logs import DEFAULT_RETENTION_SECONDS

log = logging.getLogger(__name__)

PREFIX = "stepline:stages:"


class Stage(NamedTuple):
    name: str
    label: str
    first_wins: bool  # a beginning keeps its first stamp, an end its last


STAGES = (
    Stage("webhook_received", "webhook received", True),
    Stage("delivery_recorded", "delivery recorded", True),
    Stage("execution_started", "execution started", True),
    Stage("pending_posted", "pending status posted", True),
    Stage("task_handed_out", "task handed out", True),
    Stage("checkout_done", "checkout done", True),
    Stage("first_command_started", "first command started", True),
    Stage("last_command_ended", "last command ended", False),
    Stage("task_answered", "task answered", False),
    Stage("final_posted", "final status posted", False),
)
BY_NAME = {stage.name: stage for stage in STAGES}
(
    WEBHOOK_RECEIVED,
    DELIVERY_RECORDED,
    EXECUTION_STARTED,
    PENDING_POSTED,
    TASK_HANDED_OUT,
    CHECKOUT_DONE,
    FIRST_COMMAND_STARTED,
    LAST_COMMAND_ENDED,
    TASK_ANSWERED,
    FINAL_POSTED,
) = (stage.name for stage in STAGES)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stages_key(run_id: str) -> str:
    return PREFIX + run_id


class RunStages:
    """Stamps and reads the stage hash of runs."""

    def __init__(self, client: redis.Redis, keep_seconds: int = DEFAULT_RETENTION_SECONDS) -> None:
        self.redis = client
        self.keep = keep_seconds

    def stamp(self, run_id: str, stage: str, at_ms: int | None = None, pipe: Any = None) -> None:
        """Record that `stage` happened (now, or at `at_ms`); on `pipe` it is only queued there."""
        when = now_ms() if at_ms is None else at_ms
        target = pipe if pipe is not None else self.redis.pipeline(transaction=False)
        if BY_NAME[stage].first_wins:
            target.hsetnx(stages_key(run_id), stage, when)
        else:
            target.hset(stages_key(run_id), stage, when)
        target.expire(stages_key(run_id), self.keep)
        if pipe is not None:
            return
        try:
            target.execute()
        except redis.RedisError as exc:
            log.warning("%s: stage %s not recorded: %s", run_id, stage, exc)

    def read(self, run_id: str) -> dict[str, int]:
        """Stage name -> epoch ms, for the stages stamped so far."""
        raw = self.redis.hgetall(stages_key(run_id))
        return {redis_text(name): int(value) for name, value in raw.items() if redis_text(name) in BY_NAME}

    def timeline(self, run_id: str) -> list[dict[str, Any]]:
        """The stamped stages in the order they happened, each with ms since the first stamp and the previous one.

        The service's stages (pending status) and the worker's (task handed out) run side by side, so
        pipeline order could show a stage taking negative time; ties keep pipeline order.
        """
        stamps = self.read(run_id)
        rows: list[dict[str, Any]] = []
        first = min(stamps.values(), default=0)
        previous: int | None = None
        for stage in sorted(
            (stage for stage in STAGES if stage.name in stamps), key=lambda s: stamps[s.name]
        ):
            at = stamps[stage.name]
            rows.append(
                {
                    "stage": stage.name,
                    "label": stage.label,
                    "at_ms": at,
                    "offset_ms": at - first,
                    "since_previous_ms": None if previous is None else at - previous,
                }
            )
            previous = at
        return rows

    def forget_runs(self, pipe: Any, run_ids: list[str]) -> None:
        """Queue on `pipe` the deletion of these runs' stamps (retention)."""
        if run_ids:
            pipe.delete(*(stages_key(run_id) for run_id in run_ids))
