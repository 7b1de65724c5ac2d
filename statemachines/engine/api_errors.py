"""The AWS Step Functions API errors, named exactly as AWS names them, and their wire format."""

from __future__ import annotations

import json


class ApiError(Exception):
    """Base class: raised when an API call must answer with an AWS error instead of a result."""

    status = 400
    code = "ApiError"  # what `__type` says: each subclass's own name, as AWS spells it

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = cls.__name__

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def to_wire(self) -> tuple[int, bytes]:
        """The HTTP status and JSON 1.0 body AWS sends; botocore maps `__type` to its exception class."""
        body = {"__type": self.code, "message": self.message}
        return self.status, json.dumps(body).encode()


class ActivityAlreadyExists(ApiError):
    """Raised when an activity of that name exists with other tags."""


class ActivityDoesNotExist(ApiError):
    """Raised when the activity ARN names no activity."""


class ActivityLimitExceeded(ApiError):
    """Raised when too many activities exist."""


class ActivityWorkerLimitExceeded(ApiError):
    """Raised when too many pollers wait."""


class ConflictException(ApiError):
    """Raised when the request conflicts with a resource's state."""


class ExecutionAlreadyExists(ApiError):
    """Raised when an execution of that name exists."""


class ExecutionDoesNotExist(ApiError):
    """Raised when the execution ARN names no execution."""


class ExecutionLimitExceeded(ApiError):
    """Raised when too many executions run."""


class ExecutionNotRedrivable(ApiError):
    """Raised when the execution cannot be redriven."""


class InvalidArn(ApiError):
    """Raised when an ARN is malformed or of the wrong resource type."""


class InvalidDefinition(ApiError):
    """Raised when a definition is not valid ASL."""


class InvalidExecutionInput(ApiError):
    """Raised when execution input is not JSON or too big."""


class InvalidLoggingConfiguration(ApiError):
    """Raised when loggingConfiguration is bad."""


class InvalidName(ApiError):
    """Raised when a resource name breaks AWS's naming rules."""


class InvalidOutput(ApiError):
    """Raised when SendTaskSuccess output is not JSON or too big."""


class InvalidToken(ApiError):
    """Raised when a task or page token is not one we issued."""


class InvalidTracingConfiguration(ApiError):
    """Raised when tracingConfiguration is bad."""


class MissingRequiredParameter(ApiError):
    """Raised when an update changes nothing."""


class ResourceNotFound(ApiError):
    """Raised when a resource (alias, map run, tagged ARN) is unknown."""


class ServiceQuotaExceededException(ApiError):
    """Raised when a quota is reached."""


class StateMachineAlreadyExists(ApiError):
    """Raised when the name exists with other settings."""


class StateMachineDeleting(ApiError):
    """Raised when the state machine is being deleted."""


class StateMachineDoesNotExist(ApiError):
    """Raised when the ARN names no state machine."""


class StateMachineLimitExceeded(ApiError):
    """Raised when too many state machines exist."""


class StateMachineTypeNotSupported(ApiError):
    """Raised when the type cannot do this."""


class TaskDoesNotExist(ApiError):
    """Raised when the task token names no task."""


class TaskTimedOut(ApiError):
    """Raised when the task token is no longer wanted (done, timed out, stopped)."""


class TooManyTags(ApiError):
    """Raised when a resource would carry more than 50 tags."""


class ValidationException(ApiError):
    """Raised when the request breaks the service model."""


# Errors of the protocol layer, not in the Step Functions model but what AWS answers.


class UnknownOperationException(ApiError):
    """Raised when X-Amz-Target names no action."""


class SerializationException(ApiError):
    """Raised when the body is not a JSON object."""


class UnrecognizedClientException(ApiError):
    """Raised when the access key is unknown."""


class InvalidSignatureException(ApiError):
    """Raised when the SigV4 signature is wrong."""


class MissingAuthenticationTokenException(ApiError):
    """Raised when a request is unsigned."""

    status = 403


class AccessDeniedException(ApiError):
    """Raised when a non-loopback client calls an open engine."""

    status = 403


class UnsupportedOperation(ApiError):
    """Raised when an operation has no local implementation."""


class InternalFailure(ApiError):
    """Raised when the engine itself failed; details are in its log."""

    status = 500


class ServiceUnavailable(ApiError):
    """Raised when Redis cannot be reached."""

    status = 503
