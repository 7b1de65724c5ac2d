"""The running engine's shared parts: config, Redis store, ARN maker, clock, ids and interpreters."""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from .api_errors import InternalFailure
from .arns import ArnMaker
from .config import EngineConfig
from .definition import load_definition
from .interpreter import Interpreter
from .store import Store, definition_key


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


class Service:
    """Everything an API handler needs; one per engine process."""

    def __init__(self, config: EngineConfig, store: Store | None = None) -> None:
        self.config = config
        self.store = store or Store(config.redis_url)
        self.redis: Any = self.store.redis
        self.arns = ArnMaker(config.region, config.account_id)
        self.ids = Ids()
        self._interpreters: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        # set by a commit that arms a timer due soon, so the timer loop wakes at once
        self.timer_wakeup = threading.Event()

    def interpreter(self, definition_digest: str) -> Any:
        """The Interpreter for a stored definition revision (cached: parsing is the slow part)."""
        with self._lock:
            interp = self._interpreters.get(definition_digest)
            if interp is not None:
                self._interpreters.move_to_end(definition_digest)
                return interp
        text = self.redis.get(definition_key(definition_digest))
        if text is None:
            raise InternalFailure(f"definition {definition_digest} is missing from Redis")
        interp = build_interpreter(str(text))
        with self._lock:
            self._interpreters[definition_digest] = interp
            while len(self._interpreters) > 256:
                self._interpreters.popitem(last=False)
        return interp


def build_interpreter(text: str, machine_type: str = "STANDARD") -> Any:
    """Parse, validate and wrap a definition; raises InvalidDefinitionError with every problem."""
    return Interpreter(load_definition(text, machine_type))
