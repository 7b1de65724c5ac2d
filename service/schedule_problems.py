"""Why a schedule's due slot does not start (its repository or branch vanished, GitHub away): told once, shown.

The scheduler finds the same problem at every tick while the slot stays due. It is logged once per schedule
and problem (again only when the problem changes, or PROBLEM_SECONDS after it was last seen), and the
schedules page and `GET /api/schedules` list it beside the broken files until the slot starts.

Redis (this module is the one home of these keys):
    stepline:schedules:problem:<repository>:<name>   the problem's words, expiring PROBLEM_SECONDS after
                                                     the last tick that met it; gone once the slot starts
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

from service.schedules import Schedule
from statemachines.redis_text import redis_text

log = logging.getLogger(__name__)

KEY = "stepline:schedules:problem:"
PROBLEM_SECONDS = 24 * 3600  # a day after the last tick that met it, a problem no longer shows


def note_problem(client: redis.Redis, schedule: Schedule, problem: str, level: int = logging.WARNING) -> None:
    """Remember the schedule's problem; log it when it is new to this schedule (else at DEBUG)."""
    problem = problem[:500]
    pipe = client.pipeline()
    pipe.get(KEY + schedule.key)
    pipe.set(KEY + schedule.key, problem, ex=PROBLEM_SECONDS)
    before = pipe.execute()[0]
    told = before is not None and redis_text(before) == problem
    log.log(logging.DEBUG if told else level, "schedule %s: slot not started: %s", schedule.key, problem)


def clear_problem(client: redis.Redis, schedule: Schedule) -> None:
    """The slot started: the schedule has no problem (any longer)."""
    if client.delete(KEY + schedule.key):
        log.info("schedule %s: its slot started again", schedule.key)


def schedule_problems(client: redis.Redis, schedules: Iterable[Schedule]) -> dict[str, str]:
    """The problems of these schedules, by schedule (`<repository>:<name>`), as the schedules page lists them."""
    keys = [schedule.key for schedule in schedules]
    if not keys:
        return {}
    found = client.mget([KEY + key for key in keys])
    return {key: redis_text(value) for key, value in zip(keys, found, strict=True) if value is not None}
