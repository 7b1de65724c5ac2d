"""Fail: stops its frame with an error and a cause."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import history, io_processing
from .errors import StatesError
from .frame import Frame
from .io_processing import Scope
from .paths import PathNotFound, to_json_text
from .retry import Failure
from .state_base import State

if TYPE_CHECKING:
    from .runtime import Runtime


class FailState(State):
    """Error/Cause are literals, `...Path` fields (JSONPath, intrinsics allowed) or JSONata expressions."""

    type_name = "Fail"
    has_parameters = False

    def enter(self, rt: Runtime, frame: Frame) -> None:
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
            value = self.read_path_field(defn[name + "Path"], name + "Path", raw, scope)
        else:
            value = defn.get(name)
        if value is None or isinstance(value, str):
            return value
        # deviation: AWS's text for an ErrorPath/CausePath that selects a non-string is not documented
        raise StatesError(
            "States.Runtime", f"The {name} field must be a string, but was {history.to_json(value)}"
        )

    @staticmethod
    def read_path_field(path: str, field: str, raw: Any, scope: Scope) -> Any:
        """ErrorPath/CausePath: a reference path or an intrinsic function, like a `.$` payload field,
        so a path that selects nothing fails as one does: States.Runtime, "The JSONPath '<path>'
        specified for the field '<field>' could not be found in the input '<input>'"."""
        try:
            return io_processing.read_value_or_path(path, raw, scope)
        except PathNotFound:
            if path.startswith("$$"):
                source = scope.context
            elif len(path) > 1 and path[1] not in ".[":
                source = scope.variables  # deviation: as for `.$` fields, the variables are shown
            else:
                source = raw
            raise StatesError(
                "States.Runtime",
                f"The JSONPath '{path}' specified for the field '{field}' could not be found in the input "
                f"'{to_json_text(source)}'",
            ) from None
