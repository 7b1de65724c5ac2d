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


class PipelineError(SteplineError):
    """Raised when a pipeline cannot be found, read or parsed, or breaks the pipeline contract."""

    def __init__(self, pipeline: str, problems: list[str]) -> None:
        self.pipeline = pipeline
        self.problems = problems
        super().__init__(f"pipeline {pipeline}: " + "; ".join(problems))


class DeployError(SteplineError):
    """Raised when an activity or a state machine cannot be created or updated as asked; names it and why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")
