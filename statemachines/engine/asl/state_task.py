"""Task: work done outside the core -- an activity worker, or a `.waitForTaskToken` callback."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import history, io_processing, jsonata_query, numeric_fields
from .errors import StatesError
from .fields import MAX_SECONDS
from .frame import Frame
from .io_processing import Scope
from .retry import Failure
from .state_base import BLOCKED, DATA_LIMIT_CAUSE, MAX_PAYLOAD_BYTES, State

if TYPE_CHECKING:
    from .runtime import Runtime

CALLBACK_SUFFIX = ".waitForTaskToken"


def is_activity(resource: str) -> bool:
    """`arn:aws:states:<region>:<account>:activity:<name>`."""
    parts = resource.split(":")
    return len(parts) >= 7 and parts[2] == "states" and parts[5] == "activity"


def service_parts(resource: str) -> tuple[str, str]:
    """("sqs", "sendMessage.waitForTaskToken") from `arn:aws:states:::sqs:sendMessage.waitForTaskToken`."""
    parts = resource.split(":")
    if len(parts) >= 7 and parts[2] == "states":
        return parts[5], ":".join(parts[6:])
    return parts[2] if len(parts) > 2 else resource, parts[-1]


def check_payload_size(text: str, state_name: str) -> None:
    """ "The state's input is larger than the payload size quota after Parameters processing." """
    if len(text) > MAX_PAYLOAD_BYTES // 4 and len(text.encode()) > MAX_PAYLOAD_BYTES:
        raise StatesError("States.DataLimitExceeded", DATA_LIMIT_CAUSE.format(name=state_name))


class TaskState(State):
    """Schedules an activity task or awaits a callback; the result arrives later as an event."""

    type_name = "Task"

    def __init__(self, name: str, defn: dict[str, Any], program: str, query_language: str) -> None:
        super().__init__(name, defn, program, query_language)
        self.resource: str = str(defn.get("Resource", ""))
        self.activity = is_activity(self.resource)
        self.callback = self.resource.endswith(CALLBACK_SUFFIX)
        self.event_prefix = "Activity" if self.activity else "Task"

    def context_extra(self, frame: Frame) -> dict[str, Any]:
        extra: dict[str, Any] = {"retry_count": frame.get("x", {}).get("n", 0)}
        if self.callback and "tok" in frame:
            extra["token"] = frame["tok"]
        return extra

    def attempt(self, rt: Runtime, frame: Frame) -> None:
        if self.callback:
            rt.new_token(frame)  # before Parameters: "$$.Task.Token" is how the callee learns it
        super().attempt(rt, frame)

    def run(self, rt: Runtime, frame: Frame, value: Any, scope: Scope) -> Any:
        timeout = self.seconds_field(frame, value, "TimeoutSeconds", scope)
        heartbeat = self.seconds_field(frame, value, "HeartbeatSeconds", scope)
        if self.activity:
            self.schedule_activity(rt, frame, value, timeout, heartbeat)
        elif self.callback:
            self.await_callback(rt, frame, value, timeout, heartbeat)
        else:
            # deviation: only activities and callbacks run locally; other integrations fail the task.
            raise StatesError(
                "States.TaskFailed",
                f"The resource '{self.resource}' is not available in the local engine: only activity "
                "tasks and .waitForTaskToken callbacks run locally.",
            )
        frame["x"]["hb"] = heartbeat
        if timeout is not None:
            rt.set_timer(frame, "to", rt.now + timeout * 1000)
        return BLOCKED

    def schedule_activity(
        self, rt: Runtime, frame: Frame, value: Any, timeout: int | None, heartbeat: int | None
    ) -> None:
        exists = rt.interp.activity_exists
        if exists is not None and not exists(self.resource):
            raise StatesError("States.Runtime", f"The activity {self.resource} does not exist.")
        text = history.to_json(value)
        check_payload_size(text, self.name)
        token = rt.new_token(frame)
        details: dict[str, Any] = {
            "resource": self.resource,
            "input": text,
            "inputDetails": {"truncated": False},
        }
        details.update(timeoutInSeconds=timeout, heartbeatInSeconds=heartbeat)
        rt.emit(frame, "ActivityScheduled", details)
        rt.effect(
            "ScheduleActivity",
            token=token,
            activity_arn=self.resource,
            input=text,
            heartbeat_seconds=heartbeat,
            timeout_seconds=timeout,
        )

    def await_callback(
        self, rt: Runtime, frame: Frame, value: Any, timeout: int | None, heartbeat: int | None
    ) -> None:
        kind, name = service_parts(self.resource)
        arn_parts = rt.st["ex"]["arn"].split(":")
        region = arn_parts[3] if len(arn_parts) > 3 else ""
        details = history.task_scheduled(kind, name, region, value, timeout, heartbeat)
        check_payload_size(details["parameters"], self.name)
        rt.emit(frame, "TaskScheduled", details)
        rt.emit(frame, "TaskStarted", {"resourceType": kind, "resource": name})
        rt.effect("AwaitCallback", token=frame["tok"])
        if heartbeat is not None:
            rt.set_timer(frame, "hb", rt.now + heartbeat * 1000)

    def seconds_field(self, frame: Frame, value: Any, field: str, scope: Scope) -> int | None:
        defn = self.defn
        if field + "Path" in defn:
            path = defn[field + "Path"]
            selected = numeric_fields.read_field_path(path, field + "Path", value, scope)
            seconds = numeric_fields.path_integer(selected, field + "Path", path)
        elif self.jsonata and jsonata_query.is_template(defn.get(field)):
            result = io_processing.evaluate_jsonata_field(
                defn[field], scope.states(frame["in"]), scope, field
            )
            expr = jsonata_query.template_expression(defn[field])
            return numeric_fields.jsonata_integer(result, expr, field, 1, MAX_SECONDS)
        else:
            return defn.get(field)  # a literal: CreateStateMachine checked it
        if not 1 <= seconds <= MAX_SECONDS:
            # deviation: AWS's text for a TimeoutSecondsPath/HeartbeatSecondsPath value out of range
            # is not documented
            raise StatesError(
                "States.Runtime",
                f"The {field}Path field refers to value {seconds} which is not in the range 1 to {MAX_SECONDS}: "
                f"{defn[field + 'Path']}",
            )
        return seconds

    # ---- events from the service -----------------------------------------------------------

    def on_started(self, rt: Runtime, frame: Frame, worker_name: str | None) -> None:
        # a task is started once: the service may hand one token out twice (a requeue racing a
        # hand-out), and the second poller must then get nothing
        if frame["x"].get("st") == frame.get("tok"):
            return
        frame["x"]["st"] = frame.get("tok")
        if self.activity:
            rt.emit(frame, "ActivityStarted", {"workerName": worker_name})
        heartbeat = frame["x"].get("hb")
        if heartbeat is not None:
            rt.set_timer(frame, "hb", rt.now + heartbeat * 1000)

    def on_heartbeat(self, rt: Runtime, frame: Frame) -> None:
        heartbeat = frame["x"].get("hb")
        if heartbeat is not None:
            rt.set_timer(frame, "hb", rt.now + heartbeat * 1000)

    def on_succeeded(self, rt: Runtime, frame: Frame, output_text: str) -> None:
        self.settle(rt, frame, cancel=False)
        try:
            result = json.loads(output_text)
        except (TypeError, ValueError):
            self.handle_failure(rt, frame, Failure("States.Runtime", "The task output is not valid JSON."))
            return
        rt.emit(
            frame,
            self.event_prefix + "Succeeded",
            {**self.resource_fields(), **history.payload(result, "output")},
        )
        self.finish(rt, frame, result)

    def on_failed(self, rt: Runtime, frame: Frame, error: str | None, cause: str | None) -> None:
        self.settle(rt, frame, cancel=False)
        rt.emit(
            frame, self.event_prefix + "Failed", {**self.resource_fields(), **history.failure(error, cause)}
        )
        self.handle_failure(rt, frame, Failure(error, cause))

    def on_timer(self, rt: Runtime, frame: Frame, kind: str) -> None:
        if kind not in ("to", "hb"):
            super().on_timer(rt, frame, kind)
            return
        frame.get("tm", {}).pop(kind, None)
        error = "States.Timeout" if kind == "to" else "States.HeartbeatTimeout"
        self.settle(rt, frame, cancel=True)
        rt.emit(
            frame, self.event_prefix + "TimedOut", {**self.resource_fields(), **history.failure(error, None)}
        )
        self.handle_failure(rt, frame, Failure(error, None))

    def settle(self, rt: Runtime, frame: Frame, cancel: bool) -> None:
        """The task is over: forget its token (cancelling it if the worker may still hold it) and timers."""
        rt.drop_token(frame, cancel=cancel)
        for kind in list(frame.get("tm", {})):
            rt.clear_timer(frame, kind)

    def resource_fields(self) -> dict[str, Any]:
        if self.activity:
            return {}
        kind, name = service_parts(self.resource)
        return {"resourceType": kind, "resource": name}
