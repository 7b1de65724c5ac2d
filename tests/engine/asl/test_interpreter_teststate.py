"""TestState: one state, one input, inspection data and the four statuses.

Rules from the API reference (TestState, MockInput, TestStateConfiguration, InspectionData:
https://docs.aws.amazon.com/step-functions/latest/apireference/API_TestState.html) and the
developer guide's "Testing state machines with TestState API" (test-state-isolation.html).
"""

from __future__ import annotations

import json

import pytest

from statemachines.engine.asl.errors import InvalidDefinitionError
from statemachines.engine.asl.teststate import run_test_state
from statemachines.engine.asl.teststate_request import NO_FAN_OUT, TestStateRejected
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


def test_jsonata_task_shows_its_arguments_and_a_jsonata_map_its_item_selector() -> None:
    task = {
        "Type": "Task",
        "QueryLanguage": "JSONata",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {"n": "{% $states.input.n + 1 %}"},
        "Output": "{% $states.result.v %}",
        "End": True,
    }
    resp = check(task, {"n": 1}, "DEBUG", mock={"result": '{"v": 5}'})
    data = resp["inspectionData"]
    assert (json.loads(data["afterArguments"]), json.loads(data["result"]), resp["output"]) == (
        {"n": 2},
        {"v": 5},
        "5",
    )
    assert "afterInputPath" not in data and "afterResultPath" not in data
    fan = {
        "Type": "Map",
        "QueryLanguage": "JSONata",
        "Items": "{% $states.input.xs %}",
        "ItemSelector": {"x": "{% $states.context.Map.Item.Value * 2 %}"},
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
        "End": True,
    }
    data = check(fan, {"xs": [1, 2]}, "DEBUG", mock={"result": "[]"})["inspectionData"]
    assert json.loads(data["afterItemSelector"]) == [{"x": 2}, {"x": 4}] and "afterItemsPath" not in data
    failed = check(fan, {"xs": 3}, mock={"result": "[]"})
    assert (failed["status"], failed["error"]) == ("FAILED", "States.QueryEvaluationError")


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


LAMBDA = "arn:aws:states:::lambda:invoke"
MACHINE = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Map",
            "ItemsPath": "$.xs",
            "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
            "ItemBatcher": {"MaxItemsPerBatch": 2},
            "MaxConcurrency": 2,
            "ToleratedFailureCount": 1,
            "ItemProcessor": {
                "StartAt": "Build",
                "States": {"Build": {"Type": "Task", "Resource": LAMBDA, "End": True}},
            },
            "ResultPath": "$.out",
            "Next": "Both",
        },
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": 2, "End": True}}},
            ],
            "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2, "IntervalSeconds": 3}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Done"}],
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


def named(name: str, value: object, level: str = "INFO", **kwargs: object) -> dict:
    return check(MACHINE, value, level, state_name=name, **kwargs)  # type: ignore[arg-type]


def test_map_named_in_a_machine_runs_its_readers_and_takes_the_mock_as_its_result() -> None:
    """A Map needs a mock; ItemsPath, ItemSelector and ItemBatcher still run for inspectionData."""
    resp = named("Fan", {"xs": [1, 2, 3]}, "DEBUG", mock={"result": "[10, 20]"})
    assert resp["status"] == "SUCCEEDED" and resp["nextState"] == "Both"
    assert json.loads(resp["output"]) == {"xs": [1, 2, 3], "out": [10, 20]}
    data = resp["inspectionData"]
    assert json.loads(data["afterItemsPath"]) == [1, 2, 3]
    assert json.loads(data["afterItemSelector"]) == [{"v": 1, "i": 0}, {"v": 2, "i": 1}, {"v": 3, "i": 2}]
    assert [len(batch["Items"]) for batch in json.loads(data["afterItemBatcher"])] == [2, 1]
    assert (data["toleratedFailureCount"], data["maxConcurrency"]) == (1, 2)
    assert json.loads(data["result"]) == [10, 20]


