"""TestState's `fieldValidationMode`: a Task's mocked result checked against its AWS API output shape."""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.exceptions import UnknownServiceError
from botocore.model import OperationModel, Shape

from .api_errors import ValidationException

SDK_PREFIX = "arn:aws:states:::aws-sdk:"
PREFIX = "Mock result schema validation error: "
# the Step Functions names of SDK services whose botocore name differs
SERVICE_NAMES = {"sfn": "stepfunctions"}
TYPE_WORDS = {"structure": "an object", "list": "an array", "map": "an object", "boolean": "a boolean"}
NUMBERS = frozenset({"integer", "long", "float", "double"})


def check_mock_result(resource: str, result: Any, mode: str) -> None:
    """Raise ValidationException when `result` breaks the output shape of the `aws-sdk` action.

    STRICT: every required field present and every present field of the right type; PRESENT:
    present fields only; NONE: nothing. Fields the model does not know are accepted (a newer API).
    """
    # deviation: only `aws-sdk:` integrations are checked; the optimized ones (lambda:invoke,
    # sqs:sendMessage, ...) shape their output their own way and their mocks are taken as given.
    if mode == "NONE" or not resource.startswith(SDK_PREFIX):
        return
    service, _, action = resource[len(SDK_PREFIX) :].partition(":")
    operation = _operation(SERVICE_NAMES.get(service, service), action.split(".")[0])
    if operation is None or operation.output_shape is None:
        return
    if not isinstance(result, dict):
        raise ValidationException(PREFIX + "the result must be a JSON object")
    _check(operation.output_shape, result, "", mode == "STRICT")


@functools.lru_cache(maxsize=64)
def _operation(service: str, action: str) -> OperationModel | None:
    """The botocore operation an `aws-sdk:<service>:<action>` names (actions are camelCase there)."""
    try:
        model = botocore.session.get_session().get_service_model(service)
    except UnknownServiceError:
        return None
    name = action[:1].upper() + action[1:]
    return model.operation_model(name) if name in model.operation_names else None


def _check(shape: Shape, value: Any, field: str, strict: bool) -> None:
    kind = shape.type_name
    if kind in ("document", "blob"):  # any JSON value; a blob arrives as text or as parsed JSON
        return
    if kind == "structure":
        _expect(isinstance(value, dict), field, kind)
        members = {_sfn_case(name): member for name, member in shape.members.items()}
        if strict:
            for required in shape.required_members:
                if _sfn_case(required) not in value:
                    raise ValidationException(PREFIX + f"Required field '{_sfn_case(required)}' is missing")
        for name, item in value.items():
            if name in members:
                _check(members[name], item, name, strict)
    elif kind == "list":
        _expect(isinstance(value, list), field, kind)
        for item in value:
            _check(shape.member, item, field, strict)
    elif kind == "map":
        _expect(isinstance(value, dict), field, kind)
        for item in value.values():
            _check(shape.value, item, field, strict)
    elif kind in ("string", "timestamp"):
        _expect(isinstance(value, str), field, "string")
        enum = getattr(shape, "enum", None)  # only string shapes carry one
        if enum and value not in enum:
            raise ValidationException(PREFIX + f"Field '{field}' is not an expected value")
    elif kind in NUMBERS:
        _expect(isinstance(value, int | float) and not isinstance(value, bool), field, "number")
    elif kind == "boolean":
        _expect(isinstance(value, bool), field, kind)


def _expect(ok: bool, field: str, kind: str) -> None:
    if not ok:
        word = TYPE_WORDS.get(kind, "a " + kind)
        raise ValidationException(PREFIX + f"Field '{field}' must be {word}")


def _sfn_case(name: str) -> str:
    """Step Functions shows an SDK response's members with a capital first letter."""
    return name[:1].upper() + name[1:]
