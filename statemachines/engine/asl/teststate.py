"""The TestState API: one state run once through the states' own template, with inspection data.

The state is compiled by the interpreter (alone, or named by `stateName` inside a whole
machine) and entered on a `TestRuntime`: a Runtime whose single frame stops where the state
leaves it. Input/output processing, Retry and Catch are the template's own (state_base.py);
the template notes each stage in `Runtime.trace`, which becomes `inspectionData`. Only the
body differs: a mock answers for a Task, Map or Parallel, and a Wait does not wait.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from statemachines import nesting

from . import history, offload
from .context_object import build_context, execution_context
from .errors import StatesError
from .frame import Frame
from .retry import Failure
from .runtime import Runtime
from .state_base import BLOCKED, State
from .state_fail import FailState
from .state_map import MapState
from .teststate_request import TestCall, prepare

DEFAULT_EXECUTION = {
    "arn": "arn:aws:states:us-east-1:123456789012:execution:TestStateMachine:TestExecution",
    "name": "TestExecution",
    "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:TestStateMachine",
    "state_machine_name": "TestStateMachine",
    "role_arn": None,
    "redrive_count": 0,
}
ENTERED_EVENT_ID = 2  # the StateEntered a located cause names: ExecutionStarted is event 1
# inspectionData members that are JSON text; the Map's counts are numbers
JSON_STAGES = (
    "input",
    "afterInputPath",
    "afterParameters",
    "afterArguments",
    "afterItemsPath",
    "afterItemSelector",
    "afterItemBatcher",
    "result",
    "afterResultSelector",
    "afterResultPath",
)
NUMBER_STAGES = ("toleratedFailureCount", "toleratedFailurePercentage", "maxConcurrency")
THRESHOLD_CAUSE = "The specified tolerated failure threshold was exceeded"


class TestRuntime(Runtime):
    """A Runtime for one state of one TestState call: no history, and a frame that stops at its exit."""

    __test__ = False

    def __init__(self, call: TestCall, raw: Any, variables: dict[str, Any], now_ms: int, ids: Any) -> None:
        st: dict[str, Any] = {
            "status": "RUNNING",
            "next_event_id": ENTERED_EVENT_ID,
            "ex": {},
            "input": raw,
            "frames": {},
            "tok": {},
            "tm": {},
            "c": 1,
            "root": "0",
        }
        super().__init__(call.interp, st, now_ms, ids)
        self.call = call
        self.trace = {"input": raw}
        self.ended: tuple[str, Any] | None = None  # ("output", value) or ("failure", Failure)
        state = call.state
        self.frame: Frame = {
            "id": "0",
            "p": state.program,
            "s": state.name,
            "in": raw,
            "v": variables,
            "l": ENTERED_EVENT_ID - 1,
            "e": ENTERED_EVENT_ID,
            "t": now_ms,
        }
        self.frames["0"] = self.frame

    def emit(self, frame: Frame | None, event_type: str, details: dict[str, Any] | None = None) -> int:
        return ENTERED_EVENT_ID  # TestState answers with one result, not a history

    def context(self, frame: Frame, state_name: str, **extra: Any) -> dict[str, Any]:
        """`$$` of an execution of the state alone, with the request's `context` laid over it."""
        ex = {**DEFAULT_EXECUTION, "start_time_ms": self.now}
        machine = {"Id": ex["state_machine_arn"], "Name": ex["state_machine_name"]}
        ctx = build_context(execution_context(ex, self.st["input"]), machine, state_name, self.now, **extra)
        # deviation: AWS documents `context` as "a valid Context object", not how it meets the
        # defaults; here each of its top-level objects is laid over the default one.
        for key, value in (self.call.context or {}).items():
            ctx[key] = (
                {**ctx[key], **value} if isinstance(value, dict) and isinstance(ctx.get(key), dict) else value
            )
        return ctx

    def body(self, state: Any, frame: Frame, value: Any, scope: Any) -> Any:
        mock = self.call.mock
        if mock is None:
            result = state.run(self, frame, value, scope)
            if result is BLOCKED:  # only a Wait gets here (tasks that wait need a mock): it does not wait
                self.clear_timer(frame, "wait")
                return frame["x"].pop("w", value)
            return result
        if isinstance(state, MapState):
            self.inspect_map(state, frame, value, scope)
        if mock.error is not None:
            raise StatesError(str(mock.error.error), mock.error.cause)
        return mock.result

    def inspect_map(self, state: MapState, frame: Frame, value: Any, scope: Any) -> None:
        """What the Map would hand its iterations, through the Map's own readers; the mock is its result."""
        defn = state.defn
        if "ItemReader" in defn:
            items = self.call.reader_items
        else:
            items = state.read_items(frame["in"], value, scope)
            if not state.jsonata:
                self.note("afterItemsPath", items)
        items = items if isinstance(items, list) else []
        inputs = [state.item_input(self, frame, value, index, item) for index, item in enumerate(items)]
        if "ItemSelector" in defn or "Parameters" in defn:
            self.note("afterItemSelector", inputs)
        if "ItemBatcher" in defn:
            inputs = state.batch(inputs, value, scope)
            self.note("afterItemBatcher", inputs)
        count = state.read_integer(frame, value, scope, "ToleratedFailureCount", lambda n: None)
        percentage = state.read_percentage(frame, value, scope)
        limit = state.read_integer(frame, value, scope, "MaxConcurrency", lambda n: None)
        for key, number in (
            ("toleratedFailureCount", count),
            ("toleratedFailurePercentage", percentage),
            ("maxConcurrency", limit),
        ):
            if number is not None:
                self.note(key, number)
        failures = self.call.iteration_failures
        if failures and (count is not None or percentage is not None):
            frame["x"].update(tol=[count, percentage], it=inputs)
            if not state.tolerates(frame, failures):
                raise StatesError("States.ExceedToleratedFailureThreshold", THRESHOLD_CAUSE)

    def complete_frame(self, frame: Frame, output: Any) -> None:
        self.ended = ("output", output)

    def fail_frame(self, frame: Frame, failure: Failure) -> None:
        self.ended = ("failure", failure)

    def run(self) -> None:
        """Enter the state; a Fail state does its work on entering, the others on their attempt."""
        state, frame = self.call.state, self.frame
        frame["x"] = {"n": self.call.retry_count}
        frame["x"]["rc"] = {str(index): self.call.retry_count for index in range(len(state.retriers))}
        if isinstance(state, FailState):
            state.enter(self, frame)
        else:
            state.attempt(self, frame)


