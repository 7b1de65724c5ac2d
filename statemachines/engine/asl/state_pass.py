"""Pass: passes its input (or a fixed Result) to its output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .frame import Frame
from .io_processing import Scope
from .state_base import State

if TYPE_CHECKING:
    from .runtime import Runtime


class PassState(State):
    """ "The Pass State simply passes its input to its output, performing no work." """

    type_name = "Pass"

    def run(self, rt: Runtime, frame: Frame, value: Any, scope: Scope) -> Any:
        if not self.jsonata and "Result" in self.defn:
            return self.defn["Result"]
        return value
