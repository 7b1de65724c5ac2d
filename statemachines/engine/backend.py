"""The running engine's shared parts: config, Redis store, ARN maker, clock, ids and interpreters."""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .api_errors import InternalFailure
from .arns import ArnMaker
from .asl.definition import load_definition
from .asl.interpreter import Interpreter
from .config import EngineConfig
from .store import Store, activity_key, definition_key


class Ids:
    """What the interpreter draws ids from: task tokens are unguessable and carry no ARN."""

    def token(self) -> str:
        return secrets.token_urlsafe(48)

    def uuid(self) -> str:
        return str(uuid.uuid4())

    def random(self) -> float:
        return random.random()


# Whether the caller of the request being handled is still connected; the HTTP layer sets it,
# GetActivityTask asks it before handing a task out (a gone poller would swallow the task).
client_connected: ContextVar[Callable[[], bool]] = ContextVar("client_connected", default=lambda: True)


def now_ms() -> int:
    """The wall clock in epoch milliseconds, as the interpreter and history events take it."""
    return time.time_ns() // 1_000_000


def digest(text: str) -> str:
    """The content address of a definition."""
    return hashlib.sha256(text.encode()).hexdigest()


class HandOuts:
    """Tokens the threads of this process popped and are handing out right now."""

    def __init__(self) -> None:
        self._tokens: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def holding(self, token: str) -> Iterator[None]:
        with self._lock:
            self._tokens.add(token)
        try:
            yield
        finally:
            with self._lock:
                self._tokens.discard(token)

    def tokens(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._tokens)


class LruCache:
    """A bounded map for many threads: the least recently used entry goes first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def discard(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


class Backend:
    """Everything an API handler needs; one per engine process."""

    def __init__(self, config: EngineConfig, store: Store | None = None) -> None:
        self.config = config
        self.store = store or Store(config.redis_url)
        self.arns = ArnMaker(config.region, config.account_id)
        self.ids = Ids()
        # by definition digest: a definition's text never changes, so these never go stale
        self._interpreters = LruCache(256)
        # state machine, version and alias documents as last read, key -> (stored text, parsed):
        # may be stale (another engine changed them), so only a commit that checks they are
        # still that text may use them (see versions.resolve_target)
        self.documents = LruCache(256)
        # what the in-flight sweep must leave alone (see activities.requeue_stranded)
        self.hand_outs = HandOuts()
        # set by a commit that arms a timer due soon, so the timer loop wakes at once
        self.timer_wakeup = threading.Event()
        # set when the process shuts down: calls then failing had their Redis connection closed
        self.stopping = threading.Event()

    @property
    def redis(self) -> Any:
        """The calling thread's Redis client (see Store.redis)."""
        return self.store.redis

    def interpreter(self, definition_digest: str) -> Any:
        """The Interpreter for a stored definition revision (cached: parsing is the slow part)."""
        interp = self._interpreters.get(definition_digest)
        if interp is not None:
            return interp
        text = self.redis.get(definition_key(definition_digest))
        if text is None:
            raise InternalFailure(f"definition {definition_digest} is missing from Redis")
        interp = build_interpreter(str(text), activity_exists=self.activity_exists)
        self._interpreters.put(definition_digest, interp)
        return interp

    def activity_exists(self, arn: str) -> bool:
        """Whether the activity is there now: a Task on a deleted one fails at once, as on AWS, not at its timeout."""
        return bool(self.redis.exists(activity_key(arn)))


def build_interpreter(
    text: str, machine_type: str = "STANDARD", activity_exists: Callable[[str], bool] | None = None
) -> Any:
    """Parse, validate and wrap a definition; raises InvalidDefinitionError with every problem."""
    return Interpreter(load_definition(text, machine_type), activity_exists)
