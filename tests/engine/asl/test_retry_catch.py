"""Retry and Catch: matching, backoff timers, exhaustion, catcher output, terminal errors."""

from __future__ import annotations

import pytest

from statemachines.engine.asl.retry import Failure, find_handler, matches, retry_delay_ms
from tests.engine.asl.interpreter_driver import ACTIVITY, START_MS, Driver


def test_states_all_matches_everything_but_terminal_errors() -> None:
    assert matches(["States.ALL"], "Anything")
    assert matches(["States.ALL"], None)
    assert not matches(["States.ALL"], "States.Runtime")
    assert not matches(["States.ALL"], "States.DataLimitExceeded")
    assert matches(["States.Runtime"], "States.Runtime")


def test_first_matching_handler_wins() -> None:
    handlers = [{"ErrorEquals": ["A"]}, {"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["B"]}]
    assert find_handler(handlers, "A") == 0
    assert find_handler(handlers, "B") == 1
    assert find_handler([{"ErrorEquals": ["A"]}], "B") is None


@pytest.mark.parametrize(
    ("retrier", "attempt", "random", "expected"),
    [
        ({}, 0, 0.5, 1000),
        ({}, 2, 0.5, 4000),
        ({}, 3, 0.5, None),
        ({"IntervalSeconds": 3, "BackoffRate": 1.5}, 1, 0.5, 4500),
        ({"IntervalSeconds": 10, "MaxDelaySeconds": 15}, 3, 0.5, None),
        ({"IntervalSeconds": 10, "MaxDelaySeconds": 15, "MaxAttempts": 5}, 3, 0.5, 15000),
        ({"IntervalSeconds": 10, "JitterStrategy": "FULL"}, 0, 0.25, 2500),
        ({"MaxAttempts": 0}, 0, 0.5, None),
    ],
)
def test_retry_delay(retrier: dict, attempt: int, random: float, expected: int | None) -> None:
    assert retry_delay_ms(retrier, attempt, random) == expected


def test_error_output_omits_absent_fields() -> None:
    assert Failure("E", None).error_output() == {"Error": "E"}


def build(retry: list | None = None, catch: list | None = None) -> dict:
    state: dict = {"Type": "Task", "Resource": ACTIVITY, "End": True}
    if retry:
        state["Retry"] = retry
    if catch:
        state["Catch"] = catch
    return {
        "StartAt": "Build",
        "States": {
            "Build": state,
            "Recover": {"Type": "Pass", "End": True},
            "Other": {"Type": "Pass", "Result": "other", "End": True},
        },
    }


def test_retry_waits_on_a_timer_with_backoff_then_reschedules() -> None:
    run = Driver(
        build(retry=[{"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 2}])
    )
    run.fail(run.tokens()[0], "Flaky")
    assert list(run.timers.values()) == [START_MS + 2_000]
    run.fire_next_timer()
    run.fail(run.tokens()[0], "Flaky")
    assert list(run.timers.values()) == [START_MS + 2_000 + 6_000]
    run.fire_next_timer()
    run.fail(run.tokens()[0], "Flaky")
    assert run.status == "FAILED" and run.state["error"] == "Flaky"
    assert run.types().count("ActivityScheduled") == 3
    assert run.types().count("TaskStateEntered") == 1  # a retry does not enter the state again


def test_retry_then_success() -> None:
    run = Driver(build(retry=[{"ErrorEquals": ["States.ALL"]}]), {"x": 1})
    run.fail(run.tokens()[0], "Oops")
    run.fire_next_timer()
    run.succeed(run.tokens()[0], "done")
    assert run.output == "done"


def test_an_exhausted_retrier_hands_over_to_catch() -> None:
    definition = build(
        retry=[{"ErrorEquals": ["Flaky"], "MaxAttempts": 1}],
        catch=[{"ErrorEquals": ["Flaky"], "ResultPath": "$.error", "Next": "Recover"}],
    )
    run = Driver(definition, {"sha": "abc"})
    run.fail(run.tokens()[0], "Flaky", "first")
    run.fire_next_timer()
    run.fail(run.tokens()[0], "Flaky", "second")
    assert run.status == "SUCCEEDED"
    assert run.output == {"sha": "abc", "error": {"Error": "Flaky", "Cause": "second"}}


def test_only_the_first_matching_retrier_counts() -> None:
    retry = [{"ErrorEquals": ["Flaky"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]
    run = Driver(build(retry=retry))
    run.fail(run.tokens()[0], "Flaky")
    assert run.status == "FAILED"


def test_catchers_are_tried_in_order() -> None:
    catch = [
        {"ErrorEquals": ["Other"], "Next": "Other"},
        {"ErrorEquals": ["States.ALL"], "Next": "Recover"},
    ]
    run = Driver(build(catch=catch), {"a": 1})
    run.fail(run.tokens()[0], "Boom", "why")
    assert run.output == {"Error": "Boom", "Cause": "why"}


def test_states_all_does_not_catch_states_runtime() -> None:
    definition = build(catch=[{"ErrorEquals": ["States.ALL"], "Next": "Recover"}])
    definition["States"]["Build"]["InputPath"] = "$.missing"
    run = Driver(definition, {})
    assert run.status == "FAILED" and run.state["error"] == "States.Runtime"


def test_catch_on_timeout() -> None:
    definition = build(catch=[{"ErrorEquals": ["States.Timeout"], "Next": "Other"}])
    definition["States"]["Build"]["TimeoutSeconds"] = 1
    run = Driver(definition, {})
    run.fire_next_timer()
    assert run.output == "other"


def test_full_jitter_uses_the_injected_randomness() -> None:
    run = Driver(build(retry=[{"ErrorEquals": ["E"], "IntervalSeconds": 10, "JitterStrategy": "FULL"}]))
    run.ids.random_value = 0.1
    run.fail(run.tokens()[0], "E")
    assert list(run.timers.values()) == [START_MS + 1_000]


def test_jsonata_catch_output_and_assign() -> None:
    definition = build(
        catch=[
            {
                "ErrorEquals": ["States.ALL"],
                "Assign": {"lastError": "{% $states.errorOutput.Error %}"},
                "Output": {"input": "{% $states.input %}", "err": "{% $states.errorOutput.Cause %}"},
                "Next": "Use",
            }
        ]
    )
    definition["QueryLanguage"] = "JSONata"
    definition["States"]["Use"] = {
        "Type": "Pass",
        "Output": {"was": "{% $lastError %}", "o": "{% $states.input %}"},
        "End": True,
    }
    run = Driver(definition, {"k": 1})
    run.fail(run.tokens()[0], "Bad", "c")
    assert run.output == {"was": "Bad", "o": {"input": {"k": 1}, "err": "c"}}


def test_data_limit_exceeded_can_be_caught_by_name_but_not_by_states_all() -> None:
    big_branch = {"StartAt": "Big", "States": {"Big": {"Type": "Pass", "Result": "a" * 300_000, "End": True}}}

    def definition(catch_on: str) -> dict:
        catcher = {"ErrorEquals": [catch_on], "ResultPath": None, "Next": "Recover"}
        return {
            "StartAt": "Par",
            "States": {
                "Par": {"Type": "Parallel", "Branches": [big_branch], "Catch": [catcher], "End": True},
                "Recover": {"Type": "Pass", "Result": "recovered", "End": True},
            },
        }

    assert Driver(definition("States.DataLimitExceeded")).output == "recovered"
    assert Driver(definition("States.ALL")).state["error"] == "States.DataLimitExceeded"


def test_a_delay_that_overflows_a_float_waits_the_longest_delay_instead():
    retrier = {"ErrorEquals": ["States.ALL"], "MaxAttempts": 99999999, "BackoffRate": 2.0}
    assert retry_delay_ms(retrier, 1100, 0.5) == 99999999 * 1000  # 2.0 ** 1100 is no float
    assert retry_delay_ms({**retrier, "MaxDelaySeconds": 60}, 1100, 0.5) == 60_000