def run_test_state(
    state_definition: dict[str, Any] | str,
    input_json: str,
    now_ms: int,
    ids: Any,
    inspection_level: str = "INFO",
    variables_json: str | None = None,
    *,
    state_name: str | None = None,
    mock: dict[str, Any] | None = None,
    context_json: str | None = None,
    configuration: dict[str, Any] | None = None,
    reveal_secrets: bool = False,
    role_arn: str | None = "",
    check_mock_result: Callable[[str, Any, str], None] | None = None,
) -> dict[str, Any]:
    """TestState's response; raises TestStateRejected/InvalidDefinitionError for a bad request only.

    Runtime errors are the answer (FAILED, RETRIABLE or CAUGHT_ERROR), never an exception.
    """
    offload.begin_call()
    call = prepare(
        state_definition,
        state_name,
        mock,
        context_json,
        configuration,
        reveal_secrets,
        role_arn,
        check_mock_result,
    )
    raw = nesting.loads(input_json) if input_json else {}
    variables = nesting.loads(variables_json) if variables_json else {}
    rt = TestRuntime(call, raw, dict(variables), now_ms, ids)
    rt.run()
    return _respond(rt, call.state, inspection_level)


def _respond(rt: TestRuntime, state: State, level: str) -> dict[str, Any]:
    """SUCCEEDED, CAUGHT_ERROR (a catcher took the error), RETRIABLE (a retrier would retry) or FAILED."""
    trace = rt.trace or {}
    failure: Failure | None = trace.get("failure")
    response: dict[str, Any] = {}
    if rt.ended is not None and rt.ended[0] == "failure":
        failure = rt.ended[1]
        response["status"] = "FAILED"
    elif "retry" in rt.frame.get("tm", {}):
        response["status"] = "RETRIABLE"
    else:
        caught = "catchIndex" in trace.get("errorDetails", {})
        response["status"] = "CAUGHT_ERROR" if caught else "SUCCEEDED"
        failure = failure if caught else None
        if rt.ended is not None:
            response["output"] = history.to_json(rt.ended[1])
        else:  # the state left for its Next (or a Choice rule's, or a catcher's)
            response["output"] = history.to_json(rt.frame["in"])
            response["nextState"] = rt.frame["s"]
    if failure is not None:
        response.update(
            {k: v for k, v in (("error", failure.error), ("cause", failure.cause)) if v is not None}
        )
    if level in ("DEBUG", "TRACE"):
        response["inspectionData"] = _inspection(rt, trace)
    return response


def _inspection(rt: TestRuntime, trace: dict[str, Any]) -> dict[str, Any]:
    """The noted stages as AWS shows them: JSON texts, the Map's numbers, handler details, variables."""
    # deviation: TRACE adds the HTTP request and response of an HTTP Task in AWS; no HTTP Task
    # calls out here (one is answered by its mock), so TRACE shows what DEBUG shows.
    data: dict[str, Any] = {key: history.to_json(trace[key]) for key in JSON_STAGES if key in trace}
    data.update({key: trace[key] for key in NUMBER_STAGES if key in trace})
    if "errorDetails" in trace:
        data["errorDetails"] = trace["errorDetails"]
    if rt.frame["v"]:
        data["variables"] = history.to_json(rt.frame["v"])
    return data
