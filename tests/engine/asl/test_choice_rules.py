"""JSONPath Choice rules: every operator, type mismatches, missing paths, boolean combinators."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachines.engine.asl.choice_rules import (
    COMPARISONS,
    OPERATORS,
    evaluate_choice_rule,
    evaluate_condition,
    parse_timestamp,
)
from statemachines.engine.asl.errors import StatesError

DATA = {
    "str": "banana",
    "num": 5,
    "float": 2.5,
    "bool": True,
    "null": None,
    "ts": "2016-03-14T01:59:00Z",
    "ts_offset": "2016-03-14T02:59:00+01:00",
    "other_str": "cherry",
    "other_num": 5.0,
    "other_ts": "2016-03-14T02:00:00.5Z",
    "star": "a*b",
    "list": [1],
}


def check(operator, variable, operand):
    return evaluate_choice_rule({"Variable": variable, operator: operand}, DATA)


@pytest.mark.parametrize(
    ("operator", "variable", "operand", "expected"),
    [
        ("StringEquals", "$.str", "banana", True),
        ("StringEquals", "$.str", "Banana", False),
        ("StringLessThan", "$.str", "cherry", True),
        ("StringGreaterThan", "$.str", "apple", True),
        ("StringLessThanEquals", "$.str", "banana", True),
        ("StringGreaterThanEquals", "$.str", "banana", True),
        ("StringGreaterThanEquals", "$.str", "c", False),
        ("NumericEquals", "$.num", 5, True),
        ("NumericEquals", "$.num", 5.0, True),
        ("NumericLessThan", "$.float", 3, True),
        ("NumericGreaterThan", "$.float", 3, False),
        ("NumericLessThanEquals", "$.num", 5, True),
        ("NumericGreaterThanEquals", "$.num", 6, False),
        ("BooleanEquals", "$.bool", True, True),
        ("BooleanEquals", "$.bool", False, False),
        ("TimestampEquals", "$.ts", "2016-03-14T01:59:00Z", True),
        ("TimestampEquals", "$.ts_offset", "2016-03-14T01:59:00Z", True),
        ("TimestampLessThan", "$.ts", "2016-03-14T01:59:00.001Z", True),
        ("TimestampGreaterThan", "$.ts", "2016-03-14T01:58:59Z", True),
        ("TimestampLessThanEquals", "$.ts", "2016-03-14T01:59:00Z", True),
        ("TimestampGreaterThanEquals", "$.ts", "2017-01-01T00:00:00Z", False),
    ],
)
def test_comparisons(operator, variable, operand, expected):
    assert check(operator, variable, operand) is expected


@pytest.mark.parametrize(
    ("operator", "variable", "operand_path", "expected"),
    [
        ("StringEqualsPath", "$.str", "$.str", True),
        ("StringLessThanPath", "$.str", "$.other_str", True),
        ("StringGreaterThanPath", "$.str", "$.other_str", False),
        ("StringLessThanEqualsPath", "$.str", "$.other_str", True),
        ("StringGreaterThanEqualsPath", "$.other_str", "$.str", True),
        ("NumericEqualsPath", "$.num", "$.other_num", True),
        ("NumericLessThanPath", "$.float", "$.num", True),
        ("NumericGreaterThanPath", "$.float", "$.num", False),
        ("NumericLessThanEqualsPath", "$.num", "$.other_num", True),
        ("NumericGreaterThanEqualsPath", "$.num", "$.float", True),
        ("BooleanEqualsPath", "$.bool", "$.bool", True),
        ("TimestampEqualsPath", "$.ts", "$.ts_offset", True),
        ("TimestampLessThanPath", "$.ts", "$.other_ts", True),
        ("TimestampGreaterThanPath", "$.ts", "$.other_ts", False),
        ("TimestampLessThanEqualsPath", "$.ts", "$.ts_offset", True),
        ("TimestampGreaterThanEqualsPath", "$.other_ts", "$.ts", True),
    ],
)
def test_path_comparisons(operator, variable, operand_path, expected):
    assert check(operator, variable, operand_path) is expected


def test_every_operator_is_covered():
    names = set(COMPARISONS) | {f"{name}Path" for name in COMPARISONS}
    assert (
        names | {"IsNull", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp", "IsPresent", "StringMatches"}
        == OPERATORS
    )


@pytest.mark.parametrize(
    ("operator", "variable", "operand"),
    [
        ("StringEquals", "$.num", "5"),
        ("NumericEquals", "$.str", 5),
        ("NumericEquals", "$.bool", 1),
        ("BooleanEquals", "$.num", True),
        ("TimestampEquals", "$.str", "2016-03-14T01:59:00Z"),
        ("NumericLessThanPath", "$.num", "$.str"),
        ("StringMatches", "$.num", "*"),
    ],
)
def test_type_mismatch_is_false(operator, variable, operand):
    assert check(operator, variable, operand) is False


@pytest.mark.parametrize(
    ("operator", "variable", "operand", "expected"),
    [
        ("IsNull", "$.null", True, True),
        ("IsNull", "$.str", True, False),
        ("IsNull", "$.str", False, True),
        ("IsNumeric", "$.float", True, True),
        ("IsNumeric", "$.bool", True, False),
        ("IsString", "$.str", True, True),
        ("IsString", "$.num", False, True),
        ("IsBoolean", "$.bool", True, True),
        ("IsBoolean", "$.null", True, False),
        ("IsTimestamp", "$.ts", True, True),
        ("IsTimestamp", "$.str", True, False),
        ("IsPresent", "$.null", True, True),
        ("IsPresent", "$.missing", True, False),
        ("IsPresent", "$.missing", False, True),
        ("IsPresent", "$.str", False, False),
    ],
)
def test_type_tests(operator, variable, operand, expected):
    assert check(operator, variable, operand) is expected


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("log-2024.txt", "log-*.txt", True),
        ("log.txt", "*.txt", True),
        ("log.txt", "*.csv", False),
        ("a*b", "a\\*b", True),
        ("axb", "a\\*b", False),
        ("a\\b", "a\\\\b", True),
        ("anything", "*", True),
        ("", "*", True),
        ("multi\nline", "multi*", True),
    ],
)
def test_string_matches(value, pattern, expected):
    assert evaluate_choice_rule({"Variable": "$", "StringMatches": pattern}, value) is expected


def _matches_by_regex(value: str, pattern: str) -> bool:
    """The reference: StringMatches as a regex (what the engine did before; it backtracks)."""
    regex, pos = [], 0
    while pos < len(pattern):
        if pattern[pos] == "\\" and pos + 1 < len(pattern):
            regex.append(re.escape(pattern[pos + 1]))
            pos += 2
            continue
        regex.append(".*" if pattern[pos] == "*" else re.escape(pattern[pos]))
        pos += 1
    return re.fullmatch("".join(regex), value, re.DOTALL) is not None


@settings(max_examples=500)
@given(st.text(alphabet="ab*\\\n", max_size=10), st.text(alphabet="ab*\\\n", max_size=12))
def test_string_matches_agrees_with_the_regex_it_replaced(value, pattern):
    expected = _matches_by_regex(value, pattern)
    assert evaluate_choice_rule({"Variable": "$", "StringMatches": pattern}, value) is expected


@pytest.mark.timeout(60)  # a hang detector: the regex took hours here
def test_string_matches_does_not_backtrack():
    value = "a" * 200_000
    assert not evaluate_choice_rule({"Variable": "$", "StringMatches": "*a" * 30 + "*b"}, value)


def test_and_or_not():
    yes = {"Variable": "$.num", "NumericEquals": 5}
    no = {"Variable": "$.num", "NumericEquals": 6}
    assert evaluate_choice_rule({"And": [yes, yes]}, DATA)
    assert not evaluate_choice_rule({"And": [yes, no]}, DATA)
    assert evaluate_choice_rule({"Or": [no, yes]}, DATA)
    assert not evaluate_choice_rule({"Or": [no, no]}, DATA)
    assert evaluate_choice_rule({"Not": no}, DATA)
    assert evaluate_choice_rule({"Not": {"And": [yes, no]}}, DATA)


def test_missing_variable_is_states_runtime():
    with pytest.raises(StatesError) as info:
        evaluate_choice_rule({"Variable": "$.missing", "StringEquals": "x"}, DATA)
    assert info.value.name == "States.Runtime"
    assert info.value.cause == (
        "Invalid path '$.missing': The choice state's condition path references an invalid value."
    )


def test_missing_operand_path_is_states_runtime():
    with pytest.raises(StatesError) as info:
        evaluate_choice_rule({"Variable": "$.num", "NumericEqualsPath": "$.missing"}, DATA)
    assert "Invalid path '$.missing'" in info.value.cause


def test_context_and_variables():
    assert evaluate_choice_rule(
        {"Variable": "$$.Execution.Name", "StringEquals": "run"}, {}, {"Execution": {"Name": "run"}}
    )
    assert evaluate_choice_rule({"Variable": "$flag", "BooleanEquals": True}, {}, None, {"flag": True})


def test_malformed_rule_is_states_runtime():
    with pytest.raises(StatesError):
        evaluate_choice_rule({"Variable": "$.num"}, DATA)


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2016-03-14T01:59:00Z", True),
        ("2016-03-14T01:59:00.123456789Z", True),
        ("2016-03-14T01:59:00-05:30", True),
        ("2016-13-05T21:29:29Z", False),
        ("2016-12-05T25:29:29Z", False),
        ("2016-12-05 21:29:29Z", False),
        ("2016-12-05T21:29:29", False),
        ("05-12-2016T21:29:29Z", False),
        (20160314, False),
    ],
)
def test_parse_timestamp(text, valid):
    assert (parse_timestamp(text) is not None) is valid


def test_evaluate_condition_is_exported_here_too():
    assert evaluate_condition("{% true %}", {"input": {}}) is True


def test_string_order_is_java_utf16_order():
    # U+FF61 sorts after U+1F600 in UTF-16 code units (0xD83D...) though before it by code point.
    assert evaluate_choice_rule({"Variable": "$", "StringGreaterThan": "\U0001f600"}, "\uff61")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=2) | st.dictionaries(st.text(max_size=3), children, max_size=2)
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(OPERATORS)), json_values, json_values)
def test_any_data_is_a_boolean_or_an_aws_named_error(operator, value, operand):
    rule = {"Variable": "$.value", operator: "$.operand" if operator.endswith("Path") else operand}
    try:
        assert evaluate_choice_rule(rule, {"value": value, "operand": operand}) in (True, False)
    except StatesError as error:
        assert error.name == "States.Runtime"
