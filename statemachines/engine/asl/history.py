"""AWS-shaped HistoryEvent builders: ids, previousEventId, timestamps and `<type>EventDetails`."""

from __future__ import annotations

import functools
import json
from typing import Any

_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False
)  # built once: dumps() builds one per call

# Entered/Exited events of every state type share one details key, as in AWS's API.
_SHARED_DETAILS = {"StateEntered": "stateEnteredEventDetails", "StateExited": "stateExitedEventDetails"}

# Types whose AWS shape has no details object at all.
NO_DETAILS = frozenset(
    {
        "ParallelStateStarted",
        "ParallelStateSucceeded",
        "ParallelStateFailed",
        "ParallelStateAborted",
        "MapStateSucceeded",
        "MapStateFailed",
        "MapStateAborted",
    }
)


@functools.lru_cache(maxsize=256)
def details_key(event_type: str) -> str:
    """The `<lowerCamelType>EventDetails` key AWS uses for `event_type`."""
    for suffix, key in _SHARED_DETAILS.items():
        if event_type.endswith(suffix):
            return key
    return event_type[0].lower() + event_type[1:] + "EventDetails"


def make_event(
    event_id: int, previous_id: int, now_ms: int, event_type: str, details: dict[str, Any] | None
) -> dict[str, Any]:
    """One HistoryEvent; `details` entries that are None are dropped, as AWS omits absent fields."""
    event: dict[str, Any] = {
        "id": event_id,
        "previousEventId": previous_id,
        "timestamp": now_ms / 1000,
        "type": event_type,
    }
    if details is not None and event_type not in NO_DETAILS:
        event[details_key(event_type)] = {k: v for k, v in details.items() if v is not None}
    return event


def to_json(value: Any) -> str:
    """Compact JSON text as AWS puts it in event details and outputs."""
    return _ENCODER.encode(value)


def payload(value: Any, field: str) -> dict[str, Any]:
    """`{"input": text, "inputDetails": {"truncated": false}}` (or output) for a JSON value."""
    return {field: to_json(value), field + "Details": {"truncated": False}}


def execution_started(input_value: Any, execution: dict[str, Any]) -> dict[str, Any]:
    """Details of ExecutionStarted; the version/alias ARNs when the execution was started through one."""
    return {
        **payload(input_value, "input"),
        "roleArn": execution.get("role_arn"),
        "stateMachineVersionArn": execution.get("version_arn"),
        "stateMachineAliasArn": execution.get("alias_arn"),
    }


def state_entered(name: str, input_text: str) -> dict[str, Any]:
    """Details of every `<Type>StateEntered` (the input already as JSON text)."""
    return {"name": name, "input": input_text, "inputDetails": {"truncated": False}}


def state_exited(name: str, output_text: str, assigned: dict[str, Any] | None = None) -> dict[str, Any]:
    """Details of every `<Type>StateExited` (output as JSON text), with the variables the state assigned."""
    details: dict[str, Any] = {"name": name, "output": output_text, "outputDetails": {"truncated": False}}
    if assigned:
        details["assignedVariables"] = {k: to_json(v) for k, v in assigned.items()}
        details["assignedVariablesDetails"] = {"truncated": False}
    return details


def failure(error: str | None, cause: str | None) -> dict[str, Any]:
    """Details of *Failed / *TimedOut / *Aborted events: error and cause, omitted when absent."""
    return {"error": error, "cause": cause}


def task_scheduled(
    resource_type: str,
    resource: str,
    region: str,
    parameters: Any,
    timeout: int | None,
    heartbeat: int | None,
) -> dict[str, Any]:
    """Details of TaskScheduled (a `.waitForTaskToken` service task)."""
    return {
        "resourceType": resource_type,
        "resource": resource,
        "region": region,
        "parameters": to_json(parameters),
        "timeoutInSeconds": timeout,
        "heartbeatInSeconds": heartbeat,
    }


def map_iteration(name: str, index: int) -> dict[str, Any]:
    """Details of MapIterationStarted / Succeeded / Failed / Aborted."""
    return {"name": name, "index": index}
