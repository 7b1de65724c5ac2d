"""State machine versions and aliases: publish, resolve, list, describe, update and delete."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .api_errors import (
    ConflictException,
    InvalidArn,
    ResourceNotFound,
    StateMachineDoesNotExist,
    ValidationException,
)
from .arns import check_alias_name, parse_arn
from .backend import Backend, now_ms
from .pages import decode_token, next_token, page_size
from .store import alias_key, aliases_key, state_machine_key, versions_key

# documents up to this size are kept in the process's cache; a commit that uses a cached one
# sends its text back as a guard, so bigger ones are read from Redis each time
CACHED_DOCUMENT_MAX = 64 * 1024


@dataclass(frozen=True)
class Target:
    """What an ARN given to StartExecution or Describe* runs: a state machine, version or alias."""

    arn: str  # as given
    doc: dict[str, Any]  # the definition document that runs
    sm_arn: str
    version_arn: str | None = None
    alias_arn: str | None = None
    # (key, stored text) of each document taken from the cache rather than from Redis: they may
    # be stale, so a commit acting on this target must guard that each key still holds that text
    cached_sources: tuple[tuple[str, str], ...] = ()


def resolve_target(svc: Backend, arn: str, allow_alias: bool = True, cached: bool = False) -> Target:
    """Load what `arn` names; StateMachineDoesNotExist / ResourceNotFound / InvalidArn as AWS.

    cached: documents may come from this process's cache (listed in `cached_sources`).
    """
    if cached:
        try:
            return _resolve(svc, arn, allow_alias, cached=True)
        except (StateMachineDoesNotExist, ResourceNotFound):
            pass  # a stale cached alias may have pointed at a deleted version: ask Redis itself
    return _resolve(svc, arn, allow_alias, cached=False)


def _resolve(svc: Backend, arn: str, allow_alias: bool, cached: bool) -> Target:
    parsed = parse_arn(arn, "stateMachine")
    if len(parsed.parts) > 2:
        raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {arn}'")
    sm_arn = parsed.base
    sources: list[tuple[str, str]] = []
    if len(parsed.parts) == 1:
        return Target(arn, _load(svc, arn, cached, sources), sm_arn, cached_sources=tuple(sources))
    qualifier = parsed.parts[1]
    if qualifier.isdigit():
        doc = _load(svc, arn, cached, sources)
        return Target(arn, doc, sm_arn, version_arn=arn, cached_sources=tuple(sources))
    if not allow_alias:
        raise InvalidArn(f"Invalid Arn: 'Resource type not valid in this context: {arn}'")
    alias = _read(svc, alias_key(arn), cached, sources)
    if alias is None:
        raise ResourceNotFound(f"Resource not found: '{arn}'")
    version_arn = _pick_version(alias["routingConfiguration"])
    doc = _load(svc, version_arn, cached, sources)
    return Target(arn, doc, sm_arn, version_arn, arn, tuple(sources))


def _load(svc: Backend, arn: str, cached: bool, sources: list[tuple[str, str]]) -> dict[str, Any]:
    doc = _read(svc, state_machine_key(arn), cached, sources)
    if doc is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    return doc


def _read(svc: Backend, key: str, cached: bool, sources: list[tuple[str, str]]) -> dict[str, Any] | None:
    """A copy of the JSON document at `key` (None if absent), from the cache when `cached`."""
    entry = svc.documents.get(key) if cached else None
    if entry is not None:
        sources.append((key, entry[0]))
        return dict(entry[1])
    raw = svc.redis.get(key)
    if raw is None:
        svc.documents.discard(key)
        return None
    doc = json.loads(raw)
    if len(raw) <= CACHED_DOCUMENT_MAX:
        svc.documents.put(key, (raw, doc))
    return dict(doc)


def _pick_version(routes: list[dict[str, Any]]) -> str:
    # an alias splits traffic between at most two versions by weight
    point = random.uniform(0, sum(r["weight"] for r in routes) or 1)
    for route in routes:
        point -= route["weight"]
        if point <= 0:
            return str(route["stateMachineVersionArn"])
    return str(routes[-1]["stateMachineVersionArn"])


def publish_ops(doc: dict[str, Any], description: str | None) -> tuple[str, list[list[str]]]:
    """Publish `doc`'s current revision as its next version (mutates doc's counter); idempotent."""
    last = doc.get("lastPublished")
    if last and last["revisionId"] == doc["revisionId"]:
        return str(last["arn"]), []
    number = int(doc.get("nextVersion", 1))
    version_arn = f"{doc['stateMachineArn']}:{number}"
    created = now_ms() / 1000
    version = {**doc, "creationDate": created, "description": description, "version": number}
    version.pop("lastPublished", None)
    doc["nextVersion"] = number + 1
    doc["lastPublished"] = {"revisionId": doc["revisionId"], "arn": version_arn, "creationDate": created}
    ops = [
        ["SET", state_machine_key(version_arn), json.dumps(version)],
        ["ZADD", versions_key(doc["stateMachineArn"]), str(number), version_arn],
    ]
    return version_arn, ops


def publish_state_machine_version(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineArn"]
    parse_arn(arn, "stateMachine")
    for _ in range(20):
        raw = svc.redis.get(state_machine_key(arn))
        if raw is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
        doc = json.loads(str(raw))
        wanted = params.get("revisionId")
        if wanted and wanted != doc["revisionId"]:
            raise ConflictException(
                f"Failed to publish the State Machine version for revision {wanted}. The current State Machine revision is {doc['revisionId']}."
            )
        version_arn, ops = publish_ops(doc, params.get("description"))
        ops.insert(0, ["SET", state_machine_key(arn), json.dumps(doc)])
        if svc.store.commit([["GET", state_machine_key(arn), str(raw)]], ops) == 0:
            return {
                "stateMachineVersionArn": version_arn,
                "creationDate": doc["lastPublished"]["creationDate"],
            }
    raise ConflictException("The state machine is being changed concurrently; try again.")


def list_state_machine_versions(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineArn"]
    parse_arn(arn, "stateMachine")
    items, token = _page(
        svc, params, versions_key(arn), state_machine_key, "versions:" + arn, newest_first=True
    )
    return {"stateMachineVersions": _entries(items, "stateMachineVersionArn"), "nextToken": token}


def delete_state_machine_version(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineVersionArn"]
    parsed = parse_arn(arn, "stateMachine")
    if len(parsed.parts) != 2 or not parsed.parts[1].isdigit():
        raise ValidationException(f"Invalid Arn: '{arn}' is not a state machine version ARN")
    for alias_arn in svc.redis.zrange(aliases_key(parsed.base), 0, -1):
        alias = svc.store.get_json(alias_key(alias_arn)) or {}
        if any(r["stateMachineVersionArn"] == arn for r in alias.get("routingConfiguration", [])):
            raise ConflictException(
                f"Version to be deleted must not be referenced by an alias. Current list of aliases referencing this version: [{alias_arn}]"
            )
    svc.store.commit([], [["DEL", state_machine_key(arn)], ["ZREM", versions_key(parsed.base), arn]])
    return {}


def load_alias(svc: Backend, arn: str) -> dict[str, Any]:
    doc = svc.store.get_json(alias_key(arn))
    if doc is None:
        raise ResourceNotFound(f"Resource not found: '{arn}'")
    return dict(doc)


def _check_routes(svc: Backend, sm_arn: str, routes: list[dict[str, Any]]) -> None:
    if not 1 <= len(routes) <= 2 or sum(r["weight"] for r in routes) != 100:
        raise ValidationException(
            "Routing configuration must contain one or two versions whose weights sum to 100"
        )
    for route in routes:
        version_arn = route["stateMachineVersionArn"]
        parsed = parse_arn(version_arn, "stateMachine")
        if parsed.base != sm_arn or len(parsed.parts) != 2 or not parsed.parts[1].isdigit():
            raise ValidationException(f"Invalid version ARN in routing configuration: {version_arn}")
        if not svc.redis.exists(state_machine_key(version_arn)):
            raise ResourceNotFound(f"Resource not found: '{version_arn}'")


def create_state_machine_alias(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    name = params["name"]
    check_alias_name(name)
    if name.isdigit():
        raise ValidationException("An alias name must not be a number")
    routes = params["routingConfiguration"]
    sm_arn = parse_arn(routes[0]["stateMachineVersionArn"], "stateMachine").base
    _check_routes(svc, sm_arn, routes)
    arn = f"{sm_arn}:{name}"
    created = now_ms() / 1000
    doc = {
        "stateMachineAliasArn": arn,
        "name": name,
        "description": params.get("description"),
        "routingConfiguration": routes,
        "creationDate": created,
        "updateDate": created,
    }
    ops = [["SET", alias_key(arn), json.dumps(doc)], ["ZADD", aliases_key(sm_arn), str(now_ms()), arn]]
    if svc.store.commit([["EXISTS", alias_key(arn), "0"]], ops) != 0:
        existing = load_alias(svc, arn)
        if existing["routingConfiguration"] != routes or existing.get("description") != doc["description"]:
            raise ConflictException(
                f"Failed to create alias because an alias with the same name and a different routing configuration already exists: {arn}"
            )
        return {"stateMachineAliasArn": arn, "creationDate": existing["creationDate"]}
    return {"stateMachineAliasArn": arn, "creationDate": created}


def describe_state_machine_alias(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineAliasArn"]
    parse_arn(arn, "stateMachine")
    return load_alias(svc, arn)


def update_state_machine_alias(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineAliasArn"]
    sm_arn = parse_arn(arn, "stateMachine").base
    doc = load_alias(svc, arn)
    if "routingConfiguration" in params:
        _check_routes(svc, sm_arn, params["routingConfiguration"])
        doc["routingConfiguration"] = params["routingConfiguration"]
    if "description" in params:
        doc["description"] = params["description"]
    doc["updateDate"] = now_ms() / 1000
    svc.store.commit([], [["SET", alias_key(arn), json.dumps(doc)]])
    return {"updateDate": doc["updateDate"]}


def delete_state_machine_alias(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineAliasArn"]
    parsed = parse_arn(arn, "stateMachine")
    if len(parsed.parts) != 2:
        raise ValidationException(f"Invalid Arn: '{arn}' is not a state machine alias ARN")
    svc.store.commit([], [["DEL", alias_key(arn)], ["ZREM", aliases_key(parsed.base), arn]])
    return {}


def list_state_machine_aliases(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineArn"]
    parse_arn(arn, "stateMachine")
    if not svc.redis.exists(state_machine_key(arn)):
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    items, token = _page(svc, params, aliases_key(arn), alias_key, "aliases:" + arn, newest_first=False)
    return {"stateMachineAliases": _entries(items, "stateMachineAliasArn"), "nextToken": token}


def _page(
    svc: Backend,
    params: dict[str, Any],
    index_key: str,
    doc_key: Callable[[str], str],
    scope: str,
    newest_first: bool,
) -> tuple[list[tuple[str, Any]], str | None]:
    """One page of an ARN index (a zset) with each ARN's stored document, and the next page's token."""
    size = page_size(params)
    offset = decode_token(params.get("nextToken"), scope)
    read = svc.redis.zrevrange if newest_first else svc.redis.zrange
    arns = read(index_key, offset, offset + size - 1)
    docs = svc.redis.mget([doc_key(a) for a in arns]) if arns else []
    total = int(svc.redis.zcard(index_key))
    return list(zip(arns, docs, strict=True)), next_token(offset, size, total, scope)


def _entries(items: list[tuple[str, Any]], arn_field: str) -> list[dict[str, Any]]:
    # a document deleted between the index read and MGET is skipped, not listed half-empty
    return [{arn_field: arn, "creationDate": json.loads(doc)["creationDate"]} for arn, doc in items if doc]
