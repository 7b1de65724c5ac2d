"""Wait: holds its frame for a number of seconds or until a timestamp, as a timer."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import history, io_processing, jsonata_query, numeric_fields
from .errors import StatesError
from .fields import MAX_SECONDS
from .frame import Frame
from .io_processing import Scope
from .state_base import BLOCKED, State

if TYPE_CHECKING:
    from .runtime import Runtime

# "Timestamps MUST conform to RFC3339 profile of ISO 8601, ... an uppercase T ... and a Z or offset"
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp_ms(text: Any) -> int | None:
    """Epoch milliseconds of an ASL timestamp, or None when it is not one (fractions beyond ms dropped)."""
    if not isinstance(text, str):
        return None
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    date, time, fraction, zone = match.groups()
    try:
        dt = datetime.fromisoformat(f"{date}T{time}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None
    millis = int((fraction or ".0")[1:4].ljust(3, "0"))
    return int(dt.timestamp()) * 1000 + millis


class WaitState(State):
    """ "A Wait state causes the interpreter to delay the machine from continuing for a specified time." """

    type_name = "Wait"
    has_parameters = False

    def run(self, rt: Runtime, frame: Frame, value: Any, scope: Scope) -> Any:
        due = self.due_ms(rt, frame, value, scope)
        if due <= rt.now:
            return value  # a timestamp in the past: continue at once
        frame["x"]["w"] = value
        rt.set_timer(frame, "wait", due)
        return BLOCKED

    def on_timer(self, rt: Runtime, frame: Frame, kind: str) -> None:
        if kind == "wait":
            frame.get("tm", {}).pop("wait", None)
            self.finish(rt, frame, frame["x"].pop("w", None))
        else:
            super().on_timer(rt, frame, kind)

    def due_ms(self, rt: Runtime, frame: Frame, value: Any, scope: Scope) -> int:
        defn = self.defn
        if "Seconds" in defn:
            seconds = defn["Seconds"]
            if self.jsonata:
                seconds = io_processing.evaluate_jsonata_field(
                    seconds, scope.states(frame["in"]), scope, "Seconds"
                )
                if jsonata_query.is_template(defn["Seconds"]):
                    expr = jsonata_query.template_expression(defn["Seconds"])
                    seconds = numeric_fields.jsonata_integer(seconds, expr, "Seconds", 0, MAX_SECONDS)
            return rt.now + int(seconds) * 1000
        if "SecondsPath" in defn:
            path = defn["SecondsPath"]
            seconds = numeric_fields.read_field_path(path, "SecondsPath", value, scope)
            return rt.now + self.check_seconds(seconds, "SecondsPath", path) * 1000
        if "Timestamp" in defn:
            stamp = defn["Timestamp"]
            if self.jsonata and jsonata_query.is_template(stamp):
                value = io_processing.evaluate_jsonata_field(
                    stamp, scope.states(frame["in"]), scope, "Timestamp"
                )
                return self.check_jsonata_timestamp(value, jsonata_query.template_expression(stamp))
            return self.check_timestamp(stamp, "Timestamp", str(defn["Timestamp"]))
        path = defn.get("TimestampPath", "$")
        stamp = numeric_fields.read_field_path(path, "TimestampPath", value, scope)
        return self.check_timestamp(stamp, "TimestampPath", path)

    @staticmethod
    def check_seconds(seconds: Any, field: str, where: str) -> int:
        shown = seconds if isinstance(seconds, str) else history.to_json(seconds)
        number = isinstance(seconds, int | float) and not isinstance(seconds, bool) and math.isfinite(seconds)
        if not number or seconds != int(seconds):
            raise StatesError(
                "States.Runtime",
                f"The {field} parameter cannot be parsed as a long value: {where} == {shown}",
            )
        if seconds < 0:
            raise StatesError(
                "States.Runtime", f"The {field} parameter references a negative value: {where} == {shown}"
            )
        if seconds > MAX_SECONDS:
            raise StatesError(
                "States.Runtime",
                f"The {field} parameter references a value over {MAX_SECONDS}: {where} == {shown}",
            )
        return int(seconds)

    @staticmethod
    def check_jsonata_timestamp(value: Any, expr: str) -> int:
        """A JSONata Timestamp "results in a string that conforms to" the timestamp rules (developer
        guide, Wait state); anything else is a JSONata evaluation error naming the expression."""
        jsonata_query.require_type(value, "string", expr, "Timestamp")
        due = parse_timestamp_ms(value)
        if due is None:
            # deviation: the documentation names no text for a malformed JSONata timestamp; the
            # error and its "The JSONata expression ... specified for the field" opening are AWS's,
            # the rest borrows the words of AWS's TimestampPath cause
            raise jsonata_query.query_error(
                expr,
                "Timestamp",
                "returned a value that is not a valid ISO-8601 extended offset date-time format string: "
                f"{history.to_json(value)}",
            )
        return due

    @staticmethod
    def check_timestamp(stamp: Any, field: str, where: str) -> int:
        due = parse_timestamp_ms(stamp)
        if due is None:
            shown = stamp if isinstance(stamp, str) else history.to_json(stamp)
            raise StatesError(
                "States.Runtime",
                f"The {field} parameter does not reference a valid ISO-8601 extended offset date-time "
                f"format string: {where} == {shown}",
            )
        return due
