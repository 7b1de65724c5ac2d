"""Tags on state machines and activities: TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

from typing import Any

from .api_errors import ResourceNotFound, TooManyTags
from .arns import parse_arn
from .backend import Backend
from .store import activity_key, state_machine_key, tags_key

MAX_TAGS = 50


def _check_resource(svc: Backend, arn: str) -> None:
    parsed = parse_arn(arn, "stateMachine", "activity")
    key = state_machine_key(arn) if parsed.kind == "stateMachine" else activity_key(arn)
    if not svc.redis.exists(key):
        raise ResourceNotFound(f"Resource not found: '{arn}'")


def tag_resource(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["resourceArn"]
    _check_resource(svc, arn)
    new = {t["key"]: t.get("value", "") for t in params["tags"]}
    current = svc.redis.hkeys(tags_key(arn))
    if len(set(current) | set(new)) > MAX_TAGS:
        raise TooManyTags(f"Too many tags: a resource can have at most {MAX_TAGS} tags")
    if new:
        svc.redis.hset(tags_key(arn), mapping=new)
    return {}


def untag_resource(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["resourceArn"]
    _check_resource(svc, arn)
    if params["tagKeys"]:
        svc.redis.hdel(tags_key(arn), *params["tagKeys"])
    return {}


def list_tags_for_resource(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["resourceArn"]
    _check_resource(svc, arn)
    tags = svc.redis.hgetall(tags_key(arn))
    return {"tags": [{"key": k, "value": v} for k, v in sorted(tags.items())]}
