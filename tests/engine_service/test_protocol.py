"""The AWS JSON 1.0 wire format, checked with raw HTTP: errors are AWS-shaped, never a 500."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from statemachines.engine.protocol import service_model

from .conftest import create_machine


def call(engine, target: str | None, body: bytes | str) -> tuple[int, dict]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(engine.endpoint + "/", data=data, method="POST")
    request.add_header("Content-Type", "application/x-amz-json-1.0")
    if target is not None:
        request.add_header("X-Amz-Target", target)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        (None, "{}", "UnknownOperationException"),
        ("AWSStepFunctions.NoSuchAction", "{}", "UnknownOperationException"),
        ("AWSStepFunctions.ListStateMachines", "[1, 2]", "SerializationException"),
        ("AWSStepFunctions.ListStateMachines", "{bad json", "SerializationException"),
        ("AWSStepFunctions.CreateStateMachine", "{}", "ValidationException"),
        (
            "AWSStepFunctions.CreateStateMachine",
            '{"name": 5, "definition": "{}", "roleArn": "r"}',
            "ValidationException",
        ),
        (
            "AWSStepFunctions.ListExecutions",
            '{"stateMachineArn": "x", "statusFilter": "NOPE"}',
            "ValidationException",
        ),
        ("AWSStepFunctions.ListStateMachines", '{"maxResults": 5000}', "ValidationException"),
        (
            "AWSStepFunctions.CreateStateMachine",
            json.dumps({"name": "n" * 81, "definition": "{}", "roleArn": "r"}),
            "ValidationException",
        ),
        (
            "AWSStepFunctions.DescribeExecution",
            '{"executionArn": "arn:aws:states:us-east-1:123456789012:execution:a:b"}',
            "ExecutionDoesNotExist",
        ),
        ("AWSStepFunctions.SendTaskSuccess", '{"taskToken": "x", "output": "{}"}', "InvalidToken"),
        (
            "AWSStepFunctions.DescribeMapRun",
            '{"mapRunArn": "arn:aws:states:us-east-1:123456789012:mapRun:a/b:c"}',
            "UnsupportedOperation",
        ),
    ],
)
def test_errors_are_aws_shaped(engine, target, body, code):
    status, answer = call(engine, target, body)
    assert status == 400
    assert answer["__type"] == code and isinstance(answer["message"], str)


def test_validation_message_names_the_member(engine):
    _, answer = call(engine, "AWSStepFunctions.CreateStateMachine", '{"definition": "{}", "roleArn": "r"}')
    assert answer["message"].startswith("1 validation error detected: Value 'null' at 'name'")


def test_every_model_operation_answers_without_a_server_error(engine):
    for name in service_model().operation_names:
        status, answer = call(engine, f"AWSStepFunctions.{name}", "{}")
        assert status < 500, (name, answer)


def test_timestamps_are_epoch_seconds(engine, sfn, unique):
    create_machine(sfn, f"wire-{unique}", {"A": {"Type": "Pass", "End": True}})
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:wire-{unique}"
    status, answer = call(
        engine, "AWSStepFunctions.DescribeStateMachine", json.dumps({"stateMachineArn": arn})
    )
    assert status == 200 and isinstance(answer["creationDate"], float)


def test_health_probe(engine):
    with urllib.request.urlopen(engine.endpoint + "/", timeout=5) as response:
        assert response.status == 200
