"""Choice state: ordered rules, Default, NoChoiceMatched, JSONata conditions and rule Assign."""

from __future__ import annotations

from tests.engine.asl.interpreter_driver import Driver


def choice(choices: list, default: str | None = "Other", **top: object) -> dict:
    state: dict = {"Type": "Choice", "Choices": choices}
    if default:
        state["Default"] = default
    result = "Output" if top.get("QueryLanguage") == "JSONata" else "Result"
    return {
        "StartAt": "C",
        "States": {
            "C": state,
            "Main": {"Type": "Pass", result: "main", "End": True},
            "Other": {"Type": "Pass", result: "other", "End": True},
        },
        **top,
    }


BRANCH_IS_MAIN = {"Variable": "$.branch", "StringEquals": "main", "Next": "Main"}


def test_first_matching_rule_names_the_next_state() -> None:
    assert Driver(choice([BRANCH_IS_MAIN]), {"branch": "main"}).output == "main"


def test_default_when_nothing_matches() -> None:
    assert Driver(choice([BRANCH_IS_MAIN]), {"branch": "feature"}).output == "other"


def test_no_match_and_no_default_fails_with_no_choice_matched() -> None:
    run = Driver(choice([BRANCH_IS_MAIN], default=None), {"branch": "feature"})
    assert run.status == "FAILED"
    assert run.state["error"] == "States.NoChoiceMatched"


def test_jsonata_condition() -> None:
    rule = {"Condition": "{% $states.input.n > 3 %}", "Next": "Main"}
    assert Driver(choice([rule], QueryLanguage="JSONata"), {"n": 4}).output == "main"
    assert Driver(choice([rule], QueryLanguage="JSONata"), {"n": 1}).output == "other"


def test_matched_rule_assigns_variables() -> None:
    rule = {"Condition": "{% true %}", "Next": "Use", "Assign": {"picked": "{% $states.input.n %}"}}
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [rule], "Default": "Use"},
            "Use": {"Type": "Pass", "Output": "{% $picked %}", "End": True},
        },
    }
    assert Driver(definition, {"n": 9}).output == 9


def test_choice_reads_the_context_object() -> None:
    rule = {"Variable": "$$.Execution.Input.branch", "StringEquals": "main", "Next": "Main"}
    assert Driver(choice([rule]), {"branch": "main"}).output == "main"
