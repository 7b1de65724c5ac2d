"""Worker presence: which activities some worker serves now, so a page can tell "waiting for a worker"
from "no worker serves pool X".

Step Functions has no API that says whether anyone polls an activity. Every worker records, every
REFRESH_SECONDS, that it serves each activity of its pools (busy or polling), and forgets them when it
stops; a record older than STALE_SECONDS is a worker that died. The same on AWS: workers share Redis.

Redis (the one home of this key):
    stepline:workers:<activity name>  sorted set: worker name -> time last seen (epoch seconds)
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from statemachines.contract import APPROVAL_POOL

KEY = "stepline:workers:"
REFRESH_SECONDS = 15.0
STALE_SECONDS = 60.0
NO_WORKER = "no worker serves pool"


def record_serving(client: redis.Redis, worker: str, activities: Iterable[str]) -> None:
    now = time.time()
    pipe = client.pipeline()
    for name in activities:
        pipe.zadd(KEY + name, {worker: now})
        pipe.zremrangebyscore(KEY + name, 0, now - STALE_SECONDS)
        pipe.expire(KEY + name, int(STALE_SECONDS * 2))
    pipe.execute()


def forget_serving(client: redis.Redis, worker: str, activities: Iterable[str]) -> None:
    pipe = client.pipeline()
    for name in activities:
        pipe.zrem(KEY + name, worker)
    pipe.execute()


def served(client: redis.Redis, activity: str) -> bool:
    """Whether a worker that is alive serves the activity (by name, or by ARN: its last part)."""
    name = activity.rsplit(":", 1)[-1]
    return bool(client.zcount(KEY + name, time.time() - STALE_SECONDS, "+inf"))


def waiting_words(pool: str, is_served: bool) -> str:
    """What a step not yet taken waits for, as the graph and the commit statuses both say it."""
    if pool == APPROVAL_POOL:
        return "waiting for approval"
    return f"waiting for a worker (pool {pool})" if is_served else f"{NO_WORKER} {pool}"
