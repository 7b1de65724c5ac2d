"""offload.py: the core hands JSONata and complex JSONPath to an installed runner, and lets the service stop
a call between states, without the core catching what the service raises."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from statemachines.engine.asl import offload
from statemachines.engine.asl.definition import load_definition
from statemachines.engine.asl.errors import StatesError
from statemachines.engine.asl.interpreter import Interpreter
from statemachines.engine.asl.jsonata_query import evaluate_jsonata
from statemachines.engine.asl.paths import read_path
from statemachines.engine.loop_calls import MoveToThread
from tests.engine.asl.interpreter_driver import EXECUTION, FakeIds


@pytest.fixture(autouse=True)
def nothing_installed() -> Iterator[None]:
    yield
    offload.install(None)


def test_jsonata_is_sent_only_the_states_members_it_reads() -> None:
    sent: list[dict[str, Any]] = []

    def runner(request: dict[str, Any]) -> dict[str, Any]:
        sent.append(request)
        return {"value": 1}

    offload.install(runner)
    states = {"input": {"a": 1}, "context": {"big": "x" * 1000}, "result": 3}
    variables = {"v": 2, "unused": 3}
    assert evaluate_jsonata("$states.input.a + $v", states, variables, field="Output") == 1
    assert sent[-1] == {
        "kind": "jsonata",
        "expr": "$states.input.a + $v",
        "field": "Output",
        "states": {"input": {"a": 1}},
        "variables": {"v": 2},
    }
    evaluate_jsonata("$lookup($states, 'input')", states)
    assert sent[-1]["states"] == states  # $states used whole: all of it
    evaluate_jsonata("$now()", states)
    assert sent[-1]["states"] == {"context": states["context"]}  # the clock reads the entry time


def test_a_timeout_or_a_dead_worker_is_the_state_failing() -> None:
    def timeout(request: dict[str, Any]) -> dict[str, Any]:
        raise offload.EvaluationTimeout(5000)

    offload.install(timeout)
    with pytest.raises(StatesError) as jsonata_error:
        evaluate_jsonata("$x()", {}, field="Output")
    assert jsonata_error.value.name == "States.QueryEvaluationError"
    assert jsonata_error.value.cause == (
        "The JSONata expression '$x()' specified for the field 'Output' threw an error during evaluation."
        " D1012: Evaluation timeout after 5000 milliseconds. Check for infinite loop"
    )
    with pytest.raises(StatesError) as path_error:
        read_path("$..a", {"a": 1})
    assert (path_error.value.name, path_error.value.cause) == (
        "States.Runtime",
        "The JSONPath '$..a' ran longer than 5000 ms",
    )
    assert read_path("$.a", {"a": 1}) == 1  # plain steps never leave the process

    def dead(request: dict[str, Any]) -> dict[str, Any]:
        raise offload.EvaluationFailed("the expression worker ended (killed by signal 9)")

    offload.install(dead)
    with pytest.raises(StatesError, match="killed by signal 9"):
        evaluate_jsonata("1", {})


def test_a_checkpoint_stops_a_start_between_states_and_the_core_lets_it_through() -> None:
    entered = []

    def checkpoint() -> None:
        entered.append(1)
        if len(entered) > 50:
            raise MoveToThread()

    offload.install(None, checkpoint)
    states = {
        "M": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            "End": True,
        }
    }
    interpreter = Interpreter(load_definition(json.dumps({"StartAt": "M", "States": states})))
    with pytest.raises(MoveToThread):
        interpreter.start(EXECUTION, json.dumps({"items": list(range(200))}), 0, FakeIds())
    offload.install(None)
    assert interpreter.start(EXECUTION, json.dumps({"items": [1]}), 0, FakeIds()).status == "SUCCEEDED"


def test_validating_a_large_definition_passes_checkpoints_too() -> None:
    passed = []

    def checkpoint() -> None:
        passed.append(1)
        if len(passed) > 100:
            raise MoveToThread()

    offload.install(None, checkpoint)
    states = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(300)}
    states["S300"] = {"Type": "Succeed"}
    with pytest.raises(MoveToThread):
        load_definition(json.dumps({"StartAt": "S0", "States": states}))
