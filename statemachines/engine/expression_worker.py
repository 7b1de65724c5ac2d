"""The process that evaluates a pipeline author's expressions for an engine, killed when one runs too long.

`python -m statemachines.engine.expression_worker <parent pid>`, started by expression_pool.py. Each
request and reply is one JSON document framed by its length (4 bytes, big-endian), on stdin and
stdout. Requests (see offload.py):

| kind | fields | evaluates |
|---|---|---|
| `jsonata` | `expr`, `states`, `variables`, `field` | jsonata_query.evaluate_jsonata |
| `jsonpath` | `path`, `data` | paths.find_values |

Replies: `{"value": ...}`, `{"undefined": true}` (JSONata's nothing), or `{"error": [name, cause]}`
(a StatesError the engine raises as it is). The process holds no secrets and no connections (its
environment is empty), runs at a lower priority than the engine, may use at most MEMORY_BYTES of
address space (past that an evaluation fails with MemoryError, not the machine), and dies with its
engine.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import resource
import signal
import struct
import sys
import uuid
from collections.abc import Callable
from typing import Any

from statemachines.nesting import TooDeep, check_depth

from .asl.errors import StatesError
from .asl.jsonata_query import UNDEFINED, evaluate_jsonata, query_error
from .asl.paths import compile_path, find_values

MEMORY_BYTES = 512 * 1024 * 1024  # a worker starts at ~30 MB; 256 KiB payloads never need more
# a reply is parsed by the engine: nothing a state could use is this big (payloads are 256 KiB)
MAX_REPLY_BYTES = 16 * 1024 * 1024
HEADER = struct.Struct(">I")
_PR_SET_PDEATHSIG = 1


class _Randomness:
    """$random() and $uuid() in the worker: its own generator (offload.py's deviation)."""

    def random(self) -> float:
        return random.random()

    def uuid(self) -> str:
        return str(uuid.uuid4())


def _jsonata(request: dict[str, Any]) -> dict[str, Any]:
    expr, field = request["expr"], request["field"]
    try:
        value = evaluate_jsonata(expr, request["states"], request["variables"], _Randomness(), field)
    except StatesError as exc:
        return {"error": [exc.name, exc.cause]}
    if value is UNDEFINED:
        return {"undefined": True}
    try:
        check_depth(value)
    except TooDeep as exc:
        return {"error": _as_list(query_error(expr, field, f"returned a value that is {exc}."))}
    return {"value": value}


def _jsonpath(request: dict[str, Any]) -> dict[str, Any]:
    return {"value": find_values(compile_path(request["path"]), request["data"])}


def _as_list(error: StatesError) -> list[str | None]:
    return [error.name, error.cause]


KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"jsonata": _jsonata, "jsonpath": _jsonpath}


def answer(request: dict[str, Any]) -> bytes:
    """The encoded reply to one request; never raises for what an expression does."""
    try:
        reply = KINDS[request["kind"]](request)
        data = json.dumps(reply).encode()
    except (MemoryError, RecursionError) as exc:
        data = json.dumps({"failed": f"{type(exc).__name__}: the evaluation ran out of room"}).encode()
    if len(data) > MAX_REPLY_BYTES:
        data = json.dumps({"failed": f"the result is over {MAX_REPLY_BYTES} bytes"}).encode()
    return data


def serve(read_fd: int, write_fd: int) -> int:
    """Answer requests until the engine closes the pipe."""
    while True:
        head = _read_exactly(read_fd, HEADER.size)
        if head is None:
            return 0
        body = _read_exactly(read_fd, HEADER.unpack(head)[0])
        if body is None:
            return 0
        data = answer(json.loads(body))
        _write_all(write_fd, HEADER.pack(len(data)) + data)


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def confine(parent: int) -> None:
    """Lower priority, bounded memory, and death with the engine (even a SIGKILLed one)."""
    os.nice(10)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: a closed pipe still ends an idle worker
        pass
    if os.getppid() != parent:  # the engine died before prctl took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    confine(int(argv[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C stops the engine, which closes the pipe
    return serve(sys.stdin.fileno(), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
