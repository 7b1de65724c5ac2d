"""Every States.* intrinsic function, its argument rules and its error texts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachines.engine.asl.errors import StatesError
from statemachines.engine.asl.intrinsic_functions import ARITY
from statemachines.engine.asl.intrinsics import (
    IntrinsicSyntaxError,
    evaluate_intrinsic,
    looks_like_intrinsic,
    parse_intrinsic,
)


class FixedIds:
    """Deterministic randomness, as the interpreter injects it."""

    def __init__(self, value: float = 0.5) -> None:
        self.value = value

    def random(self) -> float:
        return self.value

    def uuid(self) -> str:
        return "11111111-2222-4333-8444-555555555555"


DATA = {
    "name": "Arnav",
    "num": 1.5,
    "obj": {"Arg1": 1, "Arg2": []},
    "arr": [1, 2, 2, [1], [1], {"a": 1}, {"a": 1}],
    "csv": "a,b,,c",
    "nothing": None,
    "json": '{"x": [1, 2]}',
}
CONTEXT = {"Execution": {"Input": {"start": 2, "end": 6, "step": 2}}}


def run(expr, data=DATA, variables=None, ids=None):
    return evaluate_intrinsic(expr, data, CONTEXT, variables or {}, ids or FixedIds())


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("States.Format('Hello, my name is {}.', $.name)", "Hello, my name is Arnav."),
        ("States.Format('{} {} {}', $.num, $.nothing, true)", "1.5 null true"),
        ("States.Format('obj={}', $.obj)", "obj={Arg1=1, Arg2=[]}"),
        ("States.Format('list={}', $.arr[0:2])", "list=[1, 2]"),
        (r"States.Format('braces \{\} and {}', 'x')", "braces {} and x"),
        (r"States.Format('quote \' backslash \\ {}', 1)", "quote ' backslash \\ 1"),
        ("States.Format('no placeholders')", "no placeholders"),
        ("States.StringToJson($.json)", {"x": [1, 2]}),
        ("States.JsonToString($.obj)", '{"Arg1":1,"Arg2":[]}'),
        ("States.Array()", []),
        ("States.Array(1, 'two', true, null, $.name)", [1, "two", True, None, "Arnav"]),
        ("States.ArrayPartition(States.Array(1, 2, 3, 4, 5), 2)", [[1, 2], [3, 4], [5]]),
        ("States.ArrayContains($.arr, $.obj)", False),
        ("States.ArrayContains($.arr, States.Array(1))", True),
        ("States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("States.ArrayRange(5, 1, -2)", [5, 3, 1]),
        ("States.ArrayRange(1, 5, -1)", []),
        (
            "States.ArrayRange($$.Execution.Input.start, $$.Execution.Input.end, $$.Execution.Input.step)",
            [2, 4, 6],
        ),
        ("States.ArrayGetItem($.arr, 3)", [1]),
        ("States.ArrayLength($.arr)", 7),
        ("States.ArrayUnique($.arr)", [1, 2, [1], {"a": 1}]),
        ("States.Base64Encode('Data to encode')", "RGF0YSB0byBlbmNvZGU="),
        ("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "Data to encode"),
        ("States.Hash('input data', 'MD5')", "812f45842bc6d66ee14572ce20db8e86"),
        ("States.Hash('input data', 'SHA-1')", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
        (
            "States.Hash('input data', 'SHA-256')",
            "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3",
        ),
        (
            "States.Hash('input data', 'SHA-384')",
            "d28a7d5cf25a74f11a50a18452b75e04bb3d70c9dd0510d6123aa008c756511b87525bdc835ebb27e1fb9e9374a15562",
        ),
        (
            "States.Hash('input data', 'SHA-512')",
            "6ce4adb348546d4f449c4d25aad9a7c9cb711d9e91982d3f0b29ca2f3f47d4ce"
            "2deba23bf2954f0f1d593fc50283731a533d30d425402d4f91316d871303aac4",
        ),
        ("States.JsonMerge($.obj, States.StringToJson('{\"Arg2\": 5}'), false)", {"Arg1": 1, "Arg2": 5}),
        ("States.MathAdd(1, 2)", 3),
        ("States.MathAdd($.num, 0)", 2),
        ("States.MathAdd(-1.5, 0)", -1),
        ("States.MathAdd(-2.5, 0)", -2),
        ("States.MathAdd(1.49, -1.49)", 0),
        ("States.StringSplit($.csv, ',')", ["a", "b", "c"]),
        ("States.StringSplit('This.is+a,test=string', '.+,=')", ["This", "is", "a", "test", "string"]),
        ("States.StringSplit(',,,', ',')", []),
        ("States.UUID()", "11111111-2222-4333-8444-555555555555"),
        ("States.ArrayLength(States.Array(States.UUID(), States.UUID()))", 2),
        ("States.Array($v)", [[1, 2]]),
    ],
)
def test_intrinsic_results(expr, expected):
    assert run(expr, variables={"v": [1, 2]}) == expected


def test_math_random_uses_the_injected_randomness():
    assert run("States.MathRandom(1, 11)", ids=FixedIds(0.0)) == 1
    assert run("States.MathRandom(1, 11)", ids=FixedIds(0.999)) == 10
    assert run("States.MathRandom(12.5, 44.51)", ids=FixedIds(0.5)) in range(13, 45)


def test_math_random_with_a_seed_is_repeatable():
    assert run("States.MathRandom(1, 1000, 7)") == run("States.MathRandom(1, 1000, 7)")


@pytest.mark.parametrize(
    "expr",
    [
        "States.MathAdd($.name, 1)",
        "States.MathAdd(true, 1)",
        "States.ArrayRange(1, 10, 0)",
        "States.ArrayRange(1, 1001, 1)",
        "States.ArrayRange('a', 5, 1)",
        "States.ArrayPartition($.arr, 0)",
        "States.ArrayPartition($.name, 1)",
        "States.ArrayGetItem($.arr, 99)",
        "States.ArrayGetItem($.arr, -1)",
        "States.ArrayLength($.name)",
        "States.ArrayUnique($.obj)",
        "States.ArrayContains($.name, 1)",
        "States.Format('{} {}', 1)",
        "States.Format($.num)",
        "States.StringToJson('not json')",
        "States.StringToJson($.num)",
        "States.Hash('x', 'SHA-999')",
        "States.Hash($.num, 'MD5')",
        "States.JsonMerge($.obj, $.obj, true)",
        "States.JsonMerge($.arr, $.obj, false)",
        "States.Base64Decode('***')",
        "States.MathRandom(5, 5)",
        "States.StringSplit($.num, ',')",
    ],
)
def test_bad_arguments_are_states_runtime_with_aws_text(expr):
    with pytest.raises(StatesError) as info:
        run(expr)
    name = expr.split("(", 1)[0]
    assert info.value.name == "States.Runtime"
    assert info.value.cause.startswith(f"There was an error while evaluating the intrinsic function: {expr}.")
    assert f"Invalid arguments in {name}" in info.value.cause


def test_missing_path_argument_names_the_path_and_input():
    with pytest.raises(StatesError) as info:
        run("States.Format('{}', $.missing)", data={"a": 1})
    assert info.value.name == "States.Runtime"
    assert "The JsonPath argument for the field '$.missing' could not be found in the input '{\"a\":1}'" in (
        info.value.cause
    )


@pytest.mark.parametrize(
    "expr",
    [
        "States.Nope(1)",
        "States.Format(",
        "States.Format('unterminated)",
        "States.UUID(1)",
        "States.MathAdd(1)",
        "States.Array(1) trailing",
        "States.Array($.a[)",
        "States.Array(what)",
    ],
)
def test_syntax_errors(expr):
    with pytest.raises(IntrinsicSyntaxError):
        parse_intrinsic(expr)
    with pytest.raises(StatesError) as info:
        run(expr)
    assert info.value.name == "States.IntrinsicFailure"


def test_parse_is_cached_and_handles_nesting_and_filters():
    call = parse_intrinsic("States.Array(States.Array(1), $.a[?(@.b == 'x,)')], -2.5e1)")
    assert call is parse_intrinsic("States.Array(States.Array(1), $.a[?(@.b == 'x,)')], -2.5e1)")
    assert [type(arg).__name__ for arg in call.args] == ["Call", "Path", "Literal"]
    assert call.args[2].value == -25.0


def test_looks_like_intrinsic():
    assert looks_like_intrinsic("States.Array()")
    assert not looks_like_intrinsic("$.States")
    assert not looks_like_intrinsic(5)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(ARITY)), st.lists(json_values, max_size=3))
def test_any_data_gives_a_value_or_an_aws_named_error(name, values):
    low, high = ARITY[name]
    count = max(low, min(len(values), high if high is not None else len(values)))
    data = {f"v{i}": values[i] if i < len(values) else None for i in range(count)}
    expr = f"{name}({', '.join(f'$.v{i}' for i in range(count))})"
    try:
        run(expr, data=data)
    except StatesError as error:
        assert error.name in ("States.Runtime", "States.IntrinsicFailure")


def test_a_huge_array_range_fails_fast():
    with pytest.raises(StatesError):
        run("States.ArrayRange(0, 1e300, 1)")
