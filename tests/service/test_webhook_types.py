"""Every field service/triggers.py reads, given a value of every JSON type in a signed delivery, is a 400 or a
202 (queued or ignored), never a 500: the payload is a stranger's, its shape included."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.github_events import deliver, fixture

# (event, recorded payload, every path triggers.py reads in it)
READ_BY_TRIGGERS = {
    "push": (
        "push/branch-push.drone-go-scm.json",
        [
            ("ref",),
            ("deleted",),
            ("after",),
            ("before",),
            ("head_commit",),
            ("head_commit", "id"),
            ("head_commit", "message"),
            ("head_commit", "author"),
            ("head_commit", "author", "name"),
            ("head_commit", "author", "username"),
            ("repository",),
            ("repository", "full_name"),
            ("repository", "clone_url"),
            ("repository", "private"),
            ("installation",),
            ("installation", "id"),
        ],
    ),
    "pull_request": (
        "pull_request/opened.octokit.json",
        [
            ("action",),
            ("number",),
            ("before",),
            ("changes",),
            ("changes", "base"),
            ("pull_request",),
            ("pull_request", "number"),
            ("pull_request", "draft"),
            ("pull_request", "title"),
            ("pull_request", "author_association"),
            ("pull_request", "user"),
            ("pull_request", "user", "login"),
            ("pull_request", "head"),
            ("pull_request", "head", "ref"),
            ("pull_request", "head", "sha"),
            ("pull_request", "head", "repo"),
            ("pull_request", "head", "repo", "full_name"),
            ("pull_request", "head", "repo", "clone_url"),
            ("pull_request", "base"),
            ("pull_request", "base", "ref"),
            ("repository",),
            ("repository", "full_name"),
            ("repository", "clone_url"),
            ("repository", "private"),
            ("installation",),
            ("installation", "id"),
        ],
    ),
    "ping": ("ping/repo-hook.octokit.json", [("zen",)]),
}

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["edited", "opened", "closed", "refs/heads/main", "0" * 40, "a/b", "https://x/y.git"])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
)
CASES = st.sampled_from([(event, path) for event, (_, paths) in READ_BY_TRIGGERS.items() for path in paths])


def with_value(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    node = changed
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return changed


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=CASES, value=JSON_VALUES, also_base=st.booleans())
def test_a_field_of_any_json_type_is_a_400_or_a_202_never_a_500(client, case, value, also_base) -> None:
    event, path = case
    name, _ = READ_BY_TRIGGERS[event]
    payload = with_value(fixture(name), path, value)
    if also_base and event == "pull_request":  # `changes` is read only for an edited pull request
        payload = with_value(payload, ("action",), "edited")
    answer = deliver(client, event, payload)
    assert answer.status_code in (200, 202, 400), (
        path,
        value,
        answer.status_code,
        answer.get_data(as_text=True),
    )
    assert answer.is_json


def test_the_deliveries_that_answered_500_are_answered_400_or_202(client) -> None:
    """An `action` that is a list or an object, a `changes` that is a string."""
    opened = fixture("pull_request/opened.octokit.json")
    edited = with_value(opened, ("action",), "edited")
    answers = [
        deliver(client, "pull_request", with_value(opened, ("action",), bad)).status_code
        for bad in ([], {}, ["x"])
    ]
    answers.append(deliver(client, "pull_request", with_value(edited, ("changes",), "base")).status_code)
    assert answers == [400, 400, 400, 202]
