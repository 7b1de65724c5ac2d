"""Activities: create, describe, list, delete, and handing their tasks to GetActivityTask pollers."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from .api_errors import ActivityAlreadyExists, ActivityDoesNotExist
from .arns import check_name, parse_arn
from .backend import Backend, client_connected, now_ms
from .event_batches import advance
from .pages import decode_token, next_token, page_size
from .store import ACTIVITIES, activity_key, inflight_key, queue_key, tags_key, token_key
from .transitions import close_token_ops, is_empty

log = logging.getLogger(__name__)

POLL_SLICE_S = 5.0


def create_activity(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    name = params["name"]
    check_name(name)
    arn = svc.arns.activity(name)
    tags = {t["key"]: t.get("value", "") for t in params.get("tags") or []}
    doc = {"activityArn": arn, "name": name, "creationDate": now_ms() / 1000}
    ops = [["SET", activity_key(arn), json.dumps(doc)], ["ZADD", ACTIVITIES, str(now_ms()), arn]]
    ops += [["HSET", tags_key(arn), k, v] for k, v in tags.items()]
    if svc.store.commit([["EXISTS", activity_key(arn), "0"]], ops) == 0:
        return {"activityArn": arn, "creationDate": doc["creationDate"]}
    # AWS: idempotent unless the tags differ
    existing = load_activity(svc, arn)
    if tags and svc.redis.hgetall(tags_key(arn)) != tags:
        raise ActivityAlreadyExists(f"Activity already exists: '{arn}'")
    return {"activityArn": arn, "creationDate": existing["creationDate"]}


def load_activity(svc: Backend, arn: str) -> dict[str, Any]:
    parse_arn(arn, "activity")
    doc = svc.store.get_json(activity_key(arn))
    if doc is None:
        raise ActivityDoesNotExist(f"Activity Does Not Exist: '{arn}'")
    return dict(doc)


def describe_activity(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    return load_activity(svc, params["activityArn"])


def list_activities(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    size = page_size(params)
    offset = decode_token(params.get("nextToken"), "acts")
    arns = svc.redis.zrange(ACTIVITIES, offset, offset + size - 1)
    docs = svc.redis.mget([activity_key(a) for a in arns]) if arns else []
    items = [json.loads(d) for d in docs if d]
    total = int(svc.redis.zcard(ACTIVITIES))
    return {"activities": items, "nextToken": next_token(offset, size, total, "acts")}


def delete_activity(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["activityArn"]
    parse_arn(arn, "activity")
    svc.store.commit([], [["DEL", activity_key(arn), tags_key(arn)], ["ZREM", ACTIVITIES, arn]])
    fail_queued_tasks(svc, arn)
    return {}


def fail_queued_tasks(svc: Backend, arn: str) -> int:
    """Fail every task still queued on a deleted activity; returns how many.

    No worker can take them any more (GetActivityTask answers ActivityDoesNotExist), so their
    executions would otherwise wait for their timeouts, or for ever. A task a worker already holds
    stays valid. Each token leaves the queue in the commit that fails its task, so a repeated call
    (MoveToThread) fails nothing twice.

    deviation: AWS documents nothing about tasks queued on a deleted activity; they fail with the
    error a Task on a deleted activity gets (States.Runtime, "The activity <arn> does not exist.").
    """
    queue = queue_key(arn)
    cause = f"The activity {arn} does not exist."
    failed = 0
    for token in svc.redis.lrange(queue, 0, -1):
        token = str(token)
        exec_arn, status = svc.redis.hmget(token_key(token), "exec", "status")
        if exec_arn is None or status != "open":  # no longer wanted: only drop it
            svc.redis.lrem(queue, 1, token)
            continue
        event = {"type": "TaskFailed", "token": token, "error": "States.Runtime", "cause": cause}
        guards = [["HGET", token_key(token), "status", "open"]]
        first_ops = [["LREM", queue, "1", token], *close_token_ops(token)]
        out = advance(svc, str(exec_arn), event, guards=guards, first_ops=first_ops)
        if out is not None and not is_empty(out):
            failed += 1
            log.info("%s: its activity %s was deleted; the queued task failed", exec_arn, arn)
    return failed


def get_activity_task(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["activityArn"]
    load_activity(svc, arn)
    deadline = time.monotonic() + svc.config.poll_seconds
    inflight = inflight_key(svc.config.engine_id)
    connected = client_connected.get()
    while (remaining := deadline - time.monotonic()) > 0 and connected():
        # BLMOVE hands each token to one poller and keeps it in our in-flight list, so a crash
        # between here and the ActivityStarted commit cannot lose it (requeue_token); short
        # slices let a poll whose client went away end early
        token = svc.redis.blmove(
            queue_key(arn), inflight, min(max(remaining, 0.01), POLL_SLICE_S), "LEFT", "RIGHT"
        )
        if token is None:
            continue
        with svc.hand_outs.holding(str(token)):
            task = _hand_out(svc, inflight, str(token), params.get("workerName"), connected)
        if task is not None:
            return task
        if not connected():
            break
    return {"taskToken": ""}


def _hand_out(
    svc: Backend, inflight: str, token: str, worker_name: str | None, connected: Any
) -> dict[str, Any] | None:
    if not connected():  # the worker is gone: give the task to the next poller instead
        requeue_token(svc, inflight, token)
        return None
    try:
        return start_task(svc, token, worker_name)
    except Exception:
        _requeue_quietly(svc, inflight, token)
        raise


def _requeue_quietly(svc: Backend, inflight: str, token: str) -> None:
    # the poller gets an error, so nobody has the task: give it back (or leave it to the sweep)
    try:
        requeue_token(svc, inflight, token)
    except redis.RedisError:
        log.warning("token of a failed hand-out stays in %s until the in-flight sweep", inflight)


def start_task(svc: Backend, token: str, worker_name: str | None) -> dict[str, Any] | None:
    """Mark a popped task started in its execution; None when the task is no longer wanted."""
    inflight = inflight_key(svc.config.engine_id)
    exec_arn, task_input, status = svc.redis.hmget(token_key(token), "exec", "input", "status")
    drop = [["LREM", inflight, "1", token]]
    if exec_arn is None or status != "open":
        svc.store.commit([], drop)
        return None
    event = {"type": "ActivityStarted", "token": token, "worker_name": worker_name}
    # an empty outcome: the task was already started (a requeued copy of a token handed out)
    out = advance(svc, str(exec_arn), event, first_ops=drop)
    if out is None or is_empty(out):
        return None
    log.debug("%s: activity task started by %s", exec_arn, worker_name)
    return {"taskToken": token, "input": task_input}


def requeue_token(svc: Backend, inflight: str, token: str) -> bool:
    """Move one popped token from `inflight` back to the head of its queue, in one atomic step
    (a token no longer open is only dropped). False when it had already left the list.

    The ActivityStarted commit removes a token from the in-flight list and the poller is only
    answered after it, so a token still listed reached no worker and can be handed out again.
    Should a requeue race a hand-out still going on, the core starts the task only once.
    """
    activity, status = svc.redis.hmget(token_key(token), "activity", "status")
    if activity and status == "open":
        # LREM is the guard: it removes the token (1) or finds it gone (0, nothing written)
        guards = [["HGET", token_key(token), "status", "open"], ["LREM", inflight, "1", token, "1"]]
        result = svc.store.commit(guards, [["LPUSH", queue_key(str(activity)), token]])
        if result != 1:  # 1: closed meanwhile, so only drop it
            return result == 0
    return int(svc.redis.lrem(inflight, 1, token)) == 1


def requeue_inflight(svc: Backend, engine_id: str) -> int:
    """Give back every task `engine_id` popped and never handed out (it died, or we restart)."""
    inflight = inflight_key(engine_id)
    moved = sum(requeue_token(svc, inflight, str(token)) for token in svc.redis.lrange(inflight, 0, -1))
    if moved:
        log.info("engine %s: %s popped activity tasks back on their queues", engine_id, moved)
    return moved


def requeue_stranded(svc: Backend, seen_before: set[str]) -> set[str]:
    """Requeue tokens in our own in-flight list that no thread of ours is handing out and that
    `seen_before` (the previous sweep's answer) already held; returns this sweep's candidates.

    A token lands there unowned when Redis failed mid hand-out (BLMOVE's reply or the
    ActivityStarted commit lost). Two sweeps in a row: a BLMOVE's reply may still be on its way.
    """
    inflight = inflight_key(svc.config.engine_id)
    listed = set(svc.redis.lrange(inflight, 0, -1)) - svc.hand_outs.tokens()
    for token in listed & seen_before:
        if requeue_token(svc, inflight, token):
            log.warning("engine %s: requeued a stranded activity task", svc.config.engine_id)
    return listed
