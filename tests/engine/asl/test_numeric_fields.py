"""Number fields evaluated at run time: JSONata Seconds, MaxConcurrency, ToleratedFailureCount/Percentage,
TimeoutSeconds, HeartbeatSeconds, and their JSONPath `...Path` variants.

Sources:
- Wait state (https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html): Seconds is "an integer
  value from 0 to 99999999. In JSONata states, you can alternatively specify a JSONata expression which
  must evaluate to an integer in the stated range"; SecondsPath/TimestampPath are "a path in the states
  input data".
- Map state (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html) and Task state
  (https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html): MaxConcurrency,
  ToleratedFailureCount/Percentage, TimeoutSeconds and HeartbeatSeconds take a JSONata expression in
  JSONata states (Transforming data with JSONata,
  https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html).
- Handling errors (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html):
  States.QueryEvaluationError is a JSONata expression that fails, including a result of the wrong type.
- AWS's cause templates, as recorded in the public conformance cases: "The JSONata expression '<expr>'
  specified for the field '<field>' returned an unexpected result type. Expected '<type>', but was
  '<type>' for value: <json>" and "The MaxConcurrencyPath field refers to value "<v>" which is not a
  valid integer: <path>", "ToleratedFailureCount cannot be negative." (States.Runtime).
"""

from __future__ import annotations

from typing import Any

import pytest

from .interpreter_driver import Driver

JSONATA = {"QueryLanguage": "JSONata"}
PROCESSOR = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
CALLBACK = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
PREFIX = "An error occurred while executing the state '{state}' (entered at the event id #2). "


def _wait(fields: dict[str, Any], language: dict[str, Any] = JSONATA) -> dict[str, Any]:
    return {**language, "StartAt": "Hold", "States": {"Hold": {"Type": "Wait", **fields, "End": True}}}


def _map(fields: dict[str, Any], language: dict[str, Any] = JSONATA) -> dict[str, Any]:
    items = {"Items": [1, 2]} if language else {"ItemsPath": "$.items"}
    state = {"Type": "Map", **items, **fields, "ItemProcessor": PROCESSOR, "End": True}
    return {**language, "StartAt": "Fan", "States": {"Fan": state}}


def _task(fields: dict[str, Any], language: dict[str, Any] = JSONATA) -> dict[str, Any]:
    state = {"Type": "Task", "Resource": CALLBACK, **fields, "End": True}
    return {**language, "StartAt": "Call", "States": {"Call": state}}


def _failure(definition: dict[str, Any], value: Any = None) -> tuple[str, str, Driver]:
    run = Driver(definition, value if value is not None else {"items": [1, 2]})
    assert run.status == "FAILED", run.state
    return run.state["error"], run.state["cause"], run


JSONATA_FIELDS = [
    ("Hold", _wait, "Seconds"),
    ("Fan", _map, "MaxConcurrency"),
    ("Fan", _map, "ToleratedFailureCount"),
    ("Call", _task, "TimeoutSeconds"),
    ("Call", _task, "HeartbeatSeconds"),
]


@pytest.mark.parametrize(("state", "build", "field"), JSONATA_FIELDS)
@pytest.mark.parametrize(
    ("expr", "kind", "shown"),
    [("1.5", "number", "1.5"), ("'10'", "string", '"10"'), ("null", "null", "null"), ("[1]", "array", "[1]")],
)
def test_a_jsonata_integer_field_of_another_type_is_a_query_evaluation_error(
    state: str, build: Any, field: str, expr: str, kind: str, shown: str
) -> None:
    error, cause, run = _failure(build({field: "{% " + expr + " %}"}))
    assert error == "States.QueryEvaluationError"
    assert cause == PREFIX.format(state=state) + (
        f"The JSONata expression '{expr}' specified for the field '{field}' returned an unexpected result "
        f"type. Expected 'integer', but was '{kind}' for value: {shown}"
    )
    [evaluation] = run.details("EvaluationFailed")
    assert evaluation["location"] == field and evaluation["state"] == state


@pytest.mark.parametrize(("state", "build", "field"), JSONATA_FIELDS)
def test_a_jsonata_integer_field_that_yields_nothing_says_so(state: str, build: Any, field: str) -> None:
    error, cause, _ = _failure(build({field: "{% $states.input.missing %}"}))
    assert error == "States.QueryEvaluationError"
    assert cause == PREFIX.format(state=state) + (
        f"The JSONata expression '$states.input.missing' specified for the field '{field}' returned nothing "
        "(undefined)."
    )


@pytest.mark.parametrize(
    ("state", "build", "field", "value", "least"),
    [
        ("Hold", _wait, "Seconds", -1, 0),
        ("Hold", _wait, "Seconds", 100_000_000, 0),
        ("Call", _task, "TimeoutSeconds", 0, 1),
        ("Call", _task, "HeartbeatSeconds", 100_000_000, 1),
    ],
)
def test_a_jsonata_integer_out_of_range_is_a_query_evaluation_error(
    state: str, build: Any, field: str, value: int, least: int
) -> None:
    # deviation: the range text is ours (the documentation gives the range, not the words)
    error, cause, _ = _failure(build({field: "{% " + str(value) + " %}"}))
    assert error == "States.QueryEvaluationError"
    assert cause == PREFIX.format(state=state) + (
        f"The JSONata expression '{value}' specified for the field '{field}' returned a value out of range. "
        f"Expected an integer from {least} to 99999999, but was: {value}"
    )


def test_a_jsonata_integer_written_as_a_whole_double_is_accepted() -> None:
    run = Driver(_wait({"Seconds": "{% 4 / 2 %}"}), {})
    assert run.status == "RUNNING"
    run.fire_next_timer()
    assert run.status == "SUCCEEDED"


