"""Succeed and Fail: terminal states, Fail's Error/Cause in every form."""

from __future__ import annotations

from tests.engine.asl.interpreter_driver import Driver


def one(state: dict, **top: object) -> dict:
    return {"StartAt": "S", "States": {"S": state}, **top}


def test_succeed_ends_the_execution_with_its_input() -> None:
    run = Driver(one({"Type": "Succeed", "OutputPath": "$.keep"}), {"keep": [1], "drop": 2})
    assert run.status == "SUCCEEDED"
    assert run.output == [1]


def test_fail_with_literal_error_and_cause() -> None:
    run = Driver(one({"Type": "Fail", "Error": "BuildFailed", "Cause": "tests failed"}), {})
    assert (run.status, run.state["error"], run.state["cause"]) == ("FAILED", "BuildFailed", "tests failed")
    assert run.types()[-2:] == ["FailStateEntered", "ExecutionFailed"]


def test_fail_without_error_or_cause() -> None:
    run = Driver(one({"Type": "Fail"}), {})
    assert run.status == "FAILED"
    assert run.state["error"] is None and run.state["cause"] is None
    assert run.details("ExecutionFailed") == [{}]


def test_fail_paths_read_the_input() -> None:
    run = Driver(one({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}), {"e": "E", "c": "C"})
    assert (run.state["error"], run.state["cause"]) == ("E", "C")


def test_fail_cause_path_may_be_an_intrinsic() -> None:
    state = {"Type": "Fail", "Error": "E", "CausePath": "States.Format('step {} failed', $.step)"}
    run = Driver(one(state), {"step": "lint"})
    assert run.state["cause"] == "step lint failed"


def test_fail_error_from_a_variable() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "Assign": {"why": "flaky"}, "Next": "F"},
            "F": {"Type": "Fail", "Error": "E", "CausePath": "$why"},
        },
    }
    assert Driver(definition, {}).state["cause"] == "flaky"


def test_jsonata_fail_expressions() -> None:
    state = {"Type": "Fail", "Error": "{% 'E' & $states.input.n %}", "Cause": "plain"}
    run = Driver(one(state, QueryLanguage="JSONata"), {"n": 1})
    assert (run.state["error"], run.state["cause"]) == ("E1", "plain")
