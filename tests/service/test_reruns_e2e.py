"""Re-run failed steps, end to end, on each shipped example's failure pattern.

The real engine, jobs process and build worker (`python -m workers`, real sandbox), a real git repository
carrying the shipped pipeline, the fake GitHub. A step of the example is gated on a TCP server of this
test: it fails in the first run (after its siblings have passed) and passes in the re-run. The re-run is
the dashboard's "re-run failed steps" (`POST /api/runs/<id>/redrive`): the failed step runs again, the
steps that passed are answered from their recorded results (reused), never checked out nor run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.service.dashboard_seed import ADMIN_TOKEN
from tests.service.github_events import deliver, push_payload
from tests.service.run_stack import Gate, Stack

pytestmark = pytest.mark.slow

PIPELINES = Path(__file__).resolve().parents[2] / "statemachines" / "pipelines"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def push_pipeline(
    make_repo: Any, client: Any, example: str, makefile: dict[str, str], branch: str
) -> tuple[str, str]:
    """A repository carrying the shipped example and a Makefile with these targets, pushed; (run id, sha)."""
    recipes = "".join(f"{target}:\n\t{recipe}\n" for target, recipe in makefile.items())
    repo = make_repo("app")
    pipeline = (PIPELINES / example).read_text()
    sha = repo.commit({"Makefile": recipes, ".stepline/pipeline.asl.json": pipeline}, "add the pipeline")
    repo.checkout(branch)
    repo.push(branch)
    response = deliver(client, "push", push_payload(repo, branch))
    assert response.status_code == 202, response.json
    return response.json["run_id"], sha


def rerun_failed_steps(run_stack: Stack, run_id: str) -> str:
    response = run_stack.client.post(f"/api/runs/{run_id}/redrive", headers=ADMIN)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["rerun_of"] == run_id
    return str(response.json["run_id"])


def fail_after(run_stack: Stack, gate: Gate, run_id: str, passed_first: set[str]) -> None:
    """The gated step fails in `run_id` only once `passed_first` have passed there (siblings finish first)."""

    def passed() -> bool:
        return passed_first <= {s for s, m in run_stack.steps(run_id).items() if m["status"] == "succeeded"}

    gate.before_failing = lambda: run_stack.wait(passed)


def check_rerun(
    run_stack: Stack, fake_github: Any, sha: str, old: str, new: str, failed: set[str], reused: set[str]
) -> None:
    """In `new`: the failed steps ran again (attempt 1 of the new run, by the worker); `reused` did not run."""
    steps = run_stack.steps(new)
    assert {s for s, m in steps.items() if m["status"] == "reused"} == reused
    assert {s for s, m in steps.items() if m["status"] == "succeeded"} == failed
    assert run_stack.started_by_worker(new) == failed  # nothing reused was checked out or run
    assert reused <= run_stack.started_by_worker(old)
    for step in reused:
        lines, _, _ = run_stack.logs.read(new, step)
        assert any(f"passed in run {old}" in line for line in lines), lines
    contexts = {"stepline/ci", *(f"stepline/ci/{step}" for step in reused)}

    def posted() -> dict[str, Any] | None:
        latest = fake_github.latest_statuses("octo/app", sha)
        ended = contexts <= set(latest) and all(latest[c]["state"] != "pending" for c in contexts)
        # every context posted for the new run (the old run's own "passed" may still be the latest a moment)
        ours = ended and all(new in latest[c]["target_url"] for c in contexts)
        return latest if ours else None

    latest = run_stack.wait(posted, 30)
    for step in reused:
        status = latest[f"stepline/ci/{step}"]
        assert status["state"] == "success" and status["description"].startswith(f"reused from run {old[:7]}")
    assert latest["stepline/ci"]["state"] == "success"


def test_parallel_a_failure_caught_into_cleanup_reruns_only_the_failed_branch(
    run_stack, gate, make_repo, fake_github
):
    makefile = {"lint": "echo linted", "build": "echo built", "test": gate.command(), "clean": "echo cleaned"}
    old, sha = push_pipeline(make_repo, run_stack.client, "parallel.asl.json", makefile, "feature/parallel")
    fail_after(run_stack, gate, old, {"lint", "build"})
    assert run_stack.ended(old)["status"] == "FAILED"
    assert {s: m["status"] for s, m in run_stack.steps(old).items()} == {
        "lint": "succeeded", "build": "succeeded", "unit-tests": "failed", "cleanup": "succeeded"
    }  # fmt: skip

    gate.passing = True
    new = rerun_failed_steps(run_stack, old)
    rerun = run_stack.ended(new)
    assert rerun["status"] == "SUCCEEDED", rerun
    assert (rerun["rerun_of"], rerun["trusted"], rerun["sha"]) == (old, True, sha)
    check_rerun(run_stack, fake_github, sha, old, new, failed={"unit-tests"}, reused={"lint", "build"})
    assert "cleanup" not in run_stack.steps(new)  # the re-run passed: nothing to clean up


def test_release_a_failed_test_caught_into_cleanup_reruns_it_not_the_build(
    run_stack, gate, make_repo, fake_github
):
    makefile = {"build": "echo built", "integration-test": gate.command(), "clean": "echo cleaned"}
    old, sha = push_pipeline(make_repo, run_stack.client, "release.asl.json", makefile, "feature/release")
    fail_after(run_stack, gate, old, {"build"})
    assert run_stack.ended(old)["status"] == "FAILED"
    assert run_stack.steps(old)["integration-tests"]["status"] == "failed"
    assert run_stack.steps(old)["cleanup"]["status"] == "succeeded"

    gate.passing = True
    new = rerun_failed_steps(run_stack, old)
    assert run_stack.ended(new)["status"] == "SUCCEEDED"
    check_rerun(run_stack, fake_github, sha, old, new, failed={"integration-tests"}, reused={"build"})


def test_matrix_a_failed_map_iteration_reruns_alone(run_stack, gate, make_repo, fake_github):
    gated = f'if [ "$$PYTHON_VERSION" = 3.12 ]; then {gate.command()}; else echo tested $$PYTHON_VERSION; fi'
    old, sha = push_pipeline(
        make_repo, run_stack.client, "matrix.asl.json", {"test": gated}, "feature/matrix"
    )
    fail_after(run_stack, gate, old, {"test-py3.11", "test-py3.13"})
    assert run_stack.ended(old)["status"] == "FAILED"

    gate.passing = True
    new = rerun_failed_steps(run_stack, old)
    assert run_stack.ended(new)["status"] == "SUCCEEDED"
    check_rerun(
        run_stack, fake_github, sha, old, new, failed={"test-py3.12"}, reused={"test-py3.11", "test-py3.13"}
    )

    # a re-run of the re-run reuses through it, with the result (and log) of the run that ran the step
    again = run_stack.client.post(f"/api/runs/{new}/steps/test-py3.11/rerun", headers=ADMIN).json["run_id"]
    assert run_stack.ended(again)["status"] == "SUCCEEDED"
    assert {s: m["status"] for s, m in run_stack.steps(again).items()} == {
        "test-py3.11": "succeeded", "test-py3.12": "reused", "test-py3.13": "reused"
    }  # fmt: skip
    lines, _, _ = run_stack.logs.read(again, "test-py3.13")
    assert any(f"passed in run {old}" in line and f"(log {old}:test-py3.13:1)" in line for line in lines), (
        lines
    )
    assert json.dumps(fake_github.latest_statuses("octo/app", sha)["stepline/ci/test-py3.12"]).count(new[:7])
