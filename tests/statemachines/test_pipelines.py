"""Every shipped pipeline: parses, follows the pipeline contract, and passes the engine's validator."""

from __future__ import annotations

import json

import pytest

from statemachines.catalog import PIPELINES_DIR, load_pipeline, parse_pipeline, shipped_pipelines
from statemachines.contract import (
    APPROVAL_POOL,
    activity_name,
    activity_pools,
    check_pipeline,
    pipeline_steps,
    pool_of,
    substitute_activities,
    walk_states,
)
from statemachines.engine.asl.definition import load_definition
from statemachines.errors import PipelineError

PIPELINES = sorted(shipped_pipelines())


def test_the_examples_are_shipped_and_one_is_yaml():
    assert {"default", "parallel", "matrix", "release", "approval"} <= set(PIPELINES)
    assert shipped_pipelines()["approval"].name.endswith(".asl.yaml")


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_validates_with_the_engine(name):
    _, definition = load_pipeline(name)
    arns = {
        pool: f"arn:aws:states:us-east-1:123456789012:activity:{activity_name(pool)}"
        for pool in activity_pools(definition)
    }
    # what deploy sends: placeholders replaced, as JSON
    load_definition(json.dumps(substitute_activities(definition, arns)))


@pytest.mark.parametrize("name", PIPELINES)
def test_every_build_task_survives_a_lost_worker(name):
    _, definition = load_pipeline(name)
    assert check_pipeline(definition) == []
    for path, _, state in walk_states(definition):
        if state.get("Type") != "Task" or pool_of(state) == APPROVAL_POOL:
            continue
        assert pool_of(state), f"{path}: every Task of a shipped pipeline runs on a pool"
        assert 0 < state["HeartbeatSeconds"] < state["TimeoutSeconds"], path
        retried = [r for r in state["Retry"] if "States.HeartbeatTimeout" in r["ErrorEquals"]]
        assert retried and retried[0]["MaxAttempts"] >= 1, path


def test_the_contract_check_names_what_is_missing():
    task = {
        "Type": "Task",
        "Resource": "${activity:build}",
        "Parameters": {"step": "b", "commands": ["true"]},
        "End": True,
    }
    problems = check_pipeline({"StartAt": "B", "States": {"B": task}})
    assert problems == [
        'B: Parameters must pass "run.$": "$$.Execution.Input"',
        "B: a build step needs HeartbeatSeconds and a larger TimeoutSeconds",
        "B: a build step needs a Retry on States.HeartbeatTimeout (a lost worker)",
    ]


def test_matrix_steps_are_a_family_named_by_their_static_prefix():
    assert pipeline_steps(load_pipeline("matrix")[1]) == []  # contexts known up front only
    [spec] = pipeline_steps(load_pipeline("matrix")[1], include_dynamic=True)
    assert (spec.step, spec.dynamic, spec.prefix, spec.state_path) == (
        "test-py{}",
        True,
        "test-py",
        "Matrix/Test",
    )
    assert spec.matches("test-py3.12") and not spec.matches("test-py") and not spec.matches("lint")


def test_static_step_names_are_unchanged():
    steps = pipeline_steps(load_pipeline("release")[1])
    assert [s.step for s in steps] == [
        "build",
        "integration-tests",
        "approve-deploy",
        "deploy",
        "smoke-test",
        "rollback",
        "cleanup",
    ]
    assert not any(s.dynamic for s in steps) and steps[0].prefix == "build" and steps[0].matches("build")
    assert {s.pool for s in steps} == {"build", "approval", "deploy"}


def test_a_broken_pipeline_file_is_a_pipeline_error(tmp_path):
    with pytest.raises(PipelineError, match="not valid JSON or YAML"):
        parse_pipeline('{"StartAt": ', "x.asl.json")
    with pytest.raises(PipelineError, match="no such pipeline"):
        load_pipeline(str(tmp_path / "missing.asl.json"))


def test_yaml_and_json_read_alike():
    text = (PIPELINES_DIR / "approval.asl.yaml").read_text()
    definition = parse_pipeline(text, "approval.asl.yaml")
    assert definition["States"]["ApproveDeploy"]["Resource"] == "${activity:approval}"
    assert parse_pipeline(json.dumps(definition), "approval.json") == definition
