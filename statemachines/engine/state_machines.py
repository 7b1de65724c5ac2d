"""State machine API: create, update, describe, list, delete and validate definitions."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from .api_errors import (
    InvalidArn,
    InvalidDefinition,
    MissingRequiredParameter,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
)
from .arns import check_name, parse_arn
from .asl.definition import format_definition_error, parse_definition
from .asl.errors import InvalidDefinitionError
from .asl.validation import validate_definition
from .backend import Backend, build_interpreter, digest, now_ms
from .pages import decode_token, next_token, page_size
from .store import (
    STATE_MACHINES,
    alias_key,
    aliases_key,
    definition_key,
    state_machine_key,
    tags_key,
    versions_key,
)
from .versions import publish_ops, resolve_target

log = logging.getLogger(__name__)

# what a state machine's identity is for CreateStateMachine's idempotency
_IDENTITY = ("definition", "roleArn", "type", "loggingConfiguration", "tracingConfiguration")
DEFAULT_LOGGING = {"level": "OFF", "includeExecutionData": False}
DEFAULT_TRACING = {"enabled": False}


def load_state_machine(svc: Backend, arn: str) -> dict[str, Any]:
    """The stored document of a state machine (not a version or alias); StateMachineDoesNotExist."""
    doc = svc.store.get_json(state_machine_key(arn))
    if doc is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    return dict(doc)


def check_definition(text: str, machine_type: str = "STANDARD") -> str:
    """Validate `text` as ASL; return its content digest. Raises InvalidDefinition with AWS's wording."""
    try:
        build_interpreter(text, machine_type)
    except InvalidDefinitionError as exc:
        raise InvalidDefinition(format_definition_error(exc.diagnostics)) from exc
    return digest(text)


def check_role(role_arn: str) -> None:
    if not role_arn.startswith("arn:") or ":iam::" not in role_arn:
        raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {role_arn}'")


