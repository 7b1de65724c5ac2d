"""Parallel: runs every branch on the same input; the result is the array of branch outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .fan_out import FanOutState
from .frame import Frame
from .io_processing import Scope

if TYPE_CHECKING:
    from .runtime import Runtime


class ParallelState(FanOutState):
    """ "The Parallel state causes parallel execution of branches"; the first failure fails it all."""

    type_name = "Parallel"

    def context_extra(self, frame: Frame) -> dict[str, Any]:
        return {"retry_count": frame.get("x", {}).get("n", 0)}

    def child_program(self, slot: int) -> str:
        return f"{self.program}/{self.name}#{slot}"

    def run(self, rt: Runtime, frame: Frame, value: Any, scope: Scope) -> Any:
        rt.emit(frame, "ParallelStateStarted")
        branches = self.defn.get("Branches", [])
        return self.start_children(rt, frame, [value] * len(branches), 0)
