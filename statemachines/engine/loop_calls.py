"""Calls answered on the event loop, and what must never run there.

connection.py answers the calls a pipeline makes all the time (StartExecution, SendTask*, ...) on
the event loop itself, so while one runs every other client of the process waits. Whatever may
take long inside such a call — an expression a pipeline author wrote, waiting for another thread
that is advancing the same execution — raises MoveToThread instead, before the call has written
anything; the connection then answers the call again from the start on a thread. So does a call
still running after LOOP_BUDGET_S when the core enters its next state (an inline Map over thousands
of items, a long chain of states): the loop is held for that long at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

LOOP_BUDGET_S = 0.05
# when the call the connection runs on the event loop began (time.monotonic()); None elsewhere
loop_call_began: ContextVar[float | None] = ContextVar("loop_call_began", default=None)


class MoveToThread(BaseException):
    """Raised when a call on the event loop reaches work that may take long: run the call on a thread.

    A BaseException, so the handlers' and the core's `except Exception` let it through untouched.
    """


def on_the_loop() -> bool:
    """Whether this is a call the connection runs on the event loop."""
    return loop_call_began.get() is not None


def leave_the_loop() -> None:
    """Raise MoveToThread when called on the event loop; nothing elsewhere."""
    if loop_call_began.get() is not None:
        raise MoveToThread()


def leave_the_loop_when_slow() -> None:
    """Raise MoveToThread when called on the event loop by a call that began LOOP_BUDGET_S ago."""
    began = loop_call_began.get()
    if began is not None and time.monotonic() - began > LOOP_BUDGET_S:
        raise MoveToThread()


def off_the_loop(
    run: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`run`, except that on the event loop it raises MoveToThread instead of waiting for it."""

    def run_off_the_loop(request: dict[str, Any]) -> dict[str, Any]:
        leave_the_loop()
        return run(request)

    return run_off_the_loop
