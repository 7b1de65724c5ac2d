"""Input/output processing through whole states: ResultSelector, Assign timing, JSONata pipeline."""

from __future__ import annotations

from tests.engine.asl.interpreter_driver import ACTIVITY, Driver


def test_result_selector_then_result_path_then_output_path() -> None:
    state = {
        "Type": "Task",
        "Resource": ACTIVITY,
        "ResultSelector": {"code.$": "$.exitCode"},
        "ResultPath": "$.result",
        "OutputPath": "$.result",
        "End": True,
    }
    run = Driver({"StartAt": "T", "States": {"T": state}}, {"sha": "abc"})
    run.succeed(run.tokens()[0], {"exitCode": 0, "log": "..."})
    assert run.output == {"code": 0}


def test_jsonpath_assign_reads_the_result_and_old_variables() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"n": 1}, "Next": "B"},
            "B": {"Type": "Pass", "Result": {"x": 5}, "Assign": {"n.$": "$.x", "old.$": "$n"}, "Next": "C"},
            "C": {"Type": "Pass", "Parameters": {"n.$": "$n", "old.$": "$old"}, "End": True},
        },
    }
    assert Driver(definition).output == {"n": 5, "old": 1}


def test_jsonata_arguments_output_and_assign() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": ACTIVITY,
                "Arguments": {"step": "{% $states.input.step %}"},
                "Assign": {"code": "{% $states.result.code %}"},
                "Output": {"ok": "{% $states.result.code = 0 %}", "in": "{% $states.input %}"},
                "Next": "Use",
            },
            "Use": {
                "Type": "Pass",
                "Output": {"code": "{% $code %}", "prev": "{% $states.input.ok %}"},
                "End": True,
            },
        },
    }
    run = Driver(definition, {"step": "lint"})
    token = run.tokens()[0]
    assert run.task_input(token) == {"step": "lint"}
    run.succeed(token, {"code": 0})
    assert run.output == {"code": 0, "prev": True}


def test_jsonata_output_sees_variables_before_this_states_assign() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"v": 1}, "Next": "B"},
            "B": {"Type": "Pass", "Assign": {"v": 2}, "Output": "{% $v %}", "End": True},
        },
    }
    assert Driver(definition).output == 1


def test_per_state_query_language_override() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Result": {"x": 2}, "Next": "B"},
            "B": {
                "Type": "Pass",
                "QueryLanguage": "JSONata",
                "Output": "{% $states.input.x * 10 %}",
                "End": True,
            },
        },
    }
    assert Driver(definition).output == 20


def test_jsonata_error_is_located_at_the_state() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Output": "{% $undefinedThing.x %}", "End": True}},
    }
    run = Driver(definition)
    assert run.state["error"] == "States.QueryEvaluationError"
    assert run.state["cause"].startswith(
        "An error occurred while executing the state 'A' (entered at the event id #2)."
    )


def test_jsonata_errors_are_recorded_as_evaluation_failed_events() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "Items": "{% $states.input.n %}",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    run = Driver(definition, {"n": 1})
    (details,) = run.details("EvaluationFailed")
    assert (details["state"], details["location"], details["error"]) == (
        "Each",
        "Items",
        "States.QueryEvaluationError",
    )
    assert details["cause"] == run.state["cause"]
    assert run.types()[-2:] == ["EvaluationFailed", "ExecutionFailed"]
