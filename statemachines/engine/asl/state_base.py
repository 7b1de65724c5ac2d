"""The template every state type follows: enter, process input, run its body, process output, leave."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from . import history, io_processing, offload
from .errors import StatesError
from .frame import Frame
from .io_processing import Scope
from .retry import Failure, find_handler, retry_delay_ms

if TYPE_CHECKING:
    from .runtime import Runtime

# a JSONata `$states` use that may reach `$states.context` (anything but .input/.result/.errorOutput)
_STATES_CONTEXT = re.compile(r"\$states(?!\.(?:input|result|errorOutput)\b)")
_FIELD = re.compile(r"specified for the field '([^']+)'")
BLOCKED = object()  # a body's answer when it waits for a token, a timer or child frames
MAX_PAYLOAD_BYTES = 256 * 1024
# AWS puts where it happened in front of these causes; the others carry the thrower's own text.
LOCATED_ERRORS = frozenset({"States.Runtime", "States.QueryEvaluationError"})
LOCATION_PREFIX = "An error occurred while executing the state"
DATA_LIMIT_CAUSE = "The state/task '{name}' returned a result with a size exceeding the maximum number of bytes service limit."


class State:
    """One state of a definition; a subclass implements its body (`run`) and overrides hooks only where it differs."""

    type_name = ""
    has_parameters = True  # JSONPath Parameters / JSONata Arguments apply to the effective input

    def __init__(self, name: str, defn: dict[str, Any], program: str, query_language: str) -> None:
        self.name = name
        self.defn = defn
        self.program = program
        self.jsonata = defn.get("QueryLanguage", query_language) == "JSONata"
        self.next: str | None = defn.get("Next")
        self.end = bool(defn.get("End"))
        self.retriers: list[dict[str, Any]] = defn.get("Retry") or []
        self.catchers: list[dict[str, Any]] = defn.get("Catch") or []
        self.entered_type = f"{self.type_name}StateEntered"
        # `$$` is built only for states whose fields can reach it: most never do
        text = history.to_json(defn)
        self.needs_context = "$$" in text or _STATES_CONTEXT.search(text) is not None
        self.exited_type = f"{self.type_name}StateExited"

    # ---- the template ----------------------------------------------------------------------

    def enter(self, rt: Runtime, frame: Frame) -> None:
        """The frame arrives at this state: StateEntered, then the first attempt."""
        offload.checkpoint()  # the service may take a long call elsewhere here: nothing is written yet
        self.emit_entered(rt, frame)
        self.attempt(rt, frame)

    def emit_entered(self, rt: Runtime, frame: Frame) -> None:
        """`<Type>StateEntered`, and the per-visit bookkeeping ($$.State.EnteredTime, working data)."""
        text = rt.input_texts.pop(frame["id"], None) or history.to_json(frame["in"])
        frame["e"] = rt.emit(frame, self.entered_type, history.state_entered(self.name, text))
        frame["t"] = rt.now
        frame["x"] = {}

    def attempt(self, rt: Runtime, frame: Frame) -> None:
        """Input processing and the body; a retry starts here again."""
        scope = self.scope(rt, frame)
        try:
            value = self.process_input(frame["in"], scope)
            result = rt.body(self, frame, value, scope)
        except Exception as err:  # bad data must fail the state, never escape the core
            self.handle_failure(rt, frame, self.runtime_failure(rt, frame, err))
            return
        if result is not BLOCKED:
            self.finish(rt, frame, result)

    def finish(self, rt: Runtime, frame: Frame, result: Any, next_state: str | None = None) -> None:
        """The body produced `result`: output processing, then leave for Next (or `next_state`)."""
        scope = self.scope(rt, frame)
        try:
            output, assigned = self.process_output(frame["in"], result, scope)
        except Exception as err:  # bad data must fail the state, never escape the core
            self.handle_failure(rt, frame, self.runtime_failure(rt, frame, err))
            return
        self.leave(rt, frame, output, assigned, next_state)

    def leave(
        self,
        rt: Runtime,
        frame: Frame,
        output: Any,
        assigned: dict[str, Any] | None,
        target: str | None,
        caught: bool = False,
    ) -> None:
        """StateExited, variables committed, then the transition (or the end of the frame)."""
        text = history.to_json(output)
        if len(text) > MAX_PAYLOAD_BYTES // 4 and len(text.encode()) > MAX_PAYLOAD_BYTES:
            failure = Failure("States.DataLimitExceeded", DATA_LIMIT_CAUSE.format(name=self.name))
            if caught:  # the catcher's own output is too large: nothing else can handle it
                rt.fail_frame(frame, failure)
            else:
                self.handle_failure(rt, frame, failure)
            return
        if assigned:
            frame["v"].update(assigned)
        rt.emit(frame, self.exited_type, history.state_exited(self.name, text, assigned))
        frame.pop("x", None)
        target = target or self.next
        if target is None:
            rt.complete_frame(frame, output)
            return
        frame["s"] = target
        frame["in"] = output
        rt.input_texts[frame["id"]] = text  # the next StateEntered shows the same JSON text
        rt.ready.append(frame["id"])

    # ---- what subclasses provide -------------------------------------------------------------

    def run(self, rt: Runtime, frame: Frame, value: Any, scope: Scope) -> Any:
        """The state's own work on its effective input: a result, or BLOCKED."""
        return value

    def context_extra(self, frame: Frame) -> dict[str, Any]:
        """Extra `$$` members for this state (RetryCount, Task.Token)."""
        return {}

    def on_timer(self, rt: Runtime, frame: Frame, kind: str) -> None:
        """A timer of this frame fired; the base class knows only the retry timer."""
        if kind == "retry":
            self.attempt(rt, frame)

    def redrive(self, rt: Runtime, frame: Frame) -> None:
        """RedriveExecution reached this halted frame: enter its state again."""
        frame.pop("ph", None)
        rt.ready.append(frame["id"])

    def release(self, rt: Runtime, frame: Frame) -> None:
        """Drop whatever the current attempt holds (tokens, timers, children) before retry or catch."""
        rt.drop_token(frame, cancel=True)
        for kind in list(frame.get("tm", {})):
            rt.clear_timer(frame, kind)
        rt.discard_kids(frame)

    # ---- shared pieces ---------------------------------------------------------------------

    def scope(self, rt: Runtime, frame: Frame) -> Scope:
        if not self.needs_context:
            return Scope(_no_context, rt.variables(frame), rt.ids, rt.trace)
        return Scope(
            lambda: rt.context(frame, self.name, **self.context_extra(frame)),
            rt.variables(frame),
            rt.ids,
            rt.trace,
        )

    def process_input(self, raw: Any, scope: Scope) -> Any:
        """InputPath then Parameters (JSONPath), or Arguments (JSONata)."""
        defn = self.defn
        if self.jsonata:
            if self.has_parameters and "Arguments" in defn:
                value = io_processing.evaluate_jsonata_template(
                    defn["Arguments"], scope.states(raw), scope, "Arguments"
                )
                scope.note("afterArguments", value)
                return value
            return raw
        value = io_processing.apply_input_path(defn, raw, scope) if "InputPath" in defn else raw
        scope.note("afterInputPath", value)
        if self.has_parameters and "Parameters" in defn:
            value = io_processing.resolve_template(defn["Parameters"], value, scope)
        scope.note("afterParameters", value)
        return value

    def process_output(
        self, raw: Any, result: Any, scope: Scope, defn: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any] | None]:
        """ResultSelector, Assign, ResultPath, OutputPath (JSONPath) or Assign and Output (JSONata)."""
        defn = defn or self.defn
        assigned = None
        scope.note("result", result)
        if self.jsonata:
            states = scope.states(raw, result=result)
            if "Assign" in defn:
                assigned = io_processing.resolve_assign_jsonata(defn["Assign"], states, scope)
            if "Output" in defn:
                return io_processing.evaluate_jsonata_template(
                    defn["Output"], states, scope, "Output"
                ), assigned
            return result, assigned
        if "ResultSelector" in defn:
            result = io_processing.resolve_template(defn["ResultSelector"], result, scope)
        scope.note("afterResultSelector", result)
        if "Assign" in defn:
            assigned = io_processing.resolve_assign_jsonpath(defn["Assign"], result, scope)
        output = io_processing.apply_result_path(defn, raw, result) if "ResultPath" in defn else result
        scope.note("afterResultPath", output)
        if "OutputPath" in defn:
            output = io_processing.apply_output_path(defn, output, scope)
        return output, assigned

    def runtime_failure(self, rt: Runtime, frame: Frame, err: Exception) -> Failure:
        """The Failure for an exception raised while this state ran, with AWS's located cause.

        A JSONata evaluation error is also recorded as AWS's `EvaluationFailed` event.
        """
        if isinstance(err, StatesError):
            name, cause = err.name, err.cause
        else:  # a bug or an unforeseen shape of data: still an ASL runtime error, never a crash
            name, cause = "States.Runtime", f"{type(err).__name__}: {err}"
        if name in LOCATED_ERRORS and not (cause or "").startswith(LOCATION_PREFIX):
            cause = (
                f"{LOCATION_PREFIX} '{self.name}' (entered at the event id #{frame.get('e')}). {cause or ''}"
            )
        if name == "States.QueryEvaluationError":
            field = _FIELD.search(cause or "")
            details = {
                "error": name,
                "cause": cause,
                "state": self.name,
                "location": field and field.group(1),
            }
            rt.emit(frame, "EvaluationFailed", details)
        return Failure(name, cause)

    # ---- Retry and Catch -------------------------------------------------------------------------

    def handle_failure(self, rt: Runtime, frame: Frame, failure: Failure) -> None:
        """Retry if the first matching retrier has attempts left, else the first matching catcher."""
        rt.note("failure", failure)
        if self.retriers and self.schedule_retry(rt, frame, failure):
            return
        index = find_handler(self.catchers, failure.error)
        if index is None:
            self.release_for_failure(rt, frame)
            rt.fail_frame(frame, failure)
            return
        self.release(rt, frame)
        rt.note("errorDetails", {"catchIndex": index})
        catcher = self.catchers[index]
        try:
            output, assigned = self.catch_output(frame["in"], catcher, failure, self.scope(rt, frame))
        except Exception as err:  # bad data must fail the state, never escape the core
            rt.fail_frame(frame, self.runtime_failure(rt, frame, err))
            return
        self.leave(rt, frame, output, assigned, catcher["Next"], caught=True)

    def release_for_failure(self, rt: Runtime, frame: Frame) -> None:
        """An unhandled failure keeps children (redrive re-runs only the failed ones)."""
        rt.drop_token(frame, cancel=True)
        for kind in list(frame.get("tm", {})):
            rt.clear_timer(frame, kind)

    def schedule_retry(self, rt: Runtime, frame: Frame, failure: Failure) -> bool:
        index = find_handler(self.retriers, failure.error)
        if index is None:
            return False
        retrier = self.retriers[index]
        counts = frame["x"].setdefault("rc", {})
        attempt = counts.get(str(index), 0)
        jitter = rt.ids.random() if retrier.get("JitterStrategy") == "FULL" else 1.0
        delay = retry_delay_ms(retrier, attempt, jitter)
        if delay is None:
            return False
        counts[str(index)] = attempt + 1
        rt.note("errorDetails", {"retryIndex": index, "retryBackoffIntervalSeconds": delay // 1000})
        frame["x"]["n"] = frame["x"].get("n", 0) + 1
        self.release(rt, frame)
        rt.set_timer(frame, "retry", rt.now + delay)
        return True

    def catch_output(
        self, raw: Any, catcher: dict[str, Any], failure: Failure, scope: Scope
    ) -> tuple[Any, dict[str, Any] | None]:
        """The caught state's output: the error output placed by ResultPath, or JSONata Output."""
        error_output = failure.error_output()
        assigned = None
        if self.jsonata:
            states = scope.states(raw, errorOutput=error_output)
            if "Assign" in catcher:
                assigned = io_processing.resolve_assign_jsonata(catcher["Assign"], states, scope)
            if "Output" in catcher:
                return (
                    io_processing.evaluate_jsonata_template(catcher["Output"], states, scope, "Output"),
                    assigned,
                )
            return error_output, assigned
        if "Assign" in catcher:
            assigned = io_processing.resolve_assign_jsonpath(catcher["Assign"], error_output, scope)
        return io_processing.apply_result_path(catcher, raw, error_output), assigned

    # ---- fan-out hooks (Parallel and Map override) ------------------------------------------

    def child_succeeded(self, rt: Runtime, frame: Frame, child: Frame, output: Any) -> None:
        raise NotImplementedError(self.type_name)

    def child_failed(self, rt: Runtime, frame: Frame, child: Frame, failure: Failure) -> None:
        raise NotImplementedError(self.type_name)


def _no_context() -> dict[str, Any]:
    """The context of a state whose definition never mentions `$$` (nothing can read it)."""
    return {}
