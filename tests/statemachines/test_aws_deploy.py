"""`python -m statemachines deploy` against moto in server mode: create, then update, then no change."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import unquote

import boto3
import pytest

from statemachines.aws_deploy import CREATED, UNCHANGED, UPDATED, deploy_pipelines
from statemachines.catalog import load_pipeline, shipped_pipelines
from statemachines.errors import DeployError
from tests.harness.processes import PROJECT
from tests.statemachines.conftest import REGION, ROLE_ARN, TEMPLATE


def _deploy_command(
    endpoint_url: str, *args: str, role_arn: str = ROLE_ARN
) -> subprocess.CompletedProcess[str]:
    """The command as README's "Run on AWS" gives it, with moto (or the engine) standing in for AWS."""
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
        "SFN_ENDPOINT_URL": endpoint_url,
        "STEPLINE_SFN_ROLE_ARN": role_arn,
    }
    command = [sys.executable, "-m", "statemachines", "deploy", *args]
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)


def _actions(output: str) -> dict[str, str]:
    """`state machine t1-default: created arn:...` lines as {"state machine t1-default": "created"}."""
    return {line.split(":")[0]: line.split(": ")[1].split()[-2] for line in output.splitlines()}


def test_deploy_all_then_again_changes_nothing(moto_url, moto_sfn, prefix):
    first = _deploy_command(moto_url, "--all", "--prefix", prefix)
    assert first.returncode == 0, first.stderr
    pools = {"approval", "build", "deploy", "untrusted-build"}  # untrusted runs' build pool by default
    expected = {f"activity {prefix}-{pool}" for pool in pools} | {
        f"state machine {prefix}-{name}" for name in shipped_pipelines()
    }
    assert _actions(first.stdout) == dict.fromkeys(expected, CREATED)
    second = _deploy_command(moto_url, "--all", "--prefix", prefix)
    assert second.returncode == 0, second.stderr
    assert _actions(second.stdout) == dict.fromkeys(expected, UNCHANGED)
    # the placeholders became the activities' ARNs
    machine = moto_sfn.describe_state_machine(
        stateMachineArn=f"arn:aws:states:{REGION}:123456789012:stateMachine:{prefix}-release"
    )
    states = json.loads(machine["definition"])["States"]
    assert (
        states["ApproveDeploy"]["Resource"]
        == f"arn:aws:states:{REGION}:123456789012:activity:{prefix}-approval"
    )
    assert machine["roleArn"] == ROLE_ARN


def test_changed_pipeline_is_updated_in_place(moto_sfn, prefix):
    _, definition = load_pipeline("default")
    deploy_pipelines(moto_sfn, {"default": definition}, prefix, ROLE_ARN)
    definition["States"]["Build"]["TimeoutSeconds"] = 7200
    actions = deploy_pipelines(moto_sfn, {"default": definition}, prefix, ROLE_ARN)
    assert [(a.kind, a.action) for a in actions] == [
        ("activity", UNCHANGED), ("activity", UNCHANGED), ("state machine", UPDATED)
    ]  # fmt: skip
    described = moto_sfn.describe_state_machine(stateMachineArn=actions[-1].arn)
    assert json.loads(described["definition"])["States"]["Build"]["TimeoutSeconds"] == 7200
    again = deploy_pipelines(moto_sfn, {"default": definition}, prefix, ROLE_ARN)
    assert {a.action for a in again} == {UNCHANGED}


