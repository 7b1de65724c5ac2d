"""TestState's request checked as AWS checks it before anything runs: the state, its mock, its context."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from statemachines import nesting

from .definition import parse_definition
from .errors import EngineError, InvalidDefinitionError
from .interpreter import STATE_TYPES, Interpreter
from .retry import Failure
from .state_base import State
from .state_task import CALLBACK_SUFFIX, TaskState
from .validation import validate_definition

LONE_STATE = "TestState"  # the name a state tested on its own has (`$$.State.Name`)
# "A mock can only be specified for Task, Map, or Parallel states."
MOCKABLE = frozenset({"Task", "Map", "Parallel"})
# "TestState only supports the following when a mock is specified: ... Parallel, or Map states."
NEEDS_MOCK = frozenset({"Map", "Parallel"})
NO_FAN_OUT = (
    "TestState API does not support Map or Parallel states. "
    "Supported state types include: [Task, Wait, Pass, Succeed, Fail, Choice]"
)
NO_RESULT = object()
SYNC = re.compile(r"\.sync(:\d+)?$")  # `ecs:runTask.sync`, `states:startExecution.sync:2`


class TestStateRejected(EngineError):
    """The request itself is wrong: the API answers with the AWS error `code`, not a test result."""

    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Mock:
    """`mock`: the state's invocation answers with `result`, or fails with `error`."""

    result: Any = NO_RESULT
    error: Failure | None = None


@dataclass
class TestCall:
    """One checked TestState request: the state to run and everything that shapes its run."""

    __test__ = False

    interp: Interpreter
    state: State
    mock: Mock | None
    context: dict[str, Any] | None
    retry_count: int
    iteration_failures: int | None
    reader_items: Any


def prepare(
    definition: dict[str, Any] | str,
    state_name: str | None = None,
    mock: dict[str, Any] | None = None,
    context_json: str | None = None,
    configuration: dict[str, Any] | None = None,
    reveal_secrets: bool = False,
    role_arn: str | None = "",
    check_mock_result: Callable[[str, Any, str], None] | None = None,
) -> TestCall:
    """The state under test, compiled by the interpreter, with its mock and configuration checked.

    `check_mock_result(resource, result, mode)` lets the service check a Task's mocked result
    against the AWS API model of the integration it names (the core knows no service models).
    """
    interp, state = _compile(definition, state_name)
    kind = state.type_name
    configuration = configuration or {}
    if mock is None:
        if kind in NEEDS_MOCK:
            raise TestStateRejected("InvalidDefinition", NO_FAN_OUT)
        if isinstance(state, TaskState):
            _check_unmocked_task(state, role_arn)
        if context_json is not None:
            # deviation: AWS documents the rule ("only if a mock is specified") but not its message.
            raise TestStateRejected("ValidationException", "A context may only be specified with a mock.")
        if configuration.get("errorCausedByState") is not None:
            raise TestStateRejected("ValidationException", "errorCausedByState requires a mocked error.")
    mocked = _mock(mock, state, reveal_secrets, check_mock_result) if mock is not None else None
    _check_configuration(configuration, state, mocked, interp)
    return TestCall(
        interp,
        state,
        mocked,
        _context(context_json),
        int(configuration.get("retrierRetryCount") or 0),
        configuration.get("mapIterationFailureCount"),
        _reader_items(configuration.get("mapItemReaderData")),
    )


def _compile(definition: dict[str, Any] | str, state_name: str | None) -> tuple[Interpreter, State]:
    """A whole machine (validated as CreateStateMachine would) and one of its states, or a lone state."""
    if state_name is not None:
        doc = parse_definition(definition) if isinstance(definition, str) else definition
        errors = [d for d in validate_definition(doc) if d.severity == "ERROR"]
        if errors:
            raise InvalidDefinitionError(errors)
        interp = Interpreter(doc)
        for program in interp.programs.values():
            if state_name in program.states:
                return interp, program.states[state_name]
        raise TestStateRejected("ValidationException", "State not found in definition")
    defn = parse_definition(definition) if isinstance(definition, str) else definition
    if "Type" not in defn and "States" in defn:
        # deviation: AWS's message for a whole machine sent without stateName is not documented.
        raise TestStateRejected(
            "InvalidDefinition", "A state machine definition needs stateName to name the state to test."
        )
    if str(defn.get("Type")) not in STATE_TYPES:
        supported = ", ".join(STATE_TYPES)
        raise TestStateRejected("InvalidDefinition", f"TestState supports these state types: {supported}.")
    language = defn.get("QueryLanguage", "JSONPath")
    interp = Interpreter({"StartAt": LONE_STATE, "States": {LONE_STATE: defn}, "QueryLanguage": language})
    return interp, interp.programs[""].states[LONE_STATE]


