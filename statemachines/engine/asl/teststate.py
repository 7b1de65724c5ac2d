"""The TestState API: one state definition run once on one input, with inspection data."""

from __future__ import annotations

from typing import Any

from statemachines import nesting

from . import history, io_processing, offload
from .context_object import build_context, execution_context
from .errors import StatesError
from .io_processing import Scope
from .retry import Failure, find_handler, retry_delay_ms
from .state_base import LOCATION_PREFIX, State
from .state_choice import ChoiceState
from .state_fail import FailState
from .state_pass import PassState
from .state_succeed import SucceedState
from .state_task import TaskState
from .state_wait import WaitState

# deviation: Map and Parallel are not testable here (AWS added them to TestState later, with mocks).
TESTABLE: dict[str, type[State]] = {
    "Task": TaskState,
    "Pass": PassState,
    "Wait": WaitState,
    "Choice": ChoiceState,
    "Succeed": SucceedState,
    "Fail": FailState,
}
STATE_NAME = "TestState"
DEFAULT_EXECUTION = {
    "arn": "arn:aws:states:us-east-1:123456789012:execution:TestStateMachine:TestExecution",
    "name": "TestExecution",
    "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:TestStateMachine",
    "state_machine_name": "TestStateMachine",
    "role_arn": None,
    "redrive_count": 0,
}


class _Probe:
    """Runs one state's pipeline step by step, recording what TestState's inspectionData shows."""

    def __init__(self, state: State, raw: Any, scope: Scope) -> None:
        self.state, self.raw, self.scope = state, raw, scope
        self.data: dict[str, Any] = {"input": history.to_json(raw)}
        self.next_state: str | None = state.next

    def run(self) -> tuple[Any, dict[str, Any] | None]:
        state, defn, scope = self.state, self.state.defn, self.scope
        if state.jsonata:
            value = state.process_input(self.raw, scope)
            if "Arguments" in defn:
                self.data["afterArguments"] = history.to_json(value)
        else:
            value = io_processing.apply_input_path(defn, self.raw, scope)
            self.data["afterInputPath"] = history.to_json(value)
            if state.has_parameters and "Parameters" in defn:
                value = io_processing.resolve_template(defn["Parameters"], value, scope)
            self.data["afterParameters"] = history.to_json(value)
        result = self.body(value)
        self.data["result"] = history.to_json(result)
        if isinstance(state, ChoiceState) and self.next_state != state.defn.get("Default"):
            rule = next(r for r in defn["Choices"] if r["Next"] == self.next_state)
            return state.rule_output(self.raw, result, rule, scope)
        if not state.jsonata:
            if "ResultSelector" in defn:
                result = io_processing.resolve_template(defn["ResultSelector"], result, scope)
            self.data["afterResultSelector"] = history.to_json(result)
            self.data["afterResultPath"] = history.to_json(
                io_processing.apply_result_path(defn, self.raw, result)
            )
        return state.process_output(self.raw, result if state.jsonata else self.unselected(value), scope)

    def unselected(self, value: Any) -> Any:
        """process_output applies ResultSelector itself: hand it the body's raw result again."""
        return self.body(value)

    def body(self, value: Any) -> Any:
        state, defn = self.state, self.state.defn
        if isinstance(state, FailState):
            raise _Failed(
                Failure(
                    state.field(self.raw, "Error", self.scope), state.field(self.raw, "Cause", self.scope)
                )
            )
        if isinstance(state, TaskState):
            # deviation: no service is called from TestState locally; activities and callbacks cannot finish.
            raise StatesError(
                "States.TaskFailed", f"The resource '{state.resource}' cannot be tested locally."
            )
        if isinstance(state, ChoiceState):
            for rule in defn.get("Choices", []):
                if state.rule_matches(rule, self.raw, value, self.scope):
                    self.next_state = rule["Next"]
                    return value
            if defn.get("Default") is None:
                raise StatesError("States.NoChoiceMatched", "No Matches!")
            self.next_state = defn["Default"]
            return value
        if isinstance(state, PassState) and not state.jsonata and "Result" in defn:
            return defn["Result"]
        return value  # Wait does not wait here, as in AWS's TestState


