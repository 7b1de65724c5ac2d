"""`Assign` forms the developer guide shows are accepted at CreateStateMachine.

Source: Passing data between states with variables
(https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html): Pass, Task, Map, Parallel,
Choice (and its rules) and Wait take `Assign`, "a JSON object with variable names and values"
(`"productName": "product1", "count": 42, "available": true`); in JSONPath states a `.$` key takes a
path (`$`, `$.x`, `$$.x`, `$var.x`) or an intrinsic function; in JSONata states values are JSON or
`{% %}` expressions anywhere inside them; `$states` is reserved.
"""

from __future__ import annotations

from typing import Any

import pytest

from statemachines.engine.asl.validation import validate_definition

from .interpreter_driver import Driver


def _errors(assign: Any, language: str = "JSONPath") -> list[str]:
    definition = {
        "QueryLanguage": language,
        "StartAt": "Keep",
        "States": {"Keep": {"Type": "Pass", "Assign": assign, "End": True}},
    }
    return [d.message for d in validate_definition(definition) if d.severity == "ERROR"]


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_literals_of_every_json_type_are_accepted(language: str) -> None:
    literals = {
        "productName": "product1",
        "count": 42,
        "ratio": 0.5,
        "available": True,
        "nothing": None,
        "emptyList": [],
        "list": [None, 0, "text", [], {}],
        "emptyObject": {},
        "object": {"nested": {"deeper": [1, 2]}},
        "notAPath": "$.no.path",
        "notAFunction": "States.Format('{}', $.x)",
        "notAnExpression": " {% 1 + 2 %} ",
    }
    assert _errors(literals, language) == []


@pytest.mark.parametrize(
    "value",
    [
        "$",
        "$.a.b[0]",
        "$$.Execution.Id",
        "$$.State.EnteredTime",
        "$other",
        "$other.field[1]",
        "States.Format('{} and {}', $other, $.a)",
        "States.ArrayGetItem($list, 0)",
        "States.JsonMerge($a, $b, false)",
        "States.UUID()",
    ],
)
def test_jsonpath_dollar_keys_take_paths_variables_and_intrinsics(value: str) -> None:
    assert _errors({"target.$": value, "nested": {"inner.$": value}}) == []


def test_jsonata_values_take_expressions_anywhere_inside() -> None:
    assign = {
        "whole": "{% $states.input %}",
        "context": "{% $states.context.Execution.Id %}",
        "old": "{% $previous %}",
        "deep": {"list": ["{% 1 + 1 %}", {"leaf": "{% $uppercase('a') %}"}]},
    }
    assert _errors(assign, "JSONata") == []


@pytest.mark.parametrize("name", ["x", "_private", "camelCase", "with_digits_9", "ñandú", "名前", "a" * 80])
def test_variable_names_that_are_identifiers_are_accepted(name: str) -> None:
    assert _errors({name: 1}) == []
    assert _errors({name: 1}, "JSONata") == []


@pytest.mark.parametrize("name", ["states", "9lives", "has space", "dash-ed", "a" * 81, ""])
def test_names_that_are_not_identifiers_or_are_reserved_are_refused(name: str) -> None:
    assert _errors({name: 1})


def test_a_jsonata_expression_ending_in_a_comment_is_accepted_and_runs() -> None:
    """JSONata 2.0.6 (the version the JSONata guide names) allows /* comments */ anywhere."""
    assign = {"answer": "{% $states.input.a /* the answer */ %}", "total": "{% 1 + /* one */ 1 /* two */ %}"}
    assert _errors(assign, "JSONata") == []
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Keep",
        "States": {
            "Keep": {"Type": "Pass", "Assign": assign, "Next": "Show"},
            "Show": {"Type": "Pass", "Output": "{% [$answer, $total] %}", "End": True},
        },
    }
    run = Driver(definition, {"a": 42})
    assert run.output == [42, 2]


def test_a_jsonpath_assign_keeps_a_jsonata_looking_string_as_a_literal() -> None:
    """In a JSONPath state only `.$` keys are evaluated; every other Assign value is stored as it is."""
    assign = {"notJsonata": "{% 1 + 2 %}", "nested": {"list": ["{% $x %}"]}, "path.$": "$.a"}
    assert _errors(assign) == []
    definition = {
        "StartAt": "Keep",
        "States": {
            "Keep": {"Type": "Pass", "Assign": assign, "Next": "Show"},
            "Show": {
                "Type": "Pass",
                "Parameters": {"a.$": "$notJsonata", "b.$": "$nested", "c.$": "$path"},
                "End": True,
            },
        },
    }
    run = Driver(definition, {"a": 1})
    assert run.output == {"a": "{% 1 + 2 %}", "b": {"list": ["{% $x %}"]}, "c": 1}
