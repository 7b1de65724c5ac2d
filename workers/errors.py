"""The worker's errors: why a step did not succeed, named as pipelines Catch and Retry them (statemachines/step_errors.py)."""

from __future__ import annotations

from statemachines import outcomes, step_errors
from statemachines.errors import SteplineError


class WorkerError(SteplineError):
    """Base class of the worker's own errors."""


class StepError(WorkerError):
    """Raised when a step ends without success; reported with SendTaskFailure as `error_name`.

    `reason` is short (a GitHub status description), `cause` is the long story for the execution history.
    """

    error_name = step_errors.STEP_FAILED
    status_state = "failure"  # the GitHub commit status this ends the step's context with
    outcome = outcomes.FAILED  # what it means (a check run's conclusion)

    def __init__(self, reason: str, cause: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause or reason


class StepFailed(StepError):
    """Raised when a command of the step exits with a non-zero status."""

    def __init__(self, command: str, exit_code: int, reason: str, cause: str) -> None:
        super().__init__(reason, cause)
        self.command = command
        self.exit_code = exit_code


class StepTimedOut(StepError):
    """Raised when the step runs longer than its timeout_seconds and its process group is killed."""

    error_name = step_errors.STEP_TIMED_OUT
    outcome = outcomes.TIMED_OUT

    def __init__(self, timeout_seconds: float, reason: str, cause: str) -> None:
        super().__init__(reason, cause)
        self.timeout_seconds = timeout_seconds


class CheckoutFailed(StepError):
    """Raised when the repository or the commit cannot be fetched or checked out."""

    error_name = step_errors.CHECKOUT_FAILED
    status_state = "error"


class InvalidTaskInput(StepError):
    """Raised when a task's input breaks the build-step contract (statemachines/contract.py)."""

    error_name = step_errors.INVALID_TASK_INPUT
    status_state = "error"


class WorkerShutdown(StepError):
    """Raised when the worker is stopped (SIGTERM) while the step runs; pipelines retry it elsewhere."""

    error_name = step_errors.WORKER_SHUTDOWN
    status_state = "error"


class WorkerFault(StepError):
    """Raised (reported) when the worker itself fails unexpectedly while handling a task: a bug."""

    error_name = step_errors.WORKER_ERROR
    status_state = "error"


class ArtifactFailed(StepError):
    """Raised when a passed step's artifacts cannot be stored: a later step would miss them, so the step fails."""

    error_name = step_errors.ARTIFACT_FAILED
    status_state = "error"


class SandboxUnavailable(WorkerError):
    """Raised at start-up when the worker cannot build a step's sandbox; it then refuses to start."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CacheRefused(WorkerError):
    """Raised when a step's cache cannot be packed or unpacked (tar failed, over its size limit)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TaskStopped(WorkerError):
    """Raised when Step Functions no longer wants the task (execution stopped, task timed out).

    Nothing is reported to Step Functions: the task token is already dead.
    """

    def __init__(self, reason: str = "the execution was stopped or the task timed out") -> None:
        super().__init__(reason)
        self.reason = reason
