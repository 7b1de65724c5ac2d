"""What Parallel and Map share: child frames, a concurrency limit, results in order, failure fan-in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .frame import Frame
from .retry import Failure
from .runtime import HISTORY_HEADROOM, MAX_HISTORY_EVENTS
from .state_base import BLOCKED, State

if TYPE_CHECKING:
    from .runtime import Runtime


HISTORY_ROOM = MAX_HISTORY_EVENTS - HISTORY_HEADROOM


class FanOutState(State):
    """A state whose body runs child frames (branches or iterations) and collects their outputs.

    Per-attempt data lives in frame["x"]: `it` child inputs, `res` outputs by slot, `nx` next slot
    to start, `run` children running, `mc` concurrency limit (0 = none), `nf` tolerated failures.
    frame["kids"] maps slot -> child frame id (failed children stay there for redrive).
    """

    def child_program(self, slot: int) -> str:
        raise NotImplementedError

    def child_event(self, rt: Runtime, frame: Frame, slot: int, outcome: str) -> None:
        """MapIteration<outcome> for Map; Parallel branches have no events of their own."""

    def tolerates(self, frame: Frame, failures: int) -> bool:
        """Whether `failures` failed children are still within the tolerated threshold."""
        return False

    def start_children(self, rt: Runtime, frame: Frame, inputs: list[Any], limit: int) -> Any:
        x = frame["x"]
        x.update({"it": inputs, "res": {}, "nx": 0, "run": 0, "mc": limit, "nf": 0})
        frame["kids"] = {}
        if not inputs:
            return self.all_done(rt, frame)
        self.launch(rt, frame)
        return BLOCKED

    def launch(self, rt: Runtime, frame: Frame) -> None:
        """Start children up to the concurrency limit."""
        x = frame["x"]
        programs = rt.interp.programs
        while x["nx"] < len(x["it"]) and (x["mc"] == 0 or x["run"] < x["mc"]):
            if rt.st["next_event_id"] > HISTORY_ROOM:
                rt.check_history_limit()  # AWS fails the execution rather than pass 25,000 events
                return
            slot = x["nx"]
            x["nx"] = slot + 1
            x["run"] += 1
            program = self.child_program(slot)
            self.child_event(rt, frame, slot, "Started")
            child = rt.new_frame(program, programs[program].start_at, x["it"][slot], frame, slot)
            frame["kids"][str(slot)] = child["id"]

    def child_succeeded(self, rt: Runtime, frame: Frame, child: Frame, output: Any) -> None:
        x = frame["x"]
        slot = child["k"]
        frame["kids"].pop(str(slot), None)
        x["res"][str(slot)] = output
        x["run"] -= 1
        self.child_event(rt, frame, slot, "Succeeded")
        self.progress(rt, frame)

    def child_failed(self, rt: Runtime, frame: Frame, child: Frame, failure: Failure) -> None:
        x = frame["x"]
        slot = child["k"]
        x["run"] -= 1
        self.child_event(rt, frame, slot, "Failed")
        if self.tolerates(frame, x["nf"] + 1):
            x["nf"] += 1
            frame["kids"].pop(str(slot), None)
            rt.discard_frame(child)
            x["res"][str(slot)] = failure.error_output()
            self.progress(rt, frame)
            return
        if x.get("tol"):
            failure = Failure(
                "States.ExceedToleratedFailureThreshold",
                "The specified tolerated failure threshold was exceeded",
            )
        for other_slot, kid in frame["kids"].items():
            sibling = rt.frames.get(kid)
            if sibling is not None and kid != child["id"] and sibling.get("ph") not in ("halted", "failed"):
                rt.halt_frame(sibling, record=True)
                self.child_event(rt, frame, int(other_slot), "Aborted")
        rt.emit(frame, self.type_name + "StateFailed")
        self.handle_failure(rt, frame, failure)

    def progress(self, rt: Runtime, frame: Frame) -> None:
        x = frame["x"]
        if len(x["res"]) == len(x["it"]):
            result = self.all_done(rt, frame)
            self.finish(rt, frame, result)
        else:
            self.launch(rt, frame)

    def all_done(self, rt: Runtime, frame: Frame) -> list[Any]:
        x = frame["x"]
        rt.emit(frame, self.type_name + "StateSucceeded")
        frame.pop("kids", None)
        results = [x["res"][str(slot)] for slot in range(len(x["it"]))]
        for key in ("it", "res"):
            x.pop(key, None)
        return results

    def redrive(self, rt: Runtime, frame: Frame) -> None:
        """Re-run only the children that did not succeed; succeeded outputs are kept."""
        x = frame.get("x") or {}
        if "it" not in x:
            super().redrive(rt, frame)
            return
        frame.pop("ph", None)
        x["run"] = 0
        for kid in list(frame.get("kids", {}).values()):
            child = rt.frames.get(kid)
            if child is not None:
                x["run"] += 1
                rt.interp.state_of(child).redrive(rt, child)
        self.launch(rt, frame)
