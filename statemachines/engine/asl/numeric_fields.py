"""Number fields whose value comes at run time, from a JSONata expression or a `...Path`, with AWS's errors.

Wait `Seconds`, Map `MaxConcurrency` / `ToleratedFailureCount` / `ToleratedFailurePercentage` and Task
`TimeoutSeconds` / `HeartbeatSeconds` may be JSONata expressions (developer guide, "Transforming data
with JSONata": the value "must evaluate to" an integer in the field's range; Wait state page: "a JSONata
expression which must evaluate to an integer in the stated range"). A failed JSONata field is
`States.QueryEvaluationError` with AWS's cause template "The JSONata expression '<expr>' specified for
the field '<field>' returned an unexpected result type. Expected '<type>', but was '<type>' for value:
<json>" (the recorded Items failures). In JSONPath states the `...Path` variants use AWS's recorded
`States.Runtime` texts ("The MaxConcurrencyPath field refers to value "<v>" which is not a valid
integer: <path>").
"""

from __future__ import annotations

import math
from typing import Any

from . import jsonata_query
from .errors import StatesError
from .io_processing import Scope
from .paths import PathNotFound, read_path, to_json_text

MAX_INT = 2**31 - 1  # MaxConcurrency and ToleratedFailureCount are Java ints at AWS


def integral(value: Any) -> int | None:
    """`value` as an int when it is a JSON number with no fraction (JSONata's 2.0 is 2), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value)


def jsonata_integer(value: Any, expr: str, field: str, least: int, most: int) -> int:
    """The integer a JSONata field evaluated to, within [least, most]."""
    number = integral(value)
    if number is None:
        # deviation: AWS's expected-type word for an integer field is not documented; 'integer' names
        # what the field requires (a number with a fraction is shown as 'number', its JSON type)
        raise jsonata_query.query_error(
            expr,
            field,
            f"returned an unexpected result type. Expected 'integer', but was "
            f"'{jsonata_query.json_type(value)}' for value: {to_json_text(value)}",
        )
    if not least <= number <= most:
        # deviation: AWS's text for an integer out of the field's range is not documented
        raise jsonata_query.query_error(
            expr,
            field,
            f"returned a value out of range. Expected an integer from {least} to {most}, but was: {number}",
        )
    return number


def jsonata_percentage(value: Any, expr: str, field: str) -> float:
    """ToleratedFailurePercentage from JSONata: a number from 0 to 100."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise jsonata_query.query_error(
            expr,
            field,
            f"returned an unexpected result type. Expected 'number', but was "
            f"'{jsonata_query.json_type(value)}' for value: {to_json_text(value)}",
        )
    if not 0 <= value <= 100:
        # deviation: AWS's text for a percentage out of range is not documented
        raise jsonata_query.query_error(
            expr, field, f"returned a value out of range. Expected a number from 0 to 100, but was: {value}"
        )
    return float(value)


def read_field_path(path: str, field: str, value: Any, scope: Scope) -> Any:
    """What a `...Path` field selects; nothing selected is AWS's text for a path field that does not resolve.

    # deviation: AWS records this text for `.$` fields, ErrorPath and CausePath; the number and
    # timestamp `...Path` fields use the same shape (their own text is not documented)
    """
    try:
        return read_path(path, value, scope.context, scope.variables)
    except PathNotFound:
        if path.startswith("$$"):
            source = scope.context
        elif len(path) > 1 and path[1] not in ".[":
            source = scope.variables
        else:
            source = value
        raise StatesError(
            "States.Runtime",
            f"The JSONPath '{path}' specified for the field '{field}' could not be found in the input "
            f"'{to_json_text(source)}'",
        ) from None


def path_integer(selected: Any, field: str, path: str) -> int:
    """An integer a `...Path` selected: an integer, or a string holding one (AWS parses the text)."""
    number = integral(selected)
    if number is None and isinstance(selected, str) and selected.strip().lstrip("-").isdigit():
        number = int(selected)
    if number is None:
        shown = selected if isinstance(selected, str) else to_json_text(selected)
        raise StatesError(
            "States.Runtime",
            f'The {field} field refers to value "{shown}" which is not a valid integer: {path}',
        )
    return number


def path_percentage(selected: Any, path: str) -> float:
    """ToleratedFailurePercentagePath: a number from 0 to 100 (a string holding one too)."""
    number = selected
    if isinstance(selected, str):
        try:
            number = float(selected)
        except ValueError:
            number = selected
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        shown = selected if isinstance(selected, str) else to_json_text(selected)
        # deviation: the MaxConcurrencyPath template with 'number'; AWS's own text is not documented
        raise StatesError(
            "States.Runtime",
            f'The ToleratedFailurePercentagePath field refers to value "{shown}" which is not a valid '
            f"number: {path}",
        )
    if not 0 <= number <= 100:
        # deviation: AWS's text for a percentage out of range is not documented
        raise StatesError(
            "States.Runtime",
            f"ToleratedFailurePercentage must be a number between 0 and 100, but was {to_json_text(number)}",
        )
    return float(number)
