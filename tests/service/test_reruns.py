"""What a re-run may reuse: the steps that passed and depend on nothing that failed, of the same code and trust."""

from __future__ import annotations

import json
from pathlib import Path

from service.concurrency import NEWEST_WINS, QUEUE, Group, group_of
from service.reruns import downstream_states, reusable_steps
from statemachines.step_reuse import fingerprint, reusable, write_plan

PIPELINES = Path(__file__).resolve().parents[2] / "statemachines" / "pipelines"
RUN = {"run_id": "new", "repository": "octo/app", "sha": "a" * 40, "trusted": True}


def example(name: str) -> dict:
    return json.loads((PIPELINES / name).read_text())


def passed(*steps: str) -> dict:
    return {step: {"fingerprint": step, "result": {"step": step, "status": "succeeded"}} for step in steps}


def test_a_failed_parallel_branch_leads_to_cleanup_not_to_its_sibling_branches():
    definition = example("parallel.asl.json")
    assert downstream_states(definition, {"UnitTests", "Checks"}) == {"Passed", "Cleanup", "ChecksFailed"}
    plan = reusable_steps(definition, passed("lint", "build", "cleanup"), {"UnitTests", "Checks"})
    assert set(plan) == {"lint", "build"}  # cleanup ran because of the failure: it runs again


def test_other_map_iterations_are_reused_and_re_running_one_step_runs_it_again():
    definition = example("matrix.asl.json")
    recorded = passed("test-py3.11", "test-py3.13")
    assert set(reusable_steps(definition, recorded, {"Test", "Matrix"})) == {"test-py3.11", "test-py3.13"}
    assert set(reusable_steps(definition, recorded, set(), {"test-py3.11"})) == {"test-py3.13"}


def test_what_follows_a_forced_step_runs_again_too():
    definition = example("release.asl.json")
    recorded = passed("build", "integration-tests")
    assert set(reusable_steps(definition, recorded, set())) == {"build", "integration-tests"}
    assert reusable_steps(definition, recorded, set(), {"build"}) == {}


def test_a_worker_reuses_a_plan_only_for_the_same_commit_trust_and_fingerprint(redis_client):
    task = {"step": "lint", "commands": ["make lint"]}
    entry = {"fingerprint": fingerprint(task, "build"), "result": {"status": "succeeded"}, "from_run": "old"}
    write_plan(redis_client, "new", "old", RUN, {"lint": entry})
    assert reusable(redis_client, RUN, "lint", fingerprint(task, "build"), True) == entry
    assert (
        reusable(redis_client, RUN, "lint", fingerprint(task, "build"), False) is None
    )  # untrusted activity
    assert reusable(redis_client, RUN | {"sha": "b" * 40}, "lint", fingerprint(task, "build"), True) is None
    changed = fingerprint(task | {"commands": ["make lint", "rm -rf /"]}, "build")
    assert reusable(redis_client, RUN, "lint", changed, True) is None
    assert reusable(redis_client, RUN, "lint", fingerprint(task, "deploy"), True) is None


def test_a_pipeline_names_its_concurrency_group_in_its_comment():
    run = {"branch": "feature/x", "trusted": True}
    assert group_of({"Comment": "Release. concurrency: deploy-production"}, run) == Group(
        "deploy-production", QUEUE
    )
    newest = {"Comment": "concurrency: ci-{branch} (newest-wins)"}
    assert group_of(newest, run) == Group("ci-feature/x", NEWEST_WINS)
    assert group_of({"Comment": "concurrency: deploy, cancel-in-progress"}, run) == Group(
        "deploy", NEWEST_WINS
    )
    assert group_of({"Comment": "no group here"}, run) is None
    assert group_of({}, run) is None
    fork = {"branch": "main", "trusted": False, "pull_request": 9}  # a fork's groups are its own
    assert group_of({"Comment": "concurrency: deploy-production"}, fork) == Group(
        "untrusted/pr-9/deploy-production", QUEUE
    )
