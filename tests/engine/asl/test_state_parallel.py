"""Parallel state: branch outputs in order, first failure cancels siblings, variable scopes."""

from __future__ import annotations

from tests.engine.asl.interpreter_driver import ACTIVITY, Driver


def branch(*states: tuple[str, dict]) -> dict:
    names = [name for name, _ in states]
    built = {}
    for i, (name, state) in enumerate(states):
        built[name] = {**state, **({"Next": names[i + 1]} if i + 1 < len(names) else {"End": True})}
    return {"StartAt": names[0], "States": built}


def parallel(branches: list, extra: dict | None = None) -> dict:
    return {
        "StartAt": "Par",
        "States": {
            "Par": {"Type": "Parallel", "Branches": branches, **(extra or {}), "Next": "After"},
            "After": {"Type": "Pass", "End": True},
            "Recover": {"Type": "Pass", "End": True},
        },
    }


def activity(step: str) -> dict:
    return {"Type": "Task", "Resource": ACTIVITY, "Parameters": {"step": step}}


def test_branch_outputs_are_collected_in_branch_order() -> None:
    run = Driver(parallel([branch(("A", activity("a"))), branch(("B", activity("b")))]), {})
    first, second = run.tokens()
    assert [run.task_input(t)["step"] for t in (first, second)] == ["a", "b"]
    run.succeed(second, "B done")
    assert run.status == "RUNNING"
    run.succeed(first, "A done")
    assert run.output == ["A done", "B done"]
    assert "ParallelStateStarted" in run.types() and "ParallelStateSucceeded" in run.types()


def test_every_branch_gets_the_effective_input() -> None:
    run = Driver(
        parallel([branch(("A", {"Type": "Pass"})), branch(("B", {"Type": "Pass"}))], {"InputPath": "$.x"}),
        {"x": 7},
    )
    assert run.output == [7, 7]


def test_first_failure_fails_the_state_and_cancels_sibling_tasks() -> None:
    run = Driver(parallel([branch(("A", activity("a"))), branch(("B", activity("b")))]), {})
    first, second = run.tokens()
    run.fail(first, "LintFailed", "style")
    assert (run.status, run.state["error"], run.state["cause"]) == ("FAILED", "LintFailed", "style")
    assert second in run.cancelled
    assert "ParallelStateFailed" in run.types()
    late = run.succeed(second, "too late")
    assert late.events == []


def test_catch_on_the_parallel_state() -> None:
    extra = {"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Recover"}]}
    run = Driver(parallel([branch(("F", {"Type": "Fail", "Error": "E", "Cause": "C"}))], extra), {"in": 1})
    assert run.output == {"in": 1, "err": {"Error": "E", "Cause": "C"}}


def test_retry_runs_every_branch_again() -> None:
    extra = {"Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 1}]}
    run = Driver(parallel([branch(("A", activity("a"))), branch(("B", activity("b")))], extra), {})
    a, b = run.tokens()
    run.fail(a, "E")
    assert b in run.cancelled
    run.fire_next_timer()
    assert len(run.tokens()) == 2
    for token in run.tokens():
        run.succeed(token, token)
    assert run.status == "SUCCEEDED"


def test_branches_read_outer_variables_and_their_assignments_stay_inside() -> None:
    definition = {
        "StartAt": "Set",
        "States": {
            "Set": {"Type": "Pass", "Assign": {"outer": 1, "shared": "outer"}, "Next": "Par"},
            "Par": {
                "Type": "Parallel",
                "Branches": [
                    branch(
                        ("Inner", {"Type": "Pass", "Assign": {"shared": "inner"}}),
                        (
                            "Read",
                            {"Type": "Pass", "Parameters": {"outer.$": "$outer", "shared.$": "$shared"}},
                        ),
                    )
                ],
                "Next": "After",
            },
            "After": {"Type": "Pass", "Parameters": {"shared.$": "$shared", "branch.$": "$[0]"}, "End": True},
        },
    }
    run = Driver(definition, {})
    assert run.output == {"shared": "outer", "branch": {"outer": 1, "shared": "inner"}}


def test_nested_parallel() -> None:
    inner = {"Type": "Parallel", "Branches": [branch(("X", {"Type": "Pass", "Result": "x"}))]}
    run = Driver(parallel([branch(("In", inner)), branch(("Y", {"Type": "Pass", "Result": "y"}))]), {})
    assert run.output == [["x"], "y"]
