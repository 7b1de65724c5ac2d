"""Activities and task tokens over the AWS API: long polls, results, heartbeats, timeouts, callbacks."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from .conftest import answer_all_at_once, create_machine, history, wait_done


@pytest.fixture()
def activity(sfn, unique):
    arn = sfn.create_activity(name=f"act-{unique}")["activityArn"]
    yield arn
    sfn.delete_activity(activityArn=arn)


def task_machine(sfn, name, activity, **task):
    state = {"Type": "Task", "Resource": activity, "End": True, **task}
    return create_machine(sfn, name, {"Work": state})


def test_activity_crud(sfn, unique):
    arn = sfn.create_activity(name=f"crud-{unique}")["activityArn"]
    assert arn == f"arn:aws:states:us-east-1:123456789012:activity:crud-{unique}"
    assert sfn.create_activity(name=f"crud-{unique}")["activityArn"] == arn  # idempotent
    assert sfn.describe_activity(activityArn=arn)["name"] == f"crud-{unique}"
    listed = [
        a["activityArn"] for p in sfn.get_paginator("list_activities").paginate() for a in p["activities"]
    ]
    assert arn in listed
    sfn.delete_activity(activityArn=arn)
    with pytest.raises(sfn.exceptions.ActivityDoesNotExist):
        sfn.describe_activity(activityArn=arn)
    with pytest.raises(sfn.exceptions.ActivityDoesNotExist):
        sfn.get_activity_task(activityArn=arn)
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.describe_activity(activityArn="arn:aws:states:us-east-1:123456789012:stateMachine:x")


def test_task_success_flows_through(sfn, unique, activity):
    arn = task_machine(sfn, f"ok-{unique}", activity, Parameters={"step": "build", "sha.$": "$.sha"})
    ex = sfn.start_execution(stateMachineArn=arn, input='{"sha": "abc"}')["executionArn"]
    task = sfn.get_activity_task(activityArn=activity, workerName="w1")
    assert json.loads(task["input"]) == {"step": "build", "sha": "abc"}
    assert len(task["taskToken"]) >= 40 and "arn" not in task["taskToken"]
    sfn.send_task_heartbeat(taskToken=task["taskToken"])
    sfn.send_task_success(taskToken=task["taskToken"], output='{"built": true}')
    desc = wait_done(sfn, ex)
    assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"]) == {"built": True}
    types = [e["type"] for e in history(sfn, ex)]
    assert types[2:6] == ["ActivityScheduled", "ActivityStarted", "ActivitySucceeded", "TaskStateExited"]
    started = next(e for e in history(sfn, ex) if e["type"] == "ActivityStarted")
    assert started["activityStartedEventDetails"]["workerName"] == "w1"
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=task["taskToken"], output="{}")


def test_task_failure_and_bad_tokens(sfn, unique, activity):
    arn = task_machine(sfn, f"fail-{unique}", activity)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    token = sfn.get_activity_task(activityArn=activity)["taskToken"]
    with pytest.raises(sfn.exceptions.InvalidOutput):
        sfn.send_task_success(taskToken=token, output="not json")
    sfn.send_task_failure(taskToken=token, error="BuildFailed", cause="exit 1")
    desc = wait_done(sfn, ex)
    assert desc["status"] == "FAILED" and desc["error"] == "BuildFailed" and desc["cause"] == "exit 1"
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.send_task_success(taskToken="garbage", output="{}")
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.send_task_heartbeat(taskToken="garbage")
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_heartbeat(taskToken=token)


def test_long_poll_returns_empty_token_after_the_poll_window(sfn, activity):
    started = time.monotonic()
    task = sfn.get_activity_task(activityArn=activity)
    assert not task.get("taskToken")
    # the test engine polls for 2 s (AWS: 60 s); the upper bound is a hang detector
    assert 1.5 < time.monotonic() - started < 30


def test_waiting_poller_gets_new_task_at_once(sfn, unique, activity):
    arn = task_machine(sfn, f"fast-{unique}", activity)
    got: dict[str, str] = {}

    def poll() -> None:
        task = sfn.get_activity_task(activityArn=activity)
        got["token"] = task["taskToken"]

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    poller.join(30)
    assert got["token"]  # the poll that was waiting got it, not a later one
    sfn.send_task_success(taskToken=got["token"], output="{}")
    assert wait_done(sfn, ex)["status"] == "SUCCEEDED"


def test_heartbeat_timeout_fails_the_task(sfn, unique, activity):
    arn = task_machine(sfn, f"hb-{unique}", activity, HeartbeatSeconds=1, TimeoutSeconds=30)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    token = sfn.get_activity_task(activityArn=activity)["taskToken"]
    for _ in range(3):  # heartbeats keep it alive past HeartbeatSeconds
        time.sleep(0.5)
        sfn.send_task_heartbeat(taskToken=token)
    assert sfn.describe_execution(executionArn=ex)["status"] == "RUNNING"
    desc = wait_done(sfn, ex, timeout=5)
    assert desc["status"] == "FAILED" and desc["error"] == "States.HeartbeatTimeout"
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=token, output="{}")


def test_task_timeout_while_queued(sfn, unique, activity):
    arn = task_machine(sfn, f"tmo-{unique}", activity, TimeoutSeconds=1)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    desc = wait_done(sfn, ex, timeout=5)
    assert desc["status"] == "FAILED" and desc["error"] == "States.Timeout"
    assert not sfn.get_activity_task(activityArn=activity).get("taskToken")  # the task left the queue


def test_stop_invalidates_open_tasks(sfn, unique, activity):
    arn = task_machine(sfn, f"stop-{unique}", activity)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    token = sfn.get_activity_task(activityArn=activity)["taskToken"]
    sfn.stop_execution(executionArn=ex)
    with pytest.raises(sfn.exceptions.TaskTimedOut):
        sfn.send_task_success(taskToken=token, output="{}")
    queued = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    sfn.stop_execution(executionArn=queued)
    assert not sfn.get_activity_task(activityArn=activity).get("taskToken")


def test_wait_for_task_token_callback(sfn, unique, activity):
    states = {
        "Ask": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": "https://example.invalid/q",
                "MessageBody": {"token.$": "$$.Task.Token"},
            },
            "End": True,
        }
    }
    arn = create_machine(sfn, f"cb-{unique}", states)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    scheduled = [e for e in history(sfn, ex) if e["type"] == "TaskScheduled"]
    token = json.loads(scheduled[0]["taskScheduledEventDetails"]["parameters"])["MessageBody"]["token"]
    sfn.send_task_success(taskToken=token, output='{"approved": true}')
    desc = wait_done(sfn, ex)
    assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"]) == {"approved": True}


def test_parallel_activity_branches(sfn, unique, activity):
    def branch(i: int) -> dict:
        task = {"Type": "Task", "Resource": activity, "Parameters": {"b": i}, "End": True}
        return {"StartAt": f"T{i}", "States": {f"T{i}": task}}

    arn = create_machine(
        sfn,
        f"par-{unique}",
        {"P": {"Type": "Parallel", "Branches": [branch(i) for i in range(4)], "End": True}},
    )
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    tasks = [sfn.get_activity_task(activityArn=activity) for _ in range(4)]
    for task in reversed(tasks):
        sfn.send_task_success(taskToken=task["taskToken"], output=task["input"])
    desc = wait_done(sfn, ex)
    assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"]) == [{"b": i} for i in range(4)]


def test_concurrent_answers_to_one_execution_commit_each_once(sfn, unique, activity):
    def branch(i: int) -> dict:
        task = {"Type": "Task", "Resource": activity, "Parameters": {"b": i}, "End": True}
        return {"StartAt": f"C{i}", "States": {f"C{i}": task}}

    states = {"P": {"Type": "Parallel", "Branches": [branch(i) for i in range(8)], "End": True}}
    arn = create_machine(sfn, f"conc-{unique}", states)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert answer_all_at_once([sfn.meta.endpoint_url], activity, 8) == []
    desc = wait_done(sfn, ex)
    assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"]) == [{"b": i} for i in range(8)]
    events = history(sfn, ex)
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert sum(e["type"] == "ActivitySucceeded" for e in events) == 8
    assert sum(e["type"] == "ActivityStarted" for e in events) == 8


def test_a_failing_branch_cancels_its_siblings(sfn, unique, activity):
    def branch(i: int) -> dict:
        task = {"Type": "Task", "Resource": activity, "Parameters": {"b": i}, "End": True}
        return {"StartAt": f"F{i}", "States": {f"F{i}": task}}

    states = {"P": {"Type": "Parallel", "Branches": [branch(i) for i in range(3)], "End": True}}
    arn = create_machine(sfn, f"sib-{unique}", states)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    tasks = [sfn.get_activity_task(activityArn=activity) for _ in range(3)]
    sfn.send_task_failure(taskToken=tasks[0]["taskToken"], error="Broken", cause="b0")
    for task in tasks[1:]:
        with pytest.raises(sfn.exceptions.TaskTimedOut):
            sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    desc = wait_done(sfn, ex)
    assert desc["status"] == "FAILED" and desc["error"] == "Broken"


def test_a_poller_that_went_away_does_not_swallow_the_task(sfn, engine, unique, activity):
    arn = task_machine(sfn, f"gone-{unique}", activity)
    orphan = http.client.HTTPConnection("127.0.0.1", engine.port, timeout=10)
    headers = {
        "X-Amz-Target": "AWSStepFunctions.GetActivityTask",
        "Content-Type": "application/x-amz-json-1.0",
    }
    orphan.request("POST", "/", json.dumps({"activityArn": activity}), headers)
    time.sleep(0.3)
    orphan.close()  # a worker stopped mid-poll: its poll is still parked on the queue
    got: list[str] = []
    poller = threading.Thread(
        target=lambda: got.append(sfn.get_activity_task(activityArn=activity).get("taskToken"))
    )
    poller.start()
    time.sleep(0.3)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    poller.join(5)
    assert got and got[0], "the task went to the closed connection"
    sfn.send_task_success(taskToken=got[0], output="{}")
    assert wait_done(sfn, ex)["status"] == "SUCCEEDED"
