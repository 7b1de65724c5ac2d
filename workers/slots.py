"""Build slots: how many steps a worker runs at once, shared by all its pools.

A worker keeps one long poll open on every pool while it has a free slot, so a step waits for no
idle poll of another pool, whatever the mix of work. A slot is taken only when a task arrives, and
polling pauses once every slot is taken. A poll cannot be taken back once it is open (Step Functions
may be handing it a task as the connection closes, and that task would be lost until its heartbeat
timeout), so when several open polls are answered at once the worker runs the extra tasks too: it
runs at most `count + pools - 1` steps at once, and `count` whenever polls are answered one by one.
"""

from __future__ import annotations

import threading

WAIT_SECONDS = 0.2  # how often a waiting poller looks at the stop flag


class SlotPool:
    """A count of free slots; pollers wait for one to be free before they poll, and take it with a task."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._cond = threading.Condition()
        self._taken = 0

    def wait_free(self, stop: threading.Event) -> bool:
        """Block until a slot is free (True) or `stop` is set (False)."""
        with self._cond:
            while not stop.is_set():
                if self._taken < self.count:
                    return True
                self._cond.wait(WAIT_SECONDS)
            return False

    def take(self) -> None:
        """A task arrived: it holds a slot until released (possibly over the count, see the module)."""
        with self._cond:
            self._taken += 1

    def release(self) -> None:
        with self._cond:
            self._taken -= 1
            self._cond.notify_all()

    def free(self) -> int:
        with self._cond:
            return max(0, self.count - self._taken)

    def taken(self) -> int:
        with self._cond:
            return self._taken