def test_dry_run_creates_nothing(moto_url, moto_sfn, prefix):
    result = _deploy_command(moto_url, "--pipeline", "release", "--prefix", prefix, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "state machine " + prefix + "-release: would be created" in result.stdout
    names = {a["name"] for a in moto_sfn.list_activities()["activities"]}
    assert not any(name.startswith(prefix + "-") for name in names)


def test_a_pipeline_file_breaking_the_contract_is_refused(moto_url, tmp_path, prefix):
    bad = tmp_path / "pipeline.asl.json"
    build = {
        "Type": "Task",
        "Resource": "${activity:build}",
        "Parameters": {"step": "b", "commands": []},
        "HeartbeatSeconds": 600,
        "TimeoutSeconds": 60,  # the defaults never overrule what the author wrote
        "End": True,
    }
    bad.write_text(json.dumps({"StartAt": "B", "States": {"B": build}}))
    result = _deploy_command(moto_url, "--pipeline", str(bad), "--prefix", prefix)
    assert result.returncode == 1
    assert "commands" in result.stderr and "a larger TimeoutSeconds" in result.stderr


def test_untrusted_activities_of_the_chosen_pools_are_deployed(moto_url, moto_sfn, prefix):
    result = _deploy_command(moto_url, "--prefix", prefix, "--untrusted-pools", "build,gpu")
    assert result.returncode == 0, result.stderr
    names = {a["name"] for a in moto_sfn.list_activities()["activities"]}
    assert {f"{prefix}-untrusted-build", f"{prefix}-untrusted-gpu"} <= names
    assert f"{prefix}-untrusted-deploy" not in names
    # the shipped state machines are trusted ones: they name no untrusted activity
    machine = moto_sfn.describe_state_machine(
        stateMachineArn=f"arn:aws:states:{REGION}:123456789012:stateMachine:{prefix}-default"
    )
    assert json.loads(machine["definition"])["States"]["Build"]["Resource"].endswith(f":{prefix}-build")


@pytest.mark.parametrize("pools", ["build,deploy", "approval"])
def test_deploy_and_approval_are_never_untrusted_pools(moto_url, moto_sfn, prefix, pools):
    result = _deploy_command(moto_url, "--prefix", prefix, "--untrusted-pools", pools)
    assert result.returncode == 2 and "untrusted runs may never use" in result.stderr
    assert not any(a["name"].startswith(prefix + "-") for a in moto_sfn.list_activities()["activities"])
    with pytest.raises(DeployError, match="untrusted runs may never use deploy"):
        deploy_pipelines(moto_sfn, {}, prefix, ROLE_ARN, untrusted_pools=("deploy",))


def test_deploy_needs_a_role(moto_sfn, prefix):
    with pytest.raises(DeployError, match="role"):
        deploy_pipelines(moto_sfn, {"default": load_pipeline("default")[1]}, prefix, role_arn="")


def test_readme_run_on_aws_steps_on_moto(moto_url, moto_sfn, prefix):
    """README "Run on AWS" steps 1, 4 and 5 with moto as the AWS account: the stack, its role, the deploy."""
    account = {
        "endpoint_url": moto_url,
        "region_name": REGION,
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
    }
    cloudformation, iam = boto3.client("cloudformation", **account), boto3.client("iam", **account)
    stack = f"stepline-{prefix}"
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": "Prefix", "ParameterValue": prefix}],
    )
    cloudformation.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1})
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    # moto's CloudFormation skips AWS::StepFunctions::Activity: the deploy command creates them
    result = _deploy_command(
        moto_url, "--all", "--prefix", prefix, "--role-arn", outputs["StateMachineRoleArn"]
    )
    assert result.returncode == 0, result.stderr
    machine = moto_sfn.describe_state_machine(
        stateMachineArn=f"arn:aws:states:{REGION}:123456789012:stateMachine:{prefix}-release"
    )
    assert machine["roleArn"] == outputs["StateMachineRoleArn"]
    # each build workers' policy names exactly the activity the deploy command created, and only it
    activities = {a["name"]: a["activityArn"] for a in moto_sfn.list_activities()["activities"]}
    [statement] = _policy_statements(iam, outputs["BuildWorkerPolicyArn"])
    assert statement["Resource"] == activities[f"{prefix}-build"]
    [statement] = _policy_statements(iam, outputs["UntrustedBuildWorkerPolicyArn"])
    assert statement["Resource"] == activities[f"{prefix}-untrusted-build"]


def _policy_statements(iam, arn: str) -> list[dict]:
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"][
        "Document"
    ]
    document = json.loads(unquote(document)) if isinstance(document, str) else document
    return document["Statement"]


def test_deploy_command_serves_the_local_engine_without_a_role(engine_sfn, prefix):
    result = _deploy_command(engine_sfn.meta.endpoint_url, "--all", "--prefix", prefix, role_arn="")
    assert result.returncode == 0, result.stderr
    names = {m["name"] for m in engine_sfn.list_state_machines()["stateMachines"]}
    assert {f"{prefix}-{name}" for name in shipped_pipelines()} <= names
