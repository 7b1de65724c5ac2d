"""The Interpreter: start, advance and redrive one execution of a validated definition (pure core)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import history, offload
from .errors import StatesError
from .frame import Frame
from .retry import Failure
from .runtime import Runtime
from .state_base import State
from .state_choice import ChoiceState
from .state_fail import FailState
from .state_map import MapState
from .state_parallel import ParallelState
from .state_pass import PassState
from .state_succeed import SucceedState
from .state_task import TaskState
from .state_wait import WaitState

STATE_TYPES: dict[str, type[State]] = {
    "Task": TaskState,
    "Pass": PassState,
    "Wait": WaitState,
    "Choice": ChoiceState,
    "Parallel": ParallelState,
    "Map": MapState,
    "Succeed": SucceedState,
    "Fail": FailState,
}
REDRIVABLE = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
EXECUTION_TIMEOUT = "exec"


@dataclass
class Outcome:
    """What one call decided: the new state, new history events in order, and effects for the service."""

    state: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    effects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.state["status"])


@dataclass(frozen=True)
class Program:
    """One list of states: the top level, a Parallel branch or a Map's ItemProcessor."""

    start_at: str
    states: dict[str, State]


class Interpreter:
    """Runs executions of one definition; holds no execution data between calls."""

    def __init__(
        self, definition: dict[str, Any], activity_exists: Callable[[str], bool] | None = None
    ) -> None:
        """`activity_exists(arn)` (optional) lets a Task on a deleted activity fail as AWS's does."""
        self.definition = definition
        self.activity_exists = activity_exists
        self.query_language = definition.get("QueryLanguage", "JSONPath")
        self.programs: dict[str, Program] = {}
        self.compile_program("", definition)

    def compile_program(self, key: str, block: Any) -> None:
        """Build the states of one block; a malformed one (unvalidated input) compiles to no states,
        so running it fails the execution with States.Runtime instead of raising here."""
        block = block if isinstance(block, dict) else {}
        states: dict[str, State] = {}
        raw_states = block.get("States")
        for name, defn in (raw_states if isinstance(raw_states, dict) else {}).items():
            if not isinstance(defn, dict):
                continue
            state_class = STATE_TYPES.get(str(defn.get("Type")))
            if state_class is None:
                continue  # unvalidated input: reaching this state fails the execution (States.Runtime)
            states[name] = state_class(name, defn, key, self.query_language)
            if defn.get("Type") == "Parallel":
                for index, branch in enumerate(defn.get("Branches") or []):
                    self.compile_program(f"{key}/{name}#{index}", branch)
            elif defn.get("Type") == "Map":
                self.compile_program(f"{key}/{name}", defn.get("ItemProcessor") or defn.get("Iterator") or {})
        self.programs[key] = Program(str(block.get("StartAt", "")), states)

    def arm_execution_timeout(self, rt: Runtime) -> None:
        """The definition's TimeoutSeconds, counted from the start (or from a redrive)."""
        timeout = self.definition.get("TimeoutSeconds")
        if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0:
            rt.set_timer(None, EXECUTION_TIMEOUT, rt.now + timeout * 1000)

    def state_of(self, frame: Frame) -> State:
        return self.programs[frame["p"]].states[frame["s"]]

    # ---- the contract ----------------------------------------------------------------------------

    def start(self, execution: dict[str, Any], input_json: str, now_ms: int, ids: Any) -> Outcome:
        """A new execution: ExecutionStarted, then run until every frame blocks or it ends."""
        offload.begin_call(execution.get("arn"))
        st: dict[str, Any] = {
            "status": "RUNNING",
            "output": None,
            "error": None,
            "cause": None,
            "next_event_id": 1,
            "ex": dict(execution),
            "input": None,
            "frames": {},
            "tok": {},
            "tm": {},
            "c": 0,
            "root": "0",
        }
        rt = Runtime(self, st, now_ms, ids)
        try:
            st["input"] = json.loads(input_json) if input_json else {}
        except ValueError:
            rt.emit(None, "ExecutionStarted", {"input": input_json, "roleArn": execution.get("role_arn")})
            rt.end_execution(
                "FAILED", failure=Failure("States.Runtime", "The execution input is not valid JSON.")
            )
            return Outcome(st, rt.events, rt.effects)
        rt.emit(None, "ExecutionStarted", history.execution_started(st["input"], execution))
        self.arm_execution_timeout(rt)
        rt.new_frame("", self.programs[""].start_at, st["input"], None, 0)
        rt.drain()
        return Outcome(st, rt.events, rt.effects)

    def advance(self, state: dict[str, Any], event: dict[str, Any], now_ms: int, ids: Any) -> Outcome:
        """Apply one service event; unknown tokens/timers and finished executions give an empty Outcome.

        The state dict is updated in place and returned as `Outcome.state`.
        """
        offload.begin_call(state.get("ex", {}).get("arn"))
        rt = Runtime(self, state, now_ms, ids)
        if state["status"] != "RUNNING":
            return Outcome(state)
        handler = EVENT_HANDLERS.get(event.get("type", ""))
        if handler is not None:
            try:
                handler(self, rt, event)
            except Exception as exc:  # never let bad data escape: the execution fails instead
                cause = f"Internal error handling {event.get('type')}: {type(exc).__name__}: {exc}"
                rt.end_execution("FAILED", failure=Failure("States.Runtime", cause))
            rt.drain()
        return Outcome(state, rt.events, rt.effects)

    def redrive(self, state: dict[str, Any], now_ms: int, ids: Any) -> Outcome:
        """RedriveExecution: resume every halted frame where it stopped; succeeded children are kept."""
        offload.begin_call(state.get("ex", {}).get("arn"))
        root = state["frames"].get(state["root"])
        if state["status"] not in REDRIVABLE or root is None:
            raise StatesError(
                "ExecutionNotRedrivable", f"Execution is {state['status']} and cannot be redriven."
            )
        rt = Runtime(self, state, now_ms, ids)
        state["status"] = "RUNNING"
        state["error"] = state["cause"] = None
        count = int(state["ex"].get("redrive_count") or 0) + 1
        state["ex"]["redrive_count"] = count
        rt.emit(root, "ExecutionRedriven", {"redriveCount": count})
        self.arm_execution_timeout(rt)
        self.state_of(root).redrive(rt, root)
        rt.drain()
        return Outcome(state, rt.events, rt.effects)

    # ---- service events ------------------------------------------------------------------------

    def task_frame(self, rt: Runtime, event: dict[str, Any]) -> tuple[TaskState, Frame] | None:
        fid = rt.st["tok"].get(event.get("token"))
        frame = rt.frames.get(fid) if fid is not None else None
        if frame is None:
            return None
        state = self.state_of(frame)
        return (state, frame) if isinstance(state, TaskState) else None

    def on_activity_started(self, rt: Runtime, event: dict[str, Any]) -> None:
        found = self.task_frame(rt, event)
        if found:
            found[0].on_started(rt, found[1], event.get("worker_name"))

    def on_task_succeeded(self, rt: Runtime, event: dict[str, Any]) -> None:
        found = self.task_frame(rt, event)
        if found:
            found[0].on_succeeded(rt, found[1], event.get("output", "null"))

    def on_task_failed(self, rt: Runtime, event: dict[str, Any]) -> None:
        found = self.task_frame(rt, event)
        if found:
            found[0].on_failed(rt, found[1], event.get("error"), event.get("cause"))

    def on_task_heartbeat(self, rt: Runtime, event: dict[str, Any]) -> None:
        found = self.task_frame(rt, event)
        if found:
            found[0].on_heartbeat(rt, found[1])

    def on_timer_fired(self, rt: Runtime, event: dict[str, Any]) -> None:
        owner = rt.st["tm"].pop(event.get("timer"), None)
        if owner is None:
            return
        fid, kind = owner
        if fid == "":
            rt.st.get("xt", {}).pop(kind, None)
            # AWS's DescribeExecution of a timed-out execution carries no error or cause
            rt.end_execution("TIMED_OUT", failure=Failure(None, None))
            return
        frame = rt.frames.get(fid)
        if frame is not None:
            frame.get("tm", {}).pop(kind, None)
            self.state_of(frame).on_timer(rt, frame, kind)

    def on_stop(self, rt: Runtime, event: dict[str, Any]) -> None:
        rt.end_execution("ABORTED", failure=Failure(event.get("error"), event.get("cause")))


EVENT_HANDLERS = {
    "ActivityStarted": Interpreter.on_activity_started,
    "TaskSucceeded": Interpreter.on_task_succeeded,
    "TaskFailed": Interpreter.on_task_failed,
    "TaskHeartbeat": Interpreter.on_task_heartbeat,
    "TimerFired": Interpreter.on_timer_fired,
    "Stop": Interpreter.on_stop,
}
