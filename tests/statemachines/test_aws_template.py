"""The CloudFormation template of the AWS world: cfn-lint clean, and its IAM policies least-privilege."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.statemachines.conftest import TEMPLATE

ACTIVITY_ARN = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:activity:${Prefix}-"
WORKER_ACTIONS = {
    "states:CreateActivity",  # how workers/poller.py resolves its activity ARN
    "states:GetActivityTask",
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
}


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads the short-form intrinsic functions (!Ref, !Sub, !GetAtt) as {"Ref": ...} mappings."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        return {name: value.split(".") if tag_suffix == "GetAtt" else value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node)}
    return {name: loader.construct_mapping(node)}  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass


def _cfn_lint() -> list[str]:
    found = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "cfnlint"]


def test_template_passes_cfn_lint():
    result = subprocess.run([*_cfn_lint(), str(TEMPLATE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _statements(template: dict[str, Any], policy: str) -> list[dict[str, Any]]:
    return template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


WORKER_POLICIES = {
    "BuildWorkerPolicy": "build",
    "DeployWorkerPolicy": "deploy",
    "UntrustedBuildWorkerPolicy": "untrusted-build",
}


@pytest.mark.parametrize(("policy", "pool"), WORKER_POLICIES.items())
def test_worker_policies_reach_their_own_activity_only(template, policy, pool):
    [statement] = _statements(template, policy)
    assert statement["Effect"] == "Allow"
    assert _actions(statement) == WORKER_ACTIONS
    assert statement["Resource"] == {"Fn::Sub": ACTIVITY_ARN + pool}


def test_no_trusted_worker_reaches_an_untrusted_activity_nor_the_other_way(template):
    """A worker decides secrets from the activity it polls: IAM is what keeps each on its own side."""
    resources = {
        policy: {s["Resource"]["Fn::Sub"] for s in _statements(template, policy)}
        for policy in WORKER_POLICIES
    }
    for policy, arns in resources.items():
        assert all("*" not in arn for arn in arns), policy
        untrusted = {arn for arn in arns if arn.startswith(ACTIVITY_ARN + "untrusted-")}
        assert untrusted == (arns if policy.startswith("Untrusted") else set()), policy
    names = {
        r["Properties"]["Name"]["Fn::Sub"]
        for r in template["Resources"].values()
        if "Name" in r.get("Properties", {})
    }
    assert "${Prefix}-untrusted-build" in names
    outputs = template["Outputs"]
    assert outputs["UntrustedBuildWorkerPolicyArn"]["Value"] == {"Ref": "UntrustedBuildWorkerPolicy"}


@pytest.mark.parametrize(
    ("prefix", "allowed"),
    [
        ("stepline", True),
        ("ci-2", True),
        ("untrustedness", True),
        ("untrusted", False),
        ("a-untrusted", False),
    ],
)
def test_a_prefix_never_makes_a_trusted_activity_look_untrusted(template, prefix, allowed):
    # `a-untrusted` + pool `build` would be `a`'s untrusted build activity
    pattern = template["Parameters"]["Prefix"]["AllowedPattern"]
    assert (re.fullmatch(pattern, prefix) is not None) == allowed


def test_service_policy_is_scoped_to_the_prefix(template):
    for statement in _statements(template, "ServicePolicy"):
        resource = statement["Resource"]
        assert "*" not in _actions(statement) and not any(a.endswith(":*") for a in _actions(statement))
        if resource == "*":
            # only List actions, which AWS cannot scope to a resource
            assert all(action.startswith("states:List") for action in _actions(statement))
        elif isinstance(resource, dict) and "Fn::Sub" in resource:
            assert ":${Prefix}-" in resource["Fn::Sub"]


def test_service_policy_answers_approvals_but_runs_no_build_step(template):
    statements = _statements(template, "ServicePolicy")
    polling = [s for s in statements if "states:GetActivityTask" in _actions(s)]
    assert [s["Resource"] for s in polling] == [{"Fn::Sub": ACTIVITY_ARN + "approval"}]
    needed = {
        "states:StartExecution",
        "states:StopExecution",
        "states:DescribeExecution",
        "states:GetExecutionHistory",
        "states:CreateStateMachine",
        "states:UpdateStateMachine",
        "states:CreateActivity",
        "states:RedriveExecution",
    }
    assert needed <= set().union(*(_actions(s) for s in statements))


def test_state_machine_role_is_for_step_functions_only(template):
    role = template["Resources"]["StateMachineRole"]["Properties"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    pass_role = [s for s in _statements(template, "ServicePolicy") if _actions(s) == {"iam:PassRole"}]
    assert pass_role[0]["Condition"]["StringEquals"]["iam:PassedToService"] == "states.amazonaws.com"


BLOB_POLICIES = ("BuildWorkerBlobPolicy", "UntrustedBuildWorkerBlobPolicy", "WebBlobPolicy", "JobsBlobPolicy")


def _blob_resources(template: dict[str, Any], policy: str, action: str) -> list[str]:
    found = []
    for statement in _statements(template, policy):
        if action in _actions(statement):
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                found.append(resource["Fn::Sub"] if "Fn::Sub" in resource else str(resource))
    return found


def test_blob_policies_keep_each_process_and_each_trust_on_its_side(template):
    """A fork's worker cannot write a trusted cache; the web only reads; only the jobs process deletes."""
    trusted = _blob_resources(template, "BuildWorkerBlobPolicy", "s3:PutObject")
    untrusted = _blob_resources(template, "UntrustedBuildWorkerBlobPolicy", "s3:PutObject")
    assert trusted and all("/trusted/" in r and "/untrusted/" not in r for r in trusted)
    assert untrusted and all("/untrusted/" in r for r in untrusted)
    assert _blob_resources(template, "UntrustedBuildWorkerBlobPolicy", "s3:GetObject") == untrusted
    web = {a for s in _statements(template, "WebBlobPolicy") for a in _actions(s)}
    jobs = {a for s in _statements(template, "JobsBlobPolicy") for a in _actions(s)}
    assert web == {"s3:GetObject"}
    assert jobs == {"s3:DeleteObject", "s3:ListBucket", "s3:GetObject"}
    assert _blob_resources(template, "JobsBlobPolicy", "s3:GetObject") == [
        "${BlobBucket.Arn}/${BlobPrefix}/logs/*"
    ]
    for policy in BLOB_POLICIES:
        assert all(not a.endswith("*") for s in _statements(template, policy) for a in _actions(s))
        assert template["Outputs"][f"{policy}Arn"]["Value"] == {"Ref": policy}
