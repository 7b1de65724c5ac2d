"""Pass state: Result, Parameters, the JSONPath pipeline and JSONata Output."""

from __future__ import annotations

from tests.engine.asl.interpreter_driver import Driver


def one_state(state: dict, **top: object) -> dict:
    return {"StartAt": "S", "States": {"S": {**state, "End": True}}, **top}


def test_pass_passes_its_input_through() -> None:
    run = Driver(one_state({"Type": "Pass"}), {"a": 1})
    assert run.status == "SUCCEEDED"
    assert run.output == {"a": 1}


def test_result_is_placed_by_result_path() -> None:
    run = Driver(one_state({"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r"}), {"a": 1})
    assert run.output == {"a": 1, "r": {"x": 1}}


def test_parameters_read_the_input_after_input_path() -> None:
    state = {"Type": "Pass", "InputPath": "$.inner", "Parameters": {"copy.$": "$.v", "fixed": 2}}
    run = Driver(one_state(state), {"inner": {"v": "hello"}})
    assert run.output == {"copy": "hello", "fixed": 2}


def test_null_input_and_output_paths_give_empty_objects() -> None:
    run = Driver(one_state({"Type": "Pass", "InputPath": None}), {"a": 1})
    assert run.output == {}
    run = Driver(one_state({"Type": "Pass", "OutputPath": None}), {"a": 1})
    assert run.output == {}


def test_result_path_null_keeps_the_input() -> None:
    run = Driver(one_state({"Type": "Pass", "Result": 5, "ResultPath": None}), {"a": 1})
    assert run.output == {"a": 1}


def test_output_path_selects_part_of_the_output() -> None:
    state = {"Type": "Pass", "Result": {"x": {"y": 3}}, "ResultPath": "$.r", "OutputPath": "$.r.x"}
    run = Driver(one_state(state), {})
    assert run.output == {"y": 3}


def test_missing_input_path_fails_with_states_runtime_naming_the_state() -> None:
    run = Driver(one_state({"Type": "Pass", "InputPath": "$.nope"}), {"a": 1})
    assert run.status == "FAILED"
    assert run.state["error"] == "States.Runtime"
    assert run.state["cause"].startswith(
        "An error occurred while executing the state 'S' (entered at the event id #2)."
    )


def test_jsonata_output_sees_states_input() -> None:
    state = {"Type": "Pass", "Output": {"double": "{% $states.input.n * 2 %}"}}
    run = Driver(one_state(state, QueryLanguage="JSONata"), {"n": 21})
    assert run.output == {"double": 42}


def test_chain_of_pass_states_follows_next() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Result": 1, "ResultPath": "$.a", "Next": "B"},
            "B": {"Type": "Pass", "Result": 2, "ResultPath": "$.b", "End": True},
        },
    }
    run = Driver(definition, {})
    assert run.output == {"a": 1, "b": 2}
    assert run.types() == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
