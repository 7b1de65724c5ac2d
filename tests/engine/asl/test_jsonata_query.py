"""JSONata with $states, variables, AWS's added functions, and AWS's QueryEvaluationError texts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachines.engine.asl.errors import StatesError
from statemachines.engine.asl.jsonata_query import (
    UNDEFINED,
    compile_jsonata,
    evaluate_condition,
    evaluate_jsonata,
    is_template,
    require_type,
    resolve_template,
    template_expression,
)


class FixedIds:
    def random(self) -> float:
        return 0.25

    def uuid(self) -> str:
        return "uuid-1"


STATES = {
    "input": {"a": [1, 2, 3], "n": None, "s": "x", "nested": {"k": None}},
    "context": {"Execution": {"Id": "arn:exec"}},
}
IDS = FixedIds()


def run(expr, variables=None, field="Output"):
    return evaluate_jsonata(expr, STATES, variables or {}, IDS, field)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("$states.input.a", [1, 2, 3]),
        ("$states.input.a[0]", 1),
        ("$states.input.n", None),
        ("$states.input.nested", {"k": None}),
        ("$states.context.Execution.Id", "arn:exec"),
        ("$count($states.input.a)", 3),
        ("2 * 1.5", 3),
        ("1 / 4", 0.25),
        ("{'a': $states.input.missing, 'b': 1}", {"b": 1}),
        ("$partition([1, 2, 3], 2)", [[1, 2], [3]]),
        ("$partition($states.input.a, 5)", [[1, 2, 3]]),
        ("$range(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("$range(5, 1, -2)", [5, 3, 1]),
        ("$range(-1.2, 2.8, 1.9)", [-1, 0, 1, 2]),
        ("$range(3, 3, 1)", 3),
        ("$append([], $range(3, 1, 1))", []),
        ("$hash('input data', 'MD5')", "812f45842bc6d66ee14572ce20db8e86"),
        ("$hash('input data', 'SHA-1')", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
        ("$random()", 0.25),
        ("$uuid()", "uuid-1"),
        ('$parse(\'{"a": null, "b": [1]}\')', {"a": None, "b": [1]}),
        ("$contains('hello$world', /^hello\\$/)", True),
        ("$x := 5", 5),
    ],
)
def test_expressions(expr, expected):
    assert run(expr) == expected


def test_variables_are_bound_by_name_and_null_stays_null():
    assert run("$v + 1", {"v": 41}) == 42
    assert run("$v = null", {"v": None}) is True
    assert run("$v", {"v": None}) is None
    assert run("$cfg.region", {"cfg": {"region": "eu"}}) == "eu"


def test_undefined_is_distinct_from_null():
    assert run("$states.input.missing") is UNDEFINED
    assert run("$range(1, 2, 0)") is UNDEFINED
    assert run("$unknownVariable") is UNDEFINED


def test_random_with_a_seed_is_repeatable():
    assert run("$random(42)") == run("$random(42)")
    assert 0 <= run("$random(42)") < 1


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("1 +", "is invalid."),
        ("$number('a')", "threw an error during evaluation."),
        ("$eval('1')", "threw an error during evaluation."),
        ("$partition('x', 2)", "threw an error during evaluation."),
        ("$hash('x', 'NOPE')", "threw an error during evaluation."),
        ("$parse('{')", "threw an error during evaluation."),
        ("$range('0', 4, 1)", 'threw an error during evaluation. T0410: Argument 1 of function "range"'),
        ("$nope()", "threw an error during evaluation. T1006: Attempted to invoke a non-function"),
        ("$states.input.a.nope()", "threw an error during evaluation."),
    ],
)
def test_errors_are_query_evaluation_errors(expr, text):
    with pytest.raises(StatesError) as info:
        run(expr)
    assert info.value.name == "States.QueryEvaluationError"
    assert info.value.cause.startswith(f"The JSONata expression '{expr}' specified for the field 'Output' ")
    assert text in info.value.cause


def test_a_function_result_is_unsupported():
    with pytest.raises(StatesError) as info:
        run("$fn := function($x){$x}", field="Items")
    assert info.value.cause == (
        "The JSONata expression '$fn := function($x){$x}' specified for the field 'Items' "
        "returned an unsupported result type."
    )


@pytest.mark.parametrize(
    ("value", "kind", "shown"),
    [
        (True, "boolean", "true"),
        (None, "null", "null"),
        (1, "number", "1"),
        ({"foo": "bar"}, "object", '{"foo":"bar"}'),
    ],
)
def test_require_type_uses_aws_text(value, kind, shown):
    with pytest.raises(StatesError) as info:
        require_type(value, "array", "$ItemsVar", "Items")
    assert info.value.cause == (
        "The JSONata expression '$ItemsVar' specified for the field 'Items' returned an unexpected result type. "
        f"Expected 'array', but was '{kind}' for value: {shown}"
    )
    assert require_type([1], "array", "x", "Items") == [1]


def test_resolve_template_walks_objects_and_arrays():
    template = {"a": "{% $states.input.s %}", "b": [1, "{% 1 + 1 %}"], "c": "plain", "d": {"e": "{%$v%}"}}
    assert resolve_template(template, STATES, {"v": True}, IDS) == {
        "a": "x",
        "b": [1, 2],
        "c": "plain",
        "d": {"e": True},
    }


def test_resolve_template_undefined_field_fails():
    with pytest.raises(StatesError) as info:
        resolve_template({"a": "{% $states.input.zz %}"}, STATES, {}, IDS)
    assert info.value.name == "States.QueryEvaluationError"
    assert info.value.cause == (
        "The JSONata expression '$states.input.zz' specified for the field 'a' returned nothing (undefined)."
    )


def test_template_helpers():
    assert is_template("{% 1 %}")
    assert not is_template("{% 1")
    assert not is_template(1)
    assert template_expression("{%  $x  %}") == "$x"


def test_compiled_expressions_are_cached():
    assert compile_jsonata("$states.input") is compile_jsonata("$states.input")
    with pytest.raises(ValueError):
        compile_jsonata("(")


def test_condition_must_be_boolean():
    assert evaluate_condition("{% $states.input.s = 'x' %}", STATES, {}, IDS) is True
    assert evaluate_condition(False, STATES) is False
    with pytest.raises(StatesError) as info:
        evaluate_condition("{% 1 %}", STATES, {}, IDS)
    assert info.value.cause == (
        "The JSONata expression '1' specified for the field 'Condition' returned an unexpected result type. "
        "Expected 'boolean', but was 'number' for value: 1"
    )
    with pytest.raises(StatesError) as info:
        evaluate_condition("{% $states.input.zz %}", STATES, {}, IDS)
    assert "returned nothing (undefined)" in info.value.cause


def test_now_and_millis_read_the_state_entered_time():
    states = {"input": {}, "context": {"State": {"EnteredTime": "2024-05-01T10:00:00.250Z"}}}
    assert evaluate_jsonata("$now()", states, {}, IDS) == "2024-05-01T10:00:00.250Z"
    assert evaluate_jsonata("$millis()", states, {}, IDS) == 1714557600250


def test_a_huge_range_fails_instead_of_exhausting_memory():
    with pytest.raises(StatesError):
        run("$range(0, 1e15, 1)")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**9), 10**9)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
EXPRESSIONS = [
    "$states.input",
    "$states.input.a + 1",
    "$states.input.a & 'x'",
    "$count($states.input.a)",
    "$partition($states.input.a, 2)",
    "$hash($states.input.a)",
    "$parse($states.input.a)",
    "$states.input.a[0].b",
    "$sum($states.input.a)",
    "$keys($states.input)",
    "$string($states.input)",
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(EXPRESSIONS), json_values)
def test_any_input_is_json_or_a_query_evaluation_error(expr, value):
    try:
        result = evaluate_jsonata(expr, {"input": {"a": value}}, {}, IDS, "Output")
    except StatesError as error:
        assert error.name == "States.QueryEvaluationError"
        return
    assert result is UNDEFINED or json.loads(json.dumps(result)) == result
