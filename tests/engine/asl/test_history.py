"""History events: AWS's HistoryEvent shape, consecutive ids, details keys."""

from __future__ import annotations

from statemachines.engine.asl.history import details_key, make_event, state_exited
from tests.engine.asl.interpreter_driver import ACTIVITY, START_MS, Driver


def test_details_keys_follow_aws_names() -> None:
    assert details_key("ExecutionStarted") == "executionStartedEventDetails"
    assert details_key("TaskStateEntered") == "stateEnteredEventDetails"
    assert details_key("MapStateExited") == "stateExitedEventDetails"
    assert details_key("MapIterationStarted") == "mapIterationStartedEventDetails"
    assert details_key("ActivityScheduled") == "activityScheduledEventDetails"


def test_event_shape_and_absent_fields_dropped() -> None:
    event = make_event(3, 2, START_MS + 1500, "ExecutionFailed", {"error": "E", "cause": None})
    assert event == {
        "id": 3,
        "previousEventId": 2,
        "timestamp": (START_MS + 1500) / 1000,
        "type": "ExecutionFailed",
        "executionFailedEventDetails": {"error": "E"},
    }


def test_events_without_details_have_no_details_key() -> None:
    assert set(make_event(1, 0, START_MS, "ParallelStateStarted", {})) == {
        "id",
        "previousEventId",
        "timestamp",
        "type",
    }


def test_assigned_variables_are_json_text() -> None:
    details = state_exited("S", '{"a":1}', {"v": [1, 2]})
    assert details["assignedVariables"] == {"v": "[1,2]"}
    assert details["output"] == '{"a":1}'


def test_ids_are_consecutive_across_calls_and_link_back() -> None:
    definition = {
        "StartAt": "Build",
        "States": {
            "Build": {"Type": "Task", "Resource": ACTIVITY, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    run = Driver(definition, {"sha": "abc"})
    run.succeed(run.tokens()[0], {"ok": 1})
    assert [e["id"] for e in run.events] == list(range(1, len(run.events) + 1))
    assert run.events[0]["previousEventId"] == 0
    assert all(0 <= e["previousEventId"] < e["id"] for e in run.events)
    assert run.types() == [
        "ExecutionStarted",
        "TaskStateEntered",
        "ActivityScheduled",
        "ActivitySucceeded",
        "TaskStateExited",
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]
    started = run.events[0]["executionStartedEventDetails"]
    assert started == {
        "input": '{"sha":"abc"}',
        "inputDetails": {"truncated": False},
        "roleArn": started["roleArn"],
    }
    entered = run.events[1]["stateEnteredEventDetails"]
    assert entered == {"name": "Build", "input": '{"sha":"abc"}', "inputDetails": {"truncated": False}}


def test_exited_event_lists_assigned_variables() -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Assign": {"n": 1}, "End": True}}}
    exited = Driver(definition).details("PassStateExited")[0]
    assert exited["assignedVariables"] == {"n": "1"}
    assert exited["assignedVariablesDetails"] == {"truncated": False}


def test_execution_started_names_the_version_and_alias_when_given() -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    started = Driver(definition, version_arn="arn:v:1", alias_arn="arn:a:prod").details("ExecutionStarted")[0]
    assert (started["stateMachineVersionArn"], started["stateMachineAliasArn"]) == ("arn:v:1", "arn:a:prod")
    assert "stateMachineVersionArn" not in Driver(definition).details("ExecutionStarted")[0]
