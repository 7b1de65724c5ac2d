"""The service's checks on a worker's ask to supersede a run for a step concurrency group."""

from __future__ import annotations

from typing import Any

import pytest

from service.step_concurrency import refusal_of


def run(run_id: str, created_at: float, **fields: Any) -> Any:
    return {"run_id": run_id, "repository": "octo/app", "created_at": created_at, "trusted": True,
            "pull_request": None, **fields}  # fmt: skip


def test_a_newer_run_of_the_same_repository_and_trust_may_supersede():
    assert refusal_of(run("old", 1.0), run("new", 2.0)) == ""
    fork_a, fork_b = (
        run("a", 1.0, trusted=False, pull_request=9),
        run("b", 2.0, trusted=False, pull_request=9),
    )
    assert refusal_of(fork_a, fork_b) == ""


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (run("old", 2.0), run("new", 1.0), "not newer"),
        (run("same", 1.0), run("same", 1.0), "itself"),
        (run("old", 1.0), run("new", 2.0, repository="evil/app"), "different repositories"),
        (run("old", 1.0), run("new", 2.0, trusted=False, pull_request=9), "trusted and an untrusted"),
        (run("old", 1.0, trusted=False, pull_request=8), run("new", 2.0, trusted=False, pull_request=9),
         "different pull requests"),
    ],
)  # fmt: skip
def test_an_ask_the_service_records_contradict_is_refused(old, new, why):
    assert why in refusal_of(old, new)
