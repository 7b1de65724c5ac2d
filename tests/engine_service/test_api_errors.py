"""The engine's API errors are plain classes named as the AWS error codes they send."""

from __future__ import annotations

import inspect
import json

import botocore.session

from statemachines.engine import api_errors
from statemachines.engine.api_errors import ApiError

# what the protocol layer answers, outside the Step Functions model (AWS's own codes)
PROTOCOL_CODES = {
    "UnknownOperationException",
    "SerializationException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "AccessDeniedException",
    "UnsupportedOperation",
    "InternalFailure",
    "ServiceUnavailable",
}


def error_classes() -> list[type[ApiError]]:
    return [
        cls
        for _, cls in inspect.getmembers(api_errors, inspect.isclass)
        if issubclass(cls, ApiError) and cls is not ApiError
    ]


def test_each_error_is_named_as_the_code_it_sends():
    for cls in error_classes():
        status, body = cls("why").to_wire()
        assert json.loads(body) == {"__type": cls.__name__, "message": "why"}
        assert status in {400, 403, 500, 503}


def test_each_error_is_a_step_functions_error_or_a_protocol_one():
    model = botocore.session.get_session().get_service_model("stepfunctions")
    known = {shape.name for shape in model.error_shapes} | PROTOCOL_CODES
    assert {cls.__name__ for cls in error_classes()} <= known