def test_a_negative_jsonata_max_concurrency_fails_instead_of_never_starting_an_iteration() -> None:
    error, cause, _ = _failure(_map({"MaxConcurrency": "{% -1 %}"}))
    assert error == "States.Runtime"
    assert (
        cause
        == PREFIX.format(state="Fan") + "Expected non-negative integer for MaxConcurrency, got '-1' instead."
    )


def test_a_negative_jsonata_tolerated_failure_count_has_the_recorded_path_text() -> None:
    error, cause, _ = _failure(_map({"ToleratedFailureCount": "{% -1 %}"}))
    assert (error, cause) == (
        "States.Runtime",
        PREFIX.format(state="Fan") + "ToleratedFailureCount cannot be negative.",
    )


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("'x'", "returned an unexpected result type. Expected 'number', but was 'string' for value: \"x\""),
        ("101", "returned a value out of range. Expected a number from 0 to 100, but was: 101"),
    ],
)
def test_a_jsonata_tolerated_failure_percentage_must_be_a_number_from_0_to_100(
    expr: str, message: str
) -> None:
    error, cause, _ = _failure(_map({"ToleratedFailurePercentage": "{% " + expr + " %}"}))
    assert error == "States.QueryEvaluationError"
    assert cause == PREFIX.format(state="Fan") + (
        f"The JSONata expression '{expr}' specified for the field 'ToleratedFailurePercentage' {message}"
    )


# ---- JSONPath: the `...Path` fields -----------------------------------------------------------------

PATH_FIELDS = [
    ("Hold", _wait, "SecondsPath"),
    ("Hold", _wait, "TimestampPath"),
    ("Fan", _map, "ItemsPath"),
    ("Fan", _map, "MaxConcurrencyPath"),
    ("Fan", _map, "ToleratedFailureCountPath"),
    ("Fan", _map, "ToleratedFailurePercentagePath"),
    ("Call", _task, "TimeoutSecondsPath"),
    ("Call", _task, "HeartbeatSecondsPath"),
]


@pytest.mark.parametrize(("state", "build", "field"), PATH_FIELDS)
def test_a_path_field_that_selects_nothing_names_the_field_and_the_input(
    state: str, build: Any, field: str
) -> None:
    # deviation: the text AWS records for `.$` fields, ErrorPath and CausePath
    definition = build({field: "$.missing"}, {})
    error, cause, _ = _failure(definition, {"items": [1]})
    assert error == "States.Runtime"
    assert cause == PREFIX.format(state=state) + (
        f"The JSONPath '$.missing' specified for the field '{field}' could not be found in the input "
        "'{\"items\":[1]}'"
    )


@pytest.mark.parametrize(
    ("state", "build", "field"),
    [
        ("Fan", _map, "MaxConcurrencyPath"),
        ("Fan", _map, "ToleratedFailureCountPath"),
        ("Call", _task, "TimeoutSecondsPath"),
        ("Call", _task, "HeartbeatSecondsPath"),
    ],
)
@pytest.mark.parametrize(("value", "shown"), [(1.5, "1.5"), (None, "null"), ("ten", "ten"), ([3], "[3]")])
def test_a_path_integer_of_another_type_has_the_recorded_max_concurrency_text(
    state: str, build: Any, field: str, value: Any, shown: str
) -> None:
    error, cause, _ = _failure(build({field: "$.n"}, {}), {"items": [1], "n": value})
    assert error == "States.Runtime"
    assert cause == PREFIX.format(state=state) + (
        f'The {field} field refers to value "{shown}" which is not a valid integer: $.n'
    )


def test_a_path_integer_may_be_a_string_holding_one() -> None:
    run = Driver(_map({"MaxConcurrencyPath": "$.n"}, {}), {"items": [1, 2], "n": "1"})
    assert run.status == "SUCCEEDED" and run.output == [1, 2]


def test_a_negative_max_concurrency_path_fails_instead_of_never_starting_an_iteration() -> None:
    error, cause, _ = _failure(_map({"MaxConcurrencyPath": "$.n"}, {}), {"items": [1], "n": -1})
    assert error == "States.Runtime"
    assert cause.endswith("Expected non-negative integer for MaxConcurrency, got '-1' instead.")


@pytest.mark.parametrize("value", [0, -5, 100_000_000])
def test_a_task_seconds_path_out_of_range_fails_the_state(value: int) -> None:
    error, cause, _ = _failure(_task({"TimeoutSecondsPath": "$.n"}, {}), {"n": value})
    assert error == "States.Runtime"
    assert f"refers to value {value} which is not in the range 1 to 99999999: $.n" in cause


def test_a_task_seconds_path_sets_the_timeout() -> None:
    run = Driver(_task({"TimeoutSecondsPath": "$.n"}, {}), {"n": 3})
    assert run.status == "RUNNING"
    [scheduled] = run.details("TaskScheduled")
    assert scheduled["timeoutInSeconds"] == 3


@pytest.mark.parametrize(("value", "shown"), [("many", "many"), (True, "true")])
def test_a_percentage_path_of_another_type_fails_the_state(value: Any, shown: str) -> None:
    error, cause, _ = _failure(
        _map({"ToleratedFailurePercentagePath": "$.p"}, {}), {"items": [1], "p": value}
    )
    assert error == "States.Runtime"
    assert cause.endswith(
        f'The ToleratedFailurePercentagePath field refers to value "{shown}" which is not a valid number: $.p'
    )


def test_a_seconds_path_keeps_the_recorded_texts() -> None:
    error, cause, _ = _failure(_wait({"SecondsPath": "$.s"}, {}), {"s": "soon"})
    assert error == "States.Runtime"
    assert (
        cause
        == PREFIX.format(state="Hold")
        + "The SecondsPath parameter cannot be parsed as a long value: $.s == soon"
    )
