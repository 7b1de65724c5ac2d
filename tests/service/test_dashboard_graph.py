"""The run graph model: every ASL state type as nodes and edges, and per-state status from execution history.

Histories come from the real engine (a state machine with every state type, run once per test) and, for
the states an engine run cannot easily stop in, from small hand-written AWS-shaped histories.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config

from service.dashboard.choice_labels import rule_label
from service.dashboard.execution_reader import CACHE_PREFIX, ExecutionReader
from service.dashboard.run_graph import END, START, build_graph

ROLE = "arn:aws:iam::123456789012:role/stepline"


def every_state_type(activity: str) -> dict[str, Any]:
    """Pass, Wait, Choice, Parallel (with a Map inside), Task with Retry and Catch, Succeed and Fail."""
    lint = {
        "Type": "Task",
        "Resource": activity,
        "Parameters": {"step": "lint"},
        "Retry": [{"ErrorEquals": ["Stepline.StepFailed"], "MaxAttempts": 2, "IntervalSeconds": 1}],
        "End": True,
    }
    each = {
        "Type": "Map",
        "ItemsPath": "$.data.items",
        "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}},
        "End": True,
    }
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"items": [1, 2]}, "ResultPath": "$.data", "Next": "Pause"},
            "Pause": {"Type": "Wait", "Seconds": 0, "Next": "Route"},
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.branch", "StringEquals": "main", "Next": "Checks"}],
                "Default": "NotMain",
            },
            "NotMain": {"Type": "Pass", "Next": "Skipped"},
            "Skipped": {"Type": "Succeed"},
            "Checks": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Lint", "States": {"Lint": lint}},
                    {"StartAt": "Each", "States": {"Each": each}},
                ],
                "Next": "Test",
            },
            "Test": {
                "Type": "Task",
                "Resource": activity,
                "Parameters": {"step": "test"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Cleanup"}],
                "Next": "Done",
            },
            "Cleanup": {"Type": "Pass", "Next": "Broken"},
            "Broken": {"Type": "Fail", "Error": "Tests.Failed", "Cause": "tests failed"},
            "Done": {"Type": "Succeed"},
        },
    }


@pytest.fixture
def sfn(sfn_engine):
    return boto3.client(
        "stepfunctions",
        endpoint_url=sfn_engine,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(inject_host_prefix=False, read_timeout=70),
    )


def next_task(sfn, activity: str) -> dict[str, Any]:
    for _ in range(30):
        task = sfn.get_activity_task(activityArn=activity, workerName="test")
        if task.get("taskToken"):
            return task
    raise AssertionError("no activity task arrived")


def wait_finished(sfn, execution: str) -> None:
    deadline = time.monotonic() + 10
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.05)


def history(sfn, execution: str) -> list[dict[str, Any]]:
    events = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution):
        events += [{**e, "timestamp": e["timestamp"].timestamp()} for e in page["events"]]
    return events


@pytest.mark.slow
def test_real_execution_of_every_state_type_gets_each_status(sfn):
    activity = sfn.create_activity(name="stepline-build")["activityArn"]
    definition = every_state_type(activity)
    machine = sfn.create_state_machine(name="all-types", definition=json.dumps(definition), roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"branch": "main"}')
    lint = next_task(sfn, activity)
    sfn.send_task_failure(taskToken=lint["taskToken"], error="Stepline.StepFailed", cause="exit 1")
    running = build_graph(definition, history(sfn, execution["executionArn"]))
    # between attempts (its retry interval), then waiting for a worker to take the retry
    assert _statuses(running)["Checks/0/Lint"] in {"running", "waiting"}
    assert running["status"] == "RUNNING"
    sfn.send_task_success(taskToken=next_task(sfn, activity)["taskToken"], output="{}")
    test = next_task(sfn, activity)
    sfn.send_task_failure(taskToken=test["taskToken"], error="Stepline.StepFailed", cause="tests broke")
    wait_finished(sfn, execution["executionArn"])

    graph = build_graph(definition, history(sfn, execution["executionArn"]))

    assert _statuses(graph) == {
        START: "succeeded",
        END: "failed",
        "Prepare": "succeeded",
        "Pause": "succeeded",
        "Route": "succeeded",
        "NotMain": "skipped",  # the Choice took the other branch
        "Skipped": "skipped",
        "Checks": "succeeded",
        "Checks/0/Lint": "retried",
        "Checks/1/Each": "succeeded",
        "Checks/1/Each/Item": "succeeded",
        "Test": "caught",
        "Cleanup": "succeeded",
        "Broken": "failed",
        "Done": "not_reached",
    }
    assert (graph["status"], graph["error"], graph["cause"]) == ("FAILED", "Tests.Failed", "tests failed")
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert nodes["Checks/0/Lint"]["visits"][0]["retries"] == 1
    assert nodes["Checks/0/Lint"]["visits"][0]["failures"][0]["error"] == "Stepline.StepFailed"
    assert nodes["Test"]["visits"][0]["failures"][0]["cause"] == "tests broke"
    assert json.loads(nodes["Prepare"]["visits"][0]["output"])["data"] == {"items": [1, 2]}
    assert len(nodes["Checks/1/Each/Item"]["visits"]) == 2  # one per Map item


def test_a_step_no_worker_has_taken_is_waiting_and_says_whether_any_worker_serves_its_pool(sfn):
    build = sfn.create_activity(name="stepline-build")["activityArn"]
    approval = sfn.create_activity(name="stepline-approval")["activityArn"]
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {
                        "StartAt": "Build",
                        "States": {"Build": {"Type": "Task", "Resource": build, "End": True}},
                    },
                    {
                        "StartAt": "Ask",
                        "States": {"Ask": {"Type": "Task", "Resource": approval, "End": True}},
                    },
                ],
            }
        },
    }
    machine = sfn.create_state_machine(name="waits", definition=json.dumps(definition), roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
    deadline = time.monotonic() + 30
    while len([e for e in history(sfn, execution) if e["type"] == "ActivityScheduled"]) < 2:
        assert time.monotonic() < deadline, "the tasks were not scheduled"
        time.sleep(0.05)
    events = history(sfn, execution)

    served = build_graph(definition, events, lambda name: True)
    nodes = {node["id"]: node for node in served["nodes"]}
    assert (nodes["Both/0/Build"]["status"], nodes["Both/0/Build"]["detail"]) == (
        "waiting",
        "waiting for a worker (pool build)",
    )
    assert (nodes["Both/1/Ask"]["status"], nodes["Both/1/Ask"]["detail"]) == (
        "waiting",
        "waiting for approval",
    )

    unserved = build_graph(definition, events, lambda name: name != "stepline-build")
    nodes = {node["id"]: node for node in unserved["nodes"]}
    assert (nodes["Both/0/Build"]["status"], nodes["Both/0/Build"]["detail"]) == (
        "no_worker",
        "no worker serves pool build",
    )

    task = next_task(sfn, build)  # a worker takes it: running, no longer waiting
    nodes = {
        node["id"]: node
        for node in build_graph(definition, history(sfn, execution), lambda n: False)["nodes"]
    }
    assert nodes["Both/0/Build"]["status"] == "running"
    sfn.send_task_success(taskToken=task["taskToken"], output="{}")


def test_nodes_and_edges_show_groups_choice_rules_and_catchers():
    graph = build_graph(every_state_type("arn:activity"), [])
    nodes = {node["id"]: node for node in graph["nodes"]}
    assert nodes["Checks"]["group"] and nodes["Checks/1/Each"]["group"]
    assert nodes["Checks/0/Lint"]["parent"] == "Checks"
    assert nodes["Checks/1/Each/Item"]["parent"] == "Checks/1/Each"
    assert nodes["Checks/0/Lint"]["step"] == "lint"
    assert nodes["Pause"]["detail"] == "Seconds: 0"
    assert {n["type"] for n in graph["nodes"]} >= {
        "Pass",
        "Wait",
        "Choice",
        "Parallel",
        "Map",
        "Task",
        "Succeed",
        "Fail",
    }
    edges = {(e["source"], e["target"]): (e["kind"], e["label"]) for e in graph["edges"]}
    assert edges[("Route", "Checks")] == ("choice", '$.branch == "main"')
    assert edges[("Route", "NotMain")] == ("default", "Default")
    assert edges[("Test", "Cleanup")] == ("catch", "Catch: States.ALL")
    assert edges[("Checks", "Checks/0/Lint")] == ("group_start", "")
    assert edges[("Checks/1/Each/Item", "Checks/1/Each")] == ("group_end", "")
    assert edges[(START, "Prepare")][0] == "start" and edges[("Broken", END)][0] == "end"
    assert all(node["status"] == "not_reached" for node in graph["nodes"])
    assert graph["status"] == "RUNNING"


def _event(event_id: int, previous: int, kind: str, **details: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": event_id,
        "previousEventId": previous,
        "timestamp": 1000.0 + event_id,
        "type": kind,
    }
    if details:
        key = "stateEnteredEventDetails" if kind.endswith("StateEntered") else (
            "stateExitedEventDetails" if kind.endswith("StateExited") else kind[0].lower() + kind[1:] + "EventDetails"
        )  # fmt: skip
        event[key] = details
    return event


ONE_TASK = {"StartAt": "Build", "States": {"Build": {"Type": "Task", "Resource": "arn:a", "Next": "Ship"}, "Ship": {"Type": "Pass", "End": True}}}  # fmt: skip


def test_uncaught_failure_fails_the_state_and_leaves_the_rest_not_reached():
    events = [
        _event(1, 0, "ExecutionStarted", input="{}"),
        _event(2, 1, "TaskStateEntered", name="Build", input="{}"),
        _event(3, 2, "ActivityScheduled", resource="arn:a"),
        _event(4, 3, "ActivityStarted", workerName="w"),
        _event(5, 4, "ActivityFailed", error="Stepline.StepFailed", cause="make: *** [test] Error 2"),
        _event(6, 5, "ExecutionFailed", error="Stepline.StepFailed", cause="make: *** [test] Error 2"),
    ]
    graph = build_graph(ONE_TASK, events)
    assert _statuses(graph) == {START: "succeeded", END: "failed", "Build": "failed", "Ship": "not_reached"}
    build = next(n for n in graph["nodes"] if n["id"] == "Build")
    assert build["visits"][0]["failures"][0]["cause"] == "make: *** [test] Error 2"


def test_stopped_execution_marks_the_running_state_aborted():
    events = [
        _event(1, 0, "ExecutionStarted", input="{}"),
        _event(2, 1, "TaskStateEntered", name="Build", input="{}"),
        _event(3, 2, "ActivityScheduled", resource="arn:a"),
        _event(4, 3, "ExecutionAborted", error="Stepline.Cancelled", cause="cancelled by ada"),
    ]
    graph = build_graph(ONE_TASK, events)
    assert _statuses(graph)["Build"] == "aborted"
    assert _statuses(graph)[END] == "aborted"


def test_redriven_execution_runs_the_failed_state_again():
    events = [
        _event(1, 0, "ExecutionStarted", input="{}"),
        _event(2, 1, "TaskStateEntered", name="Build", input="{}"),
        _event(3, 2, "ActivityFailed", error="Stepline.StepFailed"),
        _event(4, 3, "ExecutionFailed", error="Stepline.StepFailed"),
        _event(5, 4, "ExecutionRedriven", redriveCount=1),
        _event(6, 5, "TaskStateEntered", name="Build", input="{}"),
        _event(7, 6, "ActivityScheduled", resource="arn:a"),
    ]
    waiting = build_graph(ONE_TASK, events)
    assert _statuses(waiting)["Build"] == "waiting" and waiting["status"] == "RUNNING"  # for a worker
    events.append(_event(8, 7, "ActivityStarted", workerName="host/1/build"))
    assert _statuses(build_graph(ONE_TASK, events))["Build"] == "running"
    events += [
        _event(9, 8, "ActivitySucceeded", output="{}"),
        _event(10, 9, "TaskStateExited", name="Build", output="{}"),
        _event(11, 10, "PassStateEntered", name="Ship", input="{}"),
        _event(12, 11, "PassStateExited", name="Ship", output="{}"),
        _event(13, 12, "ExecutionSucceeded", output="{}"),
    ]
    done = build_graph(ONE_TASK, events)
    assert _statuses(done) == {START: "succeeded", END: "succeeded", "Build": "retried", "Ship": "succeeded"}


def test_choice_rule_labels():
    assert rule_label({"Variable": "$.n", "NumericGreaterThanEquals": 3, "Next": "X"}) == "$.n >= 3"
    assert rule_label({"Variable": "$.a", "StringEqualsPath": "$.b"}) == "$.a == $.b"
    assert rule_label({"Not": {"Variable": "$.pr", "IsNull": True}}) == "not ($.pr is null)"
    both = {
        "And": [{"Variable": "$.x", "BooleanEquals": True}, {"Variable": "$.t", "TimestampLessThan": "2026"}]
    }
    assert rule_label(both) == '($.x == true) and ($.t < "2026")'
    assert rule_label({"Condition": "{% $states.input.branch = 'main' %}"}) == "$states.input.branch = 'main'"
    assert rule_label({"Variable": "$.s", "StringMatches": "release/*"}) == '$.s matches "release/*"'
    assert len(rule_label({"Variable": "$.s", "StringEquals": "x" * 500})) == 80


def _statuses(graph: dict[str, Any]) -> dict[str, str]:
    return {node["id"]: node["status"] for node in graph["nodes"]}


@pytest.mark.slow
def test_failed_parallel_branch_fails_the_group_and_aborts_its_sibling(sfn, redis_client):
    activity = sfn.create_activity(name="stepline-build")["activityArn"]
    task = {"Type": "Task", "Resource": activity, "End": True}
    definition = {
        "StartAt": "Checks",
        "States": {
            "Checks": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Unit", "States": {"Unit": {**task, "Parameters": {"step": "unit"}}}},
                    {"StartAt": "Slow", "States": {"Slow": {**task, "Parameters": {"step": "slow"}}}},
                ],
                "Next": "Ship",
            },
            "Ship": {"Type": "Pass", "End": True},
        },
    }
    machine = sfn.create_state_machine(name="fan-out", definition=json.dumps(definition), roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    first, second = next_task(sfn, activity), next_task(sfn, activity)
    failing = first if json.loads(first["input"])["step"] == "unit" else second
    sfn.send_task_failure(
        taskToken=failing["taskToken"], error="Stepline.StepFailed", cause="unit tests failed"
    )
    wait_finished(sfn, execution["executionArn"])
    graph = build_graph(definition, history(sfn, execution["executionArn"]))
    statuses = _statuses(graph)
    assert (statuses["Checks"], statuses["Checks/0/Unit"], statuses["Ship"]) == (
        "failed",
        "failed",
        "not_reached",
    )
    assert statuses["Checks/1/Slow"] == "aborted" and graph["status"] == "FAILED"  # cancelled, not failed

    # a finished execution's history is read once, then served from Redis
    reader = ExecutionReader(sfn, redis_client)
    run = {"run_id": "r1", "execution_arn": execution["executionArn"], "status": "FAILED"}
    events, cut = reader.history(run)
    assert redis_client.exists(CACHE_PREFIX + execution["executionArn"]) and not cut
    assert reader.history(run) == (events, False) and events[-1]["type"] == "ExecutionFailed"
    assert "Checks" in json.dumps(reader.definition(run))


def test_many_map_iterations_and_huge_payloads_are_bounded():
    definition = {"StartAt": "Each", "States": {"Each": {"Type": "Map", "End": True, "ItemProcessor": {
        "StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}}}}}  # fmt: skip
    events = [
        _event(1, 0, "ExecutionStarted", input="{}"),
        _event(2, 1, "MapStateEntered", name="Each", input="{}"),
    ]
    for _ in range(1000):
        entered = len(events) + 1
        events.append(_event(entered, 2, "PassStateEntered", name="Item", input='"' + "x" * 100_000 + '"'))
        events.append(_event(entered + 1, entered, "PassStateExited", name="Item", output="{}"))
    graph = build_graph(definition, events)
    item = next(node for node in graph["nodes"] if node["id"] == "Each/Item")
    assert item["visit_count"] == 1000 and len(item["visits"]) == 10 and item["status"] == "succeeded"
    assert len(item["visits"][0]["input"]) < 17_000 and item["visits"][0]["input"].endswith("more characters")
    assert len(json.dumps(graph)) < 500_000
