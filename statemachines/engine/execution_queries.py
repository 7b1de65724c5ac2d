"""Read-only execution listings: ListExecutions and GetExecutionHistory, both paginated."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .api_errors import ValidationException
from .arns import parse_arn
from .backend import Backend
from .executions import load_execution
from .pages import decode_position, decode_token, encode_token, next_token, page_size
from .store import execution_key, executions_key, history_key
from .transitions import TERMINAL
from .versions import resolve_target

_SCAN_CHUNK = 200
# event detail fields that carry execution data, dropped when includeExecutionData is false
_DATA_FIELDS = ("input", "inputDetails", "output", "outputDetails", "parameters")


def list_executions(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params.get("stateMachineArn")
    if not arn:
        raise ValidationException("Must provide a StateMachine ARN or MapRun ARN")
    target = resolve_target(svc, arn)
    wanted = params.get("statusFilter")
    size = page_size(params)
    scope = f"x:{arn}:{wanted}:{params.get('redriveFilter')}"
    offset, after = decode_position(params.get("nextToken"), scope)
    items: list[dict[str, Any]] = []
    index = executions_key(target.sm_arn)
    rank = svc.redis.zrevrank(index, after) if after else None
    if rank is not None:  # newer executions moved the offsets along; continue after the last shown
        offset = int(rank) + 1
    redrive = params.get("redriveFilter")
    items, last, offset = _collect(
        svc, index, offset, size, lambda r: _matches(r, arn, target.sm_arn, wanted, redrive)
    )
    more = last is not None and offset < int(svc.redis.zcard(index))
    return {"executions": items, "nextToken": encode_token(offset, scope, after=last) if more else None}


def _collect(
    svc: Backend, index: str, offset: int, size: int, wanted: Callable[[dict[str, Any]], bool]
) -> tuple[list[dict[str, Any]], str | None, int]:
    """Up to `size` summaries from `offset` on: (items, ARN of the last when the page is full, next offset)."""
    items: list[dict[str, Any]] = []
    expired: list[str] = []
    try:
        while arns := svc.redis.zrevrange(index, offset, offset + _SCAN_CHUNK - 1):
            for position, (exec_arn, record) in enumerate(zip(arns, _records(svc, arns), strict=True)):
                if record is None:
                    expired.append(exec_arn)
                elif wanted(record):
                    items.append(_summary(record))
                    if len(items) == size:
                        return items, exec_arn, offset + position + 1
            offset += len(arns)
        return items, None, offset
    finally:
        if expired:  # closed executions past their 90 days: drop them from the index
            svc.redis.zrem(index, *expired)


def _records(svc: Backend, arns: list[str]) -> list[dict[str, Any] | None]:
    pipe = svc.redis.pipeline(transaction=False)
    for arn in arns:
        pipe.hmget(execution_key(arn), "meta", "status", "stop_s", "redrive_count", "redrive_s")
    records: list[dict[str, Any] | None] = []
    for meta, status, stop_s, redrives, redrive_s in pipe.execute():
        if meta is None:
            records.append(None)
            continue
        records.append(
            {
                "meta": json.loads(meta),
                "status": status,
                "stop_s": stop_s,
                "redrive_count": int(redrives or 0),
                "redrive_s": redrive_s,
            }
        )
    return records


def _matches(record: dict[str, Any], arn: str, sm_arn: str, status: str | None, redrive: str | None) -> bool:
    meta = record["meta"]
    if arn != sm_arn and arn not in (meta.get("version_arn"), meta.get("alias_arn")):
        return False
    if status and record["status"] != status:
        return False
    if redrive == "REDRIVEN" and not record["redrive_count"]:
        return False
    return not (redrive == "NOT_REDRIVEN" and record["redrive_count"])


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    meta = record["meta"]
    item: dict[str, Any] = {
        "executionArn": meta["arn"],
        "stateMachineArn": meta["sm_arn"],
        "name": meta["name"],
        "status": record["status"],
        "startDate": meta["start_ms"] / 1000,
        "stateMachineVersionArn": meta.get("version_arn"),
        "stateMachineAliasArn": meta.get("alias_arn"),
    }
    if record["status"] in TERMINAL and record["stop_s"]:
        item["stopDate"] = float(record["stop_s"])
    if record["redrive_count"]:
        item["redriveCount"] = record["redrive_count"]
        item["redriveDate"] = float(record["redrive_s"])
    return item


def get_execution_history(svc: Backend, params: dict[str, Any]) -> dict[str, Any] | bytes:
    arn = params["executionArn"]
    parse_arn(arn, "execution", "express")
    reverse = bool(params.get("reverseOrder"))
    size = page_size(params)
    scope = f"h:{arn}:{reverse}"
    offset = decode_token(params.get("nextToken"), scope)
    # negative indices count from the end, so one round trip serves both orders
    start, stop = (-(offset + size), -(offset + 1)) if reverse else (offset, offset + size - 1)
    pipe = svc.redis.pipeline(transaction=False)
    pipe.llen(history_key(arn))
    pipe.lrange(history_key(arn), start, stop)
    total, raw = pipe.execute()
    if total == 0:
        load_execution(svc, arn)  # ExecutionDoesNotExist when it is not there
    if reverse:
        raw.reverse()
    token = next_token(offset, size, int(total), scope)
    if params.get("includeExecutionData") is False:
        return {"events": [_without_data(json.loads(text)) for text in raw], "nextToken": token}
    # the stored events already are the wire JSON: splice them instead of decoding 1,000 events
    tail = f',"nextToken":{json.dumps(token)}' if token else ""
    return ('{"events":[' + ",".join(raw) + "]" + tail + "}").encode()


def _without_data(event: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {k: v for k, v in value.items() if k not in _DATA_FIELDS}
        if key.endswith("EventDetails")
        else value
        for key, value in event.items()
    }
