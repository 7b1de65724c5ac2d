"""The engine's API: AWS JSON 1.0 requests to handlers, served on an event loop (see connection.py)."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from statemachines.settings import redact_url

from . import (
    activities,
    execution_queries,
    executions,
    state_machines,
    tags,
    tasks,
    teststate_api,
    versions,
)
from .api_errors import ApiError, InternalFailure, ServiceUnavailable, UnsupportedOperation
from .asl import offload
from .backend import Backend
from .config import EngineConfig
from .connection import Connection, Front
from .expression_pool import ExpressionPool
from .loop_calls import leave_the_loop_when_slow, off_the_loop
from .processes import Supervisor, child_config
from .protocol import encode_output, operation_for, parse_body, service_model, validate_input
from .timers import TimerLoop

log = logging.getLogger(__name__)

# a handler answers a dict for the output shape, or bytes already encoded (history events)
Handler = Callable[[Backend, dict[str, Any]], dict[str, Any] | bytes]

OPERATIONS: dict[str, Handler] = {
    "CreateStateMachine": state_machines.create_state_machine,
    "DescribeStateMachine": state_machines.describe_state_machine,
    "UpdateStateMachine": state_machines.update_state_machine,
    "ListStateMachines": state_machines.list_state_machines,
    "DeleteStateMachine": state_machines.delete_state_machine,
    "ValidateStateMachineDefinition": state_machines.validate_state_machine_definition,
    "PublishStateMachineVersion": versions.publish_state_machine_version,
    "ListStateMachineVersions": versions.list_state_machine_versions,
    "DeleteStateMachineVersion": versions.delete_state_machine_version,
    "CreateStateMachineAlias": versions.create_state_machine_alias,
    "DescribeStateMachineAlias": versions.describe_state_machine_alias,
    "UpdateStateMachineAlias": versions.update_state_machine_alias,
    "DeleteStateMachineAlias": versions.delete_state_machine_alias,
    "ListStateMachineAliases": versions.list_state_machine_aliases,
    "CreateActivity": activities.create_activity,
    "DescribeActivity": activities.describe_activity,
    "ListActivities": activities.list_activities,
    "DeleteActivity": activities.delete_activity,
    "GetActivityTask": activities.get_activity_task,
    "SendTaskSuccess": tasks.send_task_success,
    "SendTaskFailure": tasks.send_task_failure,
    "SendTaskHeartbeat": tasks.send_task_heartbeat,
    "StartExecution": executions.start_execution,
    "StartSyncExecution": executions.start_sync_execution,
    "DescribeExecution": executions.describe_execution,
    "DescribeStateMachineForExecution": executions.describe_state_machine_for_execution,
    "StopExecution": executions.stop_execution,
    "RedriveExecution": executions.redrive_execution,
    "ListExecutions": execution_queries.list_executions,
    "GetExecutionHistory": execution_queries.get_execution_history,
    "TestState": teststate_api.test_state,
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
    "ListTagsForResource": tags.list_tags_for_resource,
}
# a keep-alive connection with no request for this long is closed
IDLE_CONNECTION_S = 120.0
# connections waiting to be accepted (asyncio would otherwise listen again with 100)
LISTEN_BACKLOG = 1024
WAITING_THREADS = 900  # under the Redis pool's 1,000: each thread keeps a connection
_SUBJECT_FIELDS = ("executionArn", "stateMachineArn", "activityArn", "resourceArn", "stateMachineAliasArn")


def handle(svc: Backend, target: str | None, body: bytes) -> tuple[int, bytes]:
    """Answer one API call: (HTTP status, JSON body). Never raises."""
    params: dict[str, Any] = {}
    try:
        operation = operation_for(target)
        params = parse_body(body)
        validate_input(operation, params)
        handler = OPERATIONS.get(operation.name)
        if handler is None:  # in the model, not run here (e.g. the distributed Map's Map Runs)
            raise UnsupportedOperation(
                f"{operation.name} is not available in the local Step Functions engine"
            )
        result = handler(svc, params)
        return 200, result if isinstance(result, bytes) else encode_output(operation, result)
    except ApiError as exc:
        return exc.to_wire()
    except Exception as exc:
        if svc.stopping.is_set():  # its Redis connection was closed under it: the engine stops
            log.debug("%s: %s ended by the engine stopping: %r", _subject(params), target, exc)
            return ServiceUnavailable("The engine is stopping; retry.").to_wire()
        if isinstance(exc, redis.ConnectionError):
            log.warning("%s: Redis unavailable during %s: %s", _subject(params), target, exc)
            return ServiceUnavailable("Service is temporarily unavailable; retry.").to_wire()
        log.exception("%s: %s failed", _subject(params), target)
        return InternalFailure("The engine failed to process the request; see its log.").to_wire()


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    """Whether a client address is this machine's (asked per request; parsing it is not free)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # no address known (the transport gave no peer name): not loopback
        return False


def _subject(params: dict[str, Any]) -> str:
    for field in _SUBJECT_FIELDS:
        if isinstance(params.get(field), str):
            return str(params[field])
    return "-"


def listen(config: EngineConfig) -> socket.socket:
    """The listening socket (OSError when the port is taken: a second engine there fails at once)."""
    return socket.create_server((config.host, config.port), backlog=LISTEN_BACKLOG)


def run(config: EngineConfig) -> int:
    """Bind the port, then serve in this process or in `config.processes` children; the exit code."""
    sock = listen(config)
    if config.processes == 1:
        serve(config, sock)
        return 0
    service_model()  # loaded once here, shared by the children
    code = Supervisor(config, config.processes, lambda index: serve(child_config(config, index), sock)).run()
    sock.close()
    return code


def serve(config: EngineConfig, sock: socket.socket, idle_s: float = IDLE_CONNECTION_S) -> None:
    """Serve until SIGTERM/SIGINT: recover in-flight tasks, start the timer loop, answer HTTP."""
    # what pipeline authors wrote runs in killable processes of this engine process's own
    expressions = ExpressionPool()
    offload.install(off_the_loop(expressions.run), leave_the_loop_when_slow, expressions.begin_call)
    svc = Backend(config)
    activities.requeue_inflight(svc, config.engine_id)
    timers = TimerLoop(svc)
    timers.start()
    # threads for the calls that wait (200+ long polls at once) or grow with their input
    executor = ThreadPoolExecutor(max_workers=WAITING_THREADS, thread_name_prefix="waiting")
    front = Front(svc, handle, executor, is_loopback, idle_s)
    try:
        asyncio.run(_serve_forever(config, sock, front))
    finally:
        # closing the Redis connections wakes the threads blocked in a long poll, so the process
        # ends now, not after their slice; what they were handing out stays in the in-flight list
        svc.stopping.set()
        executor.shutdown(wait=False, cancel_futures=True)
        timers.stop()
        svc.store.close()
        expressions.close()
        offload.install(None)


async def _serve_forever(config: EngineConfig, sock: socket.socket, front: Front) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stop, config, signum, stopping)
    server = await loop.create_server(lambda: Connection(front), sock=sock, backlog=LISTEN_BACKLOG)
    log.info(
        "engine %s listening on http://%s:%s (redis %s)",
        config.engine_id,
        config.host,
        sock.getsockname()[1],
        redact_url(config.redis_url),
    )
    async with server:
        await stopping.wait()


def _stop(config: EngineConfig, signum: int, stopping: asyncio.Event) -> None:
    log.info("engine %s: signal %s, shutting down", config.engine_id, signum)
    stopping.set()
