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

# The claim and the writes it guards run as one script: one round trip per delivery (a WATCH, GET,
# MULTI…EXEC transaction took three and was the largest part of the webhook's cost), and no retry loop,
# since Redis runs a script alone: of concurrent claims exactly one finds no record. The claim is set
# last, so a write that fails (WRONGTYPE) leaves the delivery unclaimed and GitHub's redelivery retries.
# ARGV: the record, its TTL in seconds, then each command as its word count followed by its words.
CLAIM_AND_WRITE = """
local first = redis.call('GET', KEYS[1])
if first then return first end
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""


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
        self.claim_and_write = redis_client.register_script(CLAIM_AND_WRITE)

    def get(self, hook_id: str, delivery_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(delivery_key(hook_id, delivery_id))
        return json.loads(raw) if raw else None

    def record_once(
        self, hook_id: str, delivery_id: str, outcome: dict[str, Any], then: Callable[[Any], None]
    ) -> tuple[bool, dict[str, Any]]:
        """Record `outcome` unless the delivery is known; `then(pipe)` queues the writes that go with it.

        Returns (True, outcome) when this call recorded it, (False, the first outcome) for a redelivery:
        of any number of concurrent callers exactly one wins, and only the winner's writes land, in the
        same atomic step as its claim. `then` is called on every call (a redelivery's writes are dropped).
        """
        key = delivery_key(hook_id, delivery_id)
        record = {**outcome, "delivery_id": delivery_id, "hook_id": hook_id, "received_at": time.time()}
        # `then` queues on a pipeline that is never executed: rq and RunIndex stay the authors of their
        # keys' layout, and the script replays their commands once it holds the claim
        pipe = self.redis.pipeline()
        pipe.multi()  # as rq expects of a caller's pipeline
        then(pipe)
        args: list[Any] = [json.dumps(record), TTL_SECONDS]
        for command, _options in pipe.command_stack:
            args.append(len(command))
            args.extend(command)
        pipe.reset()
        existing = self.claim_and_write(keys=[key], args=args)
        if existing:
            return False, json.loads(existing)
        return True, record
