"""Redis keys of the engine and the one script that commits a batch of writes atomically."""

from __future__ import annotations

import json
import socket
import threading
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

# JSON as the engine writes it into Redis; one encoder object (json.dumps with options builds one per call)
to_compact_json = json.JSONEncoder(separators=(",", ":")).encode

# a Redis host that stops answering is noticed after about a minute (30 s idle + 3 probes 10 s apart)
_KEEPALIVE = {socket.TCP_KEEPIDLE: 30, socket.TCP_KEEPINTVL: 10, socket.TCP_KEEPCNT: 3}


class Store:
    """The engine's Redis connections and its atomic commit.

    Each thread keeps one connection of its own (the event loop's, the timer loop's, each
    thread that answers waiting calls): taking one from the pool for every command costs a
    readiness probe and lock hand-offs.
    """

    def __init__(self, url: str, max_connections: int = 1000) -> None:
        # each thread (every GetActivityTask long poll among them) holds one connection, so
        # the pool must outgrow the number of threads. No socket timeout:
        # CPython polls before every read and write of a socket that has one; keepalive
        # notices a Redis host that is gone, and a Redis that dies closes its sockets.
        self._pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=30,
            socket_timeout=None,  # redis-py's default is 5 s: every long poll would time out
            socket_connect_timeout=5,
            socket_keepalive=True,
            socket_keepalive_options=_KEEPALIVE,
            health_check_interval=30,
            decode_responses=True,
        )
        self._local = threading.local()
        self._commit = redis.Redis(connection_pool=self._pool).register_script(_COMMIT_SCRIPT)

    @property
    def redis(self) -> Any:
        """This thread's client, on a connection it keeps until `release_thread`.

        Typed Any: redis-py's stubs answer unions of bytes/str/lists, but decode_responses
        makes every reply text; narrowing each call would only add casts.
        """
        client = getattr(self._local, "client", None)
        if client is None:
            client = redis.Redis(connection_pool=self._pool, single_connection_client=True)
            self._local.client = client
        return client

    def release_thread(self) -> None:
        """Give this thread's connection back to the pool."""
        client = getattr(self._local, "client", None)
        if client is not None:
            self._local.client = None
            client.close()

    def commit(self, guards: Sequence[Op], ops: Sequence[Op]) -> int:
        """Apply `ops` atomically if every guard holds; 0 on success, else the failed guard's index."""
        batch = to_compact_json([guards, ops])
        result: Any = self._commit(keys=[], args=[batch], client=self.redis)
        return int(result)

    def get_json(self, key: str) -> Any:
        text = self.redis.get(key)
        return None if text is None else json.loads(str(text))

    def close(self) -> None:
        self.release_thread()
        self._pool.disconnect()


def chunked_rpush(key: str, values: Sequence[str], size: int = 500) -> list[list[str]]:
    """RPUSH ops of at most `size` values: Lua's unpack has a stack limit of a few thousand."""
    return [["RPUSH", key, *values[i : i + size]] for i in range(0, len(values), size)]
