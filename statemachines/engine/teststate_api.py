"""TestState: the API handler around the core's run_test_state (one state, one input, maybe a mock)."""

from __future__ import annotations

from typing import Any

from statemachines import nesting

from . import api_errors
from .api_errors import InvalidDefinition, InvalidExecutionInput
from .asl.definition import format_definition_error
from .asl.errors import InvalidDefinitionError, StatesError
from .asl.teststate import run_test_state
from .asl.teststate_request import TestStateRejected
from .backend import Backend, now_ms
from .executions import check_input
from .mock_results import check_mock_result


def test_state(svc: Backend, params: dict[str, Any]) -> dict[str, Any]:
    text = params.get("input") or "{}"
    check_input(text)
    if params.get("variables"):
        try:
            variables = nesting.loads(params["variables"])
        except ValueError as exc:
            raise InvalidExecutionInput(f"Invalid variables: '{exc}'") from exc
        if not isinstance(variables, dict):
            raise InvalidExecutionInput("Invalid variables: they must be a JSON object")
    try:
        return run_test_state(
            params["definition"],
            text,
            now_ms(),
            svc.ids,
            inspection_level=params.get("inspectionLevel") or "INFO",
            variables_json=params.get("variables"),
            state_name=params.get("stateName"),
            mock=params.get("mock"),
            context_json=params.get("context"),
            configuration=params.get("stateConfiguration"),
            reveal_secrets=bool(params.get("revealSecrets")),
            role_arn=params.get("roleArn"),
            check_mock_result=check_mock_result,
        )
    except TestStateRejected as exc:
        raise getattr(api_errors, exc.code)(exc.message) from exc
    except InvalidDefinitionError as exc:
        raise InvalidDefinition(format_definition_error(exc.diagnostics)) from exc
    except (StatesError, ValueError) as exc:
        raise InvalidDefinition(f"Invalid State Machine Definition: '{exc}'") from exc
