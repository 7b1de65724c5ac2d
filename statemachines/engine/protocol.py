"""AWS JSON 1.0 for Step Functions: parse a request, check it against botocore's model, encode the answer."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from statemachines import nesting

from .api_errors import (
    SerializationException,
    UnknownOperationException,
    ValidationException,
)

TARGET_PREFIX = "AWSStepFunctions."
CONTENT_TYPE = "application/x-amz-json-1.0"
# Payload sizes are AWS limits in bytes with their own typed errors (InvalidExecutionInput,
# InvalidOutput); the handlers check them, so the model's character limit is skipped here.
_SIZE_CHECKED_BY_HANDLER = {"SensitiveData", "SensitiveDataJobInput"}
_COMPACT = json.JSONEncoder(separators=(",", ":"))
# members the model leaves optional that no handler can do without (AWS refuses a tag with no key too)
_ALSO_REQUIRED = {"Tag": ("key",)}  # built once: json.dumps with options builds one per call


@functools.cache
def service_model() -> ServiceModel:
    """botocore's own Step Functions model: the one source of truth for shapes and names."""
    model: ServiceModel = botocore.session.get_session().get_service_model("stepfunctions")
    return model


def operation_for(target: str | None) -> OperationModel:
    """The operation an `X-Amz-Target: AWSStepFunctions.<Action>` header names."""
    if not target or not target.startswith(TARGET_PREFIX):
        raise UnknownOperationException(
            f"Unable to determine service/operation name to be authorized: {target}"
        )
    name = target[len(TARGET_PREFIX) :]
    if name not in service_model().operation_names:
        raise UnknownOperationException(f"Operation {name} is not supported.")
    return service_model().operation_model(name)


def parse_body(body: bytes) -> dict[str, Any]:
    """The request's JSON object (an empty body is an empty object, as botocore may send)."""
    if not body.strip():
        return {}
    try:
        params = nesting.loads(body)
    except nesting.TooDeep as exc:
        raise SerializationException(f"The request body is not valid: {exc}") from exc
    except ValueError as exc:
        raise SerializationException("Start of structure or map found where not expected.") from exc
    if not isinstance(params, dict):
        raise SerializationException("Start of structure or map found where not expected.")
    return params


def validate_input(operation: OperationModel, params: Mapping[str, Any]) -> None:
    """Raise ValidationException listing every way `params` breaks the operation's input shape."""
    problems: list[str] = []
    if operation.input_shape is not None:
        _check_structure(operation.input_shape, params, "", problems)
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(problems))


def encode_output(operation: OperationModel, result: Mapping[str, Any] | None) -> bytes:
    """The JSON body of a successful answer: only the output shape's members, absent (None) ones left out."""
    shape = operation.output_shape
    value = _fit(shape, result or {}) if shape is not None else {}
    return _COMPACT.encode(value).encode()


def _fit(shape: Any, value: Any) -> Any:
    """`value` cut down to what `shape` models, so internal fields never leak onto the wire."""
    if value is None:
        return None
    if shape.type_name == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: _fit(members[k], v) for k, v in value.items() if k in members and v is not None}
    if shape.type_name == "list" and isinstance(value, list):
        return [_fit(shape.member, v) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _fit(shape.value, v) for k, v in value.items() if v is not None}
    return value


def _violation(value: Any, path: str, constraint: str) -> str:
    shown = "null" if value is None else str(value)[:100]
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    checker = _CHECKS.get(shape.type_name)
    if checker is not None:
        checker(shape, value, path, problems)


def _check_structure(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(_violation(value, path or "input", "Member must be a structure"))
        return
    for name in (*shape.required_members, *_ALSO_REQUIRED.get(shape.name, ())):
        if value.get(name) is None:
            problems.append(_violation(None, _join(path, name), "Member must not be null"))
    for name, member in shape.members.items():
        if value.get(name) is not None:
            _check(member, value[name], _join(path, name), problems)


def _check_string(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, str):
        problems.append(_violation(value, path, "Member must be a string"))
        return
    meta = shape.metadata
    if "min" in meta and len(value) < meta["min"]:
        problems.append(
            _violation(value, path, f"Member must have length greater than or equal to {meta['min']}")
        )
    if "max" in meta and len(value) > meta["max"] and shape.name not in _SIZE_CHECKED_BY_HANDLER:
        problems.append(
            _violation(value, path, f"Member must have length less than or equal to {meta['max']}")
        )
    enum = meta.get("enum")
    if enum and value not in enum:
        problems.append(_violation(value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]"))
    pattern = _pattern(meta.get("pattern"))
    if pattern is not None and not pattern.search(value):
        problems.append(
            _violation(value, path, f"Member must satisfy regular expression pattern: {meta['pattern']}")
        )


@functools.cache
def _pattern(text: str | None) -> re.Pattern[str] | None:
    # \p{ASCII} is Java regex; Python's re spells it as a range
    if not text:
        return None
    return re.compile(text.replace(r"\p{ASCII}", r"[\x00-\x7f]"))


def _check_number(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    integral = shape.type_name in ("integer", "long")
    ok_types = (int,) if integral else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types):
        problems.append(_violation(value, path, f"Member must be of type {shape.type_name}"))
        return
    meta = shape.metadata
    if "min" in meta and value < meta["min"]:
        problems.append(
            _violation(value, path, f"Member must have value greater than or equal to {meta['min']}")
        )
    if "max" in meta and value > meta["max"]:
        problems.append(
            _violation(value, path, f"Member must have value less than or equal to {meta['max']}")
        )


def _check_boolean(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, bool):
        problems.append(_violation(value, path, "Member must be a boolean"))


def _check_timestamp(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(_violation(value, path, "Member must be a timestamp in epoch seconds"))


def _check_list(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, list):
        problems.append(_violation(value, path, "Member must be a list"))
        return
    meta = shape.metadata
    if "min" in meta and len(value) < meta["min"]:  # an alias with no routes
        problems.append(
            _violation(value, path, f"Member must have length greater than or equal to {meta['min']}")
        )
    if "max" in meta and len(value) > meta["max"]:
        problems.append(
            _violation(value, path, f"Member must have length less than or equal to {meta['max']}")
        )
    for index, item in enumerate(value):
        _check(shape.member, item, f"{path}.{index + 1}.member", problems)


def _check_map(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(_violation(value, path, "Member must be a map"))
        return
    for key, item in value.items():
        _check(shape.key, key, f"{path}.key", problems)
        _check(shape.value, item, f"{path}.{key}", problems)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_CHECKS = {
    "structure": _check_structure,
    "string": _check_string,
    "integer": _check_number,
    "long": _check_number,
    "float": _check_number,
    "double": _check_number,
    "boolean": _check_boolean,
    "timestamp": _check_timestamp,
    "list": _check_list,
    "map": _check_map,
}
