"""Bad definitions and bad data never raise out of the core: they fail the execution instead."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from statemachines.engine.asl.interpreter import Interpreter
from tests.engine.asl.interpreter_driver import ACTIVITY, EXECUTION, START_MS, Driver, FakeIds

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)
PATHS = st.sampled_from(["$", "$.a", "$.b[0]", "$$.Execution.Input", "$.c.a", "$var", "not a path", 7])
STATES = st.fixed_dictionaries(
    {"Type": st.sampled_from(["Pass", "Wait", "Choice", "Task", "Map", "Parallel", "Fail", "Succeed"])},
    optional={
        "InputPath": PATHS,
        "OutputPath": PATHS,
        "ResultPath": PATHS,
        "ItemsPath": PATHS,
        "SecondsPath": PATHS,
        "Parameters": st.dictionaries(st.sampled_from(["x.$", "y"]), PATHS, max_size=2),
        "Result": JSON_VALUES,
        "Seconds": JSON_VALUES,
        "Resource": st.sampled_from([ACTIVITY, "arn:aws:lambda:us-east-1:1:function:f", 3]),
        "Choices": st.just([{"Variable": "$.a", "NumericEquals": 1, "Next": "S"}]),
        "Branches": st.just([{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}]),
        "ItemProcessor": st.just({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        "Next": st.sampled_from(["S", "Missing"]),
    },
)


@settings(max_examples=150, deadline=None)
@given(state=STATES, value=JSON_VALUES)
def test_no_exception_escapes_and_state_stays_json(state: dict, value: object) -> None:
    if "Next" not in state:
        state = {**state, "End": True}
    out = Interpreter({"StartAt": "S", "States": {"S": state}}).start(
        EXECUTION, json.dumps(value), START_MS, FakeIds()
    )
    json.dumps(out.state)
    assert out.state["status"] in ("RUNNING", "SUCCEEDED", "FAILED")


def test_next_naming_no_state_fails_the_execution() -> None:
    run = Driver({"StartAt": "S", "States": {"S": {"Type": "Pass", "Next": "Nowhere"}}})
    assert run.status == "FAILED" and run.state["error"] == "States.Runtime"


def test_garbage_events_are_ignored() -> None:
    run = Driver({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5, "End": True}}})
    for event in ({}, {"type": "Nope"}, {"type": "TaskSucceeded"}, {"type": "TimerFired", "timer": None}):
        assert run.send(event).events == []
    assert run.status == "RUNNING"


def pipeline_with_everything() -> dict:
    build = {"Type": "Task", "Resource": ACTIVITY, "HeartbeatSeconds": 5, "TimeoutSeconds": 50}
    retry = [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2, "IntervalSeconds": 1}]
    processor = {"StartAt": "Item", "States": {"Item": {**build, "Retry": retry, "End": True}}}
    return {
        "TimeoutSeconds": 500,
        "StartAt": "Par",
        "States": {
            "Par": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Lint", "States": {"Lint": {**build, "End": True}}},
                    {
                        "StartAt": "Each",
                        "States": {
                            "Each": {
                                "Type": "Map",
                                "MaxConcurrency": 2,
                                "ItemProcessor": processor,
                                "End": True,
                            }
                        },
                    },
                    {"StartAt": "Pause", "States": {"Pause": {"Type": "Wait", "Seconds": 3, "End": True}}},
                ],
                "Catch": [{"ErrorEquals": ["Fatal"], "ResultPath": "$.error", "Next": "Report"}],
                "Next": "Report",
            },
            "Report": {"Type": "Pass", "End": True},
        },
    }


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["start", "succeed", "fail", "flaky", "fatal", "heartbeat", "timer", "stop", "redrive"]
        ),
        st.integers(0, 5),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(actions=ACTIONS)
def test_random_event_sequences_keep_the_state_consistent(actions: list) -> None:
    run = Driver(pipeline_with_everything(), [1, 2, 3])
    for action, pick in actions:
        tokens = run.tokens()
        token = tokens[pick % len(tokens)] if tokens else "none"
        if action == "start":
            run.send({"type": "ActivityStarted", "token": token, "worker_name": "w"})
        elif action == "succeed":
            run.succeed(token, {"ok": pick})
        elif action in ("fail", "flaky", "fatal"):
            run.fail(token, {"fail": "Other", "flaky": "Flaky", "fatal": "Fatal"}[action], "why")
        elif action == "heartbeat":
            run.send({"type": "TaskHeartbeat", "token": token})
        elif action == "timer" and run.timers:
            run.fire_next_timer()
        elif action == "stop":
            run.send({"type": "Stop", "error": "E", "cause": "c"})
        elif action == "redrive" and run.status in ("FAILED", "ABORTED", "TIMED_OUT"):
            run.redrive()
        assert [e["id"] for e in run.events] == list(range(1, len(run.events) + 1))
        if run.status != "RUNNING":
            assert not run.open_tokens, "a finished execution leaves no open task tokens"
            assert not run.timers, "a finished execution leaves no timers"
        else:  # what the service holds is exactly what the core still waits for
            assert set(run.open_tokens) == set(run.state["tok"])
            assert set(run.timers) == set(run.state["tm"])


@settings(max_examples=100, deadline=None)
@given(document=JSON_VALUES)
def test_any_document_constructs_and_runs_without_raising(document: object) -> None:
    definition = document if isinstance(document, dict) else {"States": document}
    out = Interpreter(definition).start(EXECUTION, "{}", START_MS, FakeIds())
    assert out.state["status"] in ("RUNNING", "SUCCEEDED", "FAILED")
