"""Errors of a local run; each ends `stepline run` with one clear message and exit status 2."""

from __future__ import annotations

from statemachines.errors import SteplineError


class LocalRunError(SteplineError):
    """Raised when a local run cannot start or cannot go on (the message says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotARepository(LocalRunError):
    """Raised when the directory to run is not inside a git work tree."""

    def __init__(self, directory: str, said: str) -> None:
        super().__init__(f"{directory} is not a git working copy ({said})")
        self.directory = directory


class UnknownStep(LocalRunError):
    """Raised when --only names a step the pipeline does not have."""

    def __init__(self, step: str, known: list[str]) -> None:
        super().__init__(f"the pipeline has no step {step!r} (its steps: {', '.join(known) or 'none'})")
        self.step = step
        self.known = known


class StackFailed(LocalRunError):
    """Raised when a process of the private stack (redis-server, the engine, the worker) fails to start."""

    def __init__(self, process: str, said: str) -> None:
        super().__init__(f"{process} did not start: {said}")
        self.process = process
        self.said = said
