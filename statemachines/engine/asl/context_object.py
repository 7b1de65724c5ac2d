"""The context object (`$$`): what an execution knows about itself, built per state on demand."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any


@functools.lru_cache(maxsize=1024)  # many states of one call are entered in the same millisecond
def iso_timestamp(ms: int) -> str:
    """Render epoch milliseconds the way AWS does in `$$` (ISO-8601, millisecond precision, Z)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def execution_context(execution: dict[str, Any], execution_input: Any) -> dict[str, Any]:
    """The `$$.Execution` object; EXPRESS executions (redrive_count None) carry no RedriveCount."""
    ctx: dict[str, Any] = {
        "Id": execution["arn"],
        "Input": execution_input,
        "Name": execution["name"],
        "RoleArn": execution.get("role_arn"),
        "StartTime": iso_timestamp(int(execution["start_time_ms"])),
    }
    if execution.get("redrive_count") is not None:
        ctx["RedriveCount"] = execution["redrive_count"]
    return ctx


def build_context(
    execution_ctx: dict[str, Any],
    state_machine: dict[str, Any],
    state_name: str,
    entered_ms: int,
    retry_count: int | None = None,
    token: str | None = None,
    map_item: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble `$$` for one state; RetryCount and Task appear only for states that have them."""
    state: dict[str, Any] = {"Name": state_name, "EnteredTime": iso_timestamp(entered_ms)}
    if retry_count is not None:
        state["RetryCount"] = retry_count
    ctx: dict[str, Any] = {"Execution": execution_ctx, "StateMachine": state_machine, "State": state}
    if token is not None:
        ctx["Task"] = {"Token": token}
    if map_item is not None:
        ctx["Map"] = {"Item": map_item}
    return ctx
