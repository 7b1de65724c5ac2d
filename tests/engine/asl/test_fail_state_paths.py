"""A Fail state's ErrorPath / CausePath that selects nothing.

Sources:
- Fail state (https://docs.aws.amazon.com/step-functions/latest/dg/state-fail.html): ErrorPath and
  CausePath are reference paths ("when resolved, the reference path must select a field that contains a
  string value") or an intrinsic function that returns a string.
- Error handling (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html):
  States.Runtime is the error for a path that cannot be applied; States.ALL does not catch it.
- Input and output processing, Parameters (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html):
  a path-valued field that selects nothing fails with "The JSONPath '<path>' specified for the field
  '<field>' could not be found in the input '<input>'" (the template the engine already uses for `.$`).
"""

from __future__ import annotations

from typing import Any

import pytest

from .interpreter_driver import Driver

PREFIX = "An error occurred while executing the state 'Stop' (entered at the event id #2). "


def _fail(**fields: Any) -> dict[str, Any]:
    return {"StartAt": "Stop", "States": {"Stop": {"Type": "Fail", **fields}}}


@pytest.mark.parametrize(
    ("fields", "field", "path"),
    [
        ({"ErrorPath": "$.error", "Cause": "c"}, "ErrorPath", "$.error"),
        ({"Error": "E", "CausePath": "$.cause"}, "CausePath", "$.cause"),
        ({"ErrorPath": "$.nested.error", "CausePath": "$.other"}, "ErrorPath", "$.nested.error"),
    ],
)
def test_a_path_that_selects_nothing_is_a_runtime_error_naming_the_field(
    fields: dict[str, Any], field: str, path: str
) -> None:
    run = Driver(_fail(**fields), {"present": "x"})
    assert run.status == "FAILED"
    assert run.state["error"] == "States.Runtime"
    assert run.state["cause"] == (
        PREFIX + f"The JSONPath '{path}' specified for the field '{field}' could not be found in the input "
        '\'{"present":"x"}\''
    )


def test_the_cause_path_is_read_after_the_error_path() -> None:
    run = Driver(_fail(ErrorPath="$.error", CausePath="$.missing"), {"error": "Boom"})
    assert run.state["cause"].endswith(
        "The JSONPath '$.missing' specified for the field 'CausePath' could not be found in the input "
        '\'{"error":"Boom"}\''
    )


def test_a_context_path_shows_the_context_object() -> None:
    run = Driver(_fail(ErrorPath="$$.Execution.Nope"), {})
    cause = run.state["cause"]
    assert "The JSONPath '$$.Execution.Nope' specified for the field 'ErrorPath' could not be found" in cause
    assert '"Execution":{' in cause


def test_paths_that_resolve_give_the_error_and_cause() -> None:
    run = Driver(_fail(ErrorPath="$.e", CausePath="States.Format('because {}', $.c)"), {"e": "Bad", "c": 1})
    assert (run.state["error"], run.state["cause"]) == ("Bad", "because 1")
