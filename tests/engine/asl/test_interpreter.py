"""The Interpreter contract: start/advance/redrive, Stop, execution timeout, limits, determinism."""

from __future__ import annotations

import json

import pytest

from statemachines.engine.asl.errors import StatesError
from statemachines.engine.asl.interpreter import Interpreter
from tests.engine.asl.interpreter_driver import ACTIVITY, EXECUTION, START_MS, Driver, FakeIds

BUILD = {"Type": "Task", "Resource": ACTIVITY}


def pipeline() -> dict:
    return {
        "StartAt": "Lint",
        "States": {
            "Lint": {**BUILD, "Parameters": {"step": "lint"}, "ResultPath": "$.lint", "Next": "Test"},
            "Test": {**BUILD, "Parameters": {"step": "test"}, "ResultPath": "$.test", "End": True},
        },
    }


def test_state_is_json_and_carries_the_fields_the_service_reads() -> None:
    run = Driver(pipeline(), {"sha": "abc"})
    assert run.state["status"] == "RUNNING"
    assert run.state["next_event_id"] == len(run.events) + 1
    assert json.loads(json.dumps(run.state)) == run.state
    run.succeed(run.tokens()[0], "ok")
    run.succeed(run.tokens()[0], "ok")
    assert run.state["status"] == "SUCCEEDED"
    assert json.loads(run.state["output"]) == {"sha": "abc", "lint": "ok", "test": "ok"}
    assert run.state["frames"] == {}  # nothing left behind once it ends


def test_outcome_status_matches_the_state() -> None:
    out = Interpreter(pipeline()).start(EXECUTION, "{}", START_MS, FakeIds())
    assert out.status == out.state["status"] == "RUNNING"


def test_same_inputs_give_the_same_outcome() -> None:
    definition = {
        "StartAt": "U",
        "States": {"U": {"Type": "Pass", "Parameters": {"id.$": "States.UUID()"}, "End": True}},
    }
    first = Interpreter(definition).start(EXECUTION, "{}", START_MS, FakeIds())
    second = Interpreter(definition).start(EXECUTION, "{}", START_MS, FakeIds())
    assert (first.state, first.events, first.effects) == (second.state, second.events, second.effects)


def test_stop_aborts_and_cancels_open_tasks() -> None:
    run = Driver(pipeline())
    token = run.tokens()[0]
    run.send({"type": "Stop", "error": "Superseded", "cause": "a newer push"})
    assert (run.status, run.state["error"], run.state["cause"]) == ("ABORTED", "Superseded", "a newer push")
    assert token in run.cancelled
    assert run.types()[-1] == "ExecutionAborted"
    assert run.send({"type": "Stop"}).events == []  # finished executions ignore events


def test_execution_timeout_seconds() -> None:
    definition = {**pipeline(), "TimeoutSeconds": 60}
    run = Driver(definition)
    assert START_MS + 60_000 in run.timers.values()
    run.fire_next_timer()
    assert (run.status, run.state["error"], run.state["cause"]) == ("TIMED_OUT", None, None)
    assert run.types()[-1] == "ExecutionTimedOut"


def test_execution_timeout_is_cleared_when_the_execution_ends() -> None:
    run = Driver({**pipeline(), "TimeoutSeconds": 60})
    run.succeed(run.tokens()[0], 1)
    run.succeed(run.tokens()[0], 1)
    assert run.status == "SUCCEEDED" and not run.timers


def test_invalid_input_fails_the_execution() -> None:
    out = Interpreter(pipeline()).start(EXECUTION, "{nope", START_MS, FakeIds())
    assert out.status == "FAILED" and out.state["error"] == "States.Runtime"


def test_output_over_256_kib_fails_with_data_limit_exceeded() -> None:
    definition = {"StartAt": "Big", "States": {"Big": {"Type": "Pass", "Result": "a" * 300_000, "End": True}}}
    run = Driver(definition)
    assert run.state["error"] == "States.DataLimitExceeded"
    assert run.state["cause"] == (
        "The state/task 'Big' returned a result with a size exceeding the maximum number of bytes service limit."
    )


def test_history_beyond_25000_events_fails_the_execution() -> None:
    loop = {
        "StartAt": "Spin",
        "States": {"Spin": {"Type": "Pass", "Next": "Again"}, "Again": {"Type": "Pass", "Next": "Spin"}},
    }
    run = Driver(loop)
    assert run.status == "FAILED"
    assert run.state["error"] == "States.Runtime"
    assert run.state["next_event_id"] - 1 <= 25_000


def test_redrive_restarts_from_the_failed_state() -> None:
    run = Driver(pipeline(), {"sha": "abc"})
    run.succeed(run.tokens()[0], "lint ok")
    run.fail(run.tokens()[0], "Flaky", "network")
    assert run.status == "FAILED"
    run.redrive()
    assert run.status == "RUNNING" and run.state["error"] is None
    assert run.details("ExecutionRedriven") == [{"redriveCount": 1}]
    (token,) = run.tokens()
    assert run.task_input(token) == {"step": "test"}
    run.succeed(token, "test ok")
    assert run.output == {"sha": "abc", "lint": "lint ok", "test": "test ok"}
    assert run.types().count("ActivityScheduled") == 3


