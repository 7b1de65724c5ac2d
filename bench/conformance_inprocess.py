"""Drive the ASL conformance cases through the pure Interpreter in-process, with a fake clock.

    .venv/bin/python bench/conformance_inprocess.py [--cases DIR] [--filter SUBSTR] [--ignore-cause]

Timers fire at once in due order; activity cases get a scripted worker that follows the case's
`activity_worker` spec. Prints one line per failing case and, last, "N passed, M failed".
A measuring instrument, not a test: it reads ../shared/conformance beside the project (matching.py, run.py's compare).
"""

from __future__ import annotations

import argparse
import glob
import heapq
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
CONFORMANCE = str(Path(__file__).resolve().parents[2] / "shared" / "conformance")
sys.path.insert(1, CONFORMANCE)

from matching import Redactions  # noqa: E402
from run import compare  # noqa: E402

from statemachines.engine.asl.interpreter import Interpreter  # noqa: E402

REGION, ACCOUNT = "us-east-1", "123456789012"
ACTIVITY_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:activity:conformance-activity"
START_MS = 1_732_500_000_000
MAX_STEPS = 100_000


class FakeIds:
    """Deterministic tokens, UUIDs and randomness."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)

    def token(self) -> str:
        return f"token-{next(self.counter):06d}"

    def uuid(self) -> str:
        return f"3f2b8c9e-1d4a-4c6b-9e7f-{next(self.counter):012x}"

    def random(self) -> float:
        return 0.5


def substitute(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, dict):
        return {k: substitute(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [substitute(v, old, new) for v in obj]
    return new if obj == old else obj


def definition_problems(definition: Any, machine_type: str) -> list[str]:
    """Validation diagnostics (empty when the definition is accepted)."""
    from statemachines.engine.asl import validation

    try:
        return [f"{d.code}: {d.message}" for d in validation.validate_definition(definition, machine_type)]
    except TypeError:
        return [f"{d.code}: {d.message}" for d in validation.validate_definition(definition)]


def execution_for(case: dict[str, Any]) -> dict[str, Any]:
    express = case.get("type", "STANDARD") == "EXPRESS"
    kind = "express" if express else "execution"
    name = "conformance-exec"
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:{kind}:conformance-sm:{name}"
    if express:
        arn += ":7d2c1e4b-5a6f-4b8c-9d0e-1f2a3b4c5d6e"
    return {
        "arn": arn,
        "name": name,
        "state_machine_arn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:conformance-sm",
        "state_machine_name": "conformance-sm",
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/conformance",
        "start_time_ms": START_MS,
        "redrive_count": None if express else 0,
    }


class Simulation:
    """A fake clock and the service's side: timers and the scripted activity worker."""

    def __init__(self, interp: Interpreter, worker: dict[str, Any] | None) -> None:
        self.interp = interp
        self.worker = worker
        self.now = START_MS
        self.queue: list[tuple[int, int, dict[str, Any]]] = []
        self.seq = itertools.count()
        self.timers: dict[str, int] = {}
        self.ids = FakeIds()

    def apply(self, effects: list[dict[str, Any]]) -> None:
        for effect in effects:
            kind = effect["type"]
            if kind == "SetTimer":
                self.timers[effect["timer"]] = effect["due_ms"]
                self.push(effect["due_ms"], {"type": "TimerFired", "timer": effect["timer"]})
            elif kind == "ClearTimer":
                self.timers.pop(effect["timer"], None)
            elif kind == "ScheduleActivity" and self.worker and not self.worker.get("activity_deleted"):
                self.script_worker(effect)

    def script_worker(self, effect: dict[str, Any]) -> None:
        assert self.worker is not None
        token, at = effect["token"], self.now
        self.push(
            at, {"type": "ActivityStarted", "token": token, "worker_name": self.worker.get("worker_name")}
        )
        for step in self.worker.get("steps", []):
            if "sleep" in step:
                at += int(step["sleep"] * 1000)
            elif step.get("heartbeat"):
                self.push(at, {"type": "TaskHeartbeat", "token": token})
        final = self.worker.get("final", {})
        if "success" in final:
            self.push(at, {"type": "TaskSucceeded", "token": token, "output": effect["input"]})
        elif "failure" in final:
            event = {
                "type": "TaskFailed",
                "token": token,
                "error": final["failure"]["error"],
                "cause": effect["input"],
            }
            self.push(at, event)

    def push(self, due: int, event: dict[str, Any]) -> None:
        heapq.heappush(self.queue, (due, next(self.seq), event))

    def run(self, definition_input: str, execution: dict[str, Any]) -> dict[str, Any]:
        out = self.interp.start(execution, definition_input, self.now, self.ids)
        self.apply(out.effects)
        state = out.state
        steps = 0
        while state["status"] == "RUNNING" and self.queue and steps < MAX_STEPS:
            steps += 1
            due, _, event = heapq.heappop(self.queue)
            if event["type"] == "TimerFired" and self.timers.get(event["timer"]) != due:
                continue  # cleared or re-armed since
            self.now = max(self.now, due)
            out = self.interp.advance(state, event, self.now, self.ids)
            self.apply(out.effects)
            state = out.state
        return state


def run_case(case: dict[str, Any]) -> list[str]:
    definition = substitute(case.get("definition"), "${ActivityArn}", ACTIVITY_ARN)
    if "definition_string" in case:
        definition = json.loads(case["definition_string"])
    expect = case["expect"]
    problems = definition_problems(definition, case.get("type", "STANDARD"))
    if "create_error" in expect:
        return (
            []
            if problems
            else [f"create: expected {expect['create_error']}, but the definition was accepted"]
        )
    if problems:
        return [f"create failed: {problems[:2]}"]
    text = case["input_string"] if "input_string" in case else json.dumps(case.get("input", {}))
    worker = case.get("activity_worker") or {}
    interp = Interpreter(definition, activity_exists=lambda arn: not worker.get("activity_deleted"))
    sim = Simulation(interp, case.get("activity_worker"))
    try:
        state = sim.run(text, execution_for(case))
    except Exception as exc:  # the core must never raise: report it as the failure it is
        return [f"interpreter raised {type(exc).__name__}: {exc}"]
    if state["status"] == "RUNNING":
        return ["execution never ended (no timers or events left)"]
    actual = {k: state.get(k) for k in ("status", "output", "error", "cause")}
    return compare(expect, actual, Redactions(case.get("redactions")), ARGS.ignore_cause)


def main() -> int:
    cases = []
    for path in sorted(glob.glob(os.path.join(ARGS.cases, "*.json"))):
        with open(path) as fh:
            case = json.load(fh)
        if not ARGS.filter or ARGS.filter in case["name"]:
            cases.append(case)
    passed = failed = 0
    for case in cases:
        problems = run_case(case)
        if problems:
            failed += 1
            print(f"FAIL {case['name']}: " + " | ".join(problems))
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--cases", default=os.path.join(CONFORMANCE, "cases"))
parser.add_argument("--filter", default=None)
parser.add_argument("--ignore-cause", action="store_true")
ARGS = parser.parse_args()

if __name__ == "__main__":
    sys.exit(main())
