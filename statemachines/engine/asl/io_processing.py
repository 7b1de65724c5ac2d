"""Input/output processing of one state in either query language, over the expression layer."""

from __future__ import annotations

from typing import Any

from . import choice_rules, intrinsics, jsonata_query, paths, payload
from .errors import StatesError

_MISSING = object()


class Scope:
    """What expressions of one state may see: `$$`, variables and the injected ids/randomness.

    The context object is built only when an expression asks for it (most states never do).
    """

    __slots__ = ("_context", "_make_context", "ids", "trace", "variables")

    def __init__(
        self, make_context: Any, variables: dict[str, Any], ids: Any, trace: dict[str, Any] | None = None
    ) -> None:
        self._make_context = make_context
        self._context: Any = _MISSING
        self.variables = variables
        self.ids = ids
        self.trace = trace  # TestState's inspection data: each processing stage notes its value here

    def note(self, stage: str, value: Any) -> None:
        """Record what a processing stage produced (only TestState asks: `trace` is None otherwise)."""
        if self.trace is not None:
            self.trace[stage] = value

    @property
    def context(self) -> dict[str, Any]:
        if self._context is _MISSING:
            self._context = self._make_context()
        return self._context

    def states(self, state_input: Any, **extra: Any) -> dict[str, Any]:
        """The JSONata `$states` binding: input, context and (for Output/Assign) result or errorOutput."""
        return {"input": state_input, "context": self.context, **extra}


# ---- JSONPath -------------------------------------------------------------------------------


def apply_input_path(defn: dict[str, Any], raw: Any, scope: Scope) -> Any:
    """InputPath: default "$"; null gives {} (the ASL spec: the state's input is an empty object)."""
    return _select(defn.get("InputPath", "$"), raw, scope)


def apply_output_path(defn: dict[str, Any], value: Any, scope: Scope) -> Any:
    """OutputPath: default "$"; null gives {}."""
    return _select(defn.get("OutputPath", "$"), value, scope)


def _select(path: str | None, value: Any, scope: Scope) -> Any:
    if path == "$":
        return value
    if path is None:
        return {}
    return paths.read_path(path, value, scope.context, scope.variables)


def resolve_template(template: Any, data: Any, scope: Scope) -> Any:
    """A JSONPath payload template (Parameters, ResultSelector, ItemSelector): `.$` keys evaluated."""
    return payload.resolve_payload(template, data, scope.context, scope.variables, scope.ids)


def apply_result_path(defn: dict[str, Any], raw: Any, result: Any) -> Any:
    """ResultPath: default "$" (the result replaces the input); null keeps the input."""
    path = defn.get("ResultPath", "$")
    if path == "$":
        return result
    return paths.write_result_path(raw, path, result)


def resolve_assign_jsonpath(assign: dict[str, Any], data: Any, scope: Scope) -> dict[str, Any]:
    """JSONPath Assign: every value evaluated against the same old variables."""
    resolved = payload.resolve_assign(assign, data, scope.context, scope.variables, scope.ids)
    return dict(resolved)


def read_value_or_path(text: str, data: Any, scope: Scope) -> Any:
    """A `...Path` field that may also hold an intrinsic function (ErrorPath, CausePath)."""
    if intrinsics.looks_like_intrinsic(text):
        return intrinsics.evaluate_intrinsic(text, data, scope.context, scope.variables, scope.ids)
    return paths.read_path(text, data, scope.context, scope.variables)


# ---- JSONata --------------------------------------------------------------------------------


def is_expression(value: Any) -> bool:
    """True for a JSONata `{% ... %}` string."""
    return jsonata_query.is_template(value)


def evaluate_jsonata_template(
    template: Any, states: dict[str, Any], scope: Scope, field: str | None = None
) -> Any:
    """Arguments / Output / Assign values / ItemSelector: `{% %}` strings evaluated anywhere inside."""
    return jsonata_query.resolve_template(template, states, scope.variables, scope.ids, field)


def evaluate_jsonata_field(value: Any, states: dict[str, Any], scope: Scope, field: str) -> Any:
    """One field that may be a literal or a `{% %}` expression (Seconds, Items, MaxConcurrency...)."""
    if not is_expression(value):
        return value
    return jsonata_query.resolve_template(value, states, scope.variables, scope.ids, field)


def evaluate_jsonata_typed(
    value: Any, states: dict[str, Any], scope: Scope, field: str, expected: str
) -> Any:
    """A field that must yield one JSON type (Items: array, Condition: boolean), with AWS's error."""
    result = evaluate_jsonata_template(value, states, scope, field)
    if is_expression(value):
        jsonata_query.require_type(result, expected, jsonata_query.template_expression(value), field)
    return result


def evaluate_condition(condition: Any, states: dict[str, Any], scope: Scope) -> bool:
    """A JSONata Choice rule's Condition."""
    if isinstance(condition, bool):
        return condition
    return choice_rules.evaluate_condition(condition, states, scope.variables, scope.ids)


def resolve_assign_jsonata(assign: Any, states: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """JSONata Assign: every value resolved against the old variables."""
    resolved = evaluate_jsonata_template(assign, states, scope, "Assign")
    if not isinstance(resolved, dict):
        raise StatesError("States.QueryEvaluationError", "Assign did not evaluate to an object")
    return resolved
