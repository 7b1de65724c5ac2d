"""The AWS JSON 1.0 wire format, checked with raw HTTP: errors are AWS-shaped, never a 500."""

from __future__ import annotations

import http.client
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


def test_oversized_and_malformed_bodies_get_400(engine):
    for length in ("not-a-number", str(5 * 1024 * 1024)):  # refused from the headers alone
        connection = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=10)
        connection.putrequest("POST", "/")
        connection.putheader("X-Amz-Target", "AWSStepFunctions.ListStateMachines")
        connection.putheader("Content-Length", length)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 400 and b"SerializationException" in response.read()
        connection.close()


def sample(shape, garbage: str) -> object:
    """A value of `shape` that passes the model's checks but names nothing that exists."""
    kind = shape.type_name
    if kind == "structure":
        return {name: sample(shape.members[name], garbage) for name in shape.required_members}
    if kind == "list":
        return [sample(shape.member, garbage) for _ in range(shape.metadata.get("min", 0))]
    if kind == "map":
        return {}
    if kind in ("integer", "long", "float", "double"):
        return shape.metadata.get("min", 1)
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return 0
    if shape.enum:
        return shape.enum[0]
    return garbage.ljust(shape.metadata.get("min", 1), "x")[: shape.metadata.get("max", 2048)]


@pytest.mark.parametrize(
    "garbage",
    [
        "x",
        "arn:aws:states:us-east-1:123456789012:stateMachine:nope",
        "arn:aws:states:us-east-1:123456789012:execution:a:b",
        "{}",
    ],
)
def test_model_valid_nonsense_never_breaks_the_engine(engine, garbage):
    for name in service_model().operation_names:
        operation = service_model().operation_model(name)
        body = json.dumps(sample(operation.input_shape, garbage)) if operation.input_shape else "{}"
        status, answer = call(engine, f"AWSStepFunctions.{name}", body)
        assert status < 500, (name, body, answer)
