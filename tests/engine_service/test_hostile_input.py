"""Hostile JSON and YAML at the engine's API: deep nesting and AWS's numeric limits get AWS's own 4xx errors,
never a RecursionError, a 500 or a traceback in the engine's log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.engine_service.conftest import ROLE_ARN, EngineProcess, create_machine, make_client, wait_done

DEEP = 200_000  # 400 KB of brackets: under every size limit
DEEP_ARRAYS = "[" * DEEP + "]" * DEEP
DEEP_INPUT = "[" * 100_000 + "]" * 100_000  # 200 KB: under the 256 KiB of an input or output


@pytest.fixture()
def quiet_log(engine: EngineProcess) -> Iterator[None]:
    """The test may not add a traceback to the engine's log."""
    before = engine.log_path.stat().st_size
    yield
    with engine.log_path.open("rb") as log:
        log.seek(before)
        added = log.read().decode(errors="replace")
    assert "Traceback" not in added and "RecursionError" not in added, added[-3000:]


def code_of(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def raw_call(endpoint: str, action: str, body: bytes) -> requests.Response:
    headers = {"X-Amz-Target": f"AWSStepFunctions.{action}", "Content-Type": "application/x-amz-json-1.0"}
    return requests.post(endpoint + "/", data=body, headers=headers, timeout=30)


@pytest.mark.usefixtures("quiet_log")
def test_a_deeply_nested_request_body_is_a_serialization_exception(engine: EngineProcess) -> None:
    answer = raw_call(engine.endpoint, "ListStateMachines", b'{"x": ' + DEEP_ARRAYS.encode() + b"}")
    assert answer.status_code == 400 and answer.json()["__type"].endswith("SerializationException")


@pytest.mark.usefixtures("quiet_log")
@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"Comment": "x", "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})[:-1]
        + ', "Extra": '
        + DEEP_ARRAYS
        + "}",
        "StartAt: P\nStates:\n  P: {Type: Pass, End: true}\nComment: " + "[" * 50_000 + "]" * 50_000,
        "StartAt: P\nStates:\n  P: {Type: Pass, End: true, Result: {a: &a [1, 2], b: [*a, *a]}}\n",
    ],
    ids=["json-200000-levels", "yaml-50000-levels", "yaml-aliases"],
)
def test_a_definition_nested_too_deeply_is_invalid(engine: EngineProcess, unique: str, text: str) -> None:
    sfn = make_client(engine.endpoint)
    code, message = code_of(
        lambda: sfn.create_state_machine(name=f"deep-{unique}", definition=text, roleArn=ROLE_ARN)
    )
    assert code == "InvalidDefinition", message
    checked = sfn.validate_state_machine_definition(definition=text)
    assert checked["result"] == "FAIL"


@pytest.mark.usefixtures("quiet_log")
def test_deep_inputs_outputs_and_test_state_parameters_are_refused_as_aws_refuses_them(
    engine: EngineProcess, unique: str
) -> None:
    sfn = make_client(engine.endpoint)
    activity = sfn.create_activity(name=f"act-{unique}")["activityArn"]
    arn = create_machine(sfn, f"m-{unique}", {"T": {"Type": "Task", "Resource": activity, "End": True}})
    code, message = code_of(lambda: sfn.start_execution(stateMachineArn=arn, input=DEEP_INPUT))
    assert code == "InvalidExecutionInput" and "nested more than 100 levels" in message
    execution = sfn.start_execution(stateMachineArn=arn, input="[" * 100 + "]" * 100)  # the limit itself
    task = sfn.get_activity_task(activityArn=activity, workerName="w")
    output = "[" * 101 + "]" * 101
    assert (
        code_of(lambda: sfn.send_task_success(taskToken=task["taskToken"], output=output))[0]
        == "InvalidOutput"
    )
    sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    assert wait_done(sfn, execution["executionArn"])["status"] == "SUCCEEDED"
    state = json.dumps({"Type": "Pass", "End": True})
    for params in (
        {"definition": '{"Type": "Pass", "End": true, "Result": ' + DEEP_ARRAYS + "}"},
        {"definition": state, "input": DEEP_INPUT},
        {"definition": state, "variables": '{"v": ' + DEEP_ARRAYS + "}"},
    ):
        code, message = code_of(lambda params=params: sfn.test_state(roleArn=ROLE_ARN, **params))
        assert code in ("InvalidDefinition", "InvalidExecutionInput"), message


@pytest.mark.usefixtures("quiet_log")
def test_a_string_parsed_at_run_time_nested_too_deeply_fails_the_state(
    engine: EngineProcess, unique: str
) -> None:
    sfn = make_client(engine.endpoint)
    states = {
        "Intrinsic": {"Type": "Pass", "Parameters": {"v.$": "States.StringToJson($.text)"}, "Next": "Parsed"},
        "Parsed": {"Type": "Pass", "End": True},
    }
    arn = create_machine(sfn, f"parse-{unique}", states)
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"text": DEEP_INPUT}))
    done = wait_done(sfn, execution["executionArn"], timeout=30)
    assert done["status"] == "FAILED" and done["error"] == "States.Runtime"
    jsonata = {
        "P": {
            "Type": "Pass",
            "QueryLanguage": "JSONata",
            "Output": "{% $parse($states.input.text) %}",
            "End": True,
        }
    }
    execution = sfn.start_execution(
        stateMachineArn=create_machine(sfn, f"jparse-{unique}", jsonata),
        input=json.dumps({"text": DEEP_INPUT}),
    )
    done = wait_done(sfn, execution["executionArn"], timeout=30)
    assert done["status"] == "FAILED" and done["error"] == "States.QueryEvaluationError"


@pytest.mark.usefixtures("quiet_log")
def test_create_state_machine_applies_aws_numeric_limits(engine: EngineProcess, unique: str) -> None:
    sfn = make_client(engine.endpoint)
    retry = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 100000000000}]
    states = {
        "P": {
            "Type": "Parallel",
            "Branches": [{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": True}}}],
            "Retry": retry,
            "End": True,
        }
    }
    code, message = code_of(lambda: create_machine(sfn, f"limits-{unique}", states))
    assert code == "InvalidDefinition"
    assert "SCHEMA_VALIDATION_FAILED" in message and "at /States/P/Retry[0]/MaxAttempts" in message
    retry[0]["MaxAttempts"] = 99999999
    assert create_machine(sfn, f"limits-{unique}", states).endswith(f"limits-{unique}")
