"""statemachines/nesting.py: documents nested too deeply are refused before anything recurses over them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachines.nesting import (
    MAX_DEPTH,
    TooDeep,
    YamlAliasRefused,
    check_depth,
    deeper_than,
    load_yaml,
    loads,
)

TEXT = st.text(alphabet=st.sampled_from('ab[]{}"\\,: \u00e9\ud83d\ude00'), max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@settings(max_examples=300)
@given(JSON, st.integers(min_value=0, max_value=6))
def test_the_text_check_agrees_with_the_parsed_depth(value: Any, limit: int) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert deeper_than(text.encode("utf-8", "surrogatepass"), limit) == (depth(value) > limit)
        try:
            check_depth(value, limit)
            assert depth(value) <= limit
        except TooDeep:
            assert depth(value) > limit


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_deep_json_is_refused_before_parsing_and_the_limit_itself_is_not(opener: str, closer: str) -> None:
    assert loads(opener * MAX_DEPTH + "1" + closer * MAX_DEPTH) is not None
    for count in (MAX_DEPTH + 1, 200_000):
        with pytest.raises(TooDeep):
            loads(opener * count + "1" + closer * count)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps(["[[[[" * 500, {"k": '\\"]]]' * 500}])
    assert loads(text)[0].startswith("[[[[")


def test_yaml_nested_too_deeply_or_with_aliases_is_refused() -> None:
    assert load_yaml("a: [1, {b: 2}]") == {"a": [1, {"b": 2}]}
    with pytest.raises(TooDeep):
        load_yaml("[" * 50_000 + "]" * 50_000)
    with pytest.raises(TooDeep):
        load_yaml("".join("  " * i + "- \n" for i in range(MAX_DEPTH + 2)))
    with pytest.raises(YamlAliasRefused):
        load_yaml("a: &x [1, 2]\nb: [*x, *x]")
    with pytest.raises(yaml.YAMLError):
        load_yaml("a: [1")
