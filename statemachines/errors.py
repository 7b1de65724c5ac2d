"""Errors shared by every Stepline process: configuration, pipeline, build-step contract and blob store problems."""

from __future__ import annotations

from statemachines.step_errors import INVALID_TASK_INPUT


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


class ContractError(SteplineError):
    """Raised when a task input or a pipeline does not follow the build-step contract."""

    error_name = INVALID_TASK_INPUT

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeployError(SteplineError):
    """Raised when an activity or a state machine cannot be created or updated as asked; names it and why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class BlobError(SteplineError):
    """Raised when the blob store cannot store, find or delete a blob."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"blob {key}: {reason}")
        self.key = key
        self.reason = reason


class BlobMissing(BlobError):
    """Raised when a blob that was asked for does not exist (deleted by retention, or never stored)."""


class TransferStopped(BlobError):
    """Raised when a transfer's `stop` said so between chunks (its task was cancelled); nothing was stored."""
