"""ensure_pipeline against the local engine and moto: idempotent, content-addressed, race-safe."""

from __future__ import annotations

import json
import threading

import pytest

from statemachines.deploy import LOCAL_ROLE_ARN, ensure_pipeline, final_definition, state_machine_name
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
