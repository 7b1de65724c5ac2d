"""Committing what the interpreter decided: new state, history events and effects in one atomic step."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .backend import Backend, now_ms
from .store import (
    TIMERS,
    Op,
    chunked_rpush,
    done_key,
    execution_key,
    history_key,
    queue_key,
    to_compact_json,
    token_key,
)

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# a closed token answers TaskTimedOut for a while, then InvalidToken
CLOSED_TOKEN_TTL_S = 7 * 24 * 3600
RETENTION_S = 90 * 24 * 3600
MAX_ATTEMPTS = 100
# the timer loop polls this often anyway; a timer due sooner wakes it at once
_SOON_MS = 100


def timer_member(exec_arn: str, timer: str) -> str:
    return f"{exec_arn}|{timer}"


def outcome_ops(svc: Backend, exec_arn: str, version: int, out: Any) -> list[Op]:
    """The writes that make `out` (an interpreter Outcome) durable, version bump included."""
    key = execution_key(exec_arn)
    state = out.state
    status = state["status"]
    ops: list[Op] = [
        [
            "HSET",
            key,
            "ver",
            str(version + 1),
            "state",
            to_compact_json(state),
            "status",
            status,
        ]
    ]
    events = [to_compact_json(event) for event in out.events]
    ops.extend(chunked_rpush(history_key(exec_arn), events))
    ops.extend(effect_ops(svc, exec_arn, out.effects))
    if status in TERMINAL:
        ops.append(["HSET", key, *_closing_fields(state, out.events)])
        ops.append(["RPUSH", done_key(exec_arn), status])
        ops.append(["EXPIRE", done_key(exec_arn), "600"])
        # AWS keeps a closed execution (and reserves its name) for 90 days
        ops.append(["EXPIRE", key, str(RETENTION_S)])
        ops.append(["EXPIRE", history_key(exec_arn), str(RETENTION_S)])
    return ops


def _closing_fields(state: dict[str, Any], events: Sequence[dict[str, Any]]) -> list[str]:
    stop_s = events[-1]["timestamp"] if events else now_ms() / 1000
    fields = ["stop_s", repr(float(stop_s))]
    for name in ("output", "error", "cause"):
        if state.get(name) is not None:
            fields += [name, str(state[name])]
    return fields


def effect_ops(svc: Backend, exec_arn: str, effects: Sequence[dict[str, Any]]) -> list[Op]:
    ops: list[Op] = []
    cancelled = [e["token"] for e in effects if e["type"] == "CancelTask"]
    activities = _token_activities(svc, cancelled)
    for effect in effects:
        ops.extend(EFFECTS[effect["type"]](svc, exec_arn, effect, activities))
    return ops


def _token_activities(svc: Backend, tokens: list[str]) -> dict[str, str | None]:
    if not tokens:
        return {}
    pipe = svc.redis.pipeline(transaction=False)
    for token in tokens:
        pipe.hget(token_key(token), "activity")
    return dict(zip(tokens, pipe.execute(), strict=True))


def _schedule_activity(svc: Backend, exec_arn: str, effect: dict[str, Any], _: Any) -> list[Op]:
    token = effect["token"]
    fields = ["exec", exec_arn, "kind", "activity", "activity", effect["activity_arn"]]
    fields += ["input", effect["input"], "status", "open"]
    return [["HSET", token_key(token), *fields], ["RPUSH", queue_key(effect["activity_arn"]), token]]


def _await_callback(svc: Backend, exec_arn: str, effect: dict[str, Any], _: Any) -> list[Op]:
    return [["HSET", token_key(effect["token"]), "exec", exec_arn, "kind", "callback", "status", "open"]]


def _cancel_task(svc: Backend, exec_arn: str, effect: dict[str, Any], activities: dict[str, Any]) -> list[Op]:
    token = effect["token"]
    ops: list[Op] = close_token_ops(token)
    activity = activities.get(token)
    if activity:
        ops.append(["LREM", queue_key(activity), "0", token])
    return ops


def close_token_ops(token: str) -> list[Op]:
    """A token no longer wanted: SendTask* on it answers TaskTimedOut."""
    key = token_key(token)
    return [
        ["HSET", key, "status", "closed"],
        ["HDEL", key, "input"],
        ["EXPIRE", key, str(CLOSED_TOKEN_TTL_S)],
    ]


def _set_timer(svc: Backend, exec_arn: str, effect: dict[str, Any], _: Any) -> list[Op]:
    due = int(effect["due_ms"])
    if due - now_ms() < _SOON_MS:
        svc.timer_wakeup.set()
    return [["ZADD", TIMERS, str(due), timer_member(exec_arn, effect["timer"])]]


def _clear_timer(svc: Backend, exec_arn: str, effect: dict[str, Any], _: Any) -> list[Op]:
    return [["ZREM", TIMERS, timer_member(exec_arn, effect["timer"])]]


EFFECTS: dict[str, Callable[[Backend, str, dict[str, Any], dict[str, Any]], list[Op]]] = {
    "ScheduleActivity": _schedule_activity,
    "AwaitCallback": _await_callback,
    "CancelTask": _cancel_task,
    "SetTimer": _set_timer,
    "ClearTimer": _clear_timer,
}


def is_empty(out: Any) -> bool:
    """The core ignored the event (unknown token or timer)."""
    return not out.events and not out.effects
