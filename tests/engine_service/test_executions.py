"""Executions over the AWS API: start rules, describe, list, history, stop, redrive, limits."""

from __future__ import annotations

import json

import pytest
import redis

from .conftest import create_machine, history, make_client, wait_done

PASS_CHAIN = {
    "A": {"Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.a", "Next": "B"},
    "B": {"Type": "Pass", "End": True},
}
WAIT_LONG = {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}


def test_start_and_describe(sfn, unique):
    arn = create_machine(sfn, f"ex-{unique}", PASS_CHAIN)
    started = sfn.start_execution(stateMachineArn=arn, name="run-1", input='{"x": 1}')
    assert started["executionArn"].endswith(f":execution:ex-{unique}:run-1")
    desc = wait_done(sfn, started["executionArn"])
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == {"x": 1, "a": {"n": 1}}
    assert desc["startDate"] <= desc["stopDate"]
    sm = sfn.describe_state_machine_for_execution(executionArn=started["executionArn"])
    assert sm["stateMachineArn"] == arn and json.loads(sm["definition"])["StartAt"] == "A"


def test_start_is_idempotent_while_open_with_same_input(sfn, unique):
    arn = create_machine(sfn, f"idem-{unique}", WAIT_LONG)
    first = sfn.start_execution(stateMachineArn=arn, name="same", input="{}")
    again = sfn.start_execution(stateMachineArn=arn, name="same", input="{}")
    assert again == {**first, "ResponseMetadata": again["ResponseMetadata"]}
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=arn, name="same", input='{"other": true}')
    sfn.stop_execution(executionArn=first["executionArn"])
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        sfn.start_execution(stateMachineArn=arn, name="same", input="{}")


def test_start_errors(sfn, unique):
    arn = create_machine(sfn, f"err-{unique}", PASS_CHAIN)
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=arn, input="{nope")
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=arn, input=json.dumps({"big": "x" * (256 * 1024)}))
    with pytest.raises(sfn.exceptions.InvalidName):
        sfn.start_execution(stateMachineArn=arn, name="bad name")
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.start_execution(stateMachineArn=arn + "-gone")
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.start_execution(stateMachineArn="arn:aws:states:us-east-1:123456789012:activity:x")
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.describe_execution(
            executionArn=f"arn:aws:states:us-east-1:123456789012:execution:err-{unique}:none"
        )
    with pytest.raises(sfn.exceptions.ExecutionDoesNotExist):
        sfn.get_execution_history(
            executionArn=f"arn:aws:states:us-east-1:123456789012:execution:err-{unique}:none"
        )
    with pytest.raises(sfn.exceptions.InvalidArn):
        sfn.describe_execution(executionArn="garbage")


def test_list_executions_filters_and_pages(sfn, unique):
    arn = create_machine(sfn, f"list-{unique}", WAIT_LONG)
    done = create_machine(sfn, f"list2-{unique}", PASS_CHAIN)
    running = [sfn.start_execution(stateMachineArn=arn, name=f"r{i}")["executionArn"] for i in range(5)]
    sfn.stop_execution(executionArn=running[0])
    pages = list(
        sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, PaginationConfig={"PageSize": 2})
    )
    assert [len(p["executions"]) for p in pages] == [2, 2, 1]
    listed = [e["executionArn"] for p in pages for e in p["executions"]]
    assert listed == list(reversed(running))  # newest first
    only_running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
    assert {e["executionArn"] for e in only_running} == set(running[1:])
    aborted = sfn.list_executions(stateMachineArn=arn, statusFilter="ABORTED")["executions"]
    assert [e["executionArn"] for e in aborted] == [running[0]] and "stopDate" in aborted[0]
    assert sfn.list_executions(stateMachineArn=done)["executions"] == []
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.list_executions(stateMachineArn=arn, nextToken="bogus-token")
    for ex in running[1:]:
        sfn.stop_execution(executionArn=ex)


def test_history_pages_reverse_and_data(sfn, unique):
    states = {f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}"} for i in range(20)}
    states["P20"] = {"Type": "Pass", "End": True}
    arn = create_machine(sfn, f"hist-{unique}", states)
    ex = sfn.start_execution(stateMachineArn=arn, input='{"secret": 1}')["executionArn"]
    wait_done(sfn, ex)
    events = history(sfn, ex)
    assert [e["id"] for e in events] == list(range(1, 45))
    assert events[0]["type"] == "ExecutionStarted" and events[-1]["type"] == "ExecutionSucceeded"
    page = sfn.get_execution_history(executionArn=ex, maxResults=10, reverseOrder=True)
    assert [e["id"] for e in page["events"]] == list(range(44, 34, -1))
    page2 = sfn.get_execution_history(
        executionArn=ex, maxResults=10, reverseOrder=True, nextToken=page["nextToken"]
    )
    assert [e["id"] for e in page2["events"]] == list(range(34, 24, -1))
    bare = sfn.get_execution_history(executionArn=ex, includeExecutionData=False, maxResults=1)["events"][0]
    assert "input" not in bare["executionStartedEventDetails"]
    with pytest.raises(sfn.exceptions.InvalidToken):
        sfn.get_execution_history(executionArn=ex, nextToken=page["nextToken"])  # token of the other order


