"""The shipped pipelines end to end over HTTP, the test playing the workers and the approver.

Each runs on the local engine, and on moto when moto can hand out activity tasks (5.2.5 cannot:
those cases are skipped with the reason; test_crosscheck.py runs the rest of each pipeline on moto).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from statemachines.aws_deploy import deploy_pipelines
from statemachines.catalog import load_pipeline
from statemachines.contract import activity_name, activity_pools, parse_step_task, pipeline_steps
from tests.statemachines.conftest import ROLE_ARN, sfn_client
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
NO_ACTIVITY_POLLING = (
    "moto has no activity polling: GetActivityTask answers HTTP 500 (moto 5.2.5), so no worker can take "
    "a step; the non-activity parts of this pipeline run on moto in test_crosscheck.py"
)


@pytest.fixture(params=["engine", "moto"])
def sfn(request: pytest.FixtureRequest) -> Any:
    """The Step Functions implementation under test: our engine, or moto if it can poll activities."""
    if request.param == "moto":
        moto_url = request.getfixturevalue("moto_url")
        if not _polls_activities(moto_url):
            pytest.skip(NO_ACTIVITY_POLLING)
        return sfn_client(moto_url)
    return request.getfixturevalue("engine_sfn")


@functools.cache
def _polls_activities(url: str) -> bool:
    from botocore.config import Config
    from botocore.exceptions import ClientError, ReadTimeoutError

    probe = sfn_client(url)
    arn = probe.create_activity(name="stepline-polling-probe")["activityArn"]
    quick = sfn_client(url, Config(read_timeout=2, retries={"max_attempts": 1}))
    try:
        quick.get_activity_task(activityArn=arn, workerName="probe")
    except ClientError:
        return False
    except ReadTimeoutError:
        pass  # a long poll with nothing to hand out: polling works
    return True


def deploy(
    sfn: Any, prefix: str, pipeline: str, definition: dict[str, Any] | None = None
) -> tuple[str, Workers]:
    """Deploy a shipped pipeline (Waits and Retry intervals shortened) as the deploy command does."""
    definition = fast_timings(definition or load_pipeline(pipeline)[1])
    actions = deploy_pipelines(sfn, {pipeline: definition}, prefix, ROLE_ARN)
    pools = {activity_name(pool, prefix): pool for pool in activity_pools(definition)}
    arns = {pools[a.name]: a.arn for a in actions if a.kind == "activity" and a.name in pools}
    return actions[-1].arn, Workers(sfn, arns)


def test_default_pipeline_hands_a_contract_task_to_the_build_pool(sfn, prefix):
    machine, workers = deploy(sfn, prefix, "default")
    execution = start(sfn, machine, event_input("feature/x"))
    task = workers.take("build")
    step = parse_step_task(json.dumps(task.input))  # what a real worker would check first
    assert (step.step, step.source.sha, step.run["branch"]) == ("build", SHA, "feature/x")
    workers.succeed(task)
    done = wait_done(sfn, execution)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["steps"]["build"]["status"] == "succeeded"


def test_parallel_builds_run_at_once_and_a_failure_reaches_cleanup(sfn, prefix):
    machine, workers = deploy(sfn, prefix, "parallel")
    execution = start(sfn, machine, event_input())
    # all three are handed out before any is answered: they run at the same time
    tasks = {task.step: task for task in (workers.take("build") for _ in range(3))}
    assert set(tasks) == {"lint", "unit-tests", "build"}
    workers.succeed(tasks["lint"])
    workers.fail(tasks["unit-tests"], "Stepline.StepFailed", "make test: exit status 2")
    cleanup = workers.take("build")
    assert cleanup.step == "cleanup"
    workers.succeed(cleanup)
    done = wait_done(sfn, execution)
    assert (done["status"], done["error"]) == ("FAILED", "Stepline.ChecksFailed")
    assert "Passed" not in states_entered(sfn, execution)


def test_matrix_runs_one_step_per_version(sfn, prefix):
    machine, workers = deploy(sfn, prefix, "matrix")
    [family] = pipeline_steps(load_pipeline("matrix")[1], include_dynamic=True)
    execution = start(sfn, machine, event_input())
    tasks = [workers.take("build") for _ in range(3)]
    assert sorted(t.step for t in tasks) == ["test-py3.11", "test-py3.12", "test-py3.13"]
    assert all(family.matches(t.step) and t.input["env"]["PYTHON_VERSION"] in t.step for t in tasks)
    for task in tasks:
        workers.succeed(task)
    assert wait_done(sfn, execution)["status"] == "SUCCEEDED"


def _pass_tests(workers: Workers) -> None:
    for expected in ("build", "integration-tests"):
        task = workers.take("build")
        assert task.step == expected
        workers.succeed(task)


def test_release_on_a_branch_is_tested_but_never_deployed(sfn, prefix):
    machine, workers = deploy(sfn, prefix, "release")
    execution = start(sfn, machine, event_input("feature/login"))
    _pass_tests(workers)
    assert wait_done(sfn, execution)["status"] == "SUCCEEDED"
    path = states_entered(sfn, execution)
    assert "TestedNotDeployed" in path and "ApproveDeploy" not in path and "Deploy" not in path


def test_release_on_main_retries_a_flaky_step_and_waits_for_approval(sfn, prefix):
    machine, workers = deploy(sfn, prefix, "release")
    execution = start(sfn, machine, event_input("main"))
    workers.succeed(workers.take("build"))
    workers.fail(workers.take("build"), "Stepline.StepFailed", "flaky: exit status 1")
    retried = workers.take("build")
    assert retried.step == "integration-tests"
    workers.succeed(retried)
    approval = workers.take("approval")
    assert (approval.step, approval.input["version"]) == ("approve-deploy", f"main-{SHA}")
    # the gate holds: nothing reaches the deploy pool until someone answers
    assert workers.poll("deploy") is None
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    workers.succeed(approval, status="approved", by="ada")
    for expected in ("deploy", "smoke-test"):
        task = workers.take("deploy")
        assert task.step == expected
        workers.succeed(task)
    done = wait_done(sfn, execution)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["steps"]["approval"]["by"] == "ada"
    assert [
        s for s in states_entered(sfn, execution) if s in {"Deploy", "Soak", "SmokeTest", "Released"}
    ] == ["Deploy", "Soak", "SmokeTest", "Released"]


@pytest.mark.parametrize("pipeline", ["release", "approval"])
def test_a_rejected_deploy_fails_with_stepline_rejected(sfn, prefix, pipeline):
    machine, workers = deploy(sfn, prefix, pipeline)
    execution = start(sfn, machine, event_input("main"))
    if pipeline == "release":
        _pass_tests(workers)
    else:
        workers.succeed(workers.take("build"))
    workers.fail(workers.take("approval"), "Stepline.Rejected", "rejected by ada on the dashboard")
    done = wait_done(sfn, execution)
    assert (done["status"], done["error"]) == ("FAILED", "Stepline.Rejected")
    assert "Deploy" not in states_entered(sfn, execution)


def test_a_lost_worker_is_retried(sfn, prefix):
    _, definition = load_pipeline("default")
    definition["States"]["Build"]["HeartbeatSeconds"] = 1  # 60 s in the shipped pipeline
    machine, workers = deploy(sfn, prefix, "default", definition)
    execution = start(sfn, machine, event_input())
    workers.take("build")  # ... and never heartbeats: the worker is lost
    workers.succeed(workers.take("build", timeout=10))
    assert wait_done(sfn, execution)["status"] == "SUCCEEDED"
    assert "ActivityTimedOut" in [event["type"] for event in history(sfn, execution)]
