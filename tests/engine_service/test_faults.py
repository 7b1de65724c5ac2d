"""Fault injection: SIGKILL the engine or Redis mid-run, or share Redis between two engines.

Every execution must end with the result and history of an undisturbed run: nothing committed
is lost or done twice, activity tasks and timers survive.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from botocore.exceptions import BotoCoreError, ClientError

from statemachines.engine.store import TIMERS
from tests.harness.redis_server import RedisServer

from .conftest import (
    ROLE_ARN,
    EngineProcess,
    answer_all_at_once,
    create_machine,
    definition,
    history,
    make_client,
    wait_done,
)

pytestmark = pytest.mark.fault

RUNS = 12
KILLS = 7


def pipeline_states(activity: str) -> dict[str, Any]:
    """Pass, Wait (timer), an activity Task that fails once and is retried (timer), a Map, Choice."""
    return {
        "Prepare": {"Type": "Pass", "Parameters": {"n.$": "$.n", "items": [1, 2, 3]}, "Next": "Pause"},
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Build"},
        "Build": {
            "Type": "Task",
            "Resource": activity,
            "Parameters": {"n.$": "$.n", "try.$": "$$.State.RetryCount"},
            "Retry": [
                {"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2},
                # a hand-out whose reply died with the engine counts as started (as on AWS)
                {"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 3},
            ],
            "TimeoutSeconds": 5,
            "ResultPath": "$.build",
            "Next": "Fan",
        },
        "Fan": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"i.$": "$$.Map.Item.Value", "n.$": "$.n"},
            "ItemProcessor": {"StartAt": "Square", "States": {"Square": {"Type": "Pass", "End": True}}},
            "ResultPath": "$.fan",
            "Next": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.build.double", "NumericGreaterThan": 10, "Next": "Big"}],
            "Default": "Small",
        },
        "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "End": True},
        "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "End": True},
    }


def retrying(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Call through engine restarts: connection errors and 5xx are retried, API errors are not."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if exc.response["ResponseMetadata"]["HTTPStatusCode"] < 500 or time.monotonic() > deadline:
                raise
        except BotoCoreError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


class Worker(threading.Thread):
    """Polls the activity through restarts; fails the first try of each task with Flaky."""

    def __init__(self, endpoints: list[str], activity: str, received: set[str]) -> None:
        super().__init__(daemon=True)
        self.clients = [make_client(e, read_timeout=10) for e in endpoints]
        self.activity = activity
        self.stopping = threading.Event()
        self.received = received  # every task input a worker of the workload got

    def run(self) -> None:
        turn = 0
        while not self.stopping.is_set():
            turn += 1
            client = self.clients[turn % len(self.clients)]
            try:
                task = client.get_activity_task(activityArn=self.activity, workerName="w")
            except (ClientError, BotoCoreError):
                time.sleep(0.05)
                continue
            if task.get("taskToken"):
                self.answer(client, task)

    def answer(self, client: Any, task: dict[str, Any]) -> None:
        self.received.add(task["input"])
        data = json.loads(task["input"])
        try:
            if data["try"] == 0:
                retrying(
                    client.send_task_failure, taskToken=task["taskToken"], error="Flaky", cause="first try"
                )
            else:
                output = json.dumps({"double": data["n"] * 2})
                retrying(client.send_task_success, taskToken=task["taskToken"], output=output)
        except ClientError as exc:
            # the engine committed our answer but died before replying: the retry sees TaskTimedOut
            assert exc.response["Error"]["Code"] == "TaskTimedOut", exc


def normalized(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "timestamp"} for e in events]


def run_workload(
    endpoints: list[str], name: str, disturb: Callable[[], None] | None = None
) -> dict[str, Any]:
    client = make_client(endpoints[0], read_timeout=10)
    activity = retrying(client.create_activity, name=f"{name}-act")["activityArn"]
    states = pipeline_states(activity)
    definition = json.dumps({"StartAt": "Prepare", "States": states})
    sm = retrying(client.create_state_machine, name=name, definition=definition, roleArn=ROLE_ARN)[
        "stateMachineArn"
    ]
    received: set[str] = set()
    workers = [Worker(endpoints, activity, received) for _ in range(3)]
    for worker in workers:
        worker.start()
    arns = []
    for i in range(RUNS):
        starter = make_client(endpoints[i % len(endpoints)], read_timeout=10)
        arns.append(
            retrying(
                starter.start_execution, stateMachineArn=sm, name=f"run-{i}", input=json.dumps({"n": i})
            )["executionArn"]
        )
    if disturb is not None:
        disturb()
    results: dict[str, Any] = {}
    deadline = time.monotonic() + 120  # a hang detector: a run takes seconds
    for arn in arns:
        while True:
            desc = retrying(client.describe_execution, executionArn=arn)
            if desc["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        key = arn.rsplit(":", 1)[1]
        results[key] = (
            desc["status"],
            desc.get("output") or f"{desc.get('error')}: {desc.get('cause')}",
            normalized(retrying(history, sfn=client, exec_arn=arn)),
        )
    for worker in workers:
        worker.stopping.set()
    results["received"] = sorted(received)
    return results


def assert_same(expected: dict[str, Any], actual: dict[str, Any], may_lose: int = 0) -> None:
    """Same status and output everywhere; same history too, except where a hand-out was lost.

    The one loss the engine allows is AWS's: it commits ActivityStarted, then dies before the
    poller reads the answer. Such an attempt shows as ActivityStarted followed by ActivityTimedOut
    and is retried; its history then has the extra attempt. A task scheduled and never started
    must not time out, and a lost hand-out needs a SIGKILL of the engine: at most `may_lose`.
    """
    received = actual.pop("received")
    expected = {k: v for k, v in expected.items() if k != "received"}
    assert sorted(actual) == sorted(expected)
    lost = []
    for key, (status, output, events) in expected.items():
        assert status == "SUCCEEDED"
        got_status, got_output, got_events = actual[key]
        types = [e["type"] for e in got_events]
        assert (got_status, got_output) == (status, output), (key, types)
        assert [e["id"] for e in got_events] == list(range(1, len(got_events) + 1)), key
        if "ActivityTimedOut" not in types:
            assert types == [e["type"] for e in events], key
        for index, kind in enumerate(types):
            if kind == "ActivityTimedOut":
                assert types[index - 2 : index] == ["ActivityScheduled", "ActivityStarted"], (key, types)
                task_input = got_events[index - 2]["activityScheduledEventDetails"]["input"]
                if task_input not in received:
                    lost.append(f"{key}: {task_input}")
    assert len(lost) <= may_lose, f"{len(lost)} hand-outs lost: {lost}"


def strip_names(results: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return json.loads(json.dumps(results).replace(old, new))


@pytest.fixture()
def cluster(tmp_path) -> Iterator[tuple[RedisServer, list[EngineProcess]]]:
    # appendfsync always: with everysec Redis may answer before its write() when an fsync is
    # slow, and a SIGKILL then loses acknowledged commits; the engine cannot do better than Redis
    redis_proc = RedisServer(tmp_path, "--appendfsync", "always")
    redis_proc.start()
    engines: list[EngineProcess] = []
    yield redis_proc, engines
    for engine in engines:
        engine.stop()
    redis_proc.stop()


def start_engine(
    cluster: tuple[RedisServer, list[EngineProcess]], tmp_path: Any, **env: str
) -> EngineProcess:
    redis_proc, engines = cluster
    engine = EngineProcess(redis_proc.url, tmp_path / f"engine-{len(engines)}.log", **env)
    engine.start()
    engines.append(engine)
    return engine


@pytest.mark.parametrize("processes", ["1", "2"])
def test_engine_sigkill_loop_loses_nothing(cluster, tmp_path, processes):
    engine = start_engine(cluster, tmp_path, ENGINE_POLL_SECONDS="1", ENGINE_PROCESSES=processes)
    calm = run_workload([engine.endpoint], "calm")
    rng = random.Random(7)

    def kill_repeatedly() -> None:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.05, 0.5))
            engine.kill()
            time.sleep(rng.uniform(0.0, 0.2))
            engine.start()

    stormy = run_workload([engine.endpoint], "stormy", kill_repeatedly)
    # each SIGKILL may cut one answer already committed as started (AWS's rule), no more
    assert_same(calm, strip_names(stormy, "stormy", "calm"), may_lose=KILLS)


def test_redis_sigkill_restarts_from_its_append_only_file(cluster, tmp_path):
    redis_proc, _ = cluster
    engine = start_engine(cluster, tmp_path, ENGINE_POLL_SECONDS="1")
    calm = run_workload([engine.endpoint], "calm")

    def kill_redis() -> None:
        time.sleep(0.8)
        redis_proc.kill()
        time.sleep(0.3)
        redis_proc.start()

    stormy = run_workload([engine.endpoint], "stormy", kill_redis)
    # Redis may die after an ActivityStarted commit and before its reply
    assert_same(calm, strip_names(stormy, "stormy", "calm"), may_lose=1)


def test_two_engines_share_one_redis(cluster, tmp_path):
    first = start_engine(cluster, tmp_path, ENGINE_POLL_SECONDS="1")
    second = start_engine(cluster, tmp_path, ENGINE_POLL_SECONDS="1")
    alone = run_workload([first.endpoint], "alone")
    shared = run_workload([first.endpoint, second.endpoint], "shared")
    assert_same(alone, strip_names(shared, "shared", "alone"))


def test_task_popped_by_a_dying_engine_is_handed_out_again(cluster, tmp_path):
    redis_proc, _ = cluster
    engine = start_engine(cluster, tmp_path, ENGINE_ID="crashy")
    sfn = make_client(engine.endpoint)
    activity = sfn.create_activity(name="orphan")["activityArn"]
    states = {"T": {"Type": "Task", "Resource": activity, "End": True}}
    sm = sfn.create_state_machine(
        name="orphan", definition=json.dumps({"StartAt": "T", "States": states}), roleArn=ROLE_ARN
    )
    ex = sfn.start_execution(stateMachineArn=sm["stateMachineArn"])["executionArn"]
    engine.kill()
    # what BLMOVE did just before the engine died: the token left the queue for the in-flight list
    store = redis.Redis(port=redis_proc.port)
    assert store.lmove(f"sfn:q:{activity}", "sfn:inflight:crashy", "LEFT", "RIGHT") is not None
    engine.start()
    task = sfn.get_activity_task(activityArn=activity)
    assert task["taskToken"]
    sfn.send_task_success(taskToken=task["taskToken"], output='{"ok": 1}')
    deadline = time.monotonic() + 5
    while sfn.describe_execution(executionArn=ex)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sfn.describe_execution(executionArn=ex)["status"] == "SUCCEEDED"
    assert store.llen("sfn:inflight:crashy") == 0


def one_task_machine(sfn: Any, name: str, **task: Any) -> tuple[str, str]:
    """(activity ARN, execution ARN) of a started one-Task execution."""
    activity = sfn.create_activity(name=name)["activityArn"]
    states = {"T": {"Type": "Task", "Resource": activity, **task, "End": True}}
    sm = create_machine(sfn, name, states)
    return activity, sfn.start_execution(stateMachineArn=sm)["executionArn"]


def test_task_stranded_in_a_running_engines_in_flight_list_goes_back_at_once(cluster, tmp_path):
    redis_proc, _ = cluster
    engine = start_engine(cluster, tmp_path, ENGINE_ID="stranded")
    sfn = make_client(engine.endpoint)
    activity, ex = one_task_machine(sfn, "stranded", TimeoutSeconds=60)
    # what a BLMOVE whose reply Redis never sent leaves behind: a token nobody is handing out
    store = redis.Redis(port=redis_proc.port)
    assert store.lmove(f"sfn:q:{activity}", "sfn:inflight:stranded", "LEFT", "RIGHT") is not None
    deadline = time.monotonic() + 8  # the sweep runs every second; it ran every 10 s, twice
    task: dict[str, Any] = {}
    while not task.get("taskToken") and time.monotonic() < deadline:
        task = make_client(engine.endpoint).get_activity_task(activityArn=activity)
    assert task.get("taskToken"), "the stranded task was not handed out again"
    sfn.send_task_success(taskToken=task["taskToken"], output="{}")
    assert wait_done(sfn, ex)["status"] == "SUCCEEDED"
    assert store.llen("sfn:inflight:stranded") == 0


def test_a_timeout_that_came_due_while_no_engine_ran_waits_for_workers(cluster, tmp_path):
    engine = start_engine(cluster, tmp_path)
    sfn = make_client(engine.endpoint)
    activity, ex = one_task_machine(sfn, "overdue", TimeoutSeconds=1)
    engine.kill()
    time.sleep(1.5)  # the task's timeout comes due while nothing serves
    engine.start()
    # the worker that was waiting for the engine gets the task, and its answer counts
    task = sfn.get_activity_task(activityArn=activity)
    assert task["taskToken"], [e["type"] for e in history(sfn, ex)]
    sfn.send_task_success(taskToken=task["taskToken"], output='{"ok": 1}')
    assert wait_done(sfn, ex)["status"] == "SUCCEEDED"


def test_two_engines_answering_one_execution_at_once(cluster, tmp_path):
    engines = [start_engine(cluster, tmp_path), start_engine(cluster, tmp_path)]
    sfn = make_client(engines[0].endpoint)
    activity = sfn.create_activity(name="split")["activityArn"]

    def branch(i: int) -> dict[str, Any]:
        task = {"Type": "Task", "Resource": activity, "Parameters": {"b": i}, "End": True}
        return {"StartAt": f"B{i}", "States": {f"B{i}": task}}

    definition = json.dumps(
        {
            "StartAt": "P",
            "States": {"P": {"Type": "Parallel", "Branches": [branch(i) for i in range(8)], "End": True}},
        }
    )
    sm = sfn.create_state_machine(name="split", definition=definition, roleArn=ROLE_ARN)["stateMachineArn"]
    for round_ in range(3):
        ex = sfn.start_execution(stateMachineArn=sm, name=f"r{round_}")["executionArn"]
        assert answer_all_at_once([e.endpoint for e in engines], activity, 8) == []
        desc = wait_done(sfn, ex, timeout=5)
        assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"]) == [{"b": i} for i in range(8)]
        events = history(sfn, ex)
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        assert sum(e["type"] == "ActivitySucceeded" for e in events) == 8


def test_a_start_runs_what_another_engine_stored_since(cluster, tmp_path):
    # each engine keeps the documents it read; its start commits check them, so changes made
    # through another engine (update, delete, created again as EXPRESS, alias moved) count at once
    first, second = (make_client(start_engine(cluster, tmp_path).endpoint) for _ in range(2))

    def states(value: int) -> dict[str, Any]:
        return {"P": {"Type": "Pass", "Result": {"v": value}, "End": True}}

    def output(arn: str) -> Any:
        exec_arn = first.start_execution(stateMachineArn=arn)["executionArn"]
        return json.loads(wait_done(first, exec_arn)["output"])

    sm = create_machine(second, "cached", states(1))
    assert output(sm) == {"v": 1}
    second.update_state_machine(stateMachineArn=sm, definition=definition(states(2)))
    assert output(sm) == {"v": 2}
    second.delete_state_machine(stateMachineArn=sm)
    with pytest.raises(ClientError, match="StateMachineDoesNotExist"):
        first.start_execution(stateMachineArn=sm)

    sm = create_machine(second, "retyped", states(3))
    assert output(sm) == {"v": 3}
    second.delete_state_machine(stateMachineArn=sm)
    create_machine(second, "retyped", states(4), type="EXPRESS")
    assert json.loads(first.start_sync_execution(stateMachineArn=sm)["output"]) == {"v": 4}

    sm = create_machine(second, "aliased", states(5), publish=True)
    v1 = f"{sm}:1"
    alias = second.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}]
    )["stateMachineAliasArn"]
    assert output(alias) == {"v": 5}
    v2 = second.update_state_machine(stateMachineArn=sm, definition=definition(states(6)), publish=True)[
        "stateMachineVersionArn"
    ]
    second.update_state_machine_alias(
        stateMachineAliasArn=alias, routingConfiguration=[{"stateMachineVersionArn": v2, "weight": 100}]
    )
    second.delete_state_machine_version(stateMachineVersionArn=v1)
    assert output(alias) == {"v": 6}


def test_a_burst_of_timers_fires_each_once_across_engines_and_a_kill(cluster, tmp_path):
    # 240 timers due at the same millisecond, fired by two engines' timer threads at once,
    # one engine SIGKILLed as the burst comes due: none is lost, none fires twice
    first = start_engine(cluster, tmp_path)
    second = start_engine(cluster, tmp_path)
    sfn = make_client(first.endpoint)
    due = datetime.now(UTC) + timedelta(seconds=4)
    states = {
        "W": {"Type": "Wait", "Timestamp": due.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "Next": "P"},
        "P": {"Type": "Pass", "End": True},
    }
    machine = create_machine(sfn, "burst", states)
    clients = [sfn, make_client(second.endpoint)]
    arns = [clients[n % 2].start_execution(stateMachineArn=machine)["executionArn"] for n in range(240)]
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
    first.kill()
    first.start()
    for arn in arns:
        assert wait_done(sfn, arn, timeout=60)["status"] == "SUCCEEDED", arn
        types = [event["type"] for event in history(sfn, arn)]
        assert types.count("WaitStateExited") == 1, types
        assert types.count("PassStateEntered") == 1, types
    assert cluster[0].client().zcard(TIMERS) == 0
