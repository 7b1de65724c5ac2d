"""Throughput of the pure interpreter: state transitions per second, beside moto's as a peer.

    .venv/bin/python bench/interpreter_bench.py [--repeat N] [--no-peer]

Two workloads: a 200-state Pass chain and a 100-item Map (Pass + Choice + Pass per item). The
"with JSON round-trip" figure also serialises the execution state after every call, as the
service does when it writes it to Redis. The peer is moto's Step Functions interpreter (in-process
mock, executions run for real), measured start-to-SUCCEEDED through boto3. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from statemachines.engine.asl.interpreter import Interpreter

EXECUTION = {
    "arn": "arn:aws:states:us-east-1:123456789012:execution:bench:run",
    "name": "run",
    "state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
    "state_machine_name": "bench",
    "role_arn": "arn:aws:iam::123456789012:role/bench",
    "start_time_ms": 1_700_000_000_000,
    "redrive_count": 0,
}


class Ids:
    def __init__(self) -> None:
        self.counter = itertools.count()

    def token(self) -> str:
        return f"t{next(self.counter)}"

    def uuid(self) -> str:
        return f"00000000-0000-4000-8000-{next(self.counter):012d}"

    def random(self) -> float:
        return 0.5


def pass_chain(length: int) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for i in range(length):
        state: dict[str, Any] = {"Type": "Pass", "ResultPath": f"$.s{i % 5}", "Result": i}
        state.update({"End": True} if i == length - 1 else {"Next": f"S{i + 1}"})
        states[f"S{i}"] = state
    return {"StartAt": "S0", "States": states}


def item_map(items: int) -> tuple[dict[str, Any], dict[str, Any]]:
    processor = {
        "StartAt": "Double",
        "States": {
            "Double": {"Type": "Pass", "Parameters": {"v.$": "$.n", "i.$": "$.i"}, "Next": "Check"},
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.v", "NumericGreaterThan": 50, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {"Type": "Pass", "Result": "big", "End": True},
            "Small": {"Type": "Pass", "Result": "small", "End": True},
        },
    }
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"n.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                "ItemProcessor": processor,
                "End": True,
            }
        },
    }
    return definition, {"items": list(range(items))}


def measure(
    definition: dict[str, Any], payload: dict[str, Any], repeat: int, roundtrip: bool
) -> tuple[float, int]:
    interp = Interpreter(definition)
    text = json.dumps(payload)
    transitions = 0
    started = time.perf_counter()
    for _ in range(repeat):
        out = interp.start(EXECUTION, text, EXECUTION["start_time_ms"], Ids())  # type: ignore[arg-type]
        if roundtrip:
            json.loads(json.dumps(out.state))
        transitions += sum(1 for e in out.events if e["type"].endswith("StateEntered"))
    elapsed = time.perf_counter() - started
    if out.status != "SUCCEEDED":
        print(f"workload did not succeed: {out.state['error']}: {out.state['cause']}")
    return transitions / elapsed, transitions // repeat


def activity_chain(length: int) -> dict[str, Any]:
    resource = "arn:aws:states:us-east-1:123456789012:activity:bench"
    states: dict[str, Any] = {}
    for i in range(length):
        state: dict[str, Any] = {"Type": "Task", "Resource": resource, "ResultPath": f"$.r{i % 3}"}
        state.update({"End": True} if i == length - 1 else {"Next": f"T{i + 1}"})
        states[f"T{i}"] = state
    return {"StartAt": "T0", "States": states}


def measure_service_shaped(length: int, repeat: int) -> float:
    """One advance per task completion, the state loaded from and dumped to JSON around each call."""
    interp = Interpreter(activity_chain(length))
    started = time.perf_counter()
    for _ in range(repeat):
        ids = Ids()
        out = interp.start(EXECUTION, '{"sha": "abc"}', EXECUTION["start_time_ms"], ids)  # type: ignore[arg-type]
        text = json.dumps(out.state)
        token = out.effects[0]["token"]
        for _ in range(length):
            event = {"type": "TaskSucceeded", "token": token, "output": '{"ok": true}'}
            out = interp.advance(json.loads(text), event, EXECUTION["start_time_ms"], ids)  # type: ignore[arg-type]
            text = json.dumps(out.state)
            token = next((e["token"] for e in out.effects if e["type"] == "ScheduleActivity"), "")
    return length * repeat / (time.perf_counter() - started)


def measure_moto(definition: dict[str, Any], payload: dict[str, Any], repeat: int, per_run: int) -> float:
    """moto's interpreter on the same workload; transitions/s including its (in-process) API calls."""
    import boto3
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("stepfunctions", region_name="us-east-1")
        arn = client.create_state_machine(
            name="bench", definition=json.dumps(definition), roleArn=EXECUTION["role_arn"]
        )["stateMachineArn"]
        started = time.perf_counter()
        for i in range(repeat):
            run = client.start_execution(stateMachineArn=arn, name=f"run-{i}", input=json.dumps(payload))
            while client.describe_execution(executionArn=run["executionArn"])["status"] == "RUNNING":
                time.sleep(0.001)
        return per_run * repeat / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--no-peer", action="store_true", help="skip the moto comparison")
    args = parser.parse_args()
    workloads = {"200-state Pass chain": (pass_chain(200), {"seed": 1}), "100-item Map": item_map(100)}
    ours: dict[str, tuple[float, int]] = {}
    for name, (definition, payload) in workloads.items():
        rate, per_run = measure(definition, payload, args.repeat, roundtrip=False)
        print(f"{name}: {rate:,.0f} transitions/s ({per_run} transitions per execution)")
        # a synchronous workload is one core call per execution, so one round-trip per execution
        rate, _ = measure(definition, payload, args.repeat, roundtrip=True)
        print(f"{name} with JSON round-trip of the state: {rate:,.0f} transitions/s")
        ours[name] = (rate, per_run)
    rate = measure_service_shaped(50, args.repeat)
    print(f"50 activity tasks, one advance + state JSON round-trip per task: {rate:,.0f} transitions/s")
    if args.no_peer:
        return
    # the peer last: moto's execution threads keep a core busy for a while after each run
    for name, (definition, payload) in workloads.items():
        rate, per_run = ours[name]
        peer = measure_moto(definition, payload, 3, per_run)
        print(f"{name} on moto 5.2 (peer): {peer:,.0f} transitions/s; ours/peer = {rate / peer:,.0f}x")


if __name__ == "__main__":
    main()
