"""TestState: one state, one input, inspection data and the four statuses."""

from __future__ import annotations

import json

import pytest

from statemachines.engine.asl.errors import StatesError
from statemachines.engine.asl.teststate import run_test_state
from tests.engine.asl.interpreter_driver import START_MS, FakeIds


def check(state: dict, value: object, level: str = "INFO", **kwargs: object) -> dict:
    return run_test_state(state, json.dumps(value), START_MS, FakeIds(), inspection_level=level, **kwargs)  # type: ignore[arg-type]


def test_debug_shows_every_stage() -> None:
    state = {
        "Type": "Pass",
        "InputPath": "$.a",
        "Parameters": {"x.$": "$.b"},
        "ResultPath": "$.r",
        "OutputPath": "$.r",
        "Next": "Later",
    }
    resp = check(state, {"a": {"b": 1}}, "DEBUG")
    assert resp["status"] == "SUCCEEDED"
    assert resp["nextState"] == "Later"
    assert json.loads(resp["output"]) == {"x": 1}
    data = resp["inspectionData"]
    assert json.loads(data["afterInputPath"]) == {"b": 1}
    assert json.loads(data["afterParameters"]) == {"x": 1}
    assert json.loads(data["afterResultPath"]) == {"a": {"b": 1}, "r": {"x": 1}}


def test_info_has_no_inspection_data() -> None:
    assert "inspectionData" not in check({"Type": "Pass", "End": True}, {})


def test_choice_reports_the_next_state() -> None:
    state = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
        "Default": "Small",
    }
    assert check(state, {"n": 5})["nextState"] == "Big"
    assert check(state, {"n": 0})["nextState"] == "Small"


def test_failed_retriable_and_caught() -> None:
    task = {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "End": True}
    assert check(task, {})["status"] == "FAILED"
    assert check({**task, "Retry": [{"ErrorEquals": ["States.ALL"]}]}, {})["status"] == "RETRIABLE"
    caught = check(
        {**task, "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "H"}]}, {"k": 1}
    )
    assert caught["status"] == "CAUGHT_ERROR"
    assert caught["nextState"] == "H"
    assert json.loads(caught["output"])["e"]["Error"] == "States.TaskFailed"


def test_fail_state_and_runtime_errors() -> None:
    assert check({"Type": "Fail", "Error": "E", "Cause": "C"}, {}) == {
        "status": "FAILED",
        "error": "E",
        "cause": "C",
    }
    resp = check({"Type": "Pass", "InputPath": "$.missing", "End": True}, {})
    assert resp["error"] == "States.Runtime"


def test_variables_are_readable_and_assignments_reported() -> None:
    state = {"Type": "Pass", "Parameters": {"v.$": "$seed"}, "Assign": {"seed": 2}, "End": True}
    resp = check(state, {}, "DEBUG", variables_json='{"seed": 1}')
    assert json.loads(resp["output"]) == {"v": 1}
    assert json.loads(resp["inspectionData"]["variables"]) == {"seed": 2}


def test_map_is_not_testable_here() -> None:
    with pytest.raises(StatesError):
        check({"Type": "Map", "ItemProcessor": {}, "End": True}, [])


def test_jsonata_state_shows_arguments_and_output() -> None:
    state = {
        "Type": "Pass",
        "QueryLanguage": "JSONata",
        "Output": {"n": "{% $states.input.n + $bias %}"},
        "Assign": {"seen": "{% $states.input.n %}"},
        "End": True,
    }
    resp = check(state, {"n": 1}, "DEBUG", variables_json='{"bias": 10}')
    assert json.loads(resp["output"]) == {"n": 11}
    assert json.loads(resp["inspectionData"]["variables"]) == {"bias": 10, "seen": 1}
