"""Payload templates (".$" keys) and JSONPath Assign."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachines.engine.asl.errors import StatesError
from statemachines.engine.asl.payload import resolve_assign, resolve_payload


class FixedIds:
    def random(self) -> float:
        return 0.5

    def uuid(self) -> str:
        return "uuid-1"


DATA = {"repo": "octo/app", "sha": "abc", "vals": [0, 10, 20, 30], "flagged": 7}
CONTEXT = {"Execution": {"Name": "run-1"}, "Map": {"Item": {"Index": 2}}}


def test_keys_ending_dollar_take_path_values_and_lose_the_suffix():
    template = {
        "step": "build",
        "repo.$": "$.repo",
        "nested": {"first.$": "$.vals[0]", "last3.$": "$.vals[1:]", "list": [{"sha.$": "$.sha"}, 1]},
        "run.$": "$$.Execution.Name",
        "var.$": "$myVar",
        "fn.$": "States.Format('{}@{}', $.repo, $.sha)",
        "id.$": "States.UUID()",
        "literal": "$.not_a_path_without_suffix",
    }
    out = resolve_payload(template, DATA, CONTEXT, {"myVar": {"x": 1}}, FixedIds())
    assert out == {
        "step": "build",
        "repo": "octo/app",
        "nested": {"first": 0, "last3": [10, 20, 30], "list": [{"sha": "abc"}, 1]},
        "run": "run-1",
        "var": {"x": 1},
        "fn": "octo/app@abc",
        "id": "uuid-1",
        "literal": "$.not_a_path_without_suffix",
    }


def test_template_is_not_mutated_and_scalars_pass_through():
    template = {"a.$": "$.repo", "b": [1, {"c": None}]}
    before = copy.deepcopy(template)
    resolve_payload(template, DATA)
    assert template == before
    assert resolve_payload("text", DATA) == "text"
    assert resolve_payload(None, DATA) is None


def test_missing_path_is_states_runtime_with_aws_text():
    with pytest.raises(StatesError) as info:
        resolve_payload({"JobName.$": "$.JobName"}, {})
    assert info.value.name == "States.Runtime"
    assert (
        info.value.cause
        == "The JSONPath '$.JobName' specified for the field 'JobName.$' could not be found in the input '{}'"
    )


def test_missing_nested_path_reports_the_inner_key():
    with pytest.raises(StatesError) as info:
        resolve_payload({"outer": {"param1.$": "$.missing"}}, {"test": 1})
    assert info.value.cause == (
        "The JSONPath '$.missing' specified for the field 'param1.$' could not be found in the input '{\"test\":1}'"
    )


def test_missing_context_path_shows_the_context():
    with pytest.raises(StatesError) as info:
        resolve_payload({"x.$": "$$.Nope"}, DATA, {"Execution": {}})
    assert "could not be found in the input '{\"Execution\":{}}'" in info.value.cause


def test_intrinsic_failures_propagate():
    with pytest.raises(StatesError) as info:
        resolve_payload({"n.$": "States.MathAdd($.repo, 1)"}, DATA, rng=FixedIds())
    assert info.value.name == "States.Runtime"


def test_intrinsic_without_randomness_fails_cleanly():
    with pytest.raises(StatesError):
        resolve_payload({"id.$": "States.UUID()"}, DATA)


def test_assign_evaluates_everything_against_the_old_variables():
    variables = {"count": 1, "keep": "k"}
    assigned = resolve_assign(
        {"count.$": "States.MathAdd($count, 1)", "old.$": "$count", "fixed": [1], "sha.$": "$.sha"},
        DATA,
        CONTEXT,
        variables,
        FixedIds(),
    )
    assert assigned == {"count": 2, "old": 1, "fixed": [1], "sha": "abc"}
    assert variables == {"count": 1, "keep": "k"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
expressions = st.sampled_from(
    [
        "$",
        "$.a",
        "$.a.b",
        "$.a[0]",
        "$.a[*]",
        "$..b",
        "$$.Execution.Name",
        "$v",
        "States.Array($.a)",
        "States.JsonToString($.a)",
        "States.ArrayLength($.a)",
        "States.Format('{}', $.a)",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=4).map(lambda k: k + ".$"), expressions, max_size=4), json_values)
def test_any_data_gives_json_or_an_aws_named_error(template, value):
    try:
        out = resolve_payload(template, {"a": value}, CONTEXT, {"v": value}, FixedIds())
    except StatesError as error:
        assert error.name in ("States.Runtime", "States.IntrinsicFailure")
        return
    assert set(out) == {key[:-2] for key in template}
