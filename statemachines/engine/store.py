"""Redis keys of the engine and the one script that commits a batch of writes atomically."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

# Every key of the engine, in one place (the README's "Service" section explains each).
PREFIX = "sfn:"
STATE_MACHINES = PREFIX + "sms"  # zset: state machine ARN by creation ms
ACTIVITIES = PREFIX + "acts"  # zset: activity ARN by creation ms
TIMERS = PREFIX + "timers"  # zset: "<execution ARN>|<timer id>" by due ms
ENGINES = PREFIX + "engines"  # hash: engine id -> last heartbeat ms


def state_machine_key(arn: str) -> str:
    return f"{PREFIX}sm:{arn}"  # hash: doc (JSON), next_version


def versions_key(sm_arn: str) -> str:
    return f"{PREFIX}smv:{sm_arn}"  # zset: version ARN by version number


def aliases_key(sm_arn: str) -> str:
    return f"{PREFIX}sma:{sm_arn}"  # zset: alias ARN by creation ms


def alias_key(alias_arn: str) -> str:
    return f"{PREFIX}alias:{alias_arn}"  # string: alias doc (JSON)


def definition_key(digest: str) -> str:
    return f"{PREFIX}def:{digest}"  # string: definition text, content-addressed


def activity_key(arn: str) -> str:
    return f"{PREFIX}act:{arn}"  # string: activity doc (JSON)


def tags_key(arn: str) -> str:
    return f"{PREFIX}tags:{arn}"  # hash: tag key -> value


def execution_key(arn: str) -> str:
    return f"{PREFIX}x:{arn}"  # hash: ver, meta, state, status, output, error, cause, stop_ms, ...


def history_key(arn: str) -> str:
    return f"{PREFIX}h:{arn}"  # list: history events (JSON), event id n at index n-1


def executions_key(sm_arn: str) -> str:
    return f"{PREFIX}xs:{sm_arn}"  # zset: execution ARN by start ms


def done_key(arn: str) -> str:
    return f"{PREFIX}done:{arn}"  # list: pushed once when the execution closes (StartSyncExecution waits)


def token_key(token: str) -> str:
    return f"{PREFIX}t:{token}"  # hash: exec, activity, input, status (open|closed), kind


def queue_key(activity_arn: str) -> str:
    return f"{PREFIX}q:{activity_arn}"  # list: task tokens waiting for a GetActivityTask


def inflight_key(engine_id: str) -> str:
    return f"{PREFIX}inflight:{engine_id}"  # list: tokens popped by this engine, not yet marked started


# Guards are [command, key, args..., expected]: each command's reply (nil as "") must equal the
# expected string, else nothing is written and the 1-based index of the failed guard returns.
# Then every op runs. Redis runs a script alone, so the check and the writes are one step.
_COMMIT_SCRIPT = """
local batch = cjson.decode(ARGV[1])
for i, guard in ipairs(batch[1]) do
  local expected = table.remove(guard)
  local actual = redis.call(unpack(guard))
  if actual == false or actual == nil then actual = '' end
  if tostring(actual) ~= expected then return i end
end
for _, op in ipairs(batch[2]) do redis.call(unpack(op)) end
return 0
"""

Op = list[str]


class Store:
    """The engine's Redis connection pool and its atomic commit."""

    def __init__(self, url: str, max_connections: int = 600) -> None:
        # each GetActivityTask long poll holds one connection while it blocks, so the pool
        # must outgrow the number of pollers; socket timeout outlasts the 60 s poll
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=30,
            socket_timeout=75,
            socket_connect_timeout=5,
            health_check_interval=30,
            decode_responses=True,
        )
        # typed Any: redis-py's stubs answer unions of bytes/str/lists, but decode_responses makes
        # every reply text; narrowing each call would only add casts
        self.redis: Any = redis.Redis(connection_pool=pool)
        self._commit = self.redis.register_script(_COMMIT_SCRIPT)

    def commit(self, guards: Sequence[Op], ops: Sequence[Op]) -> int:
        """Apply `ops` atomically if every guard holds; 0 on success, else the failed guard's index."""
        batch = json.dumps([[list(g) for g in guards], [list(o) for o in ops]])
        result: Any = self._commit(keys=[], args=[batch])
        return int(result)

    def get_json(self, key: str) -> Any:
        text = self.redis.get(key)
        return None if text is None else json.loads(str(text))

    def close(self) -> None:
        self.redis.close()
        self.redis.connection_pool.disconnect()


def chunked_rpush(key: str, values: Sequence[str], size: int = 500) -> list[list[str]]:
    """RPUSH ops of at most `size` values: Lua's unpack has a stack limit of a few thousand."""
    return [["RPUSH", key, *values[i : i + size]] for i in range(0, len(values), size)]
