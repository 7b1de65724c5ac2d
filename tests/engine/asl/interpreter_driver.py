"""Drives the pure Interpreter as the service would, with a fake clock, for the engine's tests."""

from __future__ import annotations

import itertools
import json
from typing import Any

from statemachines.engine.asl.interpreter import Interpreter, Outcome

START_MS = 1_700_000_000_000
ACTIVITY = "arn:aws:states:us-east-1:123456789012:activity:build"
EXECUTION = {
    "arn": "arn:aws:states:us-east-1:123456789012:execution:pipeline:run-1",
    "name": "run-1",
    "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline",
    "state_machine_name": "pipeline",
    "role_arn": "arn:aws:iam::123456789012:role/stepline",
    "start_time_ms": START_MS,
    "redrive_count": 0,
}


class FakeIds:
    """Deterministic tokens and UUIDs; `random()` returns a fixed value tests can set."""

    def __init__(self, random_value: float = 0.5) -> None:
        self.counter = itertools.count(1)
        self.random_value = random_value

    def token(self) -> str:
        return f"token-{next(self.counter)}"

    def uuid(self) -> str:
        return f"00000000-0000-4000-8000-{next(self.counter):012d}"

    def random(self) -> float:
        return self.random_value


class Driver:
    """One execution: keeps the state (round-tripped through JSON, as Redis would), timers and tokens."""

    def __init__(self, definition: dict[str, Any], input_value: Any = None, **execution: Any) -> None:
        self.interp = Interpreter(definition)
        self.ids = FakeIds()
        self.now = START_MS
        self.timers: dict[str, int] = {}
        self.open_tokens: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.effects: list[dict[str, Any]] = []
        self.execution = {**EXECUTION, **execution}
        text = json.dumps({} if input_value is None else input_value)
        self.absorb(self.interp.start(self.execution, text, self.now, self.ids))

    def absorb(self, out: Outcome) -> Outcome:
        self.state = json.loads(json.dumps(out.state))  # the service persists JSON text
        self.events += out.events
        self.effects += out.effects
        for effect in out.effects:
            kind = effect["type"]
            if kind == "SetTimer":
                self.timers[effect["timer"]] = effect["due_ms"]
            elif kind == "ClearTimer":
                self.timers.pop(effect["timer"], None)
            elif kind in ("ScheduleActivity", "AwaitCallback"):
                self.open_tokens[effect["token"]] = effect
            elif kind == "CancelTask":
                self.open_tokens.pop(effect["token"], None)
                self.cancelled.append(effect["token"])
        return out

    def send(self, event: dict[str, Any], after_ms: int = 0) -> Outcome:
        self.now += after_ms
        if event.get("type") in ("TaskSucceeded", "TaskFailed"):
            self.open_tokens.pop(event.get("token", ""), None)
        return self.absorb(self.interp.advance(self.state, event, self.now, self.ids))

    def succeed(self, token: str, output: Any) -> Outcome:
        return self.send({"type": "TaskSucceeded", "token": token, "output": json.dumps(output)})

    def fail(self, token: str, error: str, cause: str | None = None) -> Outcome:
        return self.send({"type": "TaskFailed", "token": token, "error": error, "cause": cause})

    def fire_next_timer(self) -> Outcome:
        timer, due = min(self.timers.items(), key=lambda item: (item[1], item[0]))
        del self.timers[timer]
        self.now = max(self.now, due)
        return self.send({"type": "TimerFired", "timer": timer})

    def run_timers(self, limit: int = 1000) -> None:
        while self.timers and self.status == "RUNNING" and limit:
            self.fire_next_timer()
            limit -= 1

    def redrive(self) -> Outcome:
        return self.absorb(self.interp.redrive(self.state, self.now, self.ids))

    def tokens(self, kind: str = "ScheduleActivity") -> list[str]:
        return [token for token, effect in self.open_tokens.items() if effect["type"] == kind]

    def task_input(self, token: str) -> Any:
        return json.loads(self.open_tokens[token]["input"])

    @property
    def status(self) -> str:
        return str(self.state["status"])

    @property
    def output(self) -> Any:
        return json.loads(self.state["output"])

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    def details(self, event_type: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for event in self.events:
            if event["type"] == event_type:
                found.append(next((v for k, v in event.items() if k.endswith("EventDetails")), {}))
        return found
