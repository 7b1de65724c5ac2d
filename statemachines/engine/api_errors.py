"""The AWS Step Functions API errors, named exactly as AWS names them, and their wire format."""

from __future__ import annotations

import json


class ApiError(Exception):
    """Base class: raised when an API call must answer with an AWS error instead of a result."""

    status = 400
    code = "ApiError"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def to_wire(self) -> tuple[int, bytes]:
        """The HTTP status and JSON 1.0 body AWS sends; botocore maps `__type` to its exception class."""
        body = {"__type": self.code, "message": self.message}
        return self.status, json.dumps(body).encode()


def _error(code: str, doc: str, status: int = 400) -> type[ApiError]:
    return type(code, (ApiError,), {"code": code, "status": status, "__doc__": doc})


ActivityAlreadyExists = _error(
    "ActivityAlreadyExists", "Raised when an activity of that name exists with other tags."
)
ActivityDoesNotExist = _error("ActivityDoesNotExist", "Raised when the activity ARN names no activity.")
ActivityLimitExceeded = _error("ActivityLimitExceeded", "Raised when too many activities exist.")
ActivityWorkerLimitExceeded = _error("ActivityWorkerLimitExceeded", "Raised when too many pollers wait.")
ConflictException = _error("ConflictException", "Raised when the request conflicts with a resource's state.")
ExecutionAlreadyExists = _error("ExecutionAlreadyExists", "Raised when an execution of that name exists.")
ExecutionDoesNotExist = _error("ExecutionDoesNotExist", "Raised when the execution ARN names no execution.")
ExecutionLimitExceeded = _error("ExecutionLimitExceeded", "Raised when too many executions run.")
ExecutionNotRedrivable = _error("ExecutionNotRedrivable", "Raised when the execution cannot be redriven.")
InvalidArn = _error("InvalidArn", "Raised when an ARN is malformed or of the wrong resource type.")
InvalidDefinition = _error("InvalidDefinition", "Raised when a definition is not valid ASL.")
InvalidExecutionInput = _error("InvalidExecutionInput", "Raised when execution input is not JSON or too big.")
InvalidLoggingConfiguration = _error(
    "InvalidLoggingConfiguration", "Raised when loggingConfiguration is bad."
)
InvalidName = _error("InvalidName", "Raised when a resource name breaks AWS's naming rules.")
InvalidOutput = _error("InvalidOutput", "Raised when SendTaskSuccess output is not JSON or too big.")
InvalidToken = _error("InvalidToken", "Raised when a task or page token is not one we issued.")
InvalidTracingConfiguration = _error(
    "InvalidTracingConfiguration", "Raised when tracingConfiguration is bad."
)
MissingRequiredParameter = _error("MissingRequiredParameter", "Raised when an update changes nothing.")
ResourceNotFound = _error(
    "ResourceNotFound", "Raised when a resource (alias, map run, tagged ARN) is unknown."
)
ServiceQuotaExceededException = _error("ServiceQuotaExceededException", "Raised when a quota is reached.")
StateMachineAlreadyExists = _error(
    "StateMachineAlreadyExists", "Raised when the name exists with other settings."
)
StateMachineDeleting = _error("StateMachineDeleting", "Raised when the state machine is being deleted.")
StateMachineDoesNotExist = _error("StateMachineDoesNotExist", "Raised when the ARN names no state machine.")
StateMachineLimitExceeded = _error("StateMachineLimitExceeded", "Raised when too many state machines exist.")
StateMachineTypeNotSupported = _error("StateMachineTypeNotSupported", "Raised when the type cannot do this.")
TaskDoesNotExist = _error("TaskDoesNotExist", "Raised when the task token names no task.")
TaskTimedOut = _error(
    "TaskTimedOut", "Raised when the task token is no longer wanted (done, timed out, stopped)."
)
TooManyTags = _error("TooManyTags", "Raised when a resource would carry more than 50 tags.")
ValidationException = _error("ValidationException", "Raised when the request breaks the service model.")

# Errors of the protocol layer, not in the Step Functions model but what AWS answers.
UnknownOperationException = _error("UnknownOperationException", "Raised when X-Amz-Target names no action.")
SerializationException = _error("SerializationException", "Raised when the body is not a JSON object.")
UnrecognizedClientException = _error("UnrecognizedClientException", "Raised when the access key is unknown.")
InvalidSignatureException = _error("InvalidSignatureException", "Raised when the SigV4 signature is wrong.")
MissingAuthenticationToken = _error(
    "MissingAuthenticationTokenException", "Raised when a request is unsigned."
)
AccessDenied = _error("AccessDeniedException", "Raised when a non-loopback client calls an open engine.")
NotAvailableLocally = _error("UnsupportedOperation", "Raised when an operation has no local implementation.")
InternalFailure = _error(
    "InternalFailure", "Raised when the engine itself failed; details are in its log.", 500
)
ServiceUnavailable = _error("ServiceUnavailable", "Raised when Redis cannot be reached.", 503)

MissingAuthenticationToken.status = 403
AccessDenied.status = 403
