"""The timer loop: fires due timers (Wait, TimeoutSeconds, HeartbeatSeconds, Retry) from Redis."""

from __future__ import annotations

import logging
import threading

import redis

from .activities import requeue_inflight, requeue_stranded
from .backend import Backend, now_ms
from .event_batches import advance
from .store import ENGINES, TIMERS, execution_key

log = logging.getLogger(__name__)

BATCH = 200
HEARTBEAT_EVERY_MS = 2000
DEAD_ENGINE_MS = 30_000
SWEEP_EVERY_MS = 1000
FAILED_TIMER_DELAY_MS = 5_000
# deviation: timers that came due before this engine started (while no engine ran, if it was
# the only one) wait this long after its start, so that workers retrying through the outage
# take their queued tasks and deliver their answers before the tasks' timeouts fire
RESTART_GRACE_MS = 5_000


class DueTimers:
    """One read of the timer set: the timers due now (at most a batch) and when the next one is due."""

    def __init__(self, svc: Backend, since: int | str = "-inf", limit: int = BATCH) -> None:
        now = now_ms()
        pipe = svc.redis.pipeline(transaction=False)
        pipe.zrangebyscore(TIMERS, since, now, start=0, num=limit, withscores=True)
        pipe.zrangebyscore(TIMERS, f"({now}", "+inf", start=0, num=1, withscores=True)
        due, following = pipe.execute()
        # due times are whole milliseconds, which ZSCORE replies as an integer text
        self.timers = [(str(member), str(int(score))) for member, score in due]
        self.next_due_ms = int(following[0][1]) if following else None
        self.full = len(due) >= limit

    def wait_s(self, interval: float) -> float:
        """How long to sleep: until the next timer is due, at most `interval` (timers other
        engines arm are seen within it; this engine's own commits wake the loop sooner)."""
        if self.next_due_ms is None:
            return interval
        return min(interval, max(0.0, (self.next_due_ms - now_ms()) / 1000))


def fire_due_timers(svc: Backend, limit: int = BATCH, since: int | str = "-inf") -> DueTimers:
    """Fire every timer due now and not before `since` (at most `limit`), one after another.

    In turn, not on a pool of threads: a firing is CPU-bound under the GIL (0.4-0.5 ms), and
    8 threads fired a burst no faster while costing about 30% more engine CPU
    (bench/growth_bench.py); more cores take ENGINE_PROCESSES."""
    read = DueTimers(svc, since, limit)
    for member, score in read.timers:
        fire_timer(svc, member, score)
    return read


def fire_timer(svc: Backend, member: str, score: str) -> None:
    """Advance the timer's execution. Any engine may race us: the commit only happens while the
    timer still has the score we read (not re-armed, not fired by another engine)."""
    exec_arn, _, timer = member.rpartition("|")
    guard = [["ZSCORE", TIMERS, member, score]]
    remove = [["ZREM", TIMERS, member]]
    try:
        out = advance(svc, exec_arn, {"type": "TimerFired", "timer": timer}, guards=guard, first_ops=remove)
    except (redis.ConnectionError, redis.TimeoutError):
        raise  # Redis is down, not this execution broken: the timer loop says so once and retries
    except Exception:
        log.exception("%s: firing timer %s failed; retrying in %s ms", exec_arn, timer, FAILED_TIMER_DELAY_MS)
        # push it back (unless it changed meanwhile) so one broken execution cannot spin the loop
        later = str(now_ms() + FAILED_TIMER_DELAY_MS)
        svc.store.commit(guard, [["ZADD", TIMERS, "XX", later, member]])
        return
    if out is None and not svc.redis.exists(execution_key(exec_arn)):
        svc.redis.zrem(TIMERS, member)  # the execution was deleted: nothing will ever clear it


class TimerLoop(threading.Thread):
    """Daemon thread firing timers; wakes early when a commit arms a timer due soon."""

    def __init__(self, svc: Backend) -> None:
        super().__init__(name="engine-timers", daemon=True)
        self.svc = svc
        self.stopping = threading.Event()
        self._last_heartbeat = 0
        self._last_sweep = 0
        self._inflight_seen: set[str] = set()
        self._redis_down = False
        self.started_ms = now_ms()

    def run(self) -> None:
        interval = self.svc.config.timer_interval_s
        while not self.stopping.is_set():
            wait_s = interval
            try:
                read = fire_due_timers(self.svc, since=self._overdue_since())
                busy, wait_s = read.full, read.wait_s(interval)
                self._heartbeat()
                self._sweep_own_inflight()
                if self._redis_down:
                    log.info("timer loop: Redis answers again")
                self._redis_down = False
            except redis.RedisError as exc:
                # once per outage: Redis stopping before the engine (`make run`'s Ctrl-C) is routine
                if not self._redis_down and not self.stopping.is_set():
                    log.warning("timer loop: Redis unavailable (%s); retrying", exc)
                self._redis_down = True
                busy = False
                self.stopping.wait(0.5)
            if not busy:
                self.svc.timer_wakeup.wait(wait_s)
                self.svc.timer_wakeup.clear()

    def _overdue_since(self) -> int | str:
        in_grace = now_ms() - self.started_ms < RESTART_GRACE_MS
        return self.started_ms if in_grace else "-inf"

    def _heartbeat(self) -> None:
        now = now_ms()
        if now - self._last_heartbeat < HEARTBEAT_EVERY_MS:
            return
        self._last_heartbeat = now
        self.svc.redis.hset(ENGINES, self.svc.config.engine_id, str(now))
        for engine_id, seen in self.svc.redis.hgetall(ENGINES).items():
            if engine_id != self.svc.config.engine_id and now - int(seen) > DEAD_ENGINE_MS:
                # an engine that stopped beating (and was not restarted under its id) may
                # have popped tasks it never handed out
                requeue_inflight(self.svc, engine_id)
                self.svc.redis.hdel(ENGINES, engine_id)

    def _sweep_own_inflight(self) -> None:
        # a hand-out takes milliseconds: a token left in our list that no thread of ours holds
        # was stranded by a Redis failure and goes back within a second or two of Redis answering
        now = now_ms()
        if now - self._last_sweep < SWEEP_EVERY_MS:
            return
        self._last_sweep = now
        self._inflight_seen = requeue_stranded(self.svc, self._inflight_seen)

    def stop(self) -> None:
        self.stopping.set()
        self.svc.timer_wakeup.set()
