"""JSONPath reads and ResultPath writes as AWS Step Functions performs them."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemachines.engine.asl.errors import StatesError
from statemachines.engine.asl.paths import (
    PathNotFound,
    ResultPathMatchFailure,
    compile_path,
    is_reference_path,
    is_valid_path,
    read_path,
    to_json_text,
    write_result_path,
)

DATA = {
    "a": {"b": [10, 20, {"c": 3}]},
    "items": [{"id": 1, "ok": True}, {"id": 2, "ok": False}, {"id": 3, "ok": True}],
    "x y": "spaced",
    "n": None,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DATA),
        ("$.a.b[0]", 10),
        ("$.a.b[-1]", {"c": 3}),
        ("$.a.b[2].c", 3),
        ("$['x y']", "spaced"),
        ("$.n", None),
        ("$.items[1].id", 2),
    ],
)
def test_definite_path_returns_the_value(path, expected):
    assert read_path(path, DATA) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.items[*].id", [1, 2, 3]),
        ("$.items[?(@.ok == true)].id", [1, 3]),
        ("$.items[0:2].id", [1, 2]),
        ("$..c", [3]),
        ("$.items[?(@.id > 5)]", []),
    ],
)
def test_indefinite_path_returns_a_list(path, expected):
    assert read_path(path, DATA) == expected


def test_context_and_variable_roots():
    context = {"Execution": {"Id": "arn:x", "Input": {"k": 1}}}
    assert read_path("$$", DATA, context) is context
    assert read_path("$$.Execution.Input.k", DATA, context) == 1
    assert read_path("$var", DATA, None, {"var": [1, 2]}) == [1, 2]
    assert read_path("$var[1]", DATA, None, {"var": [1, 2]}) == 2
    assert read_path("$cfg.region", DATA, None, {"cfg": {"region": "eu"}}) == "eu"


@pytest.mark.parametrize("path", ["$.missing", "$.a.b[7]", "$.a.b.c", "$.x y.z", "$undefinedVar", "$$.Nope"])
def test_missing_definite_path_raises_path_not_found(path):
    with pytest.raises(PathNotFound) as info:
        read_path(path, DATA, {}, {})
    assert info.value.path == path
    assert info.value.name == "States.Runtime"


def test_path_not_found_cause_is_aws_input_path_text():
    with pytest.raises(PathNotFound) as info:
        read_path("$.a.q", DATA)
    assert info.value.cause == "Invalid path '$.a.q' : No results for path: $['a']['q']"


def test_read_returns_references_not_copies():
    assert read_path("$.a", DATA) is DATA["a"]


def test_compiled_paths_are_cached():
    assert compile_path("$.a.b[0]") is compile_path("$.a.b[0]")


@pytest.mark.parametrize(
    "path", ["$", "$.a", "$['a b']", "$.a[0]", "$$.Execution", "$var.x", "$.a[?(@.b > 1)]", "$..x"]
)
def test_valid_paths(path):
    assert is_valid_path(path)


@pytest.mark.parametrize("path", ["", "a.b", "$.a[", "$.a[?(@.b >", 5, None, "$1abc"])
def test_invalid_paths(path):
    assert not is_valid_path(path)


def test_reference_paths_are_definite():
    assert is_reference_path("$.a.b[0]")
    assert not is_reference_path("$.a[*]")
    assert not is_reference_path("$..a")
    assert not is_reference_path("nope")


def test_result_path_dollar_replaces_and_null_discards():
    assert write_result_path({"a": 1}, "$", "r") == "r"
    assert write_result_path({"a": 1}, None, "r") == {"a": 1}


def test_result_path_creates_intermediate_objects_without_mutating_input():
    data = {"a": {"keep": 1}, "other": [1]}
    before = copy.deepcopy(data)
    out = write_result_path(data, "$.a.b.c", {"r": 1})
    assert out == {"a": {"keep": 1, "b": {"c": {"r": 1}}}, "other": [1]}
    assert data == before
    assert out["other"] is data["other"]  # untouched branches are shared, not copied


def test_result_path_replaces_an_existing_value_and_array_element():
    assert write_result_path({"a": 1}, "$.a", 2) == {"a": 2}
    assert write_result_path({"a": [0, 1]}, "$.a[1]", 9) == {"a": [0, 9]}


@pytest.mark.parametrize(
    ("data", "path"),
    [("text", "$.a"), ({"a": "s"}, "$.a.b"), ({"a": [1]}, "$.a.b"), ({"a": [1]}, "$.a[3]"), ({}, "$.a[*]")],
)
def test_result_path_into_a_non_object_is_result_path_match_failure(data, path):
    with pytest.raises(ResultPathMatchFailure) as info:
        write_result_path(data, path, 1)
    assert info.value.name == "States.ResultPathMatchFailure"
    assert path in (info.value.cause or "")
    assert isinstance(info.value, StatesError)


def test_to_json_text_is_compact_and_keeps_unicode():
    assert to_json_text({"a": [1, "é"]}) == '{"a":[1,"é"]}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)
keys = st.text(alphabet="abcdefgh_", min_size=1, max_size=4)


@given(json_values)
def test_dollar_is_identity(value):
    assert read_path("$", value) is value


@given(st.dictionaries(keys, json_values, max_size=4), st.lists(keys, min_size=1, max_size=4), json_values)
def test_result_path_then_read_gives_the_result_back(data, steps, result):
    path = "$." + ".".join(steps)
    try:
        out = write_result_path(data, path, result)
    except ResultPathMatchFailure:
        return  # an intermediate value was not an object: AWS fails the same way
    assert read_path(path, out) == result


@given(st.dictionaries(keys, json_values, min_size=1, max_size=4), json_values)
def test_result_path_keeps_sibling_fields(data, result):
    key = next(iter(data))
    out = write_result_path(data, "$.zz_new", result)
    assert out[key] == data[key]
    assert out["zz_new"] == result


odd_keys = st.text(alphabet="ab .-'$[]*", min_size=1, max_size=5)


@given(
    st.recursive(json_values, lambda c: st.dictionaries(odd_keys, c, min_size=1, max_size=3), max_leaves=8),
    st.data(),
)
def test_a_bracket_path_to_any_existing_key_reads_its_value(value, draw):
    path, node = "$", value
    # Only \' is an escape in ['...'] (as AWS reads it), so a backslash before a quote cannot be written.
    while isinstance(node, dict) and (keys := sorted(k for k in node if "\\" not in k)):
        if not draw.draw(st.booleans()):
            break
        key = draw.draw(st.sampled_from(keys))
        path += "['" + key.replace("'", "\\'") + "']"
        node = node[key]
    assert read_path(path, value) == node
    assert is_reference_path(path)
