"""Wait state: seconds and timestamps become timers; bad values fail with AWS's causes."""

from __future__ import annotations

from tests.engine.asl.interpreter_driver import START_MS, Driver


def wait(state: dict, **top: object) -> dict:
    return {"StartAt": "W", "States": {"W": {"Type": "Wait", **state, "End": True}}, **top}


def test_seconds_set_a_timer_and_the_state_continues_when_it_fires() -> None:
    run = Driver(wait({"Seconds": 30}), {"a": 1})
    assert run.status == "RUNNING"
    assert list(run.timers.values()) == [START_MS + 30_000]
    run.fire_next_timer()
    assert run.status == "SUCCEEDED"
    assert run.output == {"a": 1}
    assert run.events[-1]["timestamp"] == (START_MS + 30_000) / 1000


def test_seconds_path_reads_the_input() -> None:
    run = Driver(wait({"SecondsPath": "$.s"}), {"s": 5})
    assert list(run.timers.values()) == [START_MS + 5_000]


def test_a_timestamp_in_the_past_continues_at_once() -> None:
    run = Driver(wait({"Timestamp": "2016-03-14T01:59:00Z"}), {})
    assert run.status == "SUCCEEDED"
    assert not run.timers


def test_timestamp_path_in_the_future_waits_until_then() -> None:
    run = Driver(wait({"TimestampPath": "$.t"}), {"t": "2030-01-01T00:00:00.250+01:00"})
    assert list(run.timers.values()) == [1893452400250]


def test_negative_seconds_path_fails_with_aws_cause() -> None:
    run = Driver(wait({"SecondsPath": "$.s"}), {"s": -1})
    assert run.state["error"] == "States.Runtime"
    assert run.state["cause"].endswith("The SecondsPath parameter references a negative value: $.s == -1")


def test_fractional_seconds_path_fails() -> None:
    run = Driver(wait({"SecondsPath": "$.s"}), {"s": 1.5})
    assert run.state["cause"].endswith(
        "The SecondsPath parameter cannot be parsed as a long value: $.s == 1.5"
    )


def test_invalid_timestamp_path_fails() -> None:
    run = Driver(wait({"TimestampPath": "$.t"}), {"t": "2016-12-05 21:29:29Z"})
    assert run.state["error"] == "States.Runtime"
    assert "does not reference a valid ISO-8601 extended offset date-time format string" in run.state["cause"]


def test_jsonata_seconds_expression() -> None:
    run = Driver(wait({"Seconds": "{% $states.input.n %}"}, QueryLanguage="JSONata"), {"n": 7})
    assert list(run.timers.values()) == [START_MS + 7_000]


def test_stale_timer_events_are_ignored() -> None:
    run = Driver(wait({"Seconds": 1}), {})
    out = run.send({"type": "TimerFired", "timer": "no-such-timer"})
    assert out.events == [] and out.effects == []
    assert run.status == "RUNNING"
