"""Where the core evaluates what a pipeline author wrote that can run long: JSONata, and JSONPath beyond
plain steps (wildcards, filters, '..').

By default right here, in this process: the core stays pure and its tests drive it directly. The
engine's service installs a runner (`install`) that sends each such evaluation to a killable worker
process (expression_pool.py): an expression that runs for hours, holds the GIL inside `re`, or
allocates gigabytes then costs that worker, never the engine and its other clients.

A runner takes a request (a JSON-serialisable dict: `kind` plus its fields, see expression_worker.py)
and returns the worker's reply dict, or raises EvaluationTimeout / EvaluationFailed.

The core also calls `checkpoint()` as it enters or validates each state: the service may then stop a call that
has run long where it must not (a call on the event loop, loop_calls.py) by raising there, since
nothing is written before the core returns. And `begin_call(execution_arn)` as each call (start,
advance, redrive, TestState) begins: the service counts the time a call, and an execution, spend
evaluating from there, so a state that catches its own timeout and runs again cannot keep a call
(or an execution, lap after lap behind a Wait) evaluating for hours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Runner = Callable[[dict[str, Any]], dict[str, Any]]

_runner: Runner | None = None
_checkpoint: Callable[[], None] | None = None
_begin_call: Callable[[str | None], None] | None = None


class EvaluationTimeout(Exception):
    """Raised when an evaluation ran past its time limit and its worker process was killed."""

    def __init__(self, limit_ms: int) -> None:
        super().__init__(f"the evaluation ran longer than {limit_ms} ms")
        self.limit_ms = limit_ms


class EvaluationFailed(Exception):
    """Raised when the worker process died or answered something unreadable (its memory ran out...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def install(
    runner: Runner | None,
    checkpoint: Callable[[], None] | None = None,
    begin_call: Callable[[str | None], None] | None = None,
) -> None:
    """Evaluate out of process through `runner` from now on (None: in this process again)."""
    global _runner, _checkpoint, _begin_call
    _runner, _checkpoint, _begin_call = runner, checkpoint, begin_call


def runner() -> Runner | None:
    """The installed runner, or None when evaluations run in this process."""
    return _runner


def begin_call(execution_arn: str | None = None) -> None:
    """Called by the core as a call begins (start, advance, redrive; TestState names no execution)."""
    if _begin_call is not None:
        _begin_call(execution_arn)


def checkpoint() -> None:
    """Called by the core between states; the installed checkpoint may raise to stop the call."""
    if _checkpoint is not None:
        _checkpoint()
