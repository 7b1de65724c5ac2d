"""The shipped pipelines end to end on the local engine over HTTP, the test playing the workers and the approver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from statemachines.aws_deploy import deploy_pipelines
from statemachines.catalog import load_pipeline
from statemachines.contract import activity_name, activity_pools, parse_step_task, pipeline_steps
from tests.statemachines.conftest import ROLE_ARN
from tests.statemachines.runs import (
    SHA,
    Workers,
    event_input,
    fast_timings,
    history,
    start,
    states_entered,
    wait_done,
)

pytestmark = pytest.mark.slow


def deploy(
    sfn: Any, prefix: str, pipeline: str, definition: dict[str, Any] | None = None
) -> tuple[str, Workers]:
    """Deploy a shipped pipeline (Waits and Retry intervals shortened) as the deploy command does."""
    definition = fast_timings(definition or load_pipeline(pipeline)[1])
    actions = deploy_pipelines(sfn, {pipeline: definition}, prefix, ROLE_ARN)
    pools = {activity_name(pool, prefix): pool for pool in activity_pools(definition)}
    arns = {pools[a.name]: a.arn for a in actions if a.kind == "activity"}
    return actions[-1].arn, Workers(sfn, arns)


def test_default_pipeline_hands_a_contract_task_to_the_build_pool(engine_sfn, prefix):
    machine, workers = deploy(engine_sfn, prefix, "default")
    execution = start(engine_sfn, machine, event_input("feature/x"))
    task = workers.take("build")
    step = parse_step_task(json.dumps(task.input))  # what a real worker would check first
    assert (step.step, step.source.sha, step.run["branch"]) == ("build", SHA, "feature/x")
    workers.succeed(task)
    done = wait_done(engine_sfn, execution)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["steps"]["build"]["status"] == "succeeded"


def test_parallel_builds_run_at_once_and_a_failure_reaches_cleanup(engine_sfn, prefix):
    machine, workers = deploy(engine_sfn, prefix, "parallel")
    execution = start(engine_sfn, machine, event_input())
    # all three are handed out before any is answered: they run at the same time
    tasks = {task.step: task for task in (workers.take("build") for _ in range(3))}
    assert set(tasks) == {"lint", "unit-tests", "build"}
    workers.succeed(tasks["lint"])
    workers.fail(tasks["unit-tests"], "Stepline.StepFailed", "make test: exit status 2")
    cleanup = workers.take("build")
    assert cleanup.step == "cleanup"
    workers.succeed(cleanup)
    done = wait_done(engine_sfn, execution)
    assert (done["status"], done["error"]) == ("FAILED", "Stepline.ChecksFailed")
    assert "Passed" not in states_entered(engine_sfn, execution)


def test_matrix_runs_one_step_per_version(engine_sfn, prefix):
    machine, workers = deploy(engine_sfn, prefix, "matrix")
    [family] = pipeline_steps(load_pipeline("matrix")[1], include_dynamic=True)
    execution = start(engine_sfn, machine, event_input())
    tasks = [workers.take("build") for _ in range(3)]
    assert sorted(t.step for t in tasks) == ["test-py3.11", "test-py3.12", "test-py3.13"]
    assert all(family.matches(t.step) and t.input["env"]["PYTHON_VERSION"] in t.step for t in tasks)
    for task in tasks:
        workers.succeed(task)
    assert wait_done(engine_sfn, execution)["status"] == "SUCCEEDED"


def _pass_tests(workers: Workers) -> None:
    for expected in ("build", "integration-tests"):
        task = workers.take("build")
        assert task.step == expected
        workers.succeed(task)


def test_release_on_a_branch_is_tested_but_never_deployed(engine_sfn, prefix):
    machine, workers = deploy(engine_sfn, prefix, "release")
    execution = start(engine_sfn, machine, event_input("feature/login"))
    _pass_tests(workers)
    assert wait_done(engine_sfn, execution)["status"] == "SUCCEEDED"
    path = states_entered(engine_sfn, execution)
    assert "TestedNotDeployed" in path and "ApproveDeploy" not in path and "Deploy" not in path


def test_release_on_main_retries_a_flaky_step_and_waits_for_approval(engine_sfn, prefix):
    machine, workers = deploy(engine_sfn, prefix, "release")
    execution = start(engine_sfn, machine, event_input("main"))
    workers.succeed(workers.take("build"))
    workers.fail(workers.take("build"), "Stepline.StepFailed", "flaky: exit status 1")
    retried = workers.take("build")
    assert retried.step == "integration-tests"
    workers.succeed(retried)
    approval = workers.take("approval")
    assert (approval.step, approval.input["version"]) == ("approve-deploy", f"main-{SHA}")
    # the gate holds: nothing reaches the deploy pool until someone answers
    assert workers.poll("deploy") is None
    assert engine_sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    workers.succeed(approval, status="approved", by="ada")
    for expected in ("deploy", "smoke-test"):
        task = workers.take("deploy")
        assert task.step == expected
        workers.succeed(task)
    done = wait_done(engine_sfn, execution)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["steps"]["approval"]["by"] == "ada"
    assert [
        s for s in states_entered(engine_sfn, execution) if s in {"Deploy", "Soak", "SmokeTest", "Released"}
    ] == ["Deploy", "Soak", "SmokeTest", "Released"]


@pytest.mark.parametrize("pipeline", ["release", "approval"])
def test_a_rejected_deploy_fails_with_stepline_rejected(engine_sfn, prefix, pipeline):
    machine, workers = deploy(engine_sfn, prefix, pipeline)
    execution = start(engine_sfn, machine, event_input("main"))
    if pipeline == "release":
        _pass_tests(workers)
    else:
        workers.succeed(workers.take("build"))
    workers.fail(workers.take("approval"), "Stepline.Rejected", "rejected by ada on the dashboard")
    done = wait_done(engine_sfn, execution)
    assert (done["status"], done["error"]) == ("FAILED", "Stepline.Rejected")
    assert "Deploy" not in states_entered(engine_sfn, execution)


def test_a_lost_worker_is_retried(engine_sfn, prefix):
    _, definition = load_pipeline("default")
    definition["States"]["Build"]["HeartbeatSeconds"] = 1  # 60 s in the shipped pipeline
    machine, workers = deploy(engine_sfn, prefix, "default", definition)
    execution = start(engine_sfn, machine, event_input())
    workers.take("build")  # ... and never heartbeats: the worker is lost
    workers.succeed(workers.take("build", timeout=10))
    assert wait_done(engine_sfn, execution)["status"] == "SUCCEEDED"
    assert "ActivityTimedOut" in [event["type"] for event in history(engine_sfn, execution)]
