"""TestState: the API handler around the core's run_test_state (one state, one input)."""

from __future__ import annotations

from typing import Any

from statemachines import nesting

from .api_errors import InvalidDefinition, InvalidExecutionInput
from .asl.errors import StatesError
from .asl.teststate import run_test_state
from .backend import Backend, now_ms
from .executions import check_input


def test_state(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    text = params.get("input") or "{}"
    check_input(text)
    if params.get("variables"):
        try:
            nesting.loads(params["variables"])
        except ValueError as exc:
            raise InvalidExecutionInput(f"Invalid variables: '{exc}'") from exc
    try:
        return run_test_state(
            params["definition"],
            text,
            now_ms(),
            svc.ids,
            inspection_level=params.get("inspectionLevel") or "INFO",
            variables_json=params.get("variables"),
        )
    except (StatesError, ValueError) as exc:
        raise InvalidDefinition(f"Invalid State Machine Definition: '{exc}'") from exc
