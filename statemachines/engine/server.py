"""The HTTP front of the engine: one thread per connection, AWS JSON 1.0 requests to API handlers."""

from __future__ import annotations

import functools
import http.client
import ipaddress
import logging
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis

from . import activities, execution_queries, executions, single_state, state_machines, tags, tasks, versions
from .api_errors import (
    AccessDenied,
    ApiError,
    InternalFailure,
    NotAvailableLocally,
    SerializationException,
    ServiceUnavailable,
)
from .config import EngineConfig
from .http_messages import read_headers, response_head
from .idle_connections import IdleConnections
from .processes import Supervisor, child_config
from .protocol import CONTENT_TYPE, encode_output, operation_for, parse_body, service_model, validate_input
from .service import Service, client_connected
from .sigv4 import verify_request
from .timers import TimerLoop

log = logging.getLogger(__name__)

# a handler answers a dict for the output shape, or bytes already encoded (history events)
Handler = Callable[[Service, dict[str, Any]], dict[str, Any] | bytes]

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
    "TestState": single_state.test_state,
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
    "ListTagsForResource": tags.list_tags_for_resource,
}
# in the model but not run locally (Map Runs are distributed-map resources): an AWS-shaped error
NOT_LOCAL = ("DescribeMapRun", "ListMapRuns", "UpdateMapRun")
MAX_BODY = 4 * 1024 * 1024
# a keep-alive connection with no request for this long is closed, releasing its thread
IDLE_CONNECTION_S = 120
_SUBJECT_FIELDS = ("executionArn", "stateMachineArn", "activityArn", "resourceArn", "stateMachineAliasArn")


def handle(svc: Service, target: str | None, body: bytes) -> tuple[int, bytes]:
    """Answer one API call: (HTTP status, JSON body). Never raises."""
    params: dict[str, Any] = {}
    try:
        operation = operation_for(target)
        params = parse_body(body)
        validate_input(operation, params)
        handler = OPERATIONS.get(operation.name)
        if handler is None:
            raise NotAvailableLocally(f"{operation.name} is not available in the local Step Functions engine")
        result = handler(svc, params)
        return 200, result if isinstance(result, bytes) else encode_output(operation, result)
    except ApiError as exc:
        return exc.to_wire()
    except redis.ConnectionError as exc:
        log.warning("%s: Redis unavailable during %s: %s", _subject(params), target, exc)
        return ServiceUnavailable("Service is temporarily unavailable; retry.").to_wire()
    except Exception:
        log.exception("%s: %s failed", _subject(params), target)
        return InternalFailure("The engine failed to process the request; see its log.").to_wire()


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str) -> bool:
    """Whether a client address is this machine's (asked per request; parsing it is not free)."""
    return ipaddress.ip_address(host).is_loopback


def _subject(params: dict[str, Any]) -> str:
    for field in _SUBJECT_FIELDS:
        if isinstance(params.get(field), str):
            return str(params[field])
    return "-"


class RequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive; one instance per connection, on its own thread."""

    protocol_version = "HTTP/1.1"
    # send_error writes head and body separately: with Nagle on, such an answer would wait for
    # the client's delayed ACK (~40 ms)
    disable_nagle_algorithm = True
    server_version = "Stepline-Engine"
    # no socket timeout (see IdleConnections): idle connections are closed by the server's watcher
    timeout = None
    svc: Service
    idle: IdleConnections
    raw_requestline: bytes  # read by handle_one_request before it calls parse_request

    def setup(self) -> None:
        super().setup()
        self.idle.waiting(self.connection)

    def finish(self) -> None:
        self.idle.forget(self.connection)
        self.svc.store.release_thread()
        super().finish()

    def parse_request(self) -> bool:
        # boto3's request lines ("POST / HTTP/1.1") take this path; anything else (HTTP/1.0,
        # HTTP/0.9, malformed) gets the stdlib's own parsing and error answers
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] != "HTTP/1.1":
            return super().parse_request()
        self.requestline = requestline
        self.command, path, self.request_version = words
        # as the stdlib does: "//x" would read as a host to some clients
        self.path = "/" + path.lstrip("/") if path.startswith("//") else path
        try:
            self.headers = read_headers(self.rfile, self.MessageClass)
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err))
            return False
        self.close_connection = self.headers.get("Connection", "").lower() == "close"
        expect = self.headers.get("Expect", "")
        return expect.lower() != "100-continue" or self.handle_expect_100()

    def do_POST(self) -> None:
        try:
            body = self._read_body()
            self.idle.working(self.connection)
            self._authorize(body)
        except ApiError as exc:
            self.close_connection = True
            self._send(*exc.to_wire())
            return
        except Exception:
            log.exception("-: reading or authorising a request from %s failed", self.client_address[0])
            self.close_connection = True
            self._send(*InternalFailure("The engine failed to read the request.").to_wire())
            return
        client_connected.set(self._connected)
        self._send(*handle(self.svc, self.headers.get("X-Amz-Target"), body))

    def _connected(self) -> bool:
        # readable with nothing to read means the client closed its end
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise SerializationException("Content-Length is not a number") from exc
        if not 0 <= length <= MAX_BODY:
            raise SerializationException(f"Request body must be at most {MAX_BODY} bytes")
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        # a health probe for Procfile supervisors and tests: no auth, no data
        self.idle.working(self.connection)
        self._send(200, b'{"status":"ok"}')

    def _authorize(self, body: bytes) -> None:
        keys = self.svc.config.access_keys
        if keys:
            host = self.headers.get("Host", "")
            verify_request(keys, "POST", host, self.path, dict(self.headers.items()), body)
        elif not is_loopback(self.client_address[0]):
            raise AccessDenied("Set ENGINE_ACCESS_KEYS to accept calls from other hosts.")

    def _send(self, status: int, body: bytes) -> None:
        self.log_request(status)
        if self.request_version == "HTTP/0.9":  # no head at all, as send_response does for 0.9
            self.wfile.write(body)
            return
        reason = self.responses[status][0] if status in self.responses else ""
        head = response_head(status, reason, self.version_string(), CONTENT_TYPE, len(body))
        # one write, not head then body: the client then wakes once per answer, not twice
        self.wfile.write(head + body)
        self.idle.waiting(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):  # called for every answer: format only when shown
            log.debug("%s %s", self.client_address[0], format % args)


class EngineHTTPServer(ThreadingHTTPServer):
    """Threads per connection (200+ long polls must not starve other calls); a deep accept queue."""

    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setblocking(True)  # not inherited from a non-blocking listening socket everywhere
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that hung up before its answer is routine (a stopped worker's poll), not a fault
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("-: client %s went away: %s", client_address, error)
            return
        log.error("-: unexpected error serving %s", client_address, exc_info=error)


def make_server(svc: Service, idle: IdleConnections) -> EngineHTTPServer:
    server = EngineHTTPServer((svc.config.host, svc.config.port), RequestHandler)
    bind_handler(server, svc, idle)
    return server


def bind_handler(server: EngineHTTPServer, svc: Service, idle: IdleConnections) -> None:
    server.RequestHandlerClass = type("BoundRequestHandler", (RequestHandler,), {"svc": svc, "idle": idle})


def run(config: EngineConfig) -> int:
    """Bind the port, then serve in this process or in `config.processes` children; the exit code."""
    server = EngineHTTPServer((config.host, config.port), RequestHandler)
    if config.processes == 1:
        serve(config, server)
        return 0
    # the children race to accept each connection: the losers must not block in accept()
    server.socket.setblocking(False)
    service_model()  # loaded once here, shared by the children
    code = Supervisor(
        config, config.processes, lambda index: serve(child_config(config, index), server)
    ).run()
    server.server_close()
    return code


def serve(config: EngineConfig, server: EngineHTTPServer) -> None:
    """Serve until SIGTERM/SIGINT: recover in-flight tasks, start the timer loop, answer HTTP."""
    svc = Service(config)
    activities.requeue_inflight(svc, config.engine_id)
    timers = TimerLoop(svc)
    timers.start()
    idle = IdleConnections(IDLE_CONNECTION_S)
    bind_handler(server, svc, idle)
    idle.start()

    def shutdown(signum: int, _frame: Any) -> None:
        log.info("engine %s: signal %s, shutting down", config.engine_id, signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info(
        "engine %s listening on http://%s:%s (redis %s)",
        config.engine_id,
        config.host,
        server.server_address[1],
        config.redis_url,
    )
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        idle.stop()
        timers.stop()
        server.server_close()
        svc.store.close()
