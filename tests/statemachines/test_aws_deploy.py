"""`python -m statemachines deploy` against moto in server mode: create, then update, then no change."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from statemachines.aws_deploy import CREATED, UNCHANGED, UPDATED, deploy_pipelines
from statemachines.catalog import load_pipeline, shipped_pipelines
from statemachines.errors import DeployError
from tests.harness.processes import PROJECT
from tests.statemachines.conftest import REGION, ROLE_ARN


def _deploy_command(moto_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as README's "Run on AWS" gives it, with moto standing in for the AWS endpoint."""
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
        "SFN_ENDPOINT_URL": moto_url,
        "STEPLINE_SFN_ROLE_ARN": ROLE_ARN,
    }
    command = [sys.executable, "-m", "statemachines", "deploy", *args]
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)


def _actions(output: str) -> dict[str, str]:
    """`state machine t1-default: created arn:...` lines as {"state machine t1-default": "created"}."""
    return {line.split(":")[0]: line.split(": ")[1].split()[-2] for line in output.splitlines()}


def test_deploy_all_then_again_changes_nothing(moto_url, moto_sfn, prefix):
    first = _deploy_command(moto_url, "--all", "--prefix", prefix)
    assert first.returncode == 0, first.stderr
    pools = {"approval", "build", "deploy"}
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
    assert [(a.kind, a.action) for a in actions] == [("activity", UNCHANGED), ("state machine", UPDATED)]
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
        "Parameters": {"step": "b", "commands": ["true"], "run.$": "$$.Execution.Input"},
        "End": True,
    }
    bad.write_text(json.dumps({"StartAt": "B", "States": {"B": build}}))
    result = _deploy_command(moto_url, "--pipeline", str(bad), "--prefix", prefix)
    assert result.returncode == 1
    assert "HeartbeatSeconds" in result.stderr and "States.HeartbeatTimeout" in result.stderr


def test_deploy_needs_a_role(moto_sfn, prefix):
    with pytest.raises(DeployError, match="role"):
        deploy_pipelines(moto_sfn, {"default": load_pipeline("default")[1]}, prefix, role_arn="")
