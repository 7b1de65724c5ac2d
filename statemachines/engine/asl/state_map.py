"""Map: runs its ItemProcessor once per item of an array; the result is the array of outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import history, io_processing, jsonata_query, numeric_fields, paths
from .errors import StatesError
from .fan_out import FanOutState
from .frame import Frame
from .io_processing import Scope

if TYPE_CHECKING:
    from .runtime import Runtime


INLINE_MAX_CONCURRENCY = 40


class MapState(FanOutState):
    """Inline Map; a DISTRIBUTED Map without ItemReader runs inline too.

    # deviation: distributed mode runs its iterations as inline frames (no child executions, no
    # MapRun events) and ItemReader/ResultWriter (S3) are not available locally.
    """

    type_name = "Map"
    has_parameters = False  # a Map's Parameters is the legacy name of ItemSelector

    def context_extra(self, frame: Frame) -> dict[str, Any]:
        return {"retry_count": frame.get("x", {}).get("n", 0)}

    def child_program(self, slot: int) -> str:
        return f"{self.program}/{self.name}"

    def child_event(self, rt: Runtime, frame: Frame, slot: int, outcome: str) -> None:
        rt.emit(frame, "MapIteration" + outcome, history.map_iteration(self.name, slot))

    def tolerates(self, frame: Frame, failures: int) -> bool:
        tolerance = frame["x"].get("tol")
        if not tolerance:
            return False
        count, percentage = tolerance
        if count is not None and failures > count:
            return False
        total = len(frame["x"]["it"])
        return not (percentage is not None and total and failures * 100 / total > percentage)

    def run(self, rt: Runtime, frame: Frame, value: Any, scope: Scope) -> Any:
        defn = self.defn
        if "ItemReader" in defn:
            raise StatesError("States.Runtime", "ItemReader is not available in the local engine.")
        items = self.read_items(frame["in"], value, scope)
        limit = self.read_integer(frame, value, scope, "MaxConcurrency", _no_negative_concurrency)
        count = self.read_integer(frame, value, scope, "ToleratedFailureCount", _no_negative_count)
        percentage = self.read_percentage(frame, value, scope)
        inputs = [self.item_input(rt, frame, value, index, item) for index, item in enumerate(items)]
        inputs = self.batch(inputs, value, scope)
        rt.emit(frame, "MapStateStarted", {"length": len(inputs)})
        if count is not None or percentage is not None:
            frame["x"]["tol"] = [count, percentage]
        return self.start_children(rt, frame, inputs, self.concurrency(limit))

    def concurrency(self, limit: int | None) -> int:
        """ "In Inline mode, the Map state supports up to 40 concurrent iterations" (0 = no limit)."""
        processor = self.defn.get("ItemProcessor") or {}
        if (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED":
            return limit or 0
        return min(limit or INLINE_MAX_CONCURRENCY, INLINE_MAX_CONCURRENCY)

    def read_items(self, raw: Any, value: Any, scope: Scope) -> list[Any]:
        defn = self.defn
        if self.jsonata:
            if "Items" not in defn:
                # "Items ... default: the state input": it must be an array like any other Items.
                # deviation: AWS's text for a non-array input is not documented; it is the Items
                # type error for the expression that reads the input
                return jsonata_query.require_type(raw, "array", "$states.input", "Items")
            return io_processing.evaluate_jsonata_typed(
                defn["Items"], scope.states(raw), scope, "Items", "array"
            )
        path = defn.get("ItemsPath", "$")
        items = numeric_fields.read_field_path(path, "ItemsPath", value, scope)
        if not isinstance(items, list):
            # deviation: AWS's cause for an ItemsPath that selects a non-array is not documented
            raise StatesError(
                "States.Runtime",
                f"Item reader failed: the ItemsPath '{path}' did not resolve to a JSON array: {history.to_json(items)}",
            )
        return items

    def read_integer(self, frame: Frame, value: Any, scope: Scope, field: str, check: Any) -> int | None:
        defn = self.defn
        if field + "Path" in defn:
            path = defn[field + "Path"]
            selected = numeric_fields.read_field_path(path, field + "Path", value, scope)
            number = numeric_fields.path_integer(selected, field + "Path", path)
        elif field in defn:
            number = io_processing.evaluate_jsonata_field(
                defn[field], scope.states(frame["in"]), scope, field
            )
            if jsonata_query.is_template(defn[field]):
                expr = jsonata_query.template_expression(defn[field])
                # a negative value is refused by `check` below, as AWS refuses a negative path value
                number = numeric_fields.jsonata_integer(
                    number, expr, field, -numeric_fields.MAX_INT, numeric_fields.MAX_INT
                )
        else:
            return None
        check(number)
        return int(number)

    def read_percentage(self, frame: Frame, value: Any, scope: Scope) -> float | None:
        defn = self.defn
        if "ToleratedFailurePercentagePath" in defn:
            path = defn["ToleratedFailurePercentagePath"]
            selected = numeric_fields.read_field_path(path, "ToleratedFailurePercentagePath", value, scope)
            return numeric_fields.path_percentage(selected, path)
        if "ToleratedFailurePercentage" not in defn:
            return None
        field = defn["ToleratedFailurePercentage"]
        number = io_processing.evaluate_jsonata_field(
            field, scope.states(frame["in"]), scope, "ToleratedFailurePercentage"
        )
        if jsonata_query.is_template(field):
            expr = jsonata_query.template_expression(field)
            return numeric_fields.jsonata_percentage(number, expr, "ToleratedFailurePercentage")
        return float(number)

    def item_input(self, rt: Runtime, frame: Frame, value: Any, index: int, item: Any) -> Any:
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
        """ItemBatcher: iterations receive `{"Items": [...], **BatchInput}` instead of single items.

        A batch closes at MaxItemsPerBatch items or before it would pass MaxInputBytesPerBatch.
        """
        batcher = self.defn.get("ItemBatcher")
        if batcher is None:
            return inputs
        max_items = self.batch_limit(batcher, "MaxItemsPerBatch", value, scope)
        max_bytes = self.batch_limit(batcher, "MaxInputBytesPerBatch", value, scope)
        extra = batcher.get("BatchInput") or {}
        if extra and not self.jsonata:
            extra = io_processing.resolve_template(extra, value, scope)
        batches: list[list[Any]] = []
        size = 0
        for item in inputs:
            item_bytes = len(history.to_json(item).encode()) + 1 if max_bytes else 0
            full = batches and (
                (max_items and len(batches[-1]) >= max_items) or (max_bytes and size + item_bytes > max_bytes)
            )
            if not batches or full:
                batches.append([])
                size = 0
            batches[-1].append(item)
            size += item_bytes
        return [{**extra, "Items": items} for items in batches]

    def batch_limit(self, batcher: dict[str, Any], field: str, value: Any, scope: Scope) -> int:
        """A positive batch limit from the field or its `...Path`; 0 means no limit."""
        limit = batcher.get(field)
        if field + "Path" in batcher:
            limit = _as_integer(
                paths.read_path(batcher[field + "Path"], value, scope.context, scope.variables)
            )
        return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 0


def _no_negative_concurrency(number: int) -> None:
    if number < 0:
        # deviation: no recorded case shows AWS's text for a negative MaxConcurrencyPath value
        raise StatesError(
            "States.Runtime", f"Expected non-negative integer for MaxConcurrency, got '{number}' instead."
        )


def _no_negative_count(number: int) -> None:
    if number < 0:
        raise StatesError("States.Runtime", "ToleratedFailureCount cannot be negative.")


def _as_integer(value: Any) -> Any:
    """A `...Path` value AWS accepts as an integer: an integer, or a string holding one."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value
