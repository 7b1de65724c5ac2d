"""Task tokens: SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat from workers and callbacks."""

from __future__ import annotations

from typing import Any

from statemachines import nesting

from .api_errors import InvalidOutput, InvalidToken, TaskTimedOut
from .backend import Backend
from .event_batches import advance
from .store import token_key
from .transitions import close_token_ops, is_empty

MAX_PAYLOAD_BYTES = 256 * 1024


def _open_task(svc: Backend, token: str) -> str:
    """The execution ARN of an open task; InvalidToken / TaskTimedOut as AWS answers."""
    exec_arn, status = svc.redis.hmget(token_key(token), "exec", "status")
    if exec_arn is None:
        # never reveal whether a token exists elsewhere: unknown is simply invalid
        raise InvalidToken("Invalid Token: 'Invalid token'")
    if status != "open":
        raise TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'")
    return str(exec_arn)


def _finish(svc: Backend, token: str, event: dict[str, Any]) -> dict[str, Any]:
    exec_arn = _open_task(svc, token)
    guard = [["HGET", token_key(token), "status", "open"]]
    out = advance(svc, exec_arn, event, guards=guard, first_ops=close_token_ops(token))
    if out is None or is_empty(out):
        raise TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'")
    return {}


def send_task_success(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    output = params["output"]
    if len(output.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidOutput("Invalid Output: 'The output exceeds the maximum size of 262144 bytes'")
    try:
        nesting.loads(output)  # not nested over 100 levels: everything after recurses per level
    except ValueError as exc:
        raise InvalidOutput(f"Invalid Output: '{exc}'") from exc
    token = params["taskToken"]
    return _finish(svc, token, {"type": "TaskSucceeded", "token": token, "output": output})


def send_task_failure(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    token = params["taskToken"]
    event = {"type": "TaskFailed", "token": token, "error": params.get("error"), "cause": params.get("cause")}
    return _finish(svc, token, event)


def send_task_heartbeat(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    token = params["taskToken"]
    exec_arn = _open_task(svc, token)
    guard = [["HGET", token_key(token), "status", "open"]]
    out = advance(svc, exec_arn, {"type": "TaskHeartbeat", "token": token}, guards=guard)
    if out is None:
        raise TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'")
    return {}
