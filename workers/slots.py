"""Build slots: how many tasks a worker runs at once, handed to its pollers so every pool stays polled."""

from __future__ import annotations

import itertools
import threading
from collections import Counter

WAIT_SECONDS = 0.2  # how often a waiting poller looks at the stop flag


class SlotPool:
    """A fixed set of numbered slots; a poller holds one while it polls and while it runs the task it got.

    A free slot goes to the waiting poller whose pool has the fewest open polls (first come on ties),
    so one busy pool cannot keep another pool unpolled while slots are free.
    """

    def __init__(self, count: int) -> None:
        self._cond = threading.Condition()
        self._free = list(range(count))
        self._waiting: list[tuple[int, str]] = []
        self._polling: Counter[str] = Counter()
        self._tickets = itertools.count()

    def acquire(self, pool: str, stop: threading.Event) -> int | None:
        """A slot to poll `pool` with, or None once `stop` is set."""
        ticket = (next(self._tickets), pool)
        with self._cond:
            self._waiting.append(ticket)
            try:
                while not stop.is_set():
                    if self._free and self._next_waiter() == ticket:
                        self._polling[pool] += 1
                        return self._free.pop(0)
                    self._cond.wait(WAIT_SECONDS)
                return None
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def poll_ended(self, pool: str) -> None:
        """The poll of `pool` returned (with a task or not): its slot no longer counts as polling."""
        with self._cond:
            self._polling[pool] -= 1
            self._cond.notify_all()

    def release(self, slot: int) -> None:
        with self._cond:
            self._free.append(slot)
            self._free.sort()
            self._cond.notify_all()

    def free(self) -> int:
        with self._cond:
            return len(self._free)

    def _next_waiter(self) -> tuple[int, str]:
        return min(self._waiting, key=lambda ticket: (self._polling[ticket[1]], ticket[0]))