def test_stop_execution(sfn, unique):
    arn = create_machine(sfn, f"stop-{unique}", WAIT_LONG)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    stopped = sfn.stop_execution(executionArn=ex, error="Cancelled", cause="superseded")
    desc = sfn.describe_execution(executionArn=ex)
    assert desc["status"] == "ABORTED" and desc["error"] == "Cancelled" and desc["cause"] == "superseded"
    assert desc["stopDate"] == stopped["stopDate"]
    assert history(sfn, ex)[-1]["type"] == "ExecutionAborted"
    sfn.stop_execution(executionArn=ex)  # stopping a closed execution changes nothing
    assert sfn.describe_execution(executionArn=ex)["error"] == "Cancelled"


def test_redrive_reruns_from_the_failed_state(sfn, unique):
    states = {
        "First": {"Type": "Pass", "Result": 1, "ResultPath": "$.first", "Next": "Gate"},
        "Gate": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Done"}],
            "Default": "Boom",
        },
        "Boom": {"Type": "Fail", "Error": "Nope", "Cause": "not ok"},
        "Done": {"Type": "Succeed"},
    }
    arn = create_machine(sfn, f"redrive-{unique}", states)
    ex = sfn.start_execution(stateMachineArn=arn, input='{"ok": false}')["executionArn"]
    desc = wait_done(sfn, ex)
    assert desc["status"] == "FAILED" and desc["redriveStatus"] == "REDRIVABLE"
    sfn.redrive_execution(executionArn=ex)
    after = wait_done(sfn, ex)
    assert after["redriveCount"] == 1 and "redriveDate" in after
    assert after["status"] == "FAILED"  # the same Fail state fails again
    assert any(e["type"] == "ExecutionRedriven" for e in history(sfn, ex))
    ok = create_machine(sfn, f"redrive-ok-{unique}", {"A": {"Type": "Pass", "End": True}})
    ex_ok = sfn.start_execution(stateMachineArn=ok)["executionArn"]
    wait_done(sfn, ex_ok)
    with pytest.raises(sfn.exceptions.ExecutionNotRedrivable):
        sfn.redrive_execution(executionArn=ex_ok)


def test_wait_state_timer_fires(sfn, unique):
    arn = create_machine(sfn, f"wait-{unique}", {"W": {"Type": "Wait", "Seconds": 1, "End": True}})
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert sfn.describe_execution(executionArn=ex)["status"] == "RUNNING"
    desc = wait_done(sfn, ex, timeout=30)
    assert desc["status"] == "SUCCEEDED"
    assert (desc["stopDate"] - desc["startDate"]).total_seconds() >= 0.9  # not before its time


def test_execution_timeout(sfn, unique):
    arn = sfn.create_state_machine(
        name=f"tmo-{unique}",
        definition=json.dumps(
            {
                "StartAt": "W",
                "TimeoutSeconds": 1,
                "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}},
            }
        ),
        roleArn="arn:aws:iam::123456789012:role/x",
    )["stateMachineArn"]
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    desc = wait_done(sfn, ex, timeout=5)
    assert desc["status"] == "TIMED_OUT"


def test_closed_executions_are_kept_for_ninety_days(sfn, unique, redis_proc):
    arn = create_machine(sfn, f"ttl-{unique}", PASS_CHAIN)
    ex = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    wait_done(sfn, ex)
    store = redis.Redis(port=redis_proc.port)
    for key in (f"sfn:x:{ex}", f"sfn:h:{ex}"):
        assert 89 * 86400 < store.ttl(key) <= 90 * 86400


def test_list_pages_stay_put_when_new_executions_start(sfn, unique):
    arn = create_machine(sfn, f"pages-{unique}", PASS_CHAIN)
    old = [sfn.start_execution(stateMachineArn=arn, name=f"old{i}")["executionArn"] for i in range(4)]
    first = sfn.list_executions(stateMachineArn=arn, maxResults=2)
    sfn.start_execution(stateMachineArn=arn, name="newer")
    second = sfn.list_executions(stateMachineArn=arn, maxResults=2, nextToken=first["nextToken"])
    shown = [e["executionArn"] for e in first["executions"] + second["executions"]]
    assert shown == list(reversed(old))


def test_listing_forgets_expired_executions(sfn, unique, redis_proc):
    arn = create_machine(sfn, f"exp-{unique}", PASS_CHAIN)
    runs = [sfn.start_execution(stateMachineArn=arn, name=f"e{i}")["executionArn"] for i in range(3)]
    store = redis.Redis(port=redis_proc.port)
    store.delete(f"sfn:x:{runs[1]}")  # what the 90-day expiry does
    listed = [e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
    assert listed == [runs[2], runs[0]]
    assert store.zcard(f"sfn:xs:{arn}") == 2


def test_an_endless_jsonata_expression_fails_the_execution_instead_of_holding_the_engine(sfn, unique):
    # a pipeline is untrusted input: its expression must not pin an engine thread (and the request) forever
    endless = "{% ($loop := function($n) { $loop($n + 1) }; $loop(0)) %}"
    states = {"Spin": {"Type": "Pass", "Output": endless, "End": True}}
    arn = sfn.create_state_machine(
        name=f"spin-{unique}",
        definition=json.dumps({"QueryLanguage": "JSONata", "StartAt": "Spin", "States": states}),
        roleArn="arn:aws:iam::123456789012:role/stepline",
    )["stateMachineArn"]
    slow = make_client(sfn.meta.endpoint_url, read_timeout=20)
    started = slow.start_execution(stateMachineArn=arn, input="{}")
    desc = wait_done(sfn, started["executionArn"])
    assert (desc["status"], desc["error"]) == ("FAILED", "States.QueryEvaluationError")
    assert "D1012" in desc["cause"]