def create_state_machine(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    name = params["name"]
    check_name(name)
    check_role(params["roleArn"])
    def_digest = check_definition(params["definition"], params.get("type") or "STANDARD")
    arn = svc.arns.state_machine(name)
    doc = {
        "stateMachineArn": arn,
        "name": name,
        "definition": params["definition"],
        "def": def_digest,
        "roleArn": params["roleArn"],
        "type": params.get("type") or "STANDARD",
        "loggingConfiguration": params.get("loggingConfiguration") or DEFAULT_LOGGING,
        "tracingConfiguration": params.get("tracingConfiguration") or DEFAULT_TRACING,
        "creationDate": now_ms() / 1000,
        "revisionId": str(uuid.uuid4()),
        "nextVersion": 1,
    }
    version_arn: str | None = None
    version_ops: list[list[str]] = []
    if params.get("publish"):
        version_arn, version_ops = publish_ops(doc, params.get("versionDescription"))
    ops = [
        ["SET", state_machine_key(arn), json.dumps(doc)],
        ["SET", definition_key(def_digest), params["definition"]],
        ["ZADD", STATE_MACHINES, str(now_ms()), arn],
        *version_ops,
    ]
    ops += [["HSET", tags_key(arn), tag["key"], tag.get("value", "")] for tag in params.get("tags") or []]
    if svc.store.commit([["EXISTS", state_machine_key(arn), "0"]], ops) != 0:
        return _existing(svc, arn, doc)
    return {
        "stateMachineArn": arn,
        "creationDate": doc["creationDate"],
        "stateMachineVersionArn": version_arn,
    }


def _existing(svc: Backend, arn: str, wanted: dict[str, Any]) -> dict[str, Any]:
    # AWS: CreateStateMachine is idempotent when everything that defines the machine is equal
    doc = load_state_machine(svc, arn)
    if any(doc.get(field) != wanted.get(field) for field in _IDENTITY):
        raise StateMachineAlreadyExists(f"State Machine Already Exists: '{arn}'")
    return {"stateMachineArn": arn, "creationDate": doc["creationDate"]}


def describe_state_machine(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    target = resolve_target(svc, params["stateMachineArn"], allow_alias=False)
    doc = target.doc
    return {
        "stateMachineArn": target.arn,
        "name": doc["name"],
        "status": "ACTIVE",
        "definition": doc["definition"],
        "roleArn": doc["roleArn"],
        "type": doc["type"],
        "creationDate": doc["creationDate"],
        "loggingConfiguration": doc["loggingConfiguration"],
        "tracingConfiguration": doc["tracingConfiguration"],
        "revisionId": doc["revisionId"],
        "description": doc.get("description"),
    }


def update_state_machine(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineArn"]
    parse_arn(arn, "stateMachine")
    changes: dict[str, Any] = {
        k: params[k]
        for k in ("definition", "roleArn", "loggingConfiguration", "tracingConfiguration")
        if k in params
    }
    if not changes:
        raise MissingRequiredParameter(
            "Either the definition, the role ARN, the LoggingConfiguration, or the TracingConfiguration must be specified"
        )
    for _ in range(20):
        raw = svc.redis.get(state_machine_key(arn))
        if raw is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
        doc = json.loads(str(raw))
        ops = _update_ops(doc, changes, params)
        version_arn = None
        if params.get("publish"):
            version_arn, version_ops = publish_ops(doc, params.get("versionDescription"))
            ops += version_ops
        ops.insert(0, ["SET", state_machine_key(arn), json.dumps(doc)])
        if svc.store.commit([["GET", state_machine_key(arn), str(raw)]], ops) == 0:
            return {
                "updateDate": doc["updateDate"],
                "revisionId": doc["revisionId"],
                "stateMachineVersionArn": version_arn,
            }
    raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")


def _update_ops(doc: dict[str, Any], changes: dict[str, Any], params: dict[str, Any]) -> list[list[str]]:
    ops: list[list[str]] = []
    if "roleArn" in changes:
        check_role(changes["roleArn"])
    if "definition" in changes:
        doc["def"] = check_definition(changes["definition"], doc["type"])
        ops.append(["SET", definition_key(doc["def"]), changes["definition"]])
    if any(doc.get(k) != v for k, v in changes.items()):
        doc["revisionId"] = str(uuid.uuid4())
    doc.update(changes)
    doc["updateDate"] = now_ms() / 1000
    return ops


def list_state_machines(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    size = page_size(params)
    offset = decode_token(params.get("nextToken"), "sms")
    arns = svc.redis.zrange(STATE_MACHINES, offset, offset + size - 1)
    docs = svc.redis.mget([state_machine_key(a) for a in arns]) if arns else []
    items = []
    for raw in docs:
        if raw is not None:
            doc = json.loads(raw)
            items.append({k: doc[k] for k in ("stateMachineArn", "name", "type", "creationDate")})
    total = svc.redis.zcard(STATE_MACHINES)
    return {"stateMachines": items, "nextToken": next_token(offset, size, int(total), "sms")}


def delete_state_machine(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineArn"]
    parsed = parse_arn(arn, "stateMachine")
    if len(parsed.parts) != 1:
        raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {arn}'")
    # running executions keep their definition (content-addressed), as AWS lets them finish
    versions = svc.redis.zrange(versions_key(arn), 0, -1)
    aliases = svc.redis.zrange(aliases_key(arn), 0, -1)
    keys = [state_machine_key(arn), versions_key(arn), aliases_key(arn), tags_key(arn)]
    keys += [state_machine_key(v) for v in versions] + [alias_key(a) for a in aliases]
    svc.store.commit([], [["DEL", *keys], ["ZREM", STATE_MACHINES, arn]])
    log.info("%s: deleted (%s versions, %s aliases)", arn, len(versions), len(aliases))
    return {}


def validate_state_machine_definition(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    try:
        diagnostics = validate_definition(
            parse_definition(params["definition"]), params.get("type") or "STANDARD"
        )
    except InvalidDefinitionError as exc:
        diagnostics = exc.diagnostics
    wanted = params.get("severity") or "ERROR"
    levels = ("ERROR",) if wanted == "ERROR" else ("ERROR", "WARNING")
    shown = [d for d in diagnostics if d.severity in levels]
    limit = params.get("maxResults") or 100
    items = [
        {"severity": d.severity, "code": d.code, "message": d.message, "location": d.location} for d in shown
    ]
    failed = any(d.severity == "ERROR" for d in diagnostics)
    return {
        "result": "FAIL" if failed else "OK",
        "diagnostics": items[:limit],
        "truncated": len(items) > limit,
    }
