"""Executions API: start (async and sync), describe, list, stop and redrive."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from statemachines import nesting

from .api_errors import (
    ExecutionAlreadyExists,
    ExecutionDoesNotExist,
    ExecutionNotRedrivable,
    InvalidExecutionInput,
    StateMachineTypeNotSupported,
)
from .arns import check_name, parse_arn
from .asl.errors import StatesError
from .backend import Backend, now_ms
from .event_batches import advance
from .store import definition_key, done_key, execution_key, executions_key, history_key
from .transitions import MAX_ATTEMPTS, TERMINAL, outcome_ops
from .versions import Target, resolve_target

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 256 * 1024
EXPRESS_MAX_SECONDS = 300
REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")


def check_input(text: str) -> None:
    """Raise InvalidExecutionInput unless `text` is JSON of at most 256 KiB."""
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidExecutionInput(
            "Invalid State Machine Execution Input: 'The input exceeds the maximum size of 262144 bytes'"
        )
    try:
        nesting.loads(text)  # not nested over 100 levels: everything after recurses per level
    except ValueError as exc:
        raise InvalidExecutionInput(f"Invalid State Machine Execution Input: '{exc}'") from exc


def load_execution(svc: Backend, arn: str) -> dict[str, Any]:
    """Every stored field of an execution (meta decoded); ExecutionDoesNotExist / InvalidArn."""
    parse_arn(arn, "execution", "express")
    fields = svc.redis.hgetall(execution_key(arn))
    if not fields:
        raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{arn}'")
    record: dict[str, Any] = dict(fields)
    record["meta"] = json.loads(record["meta"])
    return record


def _begin(svc: Backend, params: dict[str, Any], express_sync: bool) -> tuple[str, dict[str, Any], bool]:
    """Create and start an execution; returns (arn, record-to-describe, created)."""
    name = params.get("name") or str(uuid.uuid4())
    # First from the documents this process last read: the commit then checks they are still
    # what is stored (one Redis round trip fewer per start). If one changed since, once more
    # from Redis itself, which is what the execution then runs.
    for cached in (True, False):
        target = resolve_target(svc, params["stateMachineArn"], cached=cached)
        if express_sync and target.doc["type"] != "EXPRESS":
            if target.cached_sources:  # the type may be stale (deleted and created again)
                continue
            raise StateMachineTypeNotSupported(
                "This operation is not supported by this type of state machine"
            )
        check_name(name)
        text = params.get("input") or "{}"
        check_input(text)
        arn, meta, failed = _commit_start(svc, target, name, text)
        if failed == 0:
            return arn, {"meta": meta}, True
        if failed > len(target.cached_sources):  # the documents held; the name is taken
            return arn, _reuse(svc, arn, target, text), False
        for key, _ in target.cached_sources:
            svc.documents.discard(key)
    raise AssertionError("unreachable: a start read from Redis has no document guards")


def _commit_start(svc: Backend, target: Target, name: str, text: str) -> tuple[str, dict[str, Any], int]:
    """Run the first steps and commit them with the execution record: (arn, meta, failed guard)."""
    doc = target.doc
    express_id = str(uuid.uuid4()) if doc["type"] == "EXPRESS" else None
    arn = svc.arns.execution(doc["name"], name, express_id)
    key = execution_key(arn)
    meta = _meta(arn, name, target)
    execution = {
        "arn": arn,
        "name": name,
        "state_machine_arn": target.sm_arn,
        "state_machine_name": doc["name"],
        "role_arn": doc["roleArn"],
        "start_time_ms": meta["start_ms"],
        "version_arn": target.version_arn,
        "alias_arn": target.alias_arn,
        "redrive_count": None if express_id else 0,  # EXPRESS executions have no $$.Execution.RedriveCount
    }
    out = svc.interpreter(doc["def"]).start(execution, text, meta["start_ms"], svc.ids)
    # the input lives beside meta, not in it: listings read meta of many executions at once
    ops = [["HSET", key, "meta", json.dumps(meta), "input", text, "def", doc["def"], "redrive_count", "0"]]
    ops += outcome_ops(svc, arn, 0, out)
    ops.append(["ZADD", executions_key(target.sm_arn), str(meta["start_ms"]), arn])
    # cached documents are checked first: whether the name is taken is only decided on valid ones.
    # No existence check before: the commit's guard reserves the name, one round trip fewer.
    guards = [["GET", k, raw] for k, raw in target.cached_sources] + [["EXISTS", key, "0"]]
    return arn, meta, svc.store.commit(guards, ops)


def _meta(arn: str, name: str, target: Target) -> dict[str, Any]:
    doc = target.doc
    return {
        "arn": arn,
        "name": name,
        "sm_arn": target.sm_arn,
        "sm_name": doc["name"],
        "type": doc["type"],
        "version_arn": target.version_arn,
        "alias_arn": target.alias_arn,
        "role": doc["roleArn"],
        "revision": doc["revisionId"],
        "logging": doc["loggingConfiguration"],
        "tracing": doc["tracingConfiguration"],
        "updated": doc.get("updateDate", doc["creationDate"]),
        "start_ms": now_ms(),
    }


def _reuse(svc: Backend, arn: str, target: Target, text: str) -> dict[str, Any]:
    # AWS: a STANDARD StartExecution with the same name and input is idempotent while it runs
    record = load_execution(svc, arn)
    meta = record["meta"]
    if record["status"] != "RUNNING" or record["input"] != text or meta["sm_arn"] != target.sm_arn:
        raise ExecutionAlreadyExists(f"Execution Already Exists: '{arn}'")
    return record


def start_execution(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn, record, created = _begin(svc, params, express_sync=False)
    if created:
        log.debug("%s: started", arn)
    return {"executionArn": arn, "startDate": record["meta"]["start_ms"] / 1000}


def start_sync_execution(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn, record, _ = _begin(svc, params, express_sync=True)
    deadline = time.monotonic() + EXPRESS_MAX_SECONDS
    while svc.redis.hget(execution_key(arn), "status") not in TERMINAL:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        svc.redis.blpop([done_key(arn)], timeout=min(remaining, 5))
    record = load_execution(svc, arn)
    described = _describe(record)  # the output shape drops what StartSyncExecution does not answer
    described["billingDetails"] = {"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": 100}
    return described


def _describe(record: dict[str, Any]) -> dict[str, Any]:
    meta = record["meta"]
    status = record["status"]
    result: dict[str, Any] = {
        "executionArn": meta["arn"],
        "stateMachineArn": meta["sm_arn"],
        "name": meta["name"],
        "status": status,
        "startDate": meta["start_ms"] / 1000,
        "input": record["input"],
        "inputDetails": {"included": True},
        "stateMachineVersionArn": meta.get("version_arn"),
        "stateMachineAliasArn": meta.get("alias_arn"),
        "redriveCount": int(record.get("redrive_count") or 0),
    }
    if status in TERMINAL:
        result["stopDate"] = float(record["stop_s"])
        result["error"] = record.get("error")
        result["cause"] = record.get("cause")
        if "output" in record:
            result["output"] = record["output"]
            result["outputDetails"] = {"included": True}
    if record.get("redrive_s"):
        result["redriveDate"] = float(record["redrive_s"])
    result.update(_redrive_status(meta, status))
    return result


def _redrive_status(meta: dict[str, Any], status: str) -> dict[str, str]:
    if meta["type"] == "EXPRESS":
        return {
            "redriveStatus": "NOT_REDRIVABLE",
            "redriveStatusReason": "Execution is EXPRESS and cannot be redriven",
        }
    if status in REDRIVABLE:
        return {"redriveStatus": "REDRIVABLE"}
    reason = f"Execution is {status} and cannot be redriven"
    return {"redriveStatus": "NOT_REDRIVABLE", "redriveStatusReason": reason}


def describe_execution(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    return _describe(load_execution(svc, params["executionArn"]))


def describe_state_machine_for_execution(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    record = load_execution(svc, params["executionArn"])
    meta = record["meta"]
    return {
        "stateMachineArn": meta["sm_arn"],
        "name": meta["sm_name"],
        "roleArn": meta["role"],
        "definition": svc.redis.get(definition_key(record["def"])),
        "updateDate": meta["updated"],
        "loggingConfiguration": meta["logging"],
        "tracingConfiguration": meta["tracing"],
        "revisionId": meta["revision"],
    }


def stop_execution(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["executionArn"]
    load_execution(svc, arn)
    event = {"type": "Stop", "error": params.get("error"), "cause": params.get("cause")}
    advance(svc, arn, event)
    record = load_execution(svc, arn)
    stop = record.get("stop_s")
    return {"stopDate": float(stop) if stop else now_ms() / 1000}


def redrive_execution(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["executionArn"]
    key = execution_key(arn)
    for _ in range(MAX_ATTEMPTS):
        record = load_execution(svc, arn)
        status = record["status"]
        if record["meta"]["type"] == "EXPRESS" or status not in REDRIVABLE:
            raise ExecutionNotRedrivable(
                _redrive_status(record["meta"], status).get("redriveStatusReason", "")
            )
        version = int(record["ver"])
        now = now_ms()
        try:
            out = svc.interpreter(record["def"]).redrive(json.loads(record["state"]), now, svc.ids)
        except StatesError as exc:
            raise ExecutionNotRedrivable(f"Execution Not Redrivable: '{exc.cause or exc.name}'") from exc
        count = int(record.get("redrive_count") or 0) + 1
        ops = [["DEL", done_key(arn)], ["HDEL", key, "stop_s", "output", "error", "cause"]]
        ops += [["PERSIST", key], ["PERSIST", history_key(arn)]]  # open again: no retention clock
        ops += outcome_ops(svc, arn, version, out)
        ops.append(["HSET", key, "redrive_count", str(count), "redrive_s", repr(now / 1000)])
        if svc.store.commit([["HGET", key, "ver", str(version)]], ops) == 0:
            log.info("%s: redriven (count %s)", arn, count)
            return {"redriveDate": now / 1000}
    raise ExecutionNotRedrivable("The execution is being changed concurrently; try again.")
