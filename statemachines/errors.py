"""Errors shared by every Stepline process: configuration and pipeline-contract problems."""

from __future__ import annotations


class SteplineError(Exception):
    """Base class of Stepline's own errors outside the engine."""


class ConfigError(SteplineError):
    """Raised when a process's environment settings are missing or malformed; lists every problem."""

    def __init__(self, process: str, problems: list[str]) -> None:
        self.process = process
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{process}: invalid configuration ({len(problems)} problem(s)):\n{lines}")
