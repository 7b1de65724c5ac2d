"""ensure_pipeline against the local engine and moto: idempotent, content-addressed, race-safe."""

from __future__ import annotations

import json
import threading

import pytest

from statemachines.deploy import (
    LOCAL_ROLE_ARN,
    ensure_pipeline,
    final_definition,
    state_machine_name,
    untrusted_pool_problems,
    untrusted_uses,
)
from statemachines.errors import DeployError

PIPELINE = {
    "StartAt": "Build",
    "States": {
        "Build": {"Type": "Task", "Resource": "${activity:build}", "Next": "Ship",
                  "Parameters": {"step": "build", "commands": ["make"], "run.$": "$$.Execution.Input"}},
        "Ship": {"Type": "Task", "Resource": "${activity:deploy}", "End": True,
                 "Parameters": {"step": "ship", "commands": ["make ship"], "run.$": "$$.Execution.Input"}},
    },
}  # fmt: skip


@pytest.fixture(params=["engine", "moto"])
def sfn(request):
    return request.getfixturevalue(f"{request.param}_sfn")


def test_deploy_creates_activities_and_a_content_addressed_state_machine(sfn, prefix):
    arn = ensure_pipeline(sfn, PIPELINE, "ci", LOCAL_ROLE_ARN, prefix)
    assert ensure_pipeline(sfn, PIPELINE, "ci", LOCAL_ROLE_ARN, prefix) == arn
    names = {a["name"] for a in sfn.list_activities()["activities"]}
    assert {f"{prefix}-build", f"{prefix}-deploy"} <= names
    deployed = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    assert deployed["States"]["Build"]["Resource"].endswith(f":activity:{prefix}-build")
    text = final_definition(sfn, PIPELINE, prefix)
    assert arn.endswith(":" + state_machine_name(prefix, "ci", text))
    changed = {**PIPELINE, "Comment": "changed"}
    assert ensure_pipeline(sfn, changed, "ci", LOCAL_ROLE_ARN, prefix) != arn


def test_concurrent_deploys_converge_on_one_state_machine(engine_sfn, prefix):
    arns: list[str] = []
    barrier = threading.Barrier(8)

    def deploy() -> None:
        barrier.wait()
        arns.append(ensure_pipeline(engine_sfn, PIPELINE, "ci", LOCAL_ROLE_ARN, prefix))

    threads = [threading.Thread(target=deploy) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(arns) == 8 and len(set(arns)) == 1
    machines = [m for m in engine_sfn.list_state_machines()["stateMachines"] if m["name"].startswith(prefix)]
    assert len(machines) == 1


def test_a_name_holding_another_definition_is_refused(engine_sfn, prefix):
    text = final_definition(engine_sfn, PIPELINE, prefix)
    squatter = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    engine_sfn.create_state_machine(
        name=state_machine_name(prefix, "ci", text), definition=squatter, roleArn=LOCAL_ROLE_ARN
    )
    with pytest.raises(DeployError):
        ensure_pipeline(engine_sfn, PIPELINE, "ci", LOCAL_ROLE_ARN, prefix)


def test_names_stay_within_aws_limits():
    name = state_machine_name("stepline", "a very long pipeline name! " * 5, "{}")
    assert len(name) <= 80 and " " not in name and "!" not in name


def test_an_untrusted_deploy_resolves_every_pool_to_its_untrusted_activity(sfn, prefix):
    build_only = {**PIPELINE, "States": {"Build": {**PIPELINE["States"]["Build"], "End": True}}}
    del build_only["States"]["Build"]["Next"]
    trusted = ensure_pipeline(sfn, build_only, "ci", LOCAL_ROLE_ARN, prefix)
    untrusted = ensure_pipeline(sfn, build_only, "ci", LOCAL_ROLE_ARN, prefix, trusted=False)
    assert untrusted != trusted  # content-addressed: another final definition, another state machine
    deployed = json.loads(sfn.describe_state_machine(stateMachineArn=untrusted)["definition"])
    assert deployed["States"]["Build"]["Resource"].endswith(f":activity:{prefix}-untrusted-build")
    assert ensure_pipeline(sfn, build_only, "ci", LOCAL_ROLE_ARN, prefix, trusted=False) == untrusted


NESTED = {
    "StartAt": "Fan",
    "States": {
        "Fan": {"Type": "Parallel", "End": True, "Branches": [
            {"StartAt": "Ok", "States": {"Ok": {"Type": "Task", "Resource": "${activity:build}", "End": True}}},
            {"StartAt": "Each", "States": {"Each": {
                "Type": "Map", "End": True,
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b", "Key": "k"}},
                "ItemProcessor": {"StartAt": "Start", "States": {"Start": {
                    "Type": "Task", "Resource": "arn:aws:states:::states:startExecution", "End": True}}}}}},
            {"StartAt": "Ship", "States": {"Ship": {"Type": "Task", "Resource": "${activity:deploy}", "End": True}}},
        ]},
    },
}  # fmt: skip


def test_untrusted_uses_finds_literal_resources_and_unallowed_pools_at_any_depth():
    assert untrusted_uses(NESTED, ["build", "deploy"]) == [
        ("Fan/1/Each", "ItemReader/Resource", "arn:aws:states:::s3:getObject"),
        ("Fan/1/Each/Start", "Resource", "arn:aws:states:::states:startExecution"),
        ("Fan/2/Ship", "Resource", "${activity:deploy}"),  # deploy is never an untrusted pool
    ]
    assert untrusted_uses(PIPELINE, ["build"]) == [("Ship", "Resource", "${activity:deploy}")]
    literal = {"StartAt": "B", "States": {"B": {"Type": "Task", "End": True,
               "Resource": "arn:aws:states:us-east-1:000000000000:activity:stepline-build"}}}  # fmt: skip
    assert untrusted_uses(literal, ["build"]) == [("B", "Resource", literal["States"]["B"]["Resource"])]


def test_an_untrusted_deploy_refuses_what_untrusted_runs_may_not_use(engine_sfn, prefix):
    with pytest.raises(DeployError, match=r"Fan/1/Each/ItemReader/Resource: an untrusted run may not use"):
        ensure_pipeline(engine_sfn, NESTED, "ci", LOCAL_ROLE_ARN, prefix, trusted=False)
    with pytest.raises(
        DeployError, match=r"Ship/Resource: an untrusted run may not use '\$\{activity:deploy\}'"
    ):
        ensure_pipeline(engine_sfn, PIPELINE, "ci", LOCAL_ROLE_ARN, prefix, trusted=False)
    assert not [m for m in engine_sfn.list_state_machines()["stateMachines"] if m["name"].startswith(prefix)]
    assert not [a for a in engine_sfn.list_activities()["activities"] if a["name"].startswith(prefix)]


@pytest.mark.parametrize(
    ("pools", "problem"),
    [(["build", "gpu"], None), (["deploy"], "never use deploy"), (["approval", "build"], "never use approval"),
     (["untrusted-build"], "not pool names: untrusted-build"), (["Build!"], "not pool names")],
)  # fmt: skip
def test_untrusted_pool_settings_never_include_deploy_or_approval(pools, problem):
    found = untrusted_pool_problems(pools)
    assert (found == []) if problem is None else any(problem in p for p in found)
