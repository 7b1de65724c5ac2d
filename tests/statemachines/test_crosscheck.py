"""The shipped pipelines' non-activity parts on moto and on our engine: the same path, status and output.

moto has no activity polling (GetActivityTask answers 500), so each activity Task is stubbed: a
one-branch Parallel (keeping the Task's Retry and Catch) whose Pass returns a step result or, for a
step made to fail, whose Fail raises Stepline.StepFailed. Everything else runs as shipped (Waits and
Retry intervals shortened): Pass shaping, Choice, Parallel, Map with States.Format, Wait, Retry, Catch, Succeed, Fail.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from statemachines.aws_deploy import deploy_pipelines
from statemachines.catalog import load_pipeline
from statemachines.contract import pool_of, step_name_of
from tests.statemachines.conftest import ROLE_ARN
from tests.statemachines.runs import event_input, fast_timings, start, states_entered, wait_done


def stub_activities(value: Any, failing: frozenset[str]) -> Any:
    """A copy of a definition with every activity Task stubbed (see the module docstring)."""
    if isinstance(value, list):
        return [stub_activities(item, failing) for item in value]
    if not isinstance(value, dict):
        return value
    copy = {key: stub_activities(item, failing) for key, item in value.items() if key != "States"}
    if isinstance(value.get("States"), dict):
        states = value["States"].items()
        copy["States"] = {
            name: _stub_task(name, state, failing) if pool_of(state) else stub_activities(state, failing)
            for name, state in states
        }
    return copy


def _stub_task(name: str, task: dict[str, Any], failing: frozenset[str]) -> dict[str, Any]:
    # a one-branch Parallel, not a Pass: a Pass cannot keep the Task's Retry and Catch, and the states
    # only a Catch led to would become unreachable, which AWS rejects
    step, dynamic = step_name_of(task["Parameters"]) or ("?", False)
    body: dict[str, Any]
    if step in failing:
        body = {"Type": "Fail", "Error": "Stepline.StepFailed", "Cause": f"{step}: exit status 2"}
    else:
        named = {"step.$": task["Parameters"]["step.$"]} if dynamic else {"step": step}
        body = {"Type": "Pass", "Parameters": {**named, "status": "succeeded", "exit_code": 0}, "End": True}
    stub: dict[str, Any] = {
        key: task[key] for key in ("Comment", "Retry", "Catch", "ResultPath", "Next", "End") if key in task
    }
    # state names are unique across a whole state machine, nested ones included
    branch = {"StartAt": f"{name}Stub", "States": {f"{name}Stub": body}}
    # no ResultSelector to unwrap the one-item list: moto 5.2.5 answers "$[0].step" with ["build"] where
    # AWS (and our engine) give "build", so the stub's result stays a list on both
    return {"Type": "Parallel", "Branches": [branch], **stub}


@dataclass(frozen=True)
class Case:
    pipeline: str
    payload: dict[str, Any]
    status: str
    enters: set[str]
    skips: set[str] = field(default_factory=set)
    failing: frozenset[str] = frozenset()
    error: str | None = None


CASES = {
    "default": Case("default", event_input(), "SUCCEEDED", {"Build"}),
    "parallel": Case(
        "parallel", event_input("topic"), "SUCCEEDED", {"Lint", "UnitTests", "Build", "Passed"}, {"Cleanup"}
    ),
    "parallel-fails": Case(
        "parallel",
        event_input(),
        "FAILED",
        {"Cleanup", "ChecksFailed"},
        {"Passed"},
        frozenset({"unit-tests"}),
        "Stepline.ChecksFailed",
    ),
    "matrix": Case("matrix", event_input(), "SUCCEEDED", {"Versions", "Matrix", "Test", "AllVersionsPassed"}),
    "release-main": Case(
        "release",
        event_input("main"),
        "SUCCEEDED",
        {"ShouldDeploy", "ApproveDeploy", "Deploy", "Soak", "SmokeTest", "Released"},
    ),
    "release-branch": Case(
        "release", event_input("feature/x"), "SUCCEEDED", {"TestedNotDeployed"}, {"ApproveDeploy", "Deploy"}
    ),
    "release-fork-pr": Case(
        "release",
        event_input("main", "pull_request", fork=True),
        "SUCCEEDED",
        {"TestedNotDeployed"},
        {"ApproveDeploy"},
    ),
    "release-tests-fail": Case(
        "release",
        event_input(),
        "FAILED",
        {"Cleanup", "BuildFailed"},
        {"ShouldDeploy"},
        frozenset({"integration-tests"}),
        "Stepline.BuildFailed",
    ),
    "release-smoke-fails": Case(
        "release",
        event_input(),
        "FAILED",
        {"Deploy", "Rollback", "DeployFailed"},
        {"Released"},
        frozenset({"smoke-test"}),
        "Stepline.DeployFailed",
    ),
    "approval": Case("approval", event_input(), "SUCCEEDED", {"Build", "ApproveDeploy", "Deploy"}),
}


@dataclass
class Outcome:
    status: str
    error: str | None
    path: Counter[str]  # Parallel branches and Map iterations interleave differently: compare counts
    output: Any


def run_cases(sfn: Any, prefix: str, cases: dict[str, Case]) -> dict[str, Outcome]:
    """Deploy each case's stubbed pipeline, start every execution at once, and collect how each ended."""
    arns = {}
    for name, case in cases.items():
        stubbed = stub_activities(fast_timings(load_pipeline(case.pipeline)[1]), case.failing)
        [action] = deploy_pipelines(sfn, {name: stubbed}, prefix, ROLE_ARN, untrusted_pools=())
        arns[name] = start(sfn, action.arn, case.payload)
    outcomes = {}
    for name, execution in arns.items():
        described = wait_done(sfn, execution, timeout=30)
        output = json.loads(described["output"]) if described.get("output") else None
        path = Counter(states_entered(sfn, execution))
        outcomes[name] = Outcome(described["status"], described.get("error"), path, output)
    return outcomes


@pytest.fixture(scope="module")
def moto_outcomes(moto_url: str) -> dict[str, Outcome]:
    from tests.statemachines.conftest import sfn_client

    return run_cases(sfn_client(moto_url), "moto", CASES)


@pytest.mark.parametrize("name", CASES)
def test_pipeline_takes_its_path_on_moto(moto_outcomes, name):
    case, outcome = CASES[name], moto_outcomes[name]
    assert (outcome.status, outcome.error) == (case.status, case.error)
    assert case.enters <= set(outcome.path), f"missing {case.enters - set(outcome.path)}: {outcome.path}"
    assert not case.skips & set(outcome.path)


def test_matrix_names_a_step_per_version_on_moto(moto_outcomes):
    results = moto_outcomes["matrix"].output["steps"]["matrix"]
    assert [r[0]["step"] for r in results] == ["test-py3.11", "test-py3.12", "test-py3.13"]
    assert moto_outcomes["matrix"].path["Test"] == 3


@pytest.mark.slow
def test_engine_takes_the_same_paths_as_moto(engine_sfn, moto_outcomes):
    ours = run_cases(engine_sfn, "engine", CASES)
    for name, theirs in moto_outcomes.items():
        case, mine = CASES[name], ours[name]
        assert (mine.status, mine.error) == (theirs.status, theirs.error), name
        assert case.enters <= set(mine.path) and not case.skips & set(mine.path), name
        if not case.failing:
            # when a Parallel branch fails, how far its siblings got before being stopped is a race
            assert mine.path == theirs.path, name
        if theirs.status == "SUCCEEDED":
            assert mine.output == theirs.output, name