def _check_unmocked_task(state: TaskState, role_arn: str | None) -> None:
    if role_arn is None:
        raise TestStateRejected("ValidationException", "RoleArn must be specified when testing a Task state")
    if state.activity or state.callback or SYNC.search(state.resource):
        # deviation: AWS documents that these need a mock, not the error it answers without one.
        raise TestStateRejected(
            "ValidationException",
            f"TestState supports activity tasks, .sync and {CALLBACK_SUFFIX} integrations only "
            "when a mock is specified.",
        )


def _mock(
    mock: dict[str, Any],
    state: State,
    reveal_secrets: bool,
    check_mock_result: Callable[[str, Any, str], None] | None,
) -> Mock:
    if state.type_name not in MOCKABLE:
        raise TestStateRejected(
            "ValidationException", f"State type '{state.type_name}' is not supported when a mock is specified"
        )
    if reveal_secrets:
        raise TestStateRejected(
            "ValidationException", "TestState does not support RevealSecrets when a mock is specified."
        )
    has_result, has_error = mock.get("result") is not None, mock.get("errorOutput") is not None
    if has_result == has_error:
        # deviation: AWS's text is known for both fields; with neither we answer the same.
        raise TestStateRejected(
            "ValidationException",
            "A test mock should have only one of the following fields: [result, errorOutput].",
        )
    if has_error:
        output = mock["errorOutput"]
        if output.get("error") is None:
            raise TestStateRejected("ValidationException", "A mocked errorOutput must have an error.")
        return Mock(error=Failure(output["error"], output.get("cause")))
    try:
        result = nesting.loads(mock["result"])
    except ValueError:
        raise TestStateRejected("ValidationException", "Mocked result must be valid JSON") from None
    if state.type_name == "Map":
        writes = "ResultWriter" in state.defn
        if writes and not isinstance(result, dict):
            raise TestStateRejected("ValidationException", "Mocked result must be a JSON object.")
        if not writes and not isinstance(result, list):
            raise TestStateRejected("ValidationException", "Mocked result must be an array.")
    elif state.type_name == "Parallel" and not isinstance(result, list):
        # deviation: a Parallel's result is an array; AWS's check of its mock is not documented.
        raise TestStateRejected("ValidationException", "Mocked result must be an array.")
    elif isinstance(state, TaskState) and check_mock_result is not None:
        check_mock_result(state.resource, result, mock.get("fieldValidationMode") or "STRICT")
    return Mock(result=result)


def _check_configuration(
    configuration: dict[str, Any], state: State, mock: Mock | None, interp: Interpreter
) -> None:
    """stateConfiguration fields must fit the state they configure."""
    # deviation: the rules are AWS's field descriptions; the texts of its errors are not documented.
    caused_by = configuration.get("errorCausedByState")
    if caused_by is not None:
        if state.type_name not in NEEDS_MOCK or mock is None or mock.error is None:
            raise TestStateRejected(
                "ValidationException",
                "errorCausedByState applies only to a Map or Parallel state with a mocked error.",
            )
        own = f"{state.program}/{state.name}"  # its branches are `<own>#<i>`, its ItemProcessor `<own>`
        inside = [
            program.states
            for key, program in interp.programs.items()
            if key == own or key.startswith((own + "#", own + "/"))
        ]
        if not any(caused_by in states for states in inside):
            raise TestStateRejected(
                "ValidationException", f"State '{caused_by}' is not a state inside '{state.name}'."
            )
    for field in ("mapIterationFailureCount", "mapItemReaderData"):
        if configuration.get(field) is not None and state.type_name != "Map":
            raise TestStateRejected("ValidationException", f"{field} applies only to a Map state.")


def _context(context_json: str | None) -> dict[str, Any] | None:
    if context_json is None:
        return None
    try:
        context = nesting.loads(context_json)
    except ValueError as exc:
        raise TestStateRejected("ValidationException", f"Invalid Context object provided: {exc}") from None
    if not isinstance(context, dict):
        raise TestStateRejected(
            "ValidationException", "Invalid Context object provided: it must be a JSON object"
        )
    return context


def _reader_items(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return nesting.loads(text)
    except ValueError as exc:
        raise TestStateRejected("ValidationException", f"Invalid mapItemReaderData: {exc}") from None
