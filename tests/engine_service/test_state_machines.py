"""State machines, versions, aliases, validation and tags over the AWS API."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from .conftest import ROLE_ARN, create_machine, definition, wait_done

PASS = {"Done": {"Type": "Pass", "End": True}}


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def test_create_describe_list_delete(sfn, unique):
    arn = create_machine(sfn, f"sm-{unique}", PASS)
    assert arn == f"arn:aws:states:us-east-1:123456789012:stateMachine:sm-{unique}"
    desc = sfn.describe_state_machine(stateMachineArn=arn)
    assert desc["status"] == "ACTIVE" and desc["type"] == "STANDARD" and desc["roleArn"] == ROLE_ARN
    assert json.loads(desc["definition"])["StartAt"] == "Done"
    names = [
        m["name"]
        for page in sfn.get_paginator("list_state_machines").paginate()
        for m in page["stateMachines"]
    ]
    assert f"sm-{unique}" in names
    sfn.delete_state_machine(stateMachineArn=arn)
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn=arn)


def test_create_is_idempotent_for_identical_machines_only(sfn, unique):
    first = sfn.create_state_machine(name=f"idem-{unique}", definition=definition(PASS), roleArn=ROLE_ARN)
    again = sfn.create_state_machine(name=f"idem-{unique}", definition=definition(PASS), roleArn=ROLE_ARN)
    assert again["stateMachineArn"] == first["stateMachineArn"]
    assert again["creationDate"] == first["creationDate"]
    other = definition({"Other": {"Type": "Pass", "End": True}})
    with pytest.raises(sfn.exceptions.StateMachineAlreadyExists):
        sfn.create_state_machine(name=f"idem-{unique}", definition=other, roleArn=ROLE_ARN)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "InvalidDefinition"),
        (
            json.dumps({"StartAt": "Missing", "States": {"A": {"Type": "Pass", "End": True}}}),
            "InvalidDefinition",
        ),
        (json.dumps({"StartAt": "A", "States": {"A": {"Type": "Bogus", "End": True}}}), "InvalidDefinition"),
    ],
)
def test_invalid_definitions_are_rejected(sfn, unique, text, code):
    with pytest.raises(ClientError) as excinfo:
        sfn.create_state_machine(name=f"bad-{unique}", definition=text, roleArn=ROLE_ARN)
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    "name", ["has space", "a*b", "br[ack]et", "x" * 81, "semi;colon", "tab\tname", "ctl\x01"]
)
def test_invalid_names(sfn, name):
    with pytest.raises(ClientError) as excinfo:
        sfn.create_state_machine(name=name, definition=definition(PASS), roleArn=ROLE_ARN)
    assert error_code(excinfo) in ("InvalidName", "ValidationException")


def test_bad_arns(sfn):
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.describe_state_machine(stateMachineArn="not-an-arn")
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.describe_state_machine(stateMachineArn="arn:aws:states:us-east-1:123456789012:activity:x")
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn="arn:aws:states:us-east-1:123456789012:stateMachine:nope")


def test_update_changes_revision_and_publishes(sfn, unique):
    arn = create_machine(sfn, f"upd-{unique}", PASS)
    before = sfn.describe_state_machine(stateMachineArn=arn)["revisionId"]
    new = definition({"Two": {"Type": "Pass", "Result": 2, "End": True}})
    result = sfn.update_state_machine(
        stateMachineArn=arn, definition=new, publish=True, versionDescription="v1"
    )
    assert result["revisionId"] != before
    assert result["stateMachineVersionArn"] == arn + ":1"
    assert (
        json.loads(sfn.describe_state_machine(stateMachineArn=arn + ":1")["definition"])["StartAt"] == "Two"
    )
    with pytest.raises(sfn.exceptions.MissingRequiredParameter):
        sfn.update_state_machine(stateMachineArn=arn)
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.update_state_machine(stateMachineArn=arn, definition="{}")


def test_versions_and_aliases_pin_executions(sfn, unique):
    arn = create_machine(
        sfn, f"ver-{unique}", {"A": {"Type": "Pass", "Result": "one", "End": True}}, publish=True
    )
    sfn.update_state_machine(
        stateMachineArn=arn, definition=definition({"A": {"Type": "Pass", "Result": "two", "End": True}})
    )
    v2 = sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"]
    assert v2 == arn + ":2"
    assert (
        sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"] == v2
    )  # idempotent
    with pytest.raises(sfn.exceptions.ConflictException):
        sfn.publish_state_machine_version(stateMachineArn=arn, revisionId="stale")
    versions = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in versions] == [arn + ":2", arn + ":1"]
    alias = sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": arn + ":1", "weight": 100}]
    )["stateMachineAliasArn"]
    assert alias == arn + ":live"
    ex = sfn.start_execution(stateMachineArn=alias)["executionArn"]
    desc = wait_done(sfn, ex)
    assert desc["output"] == '"one"'
    assert desc["stateMachineAliasArn"] == alias and desc["stateMachineVersionArn"] == arn + ":1"
    ex2 = sfn.start_execution(stateMachineArn=v2)["executionArn"]
    assert wait_done(sfn, ex2)["output"] == '"two"'
    listed = sfn.list_executions(stateMachineArn=alias)["executions"]
    assert [e["executionArn"] for e in listed] == [ex]
    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias, routingConfiguration=[{"stateMachineVersionArn": v2, "weight": 100}]
    )
    assert (
        sfn.describe_state_machine_alias(stateMachineAliasArn=alias)["routingConfiguration"][0][
            "stateMachineVersionArn"
        ]
        == v2
    )
    assert [
        a["stateMachineAliasArn"]
        for a in sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"]
    ] == [alias]
    with pytest.raises(sfn.exceptions.ConflictException):
        sfn.delete_state_machine_version(stateMachineVersionArn=v2)
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    sfn.delete_state_machine_version(stateMachineVersionArn=v2)
    assert len(sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]) == 1


def test_validate_definition(sfn):
    ok = sfn.validate_state_machine_definition(definition=definition(PASS))
    assert ok["result"] == "OK" and ok["diagnostics"] == []
    bad = sfn.validate_state_machine_definition(definition=json.dumps({"StartAt": "X", "States": {}}))
    assert bad["result"] == "FAIL" and bad["diagnostics"][0]["severity"] == "ERROR"


def test_tags(sfn, unique):
    arn = create_machine(sfn, f"tag-{unique}", PASS, tags=[{"key": "team", "value": "ci"}])
    sfn.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "dev"}])
    tags = sfn.list_tags_for_resource(resourceArn=arn)["tags"]
    assert tags == [{"key": "env", "value": "dev"}, {"key": "team", "value": "ci"}]
    sfn.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "env", "value": "dev"}]
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.list_tags_for_resource(resourceArn=arn + "-missing")


def test_express_sync_execution(sfn, unique):
    arn = create_machine(
        sfn,
        f"exp-{unique}",
        {"A": {"Type": "Pass", "Parameters": {"v.$": "$.v"}, "End": True}},
        type="EXPRESS",
    )
    result = sfn.start_sync_execution(stateMachineArn=arn, input='{"v": 7}')
    assert result["status"] == "SUCCEEDED" and json.loads(result["output"]) == {"v": 7}
    assert ":express:" in result["executionArn"]
    standard = create_machine(sfn, f"std-{unique}", PASS)
    with pytest.raises(sfn.exceptions.StateMachineTypeNotSupported):
        sfn.start_sync_execution(stateMachineArn=standard)


def test_test_state(sfn):
    result = sfn.test_state(
        definition=json.dumps({"Type": "Pass", "Parameters": {"x.$": "$.a"}, "Next": "After"}),
        roleArn=ROLE_ARN,
        input='{"a": 1}',
    )
    assert result["status"] == "SUCCEEDED" and json.loads(result["output"]) == {"x": 1}
    assert result["nextState"] == "After"
    failed = sfn.test_state(
        definition=json.dumps({"Type": "Fail", "Error": "E", "Cause": "c"}), roleArn=ROLE_ARN
    )
    assert failed["status"] == "FAILED" and failed["error"] == "E"


def test_test_state_inspection_and_errors(sfn):
    state = {"Type": "Pass", "InputPath": "$.a", "Parameters": {"v.$": "$.b"}, "End": True}
    result = sfn.test_state(
        definition=json.dumps(state), roleArn=ROLE_ARN, input='{"a": {"b": 2}}', inspectionLevel="DEBUG"
    )
    assert json.loads(result["output"]) == {"v": 2}
    assert json.loads(result["inspectionData"]["afterInputPath"]) == {"b": 2}
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.test_state(definition=json.dumps({"Type": "Parallel", "Branches": []}), roleArn=ROLE_ARN)
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.test_state(definition="{not json", roleArn=ROLE_ARN)
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.test_state(definition=json.dumps(state), roleArn=ROLE_ARN, input="{bad")


def test_alias_and_version_errors(sfn, unique):
    arn = create_machine(sfn, f"alerr-{unique}", PASS, publish=True)
    version = arn + ":1"
    with pytest.raises(sfn.exceptions.ValidationException):
        sfn.create_state_machine_alias(
            name="half", routingConfiguration=[{"stateMachineVersionArn": version, "weight": 50}]
        )
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.create_state_machine_alias(
            name="gone", routingConfiguration=[{"stateMachineVersionArn": arn + ":9", "weight": 100}]
        )
    with pytest.raises(sfn.exceptions.ValidationException):  # the model's name pattern
        sfn.create_state_machine_alias(
            name="bad name", routingConfiguration=[{"stateMachineVersionArn": version, "weight": 100}]
        )
    with pytest.raises(sfn.exceptions.ResourceNotFound):
        sfn.describe_state_machine_alias(stateMachineAliasArn=arn + ":nope")
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn=arn + ":7")
    described = sfn.describe_state_machine(stateMachineArn=version)
    assert described["stateMachineArn"] == version and json.loads(described["definition"]) == json.loads(
        definition(PASS)
    )


def test_activity_tags_and_conflicting_recreate(sfn, unique):
    arn = sfn.create_activity(name=f"tagged-{unique}", tags=[{"key": "pool", "value": "build"}])[
        "activityArn"
    ]
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "pool", "value": "build"}]
    with pytest.raises(sfn.exceptions.ActivityAlreadyExists):
        sfn.create_activity(name=f"tagged-{unique}", tags=[{"key": "pool", "value": "deploy"}])
    sfn.delete_activity(activityArn=arn)


def test_versions_and_aliases_list_page_by_page(sfn, unique):
    arn = create_machine(
        sfn, f"pages-{unique}", {"A": {"Type": "Pass", "Result": 0, "End": True}}, publish=True
    )
    for n in (1, 2):
        states = {"A": {"Type": "Pass", "Result": n, "End": True}}
        sfn.update_state_machine(stateMachineArn=arn, definition=definition(states), publish=True)
    for name in ("a1", "a2", "a3"):
        sfn.create_state_machine_alias(
            name=name, routingConfiguration=[{"stateMachineVersionArn": arn + ":1", "weight": 100}]
        )
    first = sfn.list_state_machine_versions(stateMachineArn=arn, maxResults=2)
    rest = sfn.list_state_machine_versions(stateMachineArn=arn, maxResults=2, nextToken=first["nextToken"])
    assert [v["stateMachineVersionArn"] for v in first["stateMachineVersions"] + rest["stateMachineVersions"]] == [
        arn + ":3", arn + ":2", arn + ":1",
    ]  # fmt: skip
    assert "nextToken" not in rest
    first = sfn.list_state_machine_aliases(stateMachineArn=arn, maxResults=2)
    rest = sfn.list_state_machine_aliases(stateMachineArn=arn, maxResults=2, nextToken=first["nextToken"])
    names = [a["stateMachineAliasArn"] for a in first["stateMachineAliases"] + rest["stateMachineAliases"]]
    assert sorted(names) == [arn + ":a1", arn + ":a2", arn + ":a3"] and len(rest["stateMachineAliases"]) == 1