class _Failed(Exception):
    """Raised by a Fail state's body: its error and cause, not a runtime error."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error)
        self.failure = failure


def run_test_state(
    state_definition: dict[str, Any] | str,
    input_json: str,
    now_ms: int,
    ids: Any,
    inspection_level: str = "INFO",
    variables_json: str | None = None,
    execution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """TestState's response for one state; never raises for runtime errors (they are the answer)."""
    offload.begin_call()
    defn = nesting.loads(state_definition) if isinstance(state_definition, str) else state_definition
    state_class = TESTABLE.get(str(defn.get("Type"))) if isinstance(defn, dict) else None
    if state_class is None:
        raise StatesError(
            "InvalidDefinition", "TestState supports Task, Pass, Wait, Choice, Succeed and Fail states."
        )
    state = state_class(STATE_NAME, defn, "", defn.get("QueryLanguage", "JSONPath"))
    raw = nesting.loads(input_json) if input_json else {}
    variables = nesting.loads(variables_json) if variables_json else {}
    ex = {**DEFAULT_EXECUTION, "start_time_ms": now_ms, **(execution or {})}
    machine = {"Id": ex["state_machine_arn"], "Name": ex["state_machine_name"]}
    context = build_context(execution_context(ex, raw), machine, STATE_NAME, now_ms)
    scope = Scope(lambda: context, variables, ids)
    probe = _Probe(state, raw, scope)
    try:
        output, assigned = probe.run()
    except _Failed as failed:
        return _respond(probe, inspection_level, "FAILED", failure=failed.failure)
    except StatesError as err:
        return _handled(probe, state, inspection_level, _located(err), ids)
    variables = {**variables, **(assigned or {})}
    probe.data["variables"] = history.to_json(variables)
    response = _respond(probe, inspection_level, "SUCCEEDED", output=output)
    if not isinstance(state, SucceedState) and probe.next_state is not None:
        response["nextState"] = probe.next_state
    return response


def _located(err: StatesError) -> Failure:
    if err.name in ("States.Runtime", "States.QueryEvaluationError") and not (err.cause or "").startswith(
        LOCATION_PREFIX
    ):
        return Failure(
            err.name, f"{LOCATION_PREFIX} '{STATE_NAME}' (entered at the event id #2). {err.cause}"
        )
    return Failure(err.name, err.cause)


def _handled(probe: _Probe, state: State, level: str, failure: Failure, ids: Any) -> dict[str, Any]:
    """RETRIABLE when a retrier would retry, CAUGHT_ERROR when a catcher takes it, else FAILED."""
    index = find_handler(state.retriers, failure.error)
    if index is not None and retry_delay_ms(state.retriers[index], 0, 1.0) is not None:
        return _respond(probe, level, "RETRIABLE", failure=failure)
    index = find_handler(state.catchers, failure.error)
    if index is None:
        return _respond(probe, level, "FAILED", failure=failure)
    catcher = state.catchers[index]
    try:
        output, _ = state.catch_output(probe.raw, catcher, failure, probe.scope)
    except StatesError as err:
        return _respond(probe, level, "FAILED", failure=_located(err))
    response = _respond(probe, level, "CAUGHT_ERROR", output=output, failure=failure)
    response["nextState"] = catcher["Next"]
    return response


def _respond(
    probe: _Probe, level: str, status: str, output: Any = None, failure: Failure | None = None
) -> dict[str, Any]:
    response: dict[str, Any] = {"status": status}
    if status in ("SUCCEEDED", "CAUGHT_ERROR"):
        response["output"] = history.to_json(output)
    if failure is not None:
        response.update(
            {k: v for k, v in (("error", failure.error), ("cause", failure.cause)) if v is not None}
        )
    if level in ("DEBUG", "TRACE"):
        response["inspectionData"] = probe.data
    return response
