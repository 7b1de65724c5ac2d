"""TestState through boto3 against the engine over HTTP: stateName, inspection levels, mocks, context.

Rules from the API reference (TestState, MockInput, InspectionData, TestStateConfiguration) and the
developer guide page "Testing state machines with TestState API" (test-state-isolation.html).
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from .conftest import ROLE_ARN, ROOT

LAMBDA = "arn:aws:states:::lambda:invoke"
# sfn:describeExecution's required output members, as the aws-sdk integration names them
EXECUTION = {
    "ExecutionArn": "e",
    "StateMachineArn": "m",
    "Status": "RUNNING",
    "StartDate": "2026-01-01T00:00:00Z",
}
PIPELINE = {
    "StartAt": "Checkout",
    "States": {
        "Checkout": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sfn:describeExecution",
            "Parameters": {"ExecutionArn.$": "$$.Execution.Id"},
            "ResultSelector": {"status.$": "$.Status"},
            "ResultPath": "$.checkout",
            "Retry": [{"ErrorEquals": ["Flaky"], "MaxAttempts": 2, "IntervalSeconds": 5}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Report"}],
            "Next": "Shards",
        },
        "Shards": {
            "Type": "Map",
            "ItemsPath": "$.shards",
            "ItemSelector": {"shard.$": "$$.Map.Item.Value", "commit.$": "$.commit"},
            "MaxConcurrency": 4,
            "ItemProcessor": {
                "StartAt": "Test",
                "States": {"Test": {"Type": "Task", "Resource": LAMBDA, "End": True}},
            },
            "ResultPath": "$.tests",
            "Next": "Publish",
        },
        "Publish": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Image", "States": {"Image": {"Type": "Task", "Resource": LAMBDA, "End": True}}},
                {"StartAt": "Docs", "States": {"Docs": {"Type": "Pass", "Result": "docs", "End": True}}},
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Report"}],
            "ResultPath": "$.published",
            "Next": "Report",
        },
        "Report": {"Type": "Succeed"},
    },
}


def run(sfn, state_name: str, value: object, **kwargs: object) -> dict:
    return sfn.test_state(  # type: ignore[no-any-return]
        definition=json.dumps(PIPELINE), stateName=state_name, input=json.dumps(value), **kwargs
    )


def test_map_named_by_state_name_with_a_mocked_result(sfn):
    resp = run(
        sfn,
        "Shards",
        {"commit": "abc", "shards": [1, 2]},
        inspectionLevel="DEBUG",
        mock={"result": '["ok", "ok"]'},
    )
    assert (resp["status"], resp["nextState"]) == ("SUCCEEDED", "Publish")
    assert json.loads(resp["output"])["tests"] == ["ok", "ok"]
    data = resp["inspectionData"]
    assert json.loads(data["afterItemsPath"]) == [1, 2]
    assert json.loads(data["afterItemSelector"]) == [
        {"shard": 1, "commit": "abc"},
        {"shard": 2, "commit": "abc"},
    ]
    assert data["maxConcurrency"] == 4


def test_parallel_named_by_state_name_and_its_mocked_error_caught(sfn):
    ok = run(sfn, "Publish", {}, mock={"result": '[{"image": "sha"}, "docs"]'})
    assert json.loads(ok["output"]) == {"published": [{"image": "sha"}, "docs"]}
    failed = run(
        sfn,
        "Publish",
        {"v": 1},
        inspectionLevel="DEBUG",
        mock={"errorOutput": {"error": "PushDenied", "cause": "registry said no"}},
        stateConfiguration={"errorCausedByState": "Image"},
    )
    assert (failed["status"], failed["nextState"], failed["error"]) == (
        "CAUGHT_ERROR",
        "Report",
        "PushDenied",
    )
    assert json.loads(failed["output"])["error"] == {"Error": "PushDenied", "Cause": "registry said no"}
    assert failed["inspectionData"]["errorDetails"] == {"catchIndex": 0}


def test_without_a_mock_map_and_parallel_are_refused(sfn):
    with pytest.raises(sfn.exceptions.InvalidDefinition, match="does not support Map or Parallel"):
        run(sfn, "Shards", {"shards": []})


@pytest.mark.parametrize("level", ["INFO", "DEBUG", "TRACE"])
def test_each_inspection_level(sfn, level):
    mock = {"result": json.dumps(EXECUTION)}
    resp = run(sfn, "Checkout", {"k": 1}, inspectionLevel=level, mock=mock)
    assert json.loads(resp["output"]) == {"k": 1, "checkout": {"status": "RUNNING"}}
    if level == "INFO":
        assert "inspectionData" not in resp
        return
    data = resp["inspectionData"]
    assert json.loads(data["input"]) == {"k": 1}
    assert json.loads(data["afterParameters"])["ExecutionArn"].endswith(":TestExecution")
    assert json.loads(data["result"]) == EXECUTION
    assert json.loads(data["afterResultSelector"]) == {"status": "RUNNING"}
    assert json.loads(data["afterResultPath"]) == {"k": 1, "checkout": {"status": "RUNNING"}}


def test_a_mocked_error_retried_then_caught(sfn):
    flaky = {"errorOutput": {"error": "Flaky", "cause": "network"}}
    retry = run(sfn, "Checkout", {}, inspectionLevel="DEBUG", mock=flaky)
    assert (retry["status"], retry["error"]) == ("RETRIABLE", "Flaky")
    assert retry["inspectionData"]["errorDetails"] == {"retryIndex": 0, "retryBackoffIntervalSeconds": 5}
    spent = run(sfn, "Checkout", {}, mock=flaky, stateConfiguration={"retrierRetryCount": 2})
    assert (spent["status"], spent["nextState"]) == ("CAUGHT_ERROR", "Report")


def test_the_mocked_result_is_checked_against_the_sdk_output_shape(sfn):
    partial = {key: value for key, value in EXECUTION.items() if key != "StartDate"}
    with pytest.raises(ClientError, match="Required field 'StartDate' is missing"):
        run(sfn, "Checkout", {}, mock={"result": json.dumps(partial)})
    with pytest.raises(ClientError, match="Field 'Status' is not an expected value"):
        run(sfn, "Checkout", {}, mock={"result": '{"Status": "SOMETIMES"}', "fieldValidationMode": "PRESENT"})
    loose = run(sfn, "Checkout", {}, mock={"result": '{"Status": 1}', "fieldValidationMode": "NONE"})
    assert loose["status"] == "SUCCEEDED"


def test_context_is_given_to_the_state(sfn):
    state = {"Type": "Task", "Resource": LAMBDA, "Parameters": {"shard.$": "$$.Map.Item.Value"}, "End": True}
    resp = sfn.test_state(
        definition=json.dumps(state),
        input="{}",
        inspectionLevel="DEBUG",
        mock={"result": "{}"},
        context=json.dumps({"Map": {"Item": {"Index": 0, "Value": "linux"}}}),
    )
    assert json.loads(resp["inspectionData"]["afterParameters"]) == {"shard": "linux"}
    with pytest.raises(sfn.exceptions.ValidationException):  # a context needs a mock
        sfn.test_state(definition=json.dumps(state), roleArn=ROLE_ARN, context="{}")


def test_requests_aws_refuses(sfn):
    with pytest.raises(sfn.exceptions.ValidationException, match="State not found in definition"):
        run(sfn, "Nowhere", {})
    with pytest.raises(sfn.exceptions.ValidationException, match="State type 'Pass' is not supported"):
        run(sfn, "Docs", {}, mock={"result": "1"})
    with pytest.raises(sfn.exceptions.ValidationException, match="RoleArn must be specified"):
        run(sfn, "Test", {})
    with pytest.raises(sfn.exceptions.ValidationException, match="RevealSecrets"):
        run(sfn, "Test", {}, mock={"result": "1"}, revealSecrets=True)
    with pytest.raises(sfn.exceptions.ValidationException, match="must be an array"):
        run(sfn, "Shards", {"shards": []}, mock={"result": "{}"})
    broken = {**PIPELINE, "States": {**PIPELINE["States"], "Report": {"Type": "Succeed", "Next": "X"}}}
    with pytest.raises(sfn.exceptions.InvalidDefinition):
        sfn.test_state(definition=json.dumps(broken), stateName="Report")


def test_the_pipeline_authors_recipe_runs_as_written(engine, tmp_path, monkeypatch):
    """statemachines/PIPELINES.md, "Testing one step": its code, on the shipped parallel example."""
    text = (ROOT / "statemachines" / "PIPELINES.md").read_text()
    section = text[text.index("## Testing one step") :]
    code = section[section.index("```python\n") + len("```python\n") : section.index("\n```\n")]
    assert 'endpoint_url="http://127.0.0.1:8083"' in code and "aws_access_key_id=" in code
    pipeline = tmp_path / ".stepline" / "pipeline.asl.json"
    pipeline.parent.mkdir()
    pipeline.write_text((ROOT / "statemachines" / "pipelines" / "parallel.asl.json").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent"))  # as on a machine with no AWS set-up
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent"))
    exec(compile(code.replace("http://127.0.0.1:8083", engine.endpoint), "PIPELINES.md", "exec"), {})  # noqa: S102
