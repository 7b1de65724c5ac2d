"""Validation of the list-shaped parts of a state: Retry, Catch, and Choice rules."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .choice_rules import OPERATORS, parse_timestamp
from .fields import (
    CATCHER_FIELDS,
    CHOICE_RULE_JSONATA_FIELDS,
    MAX_ATTEMPTS,
    MAX_DELAY_SECONDS,
    MAX_SECONDS,
    RETRIER_FIELDS,
)

if TYPE_CHECKING:
    from .validation import Checker

SCHEMA = "SCHEMA_VALIDATION_FAILED"
TRANSITION = "MISSING_TRANSITION_TARGET"
_BOOLEAN_OPERATORS = ("And", "Or", "Not")


def _check_error_equals(checker: Checker, items: list[Any], location: str) -> None:
    """ErrorEquals: non-empty strings; "States.ALL must appear alone ... and in the last" retrier/catcher."""
    for index, item in enumerate(items):
        where = f"{location}[{index}]"
        if not isinstance(item, dict):
            checker.error(SCHEMA, "Each element must be an object", where)
            continue
        errors = item.get("ErrorEquals")
        if not isinstance(errors, list) or not errors or not all(isinstance(e, str) for e in errors):
            checker.error(
                SCHEMA, "The field 'ErrorEquals' must be a non-empty array of strings", f"{where}/ErrorEquals"
            )
            continue
        if "States.ALL" in errors and (len(errors) > 1 or index != len(items) - 1):
            checker.error(
                SCHEMA,
                "States.ALL must appear alone in ErrorEquals, in the last element of the array",
                f"{where}/ErrorEquals",
            )


def check_retriers(checker: Checker, retry: Any, location: str) -> None:
    if not isinstance(retry, list):
        checker.error(SCHEMA, "The field 'Retry' must be an array", location)
        return
    _check_error_equals(checker, retry, location)
    for index, retrier in enumerate(retry):
        if not isinstance(retrier, dict):
            continue
        where = f"{location}[{index}]"
        checker.unknown_fields(retrier, RETRIER_FIELDS, where)
        checker.integer(retrier, "IntervalSeconds", "JSONPath", where, least=1, most=MAX_SECONDS)
        checker.integer(retrier, "MaxAttempts", "JSONPath", where, least=0, most=MAX_ATTEMPTS)
        checker.integer(retrier, "MaxDelaySeconds", "JSONPath", where, least=1, most=MAX_DELAY_SECONDS)
        rate = retrier.get("BackoffRate", 2.0)
        # 1e400 in JSON reads as infinity
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 1 <= rate < math.inf:
            checker.error(
                SCHEMA, "The field 'BackoffRate' must be a number of at least 1.0", f"{where}/BackoffRate"
            )
        if retrier.get("JitterStrategy", "NONE") not in ("FULL", "NONE"):
            checker.error(
                SCHEMA, "The field 'JitterStrategy' must be FULL or NONE", f"{where}/JitterStrategy"
            )


def check_catchers(checker: Checker, catch: Any, language: str, location: str) -> None:
    if not isinstance(catch, list):
        checker.error(SCHEMA, "The field 'Catch' must be an array", location)
        return
    _check_error_equals(checker, catch, location)
    for index, catcher in enumerate(catch):
        if not isinstance(catcher, dict):
            continue
        where = f"{location}[{index}]"
        checker.unknown_fields(catcher, CATCHER_FIELDS[language], where)
        checker.required(catcher, ("Next",), where)
        if "ResultPath" in catcher and language == "JSONPath":
            checker.result_path(catcher["ResultPath"], f"{where}/ResultPath")
        if "Output" in catcher:
            checker.jsonata(catcher["Output"], f"{where}/Output")
        if "Assign" in catcher:
            checker.assign(catcher["Assign"], language, f"{where}/Assign")
        # Catch targets are checked against the scope by the caller through transitions().


def check_choice_rules(
    checker: Checker, choices: Any, states: dict[str, Any], language: str, location: str
) -> None:
    if not isinstance(choices, list) or not choices:
        checker.error(SCHEMA, "The field 'Choices' must be a non-empty array", location)
        return
    for index, rule in enumerate(choices):
        where = f"{location}[{index}]"
        if not isinstance(rule, dict):
            checker.error(SCHEMA, "A choice rule must be an object", where)
            continue
        if "Next" not in rule:
            checker.error(SCHEMA, "The field 'Next' is required but was missing", where)
        else:
            checker.transition(rule["Next"], states, f"{where}/Next")
        if language == "JSONata":
            checker.unknown_fields(rule, CHOICE_RULE_JSONATA_FIELDS, where)
            checker.required(rule, ("Condition",), where)
            for field in ("Condition", "Output"):
                if field in rule:
                    checker.jsonata(rule[field], f"{where}/{field}")
            if "Assign" in rule:
                checker.assign(rule["Assign"], language, f"{where}/Assign")
            continue
        extra = {"Next", "Comment", "Assign"}
        if "Assign" in rule:
            checker.assign(rule["Assign"], language, f"{where}/Assign")
        _check_rule(checker, rule, where, extra)


def _check_rule(checker: Checker, rule: dict[str, Any], location: str, extra: set[str]) -> None:
    """One JSONPath rule: exactly one boolean operator, or a Variable with exactly one comparison."""
    booleans = [key for key in _BOOLEAN_OPERATORS if key in rule]
    operators = [key for key in rule if key in OPERATORS]
    if len(booleans) + len(operators) != 1:
        checker.error(
            SCHEMA, "A choice rule must have exactly one comparison or And/Or/Not operator", location
        )
        return
    if booleans:
        operator = booleans[0]
        checker.unknown_fields(rule, {operator, *extra}, location)
        nested = rule[operator]
        if operator == "Not":
            if not isinstance(nested, dict):
                checker.error(SCHEMA, "The field 'Not' must be an object", f"{location}/Not")
            else:
                _check_rule(checker, nested, f"{location}/Not", {"Comment"})
            return
        if not isinstance(nested, list) or not nested:
            checker.error(
                SCHEMA, f"The field '{operator}' must be a non-empty array", f"{location}/{operator}"
            )
            return
        for index, inner in enumerate(nested):
            where = f"{location}/{operator}[{index}]"
            if isinstance(inner, dict):
                _check_rule(checker, inner, where, {"Comment"})
            else:
                checker.error(SCHEMA, "A choice rule must be an object", where)
        return
    operator = operators[0]
    checker.unknown_fields(rule, {"Variable", operator, *extra}, location)
    checker.required(rule, ("Variable",), location)
    if "Variable" in rule:
        checker.path(rule["Variable"], f"{location}/Variable", nullable=False)
    _check_operand(checker, operator, rule[operator], f"{location}/{operator}")


def _check_operand(checker: Checker, operator: str, operand: Any, location: str) -> None:
    if operator.endswith("Path"):
        checker.path(operand, location, nullable=False)
    elif operator.startswith("Is") or operator == "BooleanEquals":
        if not isinstance(operand, bool):
            checker.error(SCHEMA, f"The value of '{operator}' must be a boolean", location)
    elif operator.startswith("Numeric"):
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            checker.error(SCHEMA, f"The value of '{operator}' must be a number", location)
    elif operator.startswith("Timestamp"):
        if parse_timestamp(operand) is None:
            checker.error(SCHEMA, f"The value of '{operator}' must be an RFC 3339 timestamp", location)
    elif not isinstance(operand, str):
        checker.error(SCHEMA, f"The value of '{operator}' must be a string", location)
