"""Variable scope: what a Parallel branch or a Map iteration sees, what it leaves behind, and Assign in a Catch.

Sources:
- Passing data between states with variables
  (https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html): Pass, Task, Map, Parallel,
  Choice and Wait take `Assign`; `$states` is reserved; every Assign and Output of a state reads the
  variables as they were when the state was entered; branches and iterations read the outer variables;
  use Output to return data from Parallel and Map sub-workflows (their variables stay inside).
- Handling errors (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html): a
  Catcher may `Assign`; the failed state's own Assign is not applied.
- A variable that is not assigned fails where it is read, at run time: States.QueryEvaluationError
  "... returned nothing (undefined)." in JSONata, States.Runtime "The JSONPath '<path>' specified for the
  field '<field>' could not be found in the input" in JSONPath (texts as in the public cases).
"""

from __future__ import annotations

from typing import Any

from .interpreter_driver import Driver

JSONATA = {"QueryLanguage": "JSONata"}


def _map_then(after: dict[str, Any], language: dict[str, Any]) -> dict[str, Any]:
    items = {"Items": [1, 2]} if language else {"ItemsPath": "$.items"}
    inner = {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass", "Assign": {"inner": 7}, "End": True}}}
    return {
        **language,
        "StartAt": "Fan",
        "States": {
            "Fan": {"Type": "Map", **items, "ItemProcessor": inner, "Next": "After"},
            "After": {**after, "End": True},
        },
    }


def test_an_iteration_variable_is_not_visible_after_the_map_in_jsonata() -> None:
    run = Driver(_map_then({"Type": "Pass", "Output": "{% $inner %}"}, JSONATA), {})
    assert run.status == "FAILED"
    assert run.state["error"] == "States.QueryEvaluationError"
    assert run.state["cause"].endswith(
        "The JSONata expression '$inner' specified for the field 'Output' returned nothing (undefined)."
    )


def test_an_iteration_variable_is_not_visible_after_the_map_in_jsonpath() -> None:
    run = Driver(_map_then({"Type": "Pass", "Parameters": {"v.$": "$inner"}}, {}), {"items": [1]})
    assert run.status == "FAILED"
    assert run.state["error"] == "States.Runtime"
    assert "The JSONPath '$inner' specified for the field 'v.$' could not be found" in run.state["cause"]


def test_branches_read_outer_variables_and_an_inner_assignment_leaves_the_outer_value() -> None:
    # deviation: the guide says inner scopes read outer variables; an inner Assign of the same name
    # shadows it inside the branch and leaves the outer value (AWS's rule for the clash is not shown)
    branch = {
        "StartAt": "Read",
        "States": {
            "Read": {"Type": "Pass", "Assign": {"x": 2}, "Output": "{% $x %}", "Next": "Again"},
            "Again": {"Type": "Pass", "Output": "{% $x %}", "End": True},
        },
    }
    definition = {
        **JSONATA,
        "StartAt": "Set",
        "States": {
            "Set": {"Type": "Pass", "Assign": {"x": 1}, "Next": "Both"},
            "Both": {
                "Type": "Parallel",
                "Branches": [branch],
                "Output": {"inner": "{% $states.result %}"},
                "Next": "After",
            },
            "After": {
                "Type": "Pass",
                "Output": {"inner": "{% $states.input.inner %}", "outer": "{% $x %}"},
                "End": True,
            },
        },
    }
    run = Driver(definition, {})
    assert run.status == "SUCCEEDED", run.state
    assert run.output == {"inner": [2], "outer": 1}


def test_iterations_read_outer_variables_through_paths() -> None:
    definition = {
        "StartAt": "Set",
        "States": {
            "Set": {"Type": "Pass", "Assign": {"x": 42, "items": [1, 2, 3]}, "Next": "Fan"},
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$items",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "StartAt": "Inner",
                    "States": {
                        "Inner": {"Type": "Pass", "Parameters": {"x.$": "$x", "item.$": "$"}, "End": True}
                    },
                },
                "Next": "Last",
            },
            "Last": {"Type": "Pass", "Assign": {"final.$": "$x"}, "End": True},
        },
    }
    run = Driver(definition, {"a": 1})
    assert run.status == "SUCCEEDED", run.state
    assert run.output == [{"x": 42, "item": 1}, {"x": 42, "item": 2}, {"x": 42, "item": 3}]


def test_a_catcher_assigns_and_the_failed_states_own_assign_is_dropped() -> None:
    failing = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Oops", "Cause": "why"}}}
    definition = {
        **JSONATA,
        "StartAt": "Try",
        "States": {
            "Try": {
                "Type": "Parallel",
                "Assign": {"result": "SUCCESS"},
                "Branches": [failing],
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {"result": "{% $states.errorOutput %}"},
                        "Next": "Fallback",
                    }
                ],
                "End": True,
            },
            "Fallback": {"Type": "Pass", "Output": "{% $result %}", "End": True},
        },
    }
    run = Driver(definition, {})
    assert run.status == "SUCCEEDED", run.state
    assert run.output == {"Error": "Oops", "Cause": "why"}


def test_a_catcher_reads_the_variables_from_before_the_failed_state() -> None:
    failing = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Oops"}}}
    definition = {
        **JSONATA,
        "StartAt": "Set",
        "States": {
            "Set": {"Type": "Pass", "Assign": {"count": 1}, "Next": "Try"},
            "Try": {
                "Type": "Parallel",
                "Assign": {"count": 99},
                "Branches": [failing],
                "Catch": [{"ErrorEquals": ["Oops"], "Assign": {"count": "{% $count + 1 %}"}, "Next": "Show"}],
                "End": True,
            },
            "Show": {"Type": "Pass", "Output": "{% $count %}", "End": True},
        },
    }
    run = Driver(definition, {})
    assert run.status == "SUCCEEDED", run.state
    assert run.output == 2
