"""Map: runs its ItemProcessor once per item of an array; the result is the array of outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import history, io_processing, paths
from .errors import StatesError
from .fan_out import FanOutState
from .io_processing import Scope

if TYPE_CHECKING:
    from .runtime import Runtime


class MapState(FanOutState):
    """Inline Map; a DISTRIBUTED Map without ItemReader runs inline too.

    # deviation: distributed mode runs its iterations as inline frames (no child executions, no
    # MapRun events) and ItemReader/ResultWriter (S3) are not available locally.
    """

    type_name = "Map"
    has_parameters = False  # a Map's Parameters is the legacy name of ItemSelector

    def context_extra(self, frame: dict[str, Any]) -> dict[str, Any]:
        return {"retry_count": frame.get("x", {}).get("n", 0)}

    def child_program(self, slot: int) -> str:
        return f"{self.program}/{self.name}"

    def child_event(self, rt: Runtime, frame: dict[str, Any], slot: int, outcome: str) -> None:
        rt.emit(frame, "MapIteration" + outcome, history.map_iteration(self.name, slot))

    def tolerates(self, frame: dict[str, Any], failures: int) -> bool:
        tolerance = frame["x"].get("tol")
        if not tolerance:
            return False
        count, percentage = tolerance
        if count is not None and failures > count:
            return False
        total = len(frame["x"]["it"])
        return not (percentage is not None and total and failures * 100 / total > percentage)

    def run(self, rt: Runtime, frame: dict[str, Any], value: Any, scope: Scope) -> Any:
        defn = self.defn
        if "ItemReader" in defn:
            raise StatesError("States.Runtime", "ItemReader is not available in the local engine.")
        items = self.read_items(frame["in"], value, scope)
        limit = self.read_integer(frame, value, scope, "MaxConcurrency", lambda n: None)
        count = self.read_integer(frame, value, scope, "ToleratedFailureCount", _no_negative_count)
        percentage = self.read_percentage(frame, value, scope)
        inputs = [self.item_input(rt, frame, value, index, item) for index, item in enumerate(items)]
        inputs = self.batch(inputs, value, scope)
        rt.emit(frame, "MapStateStarted", {"length": len(inputs)})
        if count is not None or percentage is not None:
            frame["x"]["tol"] = [count, percentage]
        return self.start_children(rt, frame, inputs, limit or 0)

    def read_items(self, raw: Any, value: Any, scope: Scope) -> list[Any]:
        defn = self.defn
        if self.jsonata:
            return io_processing.evaluate_jsonata_typed(
                defn.get("Items", raw), scope.states(raw), scope, "Items", "array"
            )
        path = defn.get("ItemsPath", "$")
        items = paths.read_path(path, value, scope.context, scope.variables)
        if not isinstance(items, list):
            raise StatesError(
                "States.Runtime",
                f"Item reader failed: the ItemsPath '{path}' did not resolve to a JSON array: {history.to_json(items)}",
            )
        return items

    def read_integer(
        self, frame: dict[str, Any], value: Any, scope: Scope, field: str, check: Any
    ) -> int | None:
        defn = self.defn
        if field + "Path" in defn:
            path = defn[field + "Path"]
            number = _as_integer(paths.read_path(path, value, scope.context, scope.variables))
            if isinstance(number, bool) or not isinstance(number, int):
                shown = number if isinstance(number, str) else history.to_json(number)
                raise StatesError(
                    "States.Runtime",
                    f'The {field}Path field refers to value "{shown}" which is not a valid integer: {path}',
                )
        elif field in defn:
            number = io_processing.evaluate_jsonata_field(
                defn[field], scope.states(frame["in"]), scope, field
            )
            if isinstance(number, float) and number.is_integer():
                number = int(number)
            if isinstance(number, bool) or not isinstance(number, int):
                raise StatesError(
                    "States.Runtime", f"The {field} field must be an integer, but was {number!r}"
                )
        else:
            return None
        check(number)
        return int(number)

    def read_percentage(self, frame: dict[str, Any], value: Any, scope: Scope) -> float | None:
        defn = self.defn
        if "ToleratedFailurePercentagePath" in defn:
            path = defn["ToleratedFailurePercentagePath"]
            number = _as_number(paths.read_path(path, value, scope.context, scope.variables))
        elif "ToleratedFailurePercentage" in defn:
            number = io_processing.evaluate_jsonata_field(
                defn["ToleratedFailurePercentage"],
                scope.states(frame["in"]),
                scope,
                "ToleratedFailurePercentage",
            )
        else:
            return None
        if isinstance(number, bool) or not isinstance(number, int | float) or not 0 <= number <= 100:
            raise StatesError(
                "States.Runtime",
                f"ToleratedFailurePercentage must be a number between 0 and 100, but was {number!r}",
            )
        return float(number)

    def item_input(self, rt: Runtime, frame: dict[str, Any], value: Any, index: int, item: Any) -> Any:
        """ItemSelector (or legacy Parameters) with `$$.Map.Item`; without one, the item itself."""
        selector = self.defn.get("ItemSelector", self.defn.get("Parameters"))
        if selector is None:
            return item
        map_item = {"Index": index, "Value": item}
        scope = Scope(
            lambda: rt.context(frame, self.name, map_item=map_item, **self.context_extra(frame)),
            rt.variables(frame),
            rt.ids,
        )
        if self.jsonata:
            return io_processing.evaluate_jsonata_template(
                selector, scope.states(frame["in"]), scope, "ItemSelector"
            )
        return io_processing.resolve_template(selector, value, scope)

    def batch(self, inputs: list[Any], value: Any, scope: Scope) -> list[Any]:
        """ItemBatcher: iterations receive `{"Items": [...], **BatchInput}` instead of single items."""
        batcher = self.defn.get("ItemBatcher")
        if batcher is None:
            return inputs
        size = batcher.get("MaxItemsPerBatch")
        if "MaxItemsPerBatchPath" in batcher:
            size = paths.read_path(batcher["MaxItemsPerBatchPath"], value, scope.context, scope.variables)
        size = int(size) if isinstance(size, int) and size > 0 else len(inputs) or 1
        extra = batcher.get("BatchInput") or {}
        if extra and not self.jsonata:
            extra = io_processing.resolve_template(extra, value, scope)
        return [{**extra, "Items": inputs[i : i + size]} for i in range(0, len(inputs), size)]


def _no_negative_count(number: int) -> None:
    if number < 0:
        raise StatesError("States.Runtime", "ToleratedFailureCount cannot be negative.")


def _as_integer(value: Any) -> Any:
    """A `...Path` value AWS accepts as an integer: an integer, or a string holding one."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def _as_number(value: Any) -> Any:
    """A `...Path` value AWS accepts as a number: a number, or a string holding one."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
