"""Map state: items, ItemSelector and $$.Map.Item, concurrency, tolerated failures, batching."""

from __future__ import annotations

from tests.engine.asl.interpreter_driver import ACTIVITY, Driver

PASS_THROUGH = {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}}
BUILD_ITEM = {"StartAt": "Build", "States": {"Build": {"Type": "Task", "Resource": ACTIVITY, "End": True}}}


def mapping(extra: dict, processor: dict = PASS_THROUGH, **top: object) -> dict:
    state = {"Type": "Map", "ItemProcessor": processor, **extra, "End": True}
    return {"StartAt": "Each", "States": {"Each": state}, **top}


def test_items_path_and_outputs_in_item_order() -> None:
    run = Driver(mapping({"ItemsPath": "$.targets"}), {"targets": ["py311", "py312"]})
    assert run.output == ["py311", "py312"]
    assert run.details("MapStateStarted") == [{"length": 2}]
    assert run.details("MapIterationStarted")[1] == {"name": "Each", "index": 1}


def test_item_selector_sees_the_map_item_context() -> None:
    selector = {
        "ItemSelector": {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value", "sha.$": "$.sha"}
    }
    run = Driver(mapping({"ItemsPath": "$.items", **selector}), {"items": ["a", "b"], "sha": "abc"})
    assert run.output == [{"index": 0, "value": "a", "sha": "abc"}, {"index": 1, "value": "b", "sha": "abc"}]


def test_legacy_iterator_and_parameters() -> None:
    state = {"Type": "Map", "Iterator": PASS_THROUGH, "Parameters": {"v.$": "$$.Map.Item.Value"}, "End": True}
    run = Driver({"StartAt": "Each", "States": {"Each": state}}, [1, 2])
    assert run.output == [{"v": 1}, {"v": 2}]


def test_empty_array_gives_an_empty_result() -> None:
    assert Driver(mapping({}), []).output == []


def test_max_concurrency_limits_running_iterations() -> None:
    run = Driver(mapping({"MaxConcurrency": 2}, BUILD_ITEM), [1, 2, 3, 4, 5])
    assert len(run.tokens()) == 2
    run.succeed(run.tokens()[0], "r1")
    assert len(run.tokens()) == 2
    while run.tokens():
        token = run.tokens()[0]
        run.succeed(token, run.task_input(token))
    assert run.output == ["r1", 2, 3, 4, 5]


def test_iteration_failure_fails_the_map_with_its_error() -> None:
    run = Driver(mapping({}, BUILD_ITEM), [1, 2])
    first, second = run.tokens()
    run.fail(second, "TestsFailed", "2 failures")
    assert (run.state["error"], run.state["cause"]) == ("TestsFailed", "2 failures")
    assert first in run.cancelled
    assert "MapIterationFailed" in run.types() and "MapStateFailed" in run.types()


def test_tolerated_failure_count() -> None:
    run = Driver(mapping({"ToleratedFailureCount": 1}, BUILD_ITEM), [1, 2, 3])
    a, b, c = run.tokens()
    run.fail(a, "E", "c")
    run.succeed(b, "ok")
    run.succeed(c, "ok")
    assert run.status == "SUCCEEDED"
    assert run.output == [{"Error": "E", "Cause": "c"}, "ok", "ok"]


def test_exceeding_the_tolerated_failures_fails_with_its_own_error() -> None:
    run = Driver(mapping({"ToleratedFailurePercentage": 40}, BUILD_ITEM), [1, 2, 3])
    a, b, _ = run.tokens()
    run.fail(a, "E")
    assert run.status == "RUNNING"
    run.fail(b, "E")
    assert run.state["error"] == "States.ExceedToleratedFailureThreshold"


def test_tolerated_failure_count_path_negative_is_a_runtime_error() -> None:
    run = Driver(mapping({"ToleratedFailureCountPath": "$.n", "ItemsPath": "$.i"}), {"n": -1, "i": [1]})
    assert run.state["error"] == "States.Runtime"
    assert run.state["cause"].endswith("ToleratedFailureCount cannot be negative.")


def test_max_concurrency_path_must_be_an_integer() -> None:
    run = Driver(mapping({"MaxConcurrencyPath": "$.m", "ItemsPath": "$.i"}), {"m": "many", "i": [1]})
    assert run.state["cause"].endswith(
        'The MaxConcurrencyPath field refers to value "many" which is not a valid integer: $.m'
    )


def test_item_batcher_groups_items() -> None:
    batcher = {"ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"sha": "abc"}}}
    run = Driver(mapping(batcher), [1, 2, 3])
    assert run.output == [{"sha": "abc", "Items": [1, 2]}, {"sha": "abc", "Items": [3]}]


def test_jsonata_items_must_be_an_array() -> None:
    run = Driver(mapping({"Items": "{% $states.input.n %}"}, QueryLanguage="JSONata"), {"n": 1})
    assert run.state["error"] == "States.QueryEvaluationError"
    assert run.state["cause"].endswith(
        "The JSONata expression '$states.input.n' specified for the field 'Items' returned an unexpected "
        "result type. Expected 'array', but was 'number' for value: 1"
    )


def test_distributed_mode_without_item_reader_runs_inline() -> None:
    processor = {**PASS_THROUGH, "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}}
    assert Driver(mapping({}, processor), [1, 2]).output == [1, 2]


def test_iterations_read_outer_variables() -> None:
    processor = {
        "StartAt": "Add",
        "States": {"Add": {"Type": "Pass", "Parameters": {"v.$": "States.MathAdd($, $bias)"}, "End": True}},
    }
    definition = {
        "StartAt": "Set",
        "States": {
            "Set": {"Type": "Pass", "Assign": {"bias": 10}, "Next": "Each"},
            "Each": {"Type": "Map", "ItemProcessor": processor, "End": True},
        },
    }
    assert Driver(definition, [1, 2]).output == [{"v": 11}, {"v": 12}]


def test_running_siblings_of_a_failed_iteration_are_aborted() -> None:
    run = Driver(mapping({}, BUILD_ITEM), [1, 2, 3])
    a, _, _ = run.tokens()
    run.fail(a, "E")
    aborted = [d["index"] for d in run.details("MapIterationAborted")]
    assert aborted == [1, 2]
    tail = run.types()[-7:]
    assert tail == [
        "MapIterationFailed",
        "TaskStateAborted",
        "MapIterationAborted",
        "TaskStateAborted",
        "MapIterationAborted",
        "MapStateFailed",
        "ExecutionFailed",
    ]


def test_a_map_too_large_for_the_history_fails_at_the_limit() -> None:
    run = Driver(mapping({}), list(range(30_000)))
    assert run.status == "FAILED" and run.state["error"] == "States.Runtime"
    assert len(run.events) <= 25_000


def test_inline_map_runs_at_most_40_iterations_at_once() -> None:
    run = Driver(mapping({}, BUILD_ITEM), list(range(45)))
    assert len(run.tokens()) == 40
    distributed = {**BUILD_ITEM, "ProcessorConfig": {"Mode": "DISTRIBUTED"}}
    assert len(Driver(mapping({}, distributed), list(range(45))).tokens()) == 45


def test_item_batcher_closes_batches_by_bytes() -> None:
    batcher = {"ItemBatcher": {"MaxInputBytesPerBatch": 14}}  # each item counts 7: "aaaa" and a comma
    run = Driver(mapping(batcher), ["aaaa", "bbbb", "cccc"])
    assert run.output == [{"Items": ["aaaa", "bbbb"]}, {"Items": ["cccc"]}]
