"""Build slots and back-off: every pool stays polled while slots are free; errors back off, bounded."""

from __future__ import annotations

import threading

from workers.poller import MAX_BACKOFF_SECONDS, backoff_seconds
from workers.slots import SlotPool


def test_a_free_slot_goes_to_the_pool_with_no_open_poll():
    slots, stop = SlotPool(2), threading.Event()
    assert slots.acquire("build", stop) == 0
    assert slots.acquire("build", stop) == 1  # both slots now poll "build"
    got: dict[str, int | None] = {}

    def wait(pool: str) -> None:
        got[pool] = slots.acquire(pool, stop)

    waiters = [threading.Thread(target=wait, args=(pool,)) for pool in ("build", "large")]
    waiters[0].start()  # "build" asks first…
    threading.Event().wait(0.05)
    waiters[1].start()
    threading.Event().wait(0.05)
    slots.poll_ended("build")
    slots.release(0)  # …but "large" has no open poll, so it gets the freed slot
    waiters[1].join(timeout=2)
    assert got == {"large": 0}
    stop.set()
    waiters[0].join(timeout=2)
    assert got["build"] is None


def test_acquire_returns_none_once_stopped():
    slots, stop = SlotPool(1), threading.Event()
    assert slots.acquire("build", stop) == 0
    stop.set()
    assert slots.acquire("build", stop) is None


def test_backoff_grows_and_is_capped():
    assert backoff_seconds(1, lambda: 1.0) == 0.5
    assert backoff_seconds(3, lambda: 1.0) == 2.0
    assert backoff_seconds(30, lambda: 1.0) == MAX_BACKOFF_SECONDS
    assert backoff_seconds(1, lambda: 0.0) == 0.25  # jitter: at least half