def test_map_iteration_failures_beyond_the_tolerated_count_fail_it() -> None:
    within = named(
        "Fan", {"xs": [1, 2]}, mock={"result": "[1]"}, configuration={"mapIterationFailureCount": 1}
    )
    assert within["status"] == "SUCCEEDED"
    beyond = named(
        "Fan", {"xs": [1, 2]}, mock={"result": "[]"}, configuration={"mapIterationFailureCount": 2}
    )
    assert (beyond["status"], beyond["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold")


def test_parallel_with_a_mocked_result_and_mocked_errors_through_retry_and_catch() -> None:
    ok = named("Both", {"a": 1}, mock={"result": "[1, 2]"})
    assert (ok["status"], json.loads(ok["output"]), ok["nextState"]) == ("SUCCEEDED", [1, 2], "Done")
    flaky = {"errorOutput": {"error": "Flaky", "cause": "try again"}}
    retry = named("Both", {}, "DEBUG", mock=flaky)
    assert (retry["status"], retry["error"], retry["cause"]) == ("RETRIABLE", "Flaky", "try again")
    assert retry["inspectionData"]["errorDetails"] == {"retryIndex": 0, "retryBackoffIntervalSeconds": 3}
    assert "nextState" not in retry and "output" not in retry
    # retrierRetryCount: the retries already made; with MaxAttempts spent the catcher takes it
    spent = named("Both", {"a": 1}, "DEBUG", mock=flaky, configuration={"retrierRetryCount": 2})
    assert (spent["status"], spent["nextState"]) == ("CAUGHT_ERROR", "Done")
    assert json.loads(spent["output"]) == {"a": 1, "err": {"Error": "Flaky", "Cause": "try again"}}
    assert spent["inspectionData"]["errorDetails"] == {"catchIndex": 0}


def test_a_state_nested_in_a_branch_or_an_iteration_can_be_named() -> None:
    assert json.loads(named("B", {})["output"]) == 2
    built = named("Build", {}, mock={"result": '{"Payload": 7}'})
    assert json.loads(built["output"]) == {"Payload": 7} and "nextState" not in built


def test_the_mocked_task_sees_the_given_context() -> None:
    state = {"Type": "Task", "Resource": LAMBDA, "Parameters": {"i.$": "$$.Map.Item.Index"}, "End": True}
    resp = check(
        state,
        {},
        "DEBUG",
        mock={"result": "{}"},
        context_json='{"Map": {"Item": {"Index": 4, "Value": "x"}}}',
    )
    assert json.loads(resp["inspectionData"]["afterParameters"]) == {"i": 4}


def test_retry_count_is_in_the_context_and_backs_off() -> None:
    state = {
        "Type": "Task",
        "Resource": LAMBDA,
        "Parameters": {"n.$": "$$.State.RetryCount"},
        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3, "BackoffRate": 2}],
        "End": True,
    }
    resp = check(
        state, {}, "DEBUG", mock={"errorOutput": {"error": "E"}}, configuration={"retrierRetryCount": 1}
    )
    assert resp["status"] == "RETRIABLE"
    assert json.loads(resp["inspectionData"]["afterParameters"]) == {"n": 1}
    assert resp["inspectionData"]["errorDetails"]["retryBackoffIntervalSeconds"] == 2


def test_wait_does_not_wait() -> None:
    resp = check({"Type": "Wait", "Seconds": 3600, "Next": "After"}, {"k": 1}, "DEBUG")
    assert (resp["status"], resp["nextState"], json.loads(resp["output"])) == ("SUCCEEDED", "After", {"k": 1})


@pytest.mark.parametrize(
    ("state", "kwargs", "code", "message"),
    [
        ({"Type": "Map", "ItemProcessor": {}, "End": True}, {}, "InvalidDefinition", NO_FAN_OUT),
        ({"Type": "Parallel", "Branches": [], "End": True}, {}, "InvalidDefinition", NO_FAN_OUT),
        (
            {"Type": "Pass", "End": True},
            {"mock": {"result": "1"}},
            "ValidationException",
            "State type 'Pass' is not supported when a mock is specified",
        ),
        (
            {"Type": "Task", "Resource": LAMBDA, "End": True},
            {"mock": {"result": "1", "errorOutput": {"error": "E"}}},
            "ValidationException",
            "A test mock should have only one of the following fields: [result, errorOutput].",
        ),
        (
            {"Type": "Task", "Resource": LAMBDA, "End": True},
            {"mock": {"result": "{bad"}},
            "ValidationException",
            "Mocked result must be valid JSON",
        ),
        (
            {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "End": True,
            },
            {"mock": {"result": "{}"}},
            "ValidationException",
            "Mocked result must be an array.",
        ),
        (
            {"Type": "Task", "Resource": LAMBDA, "End": True},
            {"mock": {"result": "{}"}, "reveal_secrets": True},
            "ValidationException",
            "TestState does not support RevealSecrets when a mock is specified.",
        ),
        (
            {"Type": "Task", "Resource": LAMBDA, "End": True},
            {"role_arn": None},
            "ValidationException",
            "RoleArn must be specified when testing a Task state",
        ),
    ],
)
def test_requests_aws_refuses(state: dict, kwargs: dict, code: str, message: str) -> None:
    with pytest.raises(TestStateRejected) as refused:
        check(state, {}, **kwargs)
    assert (refused.value.code, refused.value.message) == (code, message)


def test_requests_refused_by_documented_rules() -> None:
    """Rules AWS documents without their texts: context needs a mock, activities need one, ..."""
    task = {"Type": "Task", "Resource": "arn:aws:states:us-east-1:123456789012:activity:a", "End": True}
    for kwargs in ({"context_json": "{}"}, {}):
        with pytest.raises(TestStateRejected):
            check(task, {}, **kwargs)
    for resource in (
        "arn:aws:states:::states:startExecution.sync:2",
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
    ):
        with pytest.raises(TestStateRejected, match="only when a mock is specified"):
            check({**task, "Resource": resource}, {})
        assert check({**task, "Resource": resource}, {}, mock={"result": "{}"})["status"] == "SUCCEEDED"
    with pytest.raises(TestStateRejected):
        named("Both", {}, mock={"result": "[]"}, configuration={"errorCausedByState": "Build"})
    assert named("Both", {}, mock={"errorOutput": {"error": "E"}}, configuration={"errorCausedByState": "B"})
    with pytest.raises(TestStateRejected, match="not a state inside"):  # Build is in the Map, not here
        named("Both", {}, mock={"errorOutput": {"error": "E"}}, configuration={"errorCausedByState": "Build"})
    with pytest.raises(TestStateRejected, match="State not found in definition"):
        named("Nowhere", {})
    with pytest.raises(InvalidDefinitionError):
        check({"StartAt": "X", "States": {}}, {}, state_name="X")
