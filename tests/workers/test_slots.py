"""Build slots and back-off: every pool stays polled while slots are free; errors back off, bounded."""

from __future__ import annotations

import threading

from workers.poller import MAX_BACKOFF_SECONDS, backoff_seconds
from workers.slots import SlotPool


def test_pollers_wait_while_every_slot_is_taken_and_go_on_when_one_is_freed():
    slots, stop = SlotPool(2), threading.Event()
    assert slots.wait_free(stop)
    slots.take()
    slots.take()
    assert slots.free() == 0
    waiting = threading.Thread(target=slots.wait_free, args=(stop,))
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive()  # no poll opens while the worker is full
    slots.release()
    waiting.join(timeout=5)
    assert not waiting.is_alive() and slots.free() == 1


def test_tasks_answered_at_once_all_run_and_are_counted():
    slots = SlotPool(1)
    slots.take()
    slots.take()  # two pools' polls answered together: both tasks run
    assert slots.taken() == 2 and slots.free() == 0
    slots.release()
    assert slots.free() == 0
    slots.release()
    assert slots.free() == 1


def test_wait_free_returns_false_once_stopped():
    slots, stop = SlotPool(1), threading.Event()
    slots.take()
    stop.set()
    assert slots.wait_free(stop) is False


def test_backoff_grows_and_is_capped():
    assert backoff_seconds(1, lambda: 1.0) == 0.5
    assert backoff_seconds(3, lambda: 1.0) == 2.0
    assert backoff_seconds(30, lambda: 1.0) == MAX_BACKOFF_SECONDS
    assert backoff_seconds(1, lambda: 0.0) == 0.25  # jitter: at least half
