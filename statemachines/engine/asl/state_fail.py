"""Fail: stops its frame with an error and a cause."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import history, io_processing
from .errors import StatesError
from .io_processing import Scope
from .retry import Failure
from .state_base import State

if TYPE_CHECKING:
    from .runtime import Runtime


class FailState(State):
    """Error/Cause are literals, `...Path` fields (JSONPath, intrinsics allowed) or JSONata expressions."""

    type_name = "Fail"
    has_parameters = False

    def enter(self, rt: Runtime, frame: dict[str, Any]) -> None:
        self.emit_entered(rt, frame)
        scope = self.scope(rt, frame)
        try:
            error = self.field(frame["in"], "Error", scope)
            cause = self.field(frame["in"], "Cause", scope)
        except Exception as err:  # bad data must fail the state, never escape the core
            rt.fail_frame(frame, self.runtime_failure(rt, frame, err))
            return
        rt.fail_frame(frame, Failure(error, cause))

    def field(self, raw: Any, name: str, scope: Scope) -> str | None:
        defn = self.defn
        if self.jsonata:
            value = io_processing.evaluate_jsonata_field(defn.get(name), scope.states(raw), scope, name)
        elif name + "Path" in defn:
            value = io_processing.read_value_or_path(defn[name + "Path"], raw, scope)
        else:
            value = defn.get(name)
        if value is None or isinstance(value, str):
            return value
        raise StatesError(
            "States.Runtime", f"The {name} field must be a string, but was {history.to_json(value)}"
        )
