"""Payload templates (Parameters, ResultSelector, ItemSelector) and JSONPath Assign, as AWS resolves them."""

from __future__ import annotations

from typing import Any

from .errors import StatesError
from .intrinsics import Randomness, evaluate_intrinsic, looks_like_intrinsic
from .paths import PathNotFound, read_path, to_json_text


def resolve_payload(
    template: Any,
    data: Any,
    context: Any = None,
    variables: dict[str, Any] | None = None,
    rng: Randomness | None = None,
) -> Any:
    """A new value built from `template`: keys ending ".$" take the value of their path or intrinsic.

    "If the path is legal but cannot be applied successfully" AWS fails with States.Runtime and the
    cause "The JSONPath '$.x' specified for the field 'x.$' could not be found in the input '...'".
    """
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$") and isinstance(value, str):
                out[key[:-2]] = _resolve_binding(key, value, data, context, variables, rng)
            else:
                out[key] = resolve_payload(value, data, context, variables, rng)
        return out
    if isinstance(template, list):
        return [resolve_payload(item, data, context, variables, rng) for item in template]
    return template


def _resolve_binding(
    key: str, expr: str, data: Any, context: Any, variables: dict[str, Any] | None, rng: Randomness | None
) -> Any:
    if looks_like_intrinsic(expr):
        return evaluate_intrinsic(expr, data, context, variables, rng or _NO_RANDOMNESS)
    try:
        return read_path(expr, data, context, variables)
    except PathNotFound:
        source = context if expr.startswith("$$") else data
        if expr.startswith("$") and not expr.startswith("$$") and len(expr) > 1 and expr[1] not in ".[":
            source = variables  # deviation: AWS's text for a missing variable is unknown; show the variables
        raise StatesError(
            "States.Runtime",
            f"The JSONPath '{expr}' specified for the field '{key}' could not be found in the input "
            f"'{to_json_text(source)}'",
        ) from None


def resolve_assign(
    assign: dict[str, Any],
    data: Any,
    context: Any = None,
    variables: dict[str, Any] | None = None,
    rng: Randomness | None = None,
) -> dict[str, Any]:
    """The variables a JSONPath `Assign` block sets, as a dict to merge into the current ones.

    AWS evaluates every expression against the values before the state assigns anything, so an
    Assign that reads and sets the same variable sees the old value; the caller merges the result.
    `data` is the state's result after ResultSelector (the state input for Pass/Choice/Wait).
    """
    resolved = resolve_payload(assign, data, context, variables, rng)
    return resolved if isinstance(resolved, dict) else {}


class _NoRandomness:
    """Used when a caller passes no rng; States.UUID and States.MathRandom then fail loudly."""

    def random(self) -> float:
        raise StatesError("States.Runtime", "no randomness source was injected")

    def uuid(self) -> str:
        raise StatesError("States.Runtime", "no randomness source was injected")


_NO_RANDOMNESS = _NoRandomness()
