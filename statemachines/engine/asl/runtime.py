"""One call into the core: the execution state being changed, the events and effects it produces.

The persisted execution state is a tree of frames. A frame is one thread of control (the
top level, a Parallel branch or a Map iteration) positioned on one state of its program; a
frame running a Parallel or Map state is the parent of its branch/iteration frames.

State keys (short: the service writes the state on every transition): `ex` the execution, `input`
its input, `frames` by id, `root` the top frame's id, `tok` token -> frame id, `tm` timer ->
[frame id, kind], `xt` execution-level timers, `c` the id counter. A frame's keys: `Frame` in frame.py.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from . import history
from .context_object import build_context, execution_context
from .frame import Frame
from .history import make_event
from .retry import Failure

if TYPE_CHECKING:
    from .interpreter import Interpreter

MAX_HISTORY_EVENTS = 25_000
HISTORY_HEADROOM = 3  # entering a state needs room for Entered, Exited and ExecutionFailed
HISTORY_LIMIT_CAUSE = "The execution reached the maximum number of history events (25000)."


class Runtime:
    """Mutates one execution state dict; collects history events and effects in order."""

    def __init__(self, interp: Interpreter, st: dict[str, Any], now_ms: int, ids: Any) -> None:
        self.interp = interp
        self.st = st
        self.frames: dict[str, Frame] = st["frames"]
        self.now = now_ms
        self.ids = ids
        self.events: list[dict[str, Any]] = []
        self.effects: list[dict[str, Any]] = []
        self.ready: deque[str] = deque()
        self._execution_ctx: dict[str, Any] | None = None
        self.input_texts: dict[str, str] = {}  # frame id -> JSON text of its next state's input
        self.trace: dict[str, Any] | None = None  # TestState's inspection data; None in executions

    # ---- history and effects ---------------------------------------------------------------

    def emit(self, frame: Frame | None, event_type: str, details: dict[str, Any] | None = None) -> int:
        """Append a history event; previousEventId is the frame's last event (AWS's causal link)."""
        st = self.st
        event_id = st["next_event_id"]
        st["next_event_id"] = event_id + 1
        previous = frame["l"] if frame is not None else event_id - 1
        self.events.append(make_event(event_id, previous, self.now, event_type, details))
        if frame is not None:
            frame["l"] = event_id
        return event_id

    def effect(self, effect_type: str, **fields: Any) -> None:
        self.effects.append({"type": effect_type, **fields})

    def note(self, key: str, value: Any) -> None:
        """Record a step of the state's work for TestState's inspection data (a no-op in executions)."""
        if self.trace is not None:
            self.trace[key] = value

    def body(self, state: Any, frame: Frame, value: Any, scope: Any) -> Any:
        """A state's own work on its effective input; TestState's runtime answers mocks here instead."""
        return state.run(self, frame, value, scope)

    @property
    def running(self) -> bool:
        return self.st["status"] == "RUNNING"

    # ---- frames ------------------------------------------------------------------------------

    def new_frame(
        self, program: str, state_name: str, state_input: Any, parent: Frame | None, slot: int
    ) -> Frame:
        """Create a frame about to enter `state_name`, and queue it to run."""
        st = self.st
        fid = str(st["c"])
        st["c"] += 1
        last = parent["l"] if parent is not None else st["next_event_id"] - 1
        frame: Frame = {"id": fid, "p": program, "s": state_name, "in": state_input, "v": {}, "l": last}
        if parent is not None:
            frame["up"] = parent["id"]
            frame["k"] = slot
        else:
            st["root"] = fid
        self.frames[fid] = frame
        self.ready.append(fid)
        return frame

    def variables(self, frame: Frame) -> dict[str, Any]:
        """Variables visible in `frame`: its own over its ancestors' (inner scopes read outer ones)."""
        own = frame["v"]
        if "up" not in frame:
            return own
        merged = dict(self.variables(self.frames[frame["up"]]))
        merged.update(own)
        return merged

    def context(self, frame: Frame, state_name: str, **extra: Any) -> dict[str, Any]:
        """`$$` for the state `frame` is in."""
        if self._execution_ctx is None:
            self._execution_ctx = execution_context(self.st["ex"], self.st["input"])
        ex = self.st["ex"]
        machine = {"Id": ex["state_machine_arn"], "Name": ex["state_machine_name"]}
        return build_context(self._execution_ctx, machine, state_name, frame.get("t", self.now), **extra)

    # ---- tokens and timers ---------------------------------------------------------------

    def new_token(self, frame: Frame) -> str:
        token = str(self.ids.token())
        self.st["tok"][token] = frame["id"]
        frame["tok"] = token
        return token

    def drop_token(self, frame: Frame, cancel: bool) -> None:
        token = frame.pop("tok", None)
        if token is not None:
            self.st["tok"].pop(token, None)
            if cancel:
                self.effect("CancelTask", token=token)

    def set_timer(self, frame: Frame | None, kind: str, due_ms: int) -> None:
        """Arm a timer; a frame has at most one timer of each kind (re-arming replaces it)."""
        st = self.st
        owner = frame["id"] if frame is not None else ""
        timers = frame.setdefault("tm", {}) if frame is not None else st.setdefault("xt", {})
        old = timers.get(kind)
        if old is not None:  # a fresh id, so a firing of the old one already in flight is ignored
            st["tm"].pop(old, None)
            self.effect("ClearTimer", timer=old)
        timer = f"{owner}.{kind}.{st['c']}"
        st["c"] += 1
        timers[kind] = timer
        st["tm"][timer] = [owner, kind]
        self.effect("SetTimer", timer=timer, due_ms=int(due_ms))

    def clear_timer(self, frame: Frame, kind: str) -> None:
        timer = frame.get("tm", {}).pop(kind, None)
        if timer is not None:
            self.st["tm"].pop(timer, None)
            self.effect("ClearTimer", timer=timer)

    def halt_frame(self, frame: Frame, record: bool = False) -> None:
        """Stop a frame and its children where they are (kept for redrive): no tokens, no timers.

        With `record`, a state caught mid-way gets AWS's `<Type>StateAborted` event (a sibling
        branch or iteration stopped because another one failed).
        """
        for kid in list(frame.get("kids", {}).values()):
            if kid in self.frames:
                self.halt_frame(self.frames[kid], record)
        self.drop_token(frame, cancel=True)
        for kind in list(frame.get("tm", {})):
            self.clear_timer(frame, kind)
        frame.pop("tm", None)
        if record and "x" in frame and frame.get("ph") not in ("halted", "failed"):
            self.emit(frame, self.interp.state_of(frame).type_name + "StateAborted")
        frame["ph"] = "halted"

    def discard_frame(self, frame: Frame) -> None:
        """Forget a frame and its children entirely."""
        self.halt_frame(frame)
        self.discard_kids(frame)
        self.frames.pop(frame["id"], None)

    def discard_kids(self, frame: Frame) -> None:
        for kid in frame.pop("kids", {}).values():
            if kid in self.frames:
                self.discard_frame(self.frames[kid])

    # ---- completion ------------------------------------------------------------------------

    def complete_frame(self, frame: Frame, output: Any) -> None:
        """A frame reached an End or Succeed: the execution succeeds, or the parent collects it."""
        if "up" not in frame:
            self.frames.pop(frame["id"], None)
            self.end_execution("SUCCEEDED", output=output)
            return
        parent = self.frames[frame["up"]]
        self.frames.pop(frame["id"], None)
        self.interp.state_of(parent).child_succeeded(self, parent, frame, output)

    def fail_frame(self, frame: Frame, failure: Failure) -> None:
        """An error nobody in this frame handled: fail the execution or hand it to the parent."""
        frame["ph"] = "failed"
        if "up" not in frame:
            self.end_execution("FAILED", failure=failure)
            return
        parent = self.frames[frame["up"]]
        self.interp.state_of(parent).child_failed(self, parent, frame, failure)

    def end_execution(self, status: str, output: Any = None, failure: Failure | None = None) -> None:
        """Terminal event, then every frame halted (kept for RedriveExecution)."""
        st = self.st
        if st["status"] != "RUNNING":
            return
        root = self.frames.get(st["root"])
        if status == "SUCCEEDED":
            self.emit(root, "ExecutionSucceeded", history.payload(output, "output"))
            st["output"] = history.to_json(output)
        else:
            assert failure is not None
            event = {
                "FAILED": "ExecutionFailed",
                "TIMED_OUT": "ExecutionTimedOut",
                "ABORTED": "ExecutionAborted",
            }
            self.emit(root, event[status], history.failure(failure.error, failure.cause))
            st["error"], st["cause"] = failure.error, failure.cause
        st["status"] = status
        if root is not None:
            self.halt_frame(root)
        for timer in list(st.get("xt", {}).values()):
            st["tm"].pop(timer, None)
            self.effect("ClearTimer", timer=timer)
        st.pop("xt", None)
        self.ready.clear()

    def check_history_limit(self) -> None:
        """AWS fails an execution whose history would pass 25,000 events."""
        if self.running:
            self.end_execution("FAILED", failure=Failure("States.Runtime", HISTORY_LIMIT_CAUSE))

    # ---- the loop ------------------------------------------------------------------------------

    def drain(self) -> None:
        """Run every ready frame until each one blocks or the execution ends."""
        frames = self.frames
        ready = self.ready
        state_of = self.interp.state_of
        while ready and self.st["status"] == "RUNNING":
            frame = frames.get(ready.popleft())
            if frame is None or frame.get("ph") in ("halted", "failed"):
                continue
            if self.st["next_event_id"] > MAX_HISTORY_EVENTS - HISTORY_HEADROOM:
                self.check_history_limit()
                continue
            self.guard(state_of, frame)

    def guard(self, state_of: Any, frame: Frame) -> None:
        """Enter a frame's state; anything unforeseen fails the execution instead of escaping."""
        try:
            state_of(frame).enter(self, frame)
        except Exception as exc:  # e.g. a Next naming no state in an unvalidated definition
            cause = f"Internal error in state '{frame.get('s')}': {type(exc).__name__}: {exc}"
            self.end_execution("FAILED", failure=Failure("States.Runtime", cause))
