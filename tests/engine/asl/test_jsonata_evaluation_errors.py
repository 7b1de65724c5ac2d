"""JSONata evaluation errors: States.QueryEvaluationError with a cause that names the state, the event id
it was entered at, the expression and the field it was evaluated for.

Sources:
- Transforming data with JSONata (https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html):
  JSONata fields, `$states`, and States.QueryEvaluationError for a failed evaluation.
- EvaluationFailedEventDetails (https://docs.aws.amazon.com/step-functions/latest/apireference/API_EvaluationFailedEventDetails.html):
  the event names the state, the error, the cause and "the location of the field in the state".
- Map state, Items (https://docs.aws.amazon.com/step-functions/latest/dg/state-map.html): in JSONata states
  `Items` is a JSON array or an expression that must evaluate to an array.
- Wait state (https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html): "In JSONata states, you
  can specify a JSONata expression which results in a string that conforms to" the RFC 3339 profile, with
  an uppercase T and a Z or numeric offset.
- The public conformance cases show AWS's cause template: "An error occurred while executing the state
  '<state>' (entered at the event id #<n>). The JSONata expression '<expr>' specified for the field
  '<field>' returned an unexpected result type. Expected 'array', but was '<type>' for value: <json>".
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from statemachines.engine.asl.validation import validate_definition

from .interpreter_driver import Driver

JSONATA = {"QueryLanguage": "JSONata"}
PREFIX = "An error occurred while executing the state '{state}' (entered at the event id #{event}). "


def _failed(run: Driver) -> tuple[str, str]:
    assert run.status == "FAILED", run.state
    return run.state["error"], run.state["cause"]


def _map(items: Any) -> dict[str, Any]:
    processor = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
    return {
        **JSONATA,
        "StartAt": "MapIterate",
        "States": {"MapIterate": {"Type": "Map", "Items": items, "ItemProcessor": processor, "End": True}},
    }


@pytest.mark.parametrize(
    ("value", "kind", "shown"),
    [
        ("text", "string", '"text"'),
        (7, "number", "7"),
        (2.5, "number", "2.5"),
        (True, "boolean", "true"),
        (None, "null", "null"),
        ({"foo": "bar"}, "object", '{"foo":"bar"}'),
    ],
)
def test_map_items_that_is_not_an_array_names_the_type_and_value(value: Any, kind: str, shown: str) -> None:
    run = Driver(_map("{% $states.input.items %}"), {"items": value})
    error, cause = _failed(run)
    assert error == "States.QueryEvaluationError"
    assert cause == PREFIX.format(state="MapIterate", event=2) + (
        "The JSONata expression '$states.input.items' specified for the field 'Items' returned an unexpected "
        f"result type. Expected 'array', but was '{kind}' for value: {shown}"
    )
    [evaluation] = run.details("EvaluationFailed")
    assert evaluation["location"] == "Items" and evaluation["state"] == "MapIterate"


def test_map_items_entered_later_names_that_event_id() -> None:
    definition = _map("{% $items %}")
    definition["StartAt"] = "Keep"
    definition["States"]["Keep"] = {"Type": "Pass", "Assign": {"items": 1}, "Next": "MapIterate"}
    _, cause = _failed(Driver(definition, {}))
    assert cause.startswith(PREFIX.format(state="MapIterate", event=4))


def _wait(stamp: str) -> dict[str, Any]:
    return {
        **JSONATA,
        "StartAt": "WaitUntil",
        "States": {"WaitUntil": {"Type": "Wait", "Timestamp": stamp, "End": True}},
    }


@pytest.mark.parametrize(
    "stamp",
    [
        "2016-13-05T21:29:29Z",  # no month 13
        "2016-12-05T25:29:29Z",  # no hour 25
        "05-12-2016T21:29:29Z",  # day first
        "2016-12-05 21:29:29Z",  # no uppercase T
        "2016-12-05T21:29:29",  # neither Z nor an offset
        "2016-12-05t21:29:29z",  # lowercase separators
        "",
    ],
)
def test_wait_jsonata_timestamp_that_is_not_a_timestamp(stamp: str) -> None:
    run = Driver(_wait("{% $states.input.when %}"), {"when": stamp})
    error, cause = _failed(run)
    assert error == "States.QueryEvaluationError"
    assert cause.startswith(
        PREFIX.format(state="WaitUntil", event=2)
        + "The JSONata expression '$states.input.when' specified for the field 'Timestamp' "
    )
    assert cause.endswith(json.dumps(stamp))
    assert run.details("EvaluationFailed")[0]["location"] == "Timestamp"
    assert not run.timers  # nothing waits


def test_wait_jsonata_timestamp_of_another_type_is_a_type_error() -> None:
    _, cause = _failed(Driver(_wait("{% $states.input.when %}"), {"when": 1480973369}))
    assert cause.endswith(
        "specified for the field 'Timestamp' returned an unexpected result type. "
        "Expected 'string', but was 'number' for value: 1480973369"
    )


@pytest.mark.parametrize("stamp", ["2016-12-05T21:29:29Z", "2016-12-05T21:29:29.250+01:00"])
def test_wait_jsonata_timestamp_in_the_past_continues(stamp: str) -> None:
    run = Driver(_wait("{% $states.input.when %}"), {"when": stamp})
    assert run.status == "SUCCEEDED"


def _pass(**fields: Any) -> dict[str, Any]:
    return {**JSONATA, "StartAt": "Shape", "States": {"Shape": {"Type": "Pass", "End": True, **fields}}}


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"Output": "{% $states.input.missing %}"}, "Output"),
        ({"Output": {"name": "{% $states.input.missing %}"}}, "Output/name"),
        ({"Output": {"outer": {"inner": "{% $states.input.missing %}"}}}, "Output/outer/inner"),
        ({"Assign": {"answer": "{% $states.input.missing %}"}}, "Assign/answer"),
    ],
)
def test_an_expression_that_yields_nothing_fails_naming_its_field(
    fields: dict[str, Any], location: str
) -> None:
    run = Driver(_pass(**fields), {"present": 1})
    error, cause = _failed(run)
    assert error == "States.QueryEvaluationError"
    assert cause == PREFIX.format(state="Shape", event=2) + (
        f"The JSONata expression '$states.input.missing' specified for the field '{location}' "
        "returned nothing (undefined)."
    )
    assert run.details("EvaluationFailed")[0]["location"] == location


def test_task_arguments_member_is_named_below_arguments() -> None:
    definition = {
        **JSONATA,
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:listBuckets.waitForTaskToken",
                "Arguments": {"Bucket": "{% $states.input.missing %}"},
                "End": True,
            }
        },
    }
    _, cause = _failed(Driver(definition, {}))
    assert "specified for the field 'Arguments/Bucket' returned nothing (undefined)." in cause


def test_a_caught_evaluation_error_reaches_the_catcher() -> None:
    definition = _map("{% $states.input.items %}")
    definition["States"]["MapIterate"]["Catch"] = [
        {"ErrorEquals": ["States.QueryEvaluationError"], "Next": "Handled"}
    ]
    definition["States"]["MapIterate"].pop("End")
    definition["States"]["MapIterate"]["Next"] = "Handled"
    definition["States"]["Handled"] = {"Type": "Pass", "End": True}
    run = Driver(definition, {"items": "no"})
    assert run.status == "SUCCEEDED"
    assert run.output["Error"] == "States.QueryEvaluationError"


@pytest.mark.parametrize("items", [{"foo": "bar"}, "text", 3, True, None])
def test_map_items_literal_must_be_an_array_or_an_expression(items: Any) -> None:
    """Map state: Items is "a JSON array or a JSONata expression that must evaluate to an array"."""
    definition = _map("{% [] %}")
    definition["States"]["MapIterate"]["Items"] = items
    problems = [d for d in validate_definition(definition) if d.severity == "ERROR"]
    assert [d.location for d in problems] == ["/States/MapIterate/Items"]


def test_map_items_literal_array_may_hold_expressions() -> None:
    run = Driver(_map(["{% $states.input.a %}", 2]), {"a": 1})
    assert run.output == [1, 2]


def test_map_without_items_iterates_its_input_which_must_be_an_array() -> None:
    definition = _map("unused")
    del definition["States"]["MapIterate"]["Items"]
    assert Driver(definition, [1, 2]).output == [1, 2]
    error, cause = _failed(Driver(definition, {"a": 1}))
    assert error == "States.QueryEvaluationError"
    assert cause.endswith(
        "for the field 'Items' returned an unexpected result type. Expected 'array', but was 'object' for value: {\"a\":1}"
    )
