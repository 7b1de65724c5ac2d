"""Calls answered on the event loop, and what must never run there.

connection.py answers the calls a pipeline makes all the time (StartExecution, SendTask*, ...) on
the event loop itself, so while one runs every other client of the process waits. Whatever may
take long inside such a call — an expression a pipeline author wrote, waiting for another thread
that is advancing the same execution — raises MoveToThread instead, before the call has written
anything; the connection then answers the call again from the start on a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

# set by the connection while it runs a call on the event loop
on_event_loop: ContextVar[bool] = ContextVar("on_event_loop", default=False)


class MoveToThread(BaseException):
    """Raised when a call on the event loop reaches work that may take long: run the call on a thread.

    A BaseException, so the handlers' and the core's `except Exception` let it through untouched.
    """


def leave_the_loop() -> None:
    """Raise MoveToThread when called on the event loop; nothing elsewhere."""
    if on_event_loop.get():
        raise MoveToThread()


def off_the_loop(
    run: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """`run`, except that on the event loop it raises MoveToThread instead of waiting for it."""

    def run_off_the_loop(request: dict[str, Any]) -> dict[str, Any]:
        leave_the_loop()
        return run(request)

    return run_off_the_loop