def test_redrive_context_object_counts_redrives() -> None:
    definition = {
        "StartAt": "Gate",
        "States": {
            "Gate": {**BUILD, "Next": "Report"},
            "Report": {"Type": "Pass", "Parameters": {"n.$": "$$.Execution.RedriveCount"}, "End": True},
        },
    }
    run = Driver(definition)
    run.fail(run.tokens()[0], "E")
    run.redrive()
    run.succeed(run.tokens()[0], {})
    assert run.output == {"n": 1}


def test_redrive_runs_only_failed_map_iterations() -> None:
    processor = {"StartAt": "Build", "States": {"Build": {**BUILD, "End": True}}}
    definition = {
        "StartAt": "Each",
        "States": {"Each": {"Type": "Map", "ItemProcessor": processor, "End": True}},
    }
    run = Driver(definition, ["a", "b", "c"])
    a, b, c = run.tokens()
    run.succeed(a, "A")
    run.fail(b, "E")
    assert run.status == "FAILED" and c in run.cancelled
    run.redrive()
    assert sorted(run.task_input(t) for t in run.tokens()) == ["b", "c"]
    for token in run.tokens():
        run.succeed(token, run.task_input(token).upper())
    assert run.output == ["A", "B", "C"]


def test_redrive_runs_only_the_failed_parallel_branch() -> None:
    branches = [
        {"StartAt": n, "States": {n: {**BUILD, "Parameters": {"b": n}, "End": True}}} for n in ("X", "Y")
    ]
    definition = {
        "StartAt": "Par",
        "States": {"Par": {"Type": "Parallel", "Branches": branches, "End": True}},
    }
    run = Driver(definition)
    x, y = run.tokens()
    run.succeed(x, "x")
    run.fail(y, "E")
    run.redrive()
    (retry,) = run.tokens()
    assert run.task_input(retry) == {"b": "Y"}
    run.succeed(retry, "y")
    assert run.output == ["x", "y"]


def test_redrive_after_abort_resumes_where_it_stopped() -> None:
    run = Driver(pipeline())
    run.send({"type": "Stop"})
    run.redrive()
    assert run.task_input(run.tokens()[0]) == {"step": "lint"}


def test_redrive_of_a_succeeded_execution_is_refused() -> None:
    run = Driver({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    with pytest.raises(StatesError) as raised:
        run.redrive()
    assert raised.value.name == "ExecutionNotRedrivable"


def test_context_object_fields() -> None:
    params = {"ctx.$": "$$"}
    definition = {"StartAt": "Look", "States": {"Look": {"Type": "Pass", "Parameters": params, "End": True}}}
    ctx = Driver(definition, {"k": 1}).output["ctx"]
    assert ctx == {
        "Execution": {
            "Id": EXECUTION["arn"],
            "Input": {"k": 1},
            "Name": "run-1",
            "RoleArn": EXECUTION["role_arn"],
            "StartTime": "2023-11-14T22:13:20.000Z",
            "RedriveCount": 0,
        },
        "StateMachine": {"Id": EXECUTION["state_machine_arn"], "Name": "pipeline"},
        "State": {"Name": "Look", "EnteredTime": "2023-11-14T22:13:20.000Z"},
    }


def test_express_context_has_no_redrive_count() -> None:
    definition = {
        "StartAt": "L",
        "States": {"L": {"Type": "Pass", "OutputPath": "$$.Execution", "End": True}},
    }
    assert "RedriveCount" not in Driver(definition, redrive_count=None).output


def test_redrive_after_timeout_arms_the_execution_timeout_again() -> None:
    run = Driver({**pipeline(), "TimeoutSeconds": 60})
    run.fire_next_timer()
    assert run.status == "TIMED_OUT"
    run.now += 5_000
    run.redrive()
    assert run.now + 60_000 in run.timers.values()
    assert len(run.tokens()) == 1


def test_redrive_reaches_into_a_map_nested_in_a_parallel_branch() -> None:
    processor = {"StartAt": "Build", "States": {"Build": {**BUILD, "End": True}}}
    inner_map = {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": processor, "End": True}
    branches = [
        {"StartAt": "Each", "States": {"Each": inner_map}},
        {"StartAt": "Solo", "States": {"Solo": {**BUILD, "Parameters": {"solo": True}, "End": True}}},
    ]
    definition = {
        "StartAt": "Par",
        "States": {"Par": {"Type": "Parallel", "Branches": branches, "End": True}},
    }
    run = Driver(definition, {"items": [1, 2]})
    by_input = {json.dumps(run.task_input(token)): token for token in run.tokens()}
    one, two, solo = by_input["1"], by_input["2"], by_input['{"solo": true}']
    run.succeed(one, "one")
    run.succeed(solo, "solo")
    run.fail(two, "E")
    assert run.status == "FAILED"
    run.redrive()
    (again,) = run.tokens()
    assert run.task_input(again) == 2
    run.succeed(again, "two")
    assert run.output == [["one", "two"], "solo"]
