"""Run stops: the service tells workers at once that a run was cancelled or superseded.

StopExecution alone reaches a running step only at its next heartbeat (SendTaskHeartbeat answers
TaskTimedOut), ten seconds or more later. When the service stops a run it also records the time here;
a worker watching its running steps stops those of that run which started before it, within a second.
A run that runs again afterwards (a redrive) is not stopped: its steps start after the mark.

Redis (the one home of this key):
    stepline:stopped:<run_id>  the stop's time (epoch seconds), kept a day
"""

from __future__ import annotations

import time

import redis

STOPPED_KEY = "stepline:stopped:"
TTL_SECONDS = 24 * 3600


def mark_stopped(client: redis.Redis, run_id: str) -> None:
    client.set(STOPPED_KEY + run_id, repr(time.time()), ex=TTL_SECONDS)


def stopped_since(client: redis.Redis, run_id: str, started_at: float) -> bool:
    """Whether the run was stopped after `started_at` (epoch seconds)."""
    raw = client.get(STOPPED_KEY + run_id)
    return raw is not None and float(raw) >= started_at
