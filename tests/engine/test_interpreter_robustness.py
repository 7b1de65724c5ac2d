"""Bad definitions and bad data never raise out of the core: they fail the execution instead."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from statemachines.engine.interpreter import Interpreter
from tests.engine.interpreter_driver import ACTIVITY, EXECUTION, START_MS, Driver, FakeIds

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
