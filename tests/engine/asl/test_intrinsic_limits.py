"""The input-validation rules the "Intrinsic functions" page lists for each function, at their edges.

Source: Intrinsic functions for JSONPath states
(https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html): ArrayPartition needs "a
non-zero, positive integer" chunk size; ArrayRange "can't contain more than 1000 items" and needs a
non-zero step; ArrayGetItem takes an index into the array; Base64Encode/Base64Decode and Hash take at most
10,000 characters; Hash takes MD5, SHA-1, SHA-256, SHA-384 or SHA-512; UUID takes no argument;
JsonToString turns any JSON value into its text.
The error name and cause are the engine's documented choice (README, "Error names, causes and deviations"):
States.Runtime "There was an error while evaluating the intrinsic function: <call>. Invalid arguments in
States.<Name>".
"""

from __future__ import annotations

from typing import Any

import pytest

from statemachines.engine.asl.errors import StatesError
from statemachines.engine.asl.intrinsics import evaluate_intrinsic
from statemachines.engine.asl.validation import validate_definition


class _Ids:
    def random(self) -> float:
        return 0.5

    def uuid(self) -> str:
        return "11111111-2222-4333-8444-555555555555"


DATA = {"arr": [10, 20, 30], "long": "x" * 10_001, "edge": "x" * 10_000, "obj": {"k": [1, None]}}


def _run(expr: str) -> Any:
    return evaluate_intrinsic(expr, DATA, {}, {}, _Ids())


@pytest.mark.parametrize(
    "expr",
    [
        "States.ArrayGetItem($.arr, 3)",
        "States.ArrayGetItem($.arr, 1.5)",
        "States.ArrayRange(0, 1000, 1)",  # 1001 items
        "States.ArrayPartition($.arr, -2)",
        "States.Base64Encode($.long)",
        "States.Base64Decode($.long)",
        "States.Base64Decode('YWJj=')",
        "States.Hash($.long, 'SHA-256')",
        "States.Hash('abc', 'sha-256')",
        "States.StringSplit($.arr, ',')",
        "States.MathAdd('1', 2)",
    ],
)
def test_arguments_past_the_documented_limits_fail_the_state(expr: str) -> None:
    with pytest.raises(StatesError) as info:
        _run(expr)
    assert info.value.name == "States.Runtime"
    assert info.value.cause == (
        f"There was an error while evaluating the intrinsic function: {expr}. "
        f"Invalid arguments in {expr.split('(', 1)[0]}"
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("States.ArrayGetItem($.arr, 2)", 30),
        ("States.Base64Encode($.edge)", None),
        ("States.Hash($.edge, 'MD5')", None),
        ("States.JsonToString($.obj)", '{"k":[1,null]}'),
        ("States.JsonToString($.arr)", "[10,20,30]"),
        ("States.ArrayPartition($.arr, 2)", [[10, 20], [30]]),
    ],
)
def test_arguments_at_the_limits_are_accepted(expr: str, expected: Any) -> None:
    result = _run(expr)
    if expected is not None:
        assert result == expected


def test_a_range_of_exactly_1000_items_is_accepted() -> None:
    assert _run("States.ArrayRange(1000, 1, -1)") == list(range(1000, 0, -1))


def test_uuid_with_an_argument_is_refused_at_create_state_machine() -> None:
    definition = {
        "StartAt": "Id",
        "States": {"Id": {"Type": "Pass", "Parameters": {"id.$": "States.UUID(1)"}, "End": True}},
    }
    [diagnostic] = validate_definition(definition)
    assert diagnostic.code == "SCHEMA_VALIDATION_FAILED"
    assert diagnostic.location == "/States/Id/Parameters/id.$"
