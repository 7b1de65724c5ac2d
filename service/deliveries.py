"""Webhook deliveries seen, by hook id and X-GitHub-Delivery: a redelivery starts nothing twice."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import redis

# GitHub lets anyone redeliver a delivery from the hook's settings for a few days; keep longer.
TTL_SECONDS = 8 * 24 * 3600
SAFE = re.compile(r"[^A-Za-z0-9-]")


def delivery_key(hook_id: str, delivery_id: str) -> str:
    # hashed: header values are attacker-chosen text and must not shape our key space
    digest = hashlib.sha256(f"{hook_id}\n{delivery_id}".encode()).hexdigest()[:32]
    return f"stepline:delivery:{digest}"


def execution_name(hook_id: str, delivery_id: str) -> str:
    """The execution name for a delivery: AWS's name rules, at most 80 characters, stable across retries."""
    digest = hashlib.sha256(f"{hook_id}\n{delivery_id}".encode()).hexdigest()[:16]
    readable = SAFE.sub("", delivery_id)[:60]
    return f"{readable}-{digest}" if readable else f"delivery-{digest}"


class DeliveryLog:
    """The record of each delivery acted on: what it started (run id or cancel job)."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def get(self, hook_id: str, delivery_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(delivery_key(hook_id, delivery_id))
        return json.loads(raw) if raw else None

    def record_once(
        self, hook_id: str, delivery_id: str, outcome: dict[str, Any], then: Callable[[Any], None]
    ) -> tuple[bool, dict[str, Any]]:
        """Record `outcome` unless the delivery is known; `then(pipe)` queues its writes in the same MULTI.

        Returns (True, outcome) when this call recorded it, (False, the first outcome) for a redelivery:
        of any number of concurrent callers exactly one wins, and its writes all land or none do.
        """
        key = delivery_key(hook_id, delivery_id)
        record = {**outcome, "delivery_id": delivery_id, "hook_id": hook_id, "received_at": time.time()}
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    existing = pipe.get(key)
                    if existing:
                        return False, json.loads(existing)
                    pipe.multi()
                    pipe.set(key, json.dumps(record), ex=TTL_SECONDS)
                    then(pipe)
                    pipe.execute()
                    return True, record
                except redis.WatchError:
                    continue
