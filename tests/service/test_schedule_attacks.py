"""Hostile or careless schedules: crons croniter takes but that never fire or fire at random, a slot repeated by
the autumn clock change, and one broken schedule among good ones (real Redis, real git, the fake GitHub)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from service.job_context import JobContext
from service.repository_schedules import parse_file
from service.scheduler import fire_due
from service.schedules import Schedule, parse_schedule_list

NIGHTLY = Schedule("nightly", "octo/app", "0 3 * * *", "main", "Europe/Berlin")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def problems_of(cron: str) -> list[str]:
    return parse_schedule_list([{"name": "a", "repository": "o/r", "cron": cron}], "x")[1]


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 2,4,6,9,11 *"])
def test_a_cron_with_no_slot_is_refused(cron: str) -> None:
    [problem] = problems_of(cron)
    assert "never" in problem


@pytest.mark.parametrize(
    "cron", ["R * * * *", "R R * * *", "0 R * * *", "r 3 * * *", "H * * * *", "H(0-5) 3 * * *"]
)
def test_a_random_or_hashed_cron_is_refused(cron: str) -> None:
    # croniter draws R afresh for each reading: the due slot would move at every tick and fire again and again
    assert problems_of(cron)


@pytest.mark.parametrize("cron", ["0 3 * * THU", "0 3 * MAR-OCT SAT", "0 0 L 2 *", "0 0 1W * *", "@daily"])
def test_names_and_croniters_day_forms_still_pass(cron: str) -> None:
    assert problems_of(cron) == []


def test_a_repository_file_with_a_never_cron_says_so() -> None:
    found, problems = parse_file("octo/app", '- name: feb31\n  cron: "0 0 31 2 *"\n')
    assert found == () and "never" in problems[0]


@pytest.fixture
def ctx(schedules_context: Callable[..., JobContext]) -> JobContext:
    return schedules_context(NIGHTLY)


def test_a_schedule_that_cannot_be_read_does_not_stop_the_others(ctx: JobContext) -> None:
    # built past validation (an older cached file, a croniter change): its tick fails alone
    never = Schedule("feb31", "octo/app", "0 0 31 2 *", "main")
    fire_due(ctx, [never, NIGHTLY], at("2026-12-06T01:00:00+00:00"))
    assert len(fire_due(ctx, [never, NIGHTLY], at("2026-12-06T02:00:03+00:00"))) == 1


def test_a_daily_slot_in_the_hour_repeated_in_autumn_runs_once(ctx: JobContext) -> None:
    # 2026-10-25 in Berlin: 02:00-02:59 happens twice (00:00-00:59 UTC in summer time, 01:00-01:59 UTC after)
    twice = Schedule("half-past-two", "octo/app", "30 2 * * *", "main", "Europe/Berlin")
    fire_due(ctx, [twice], at("2026-10-24T12:00:00+00:00"))
    assert len(fire_due(ctx, [twice], at("2026-10-25T00:30:05+00:00"))) == 1
    assert fire_due(ctx, [twice], at("2026-10-25T01:30:05+00:00")) == []
    assert len(fire_due(ctx, [twice], at("2026-10-26T01:30:05+00:00"))) == 1  # the next day's


def test_an_hourly_slot_runs_in_both_repeated_hours(ctx: JobContext) -> None:
    # as cron does: a schedule of every hour keeps its interval through the change
    hourly = Schedule("hourly", "octo/app", "30 * * * *", "main", "Europe/Berlin")
    fire_due(ctx, [hourly], at("2026-10-24T23:59:00+00:00"))
    assert len(fire_due(ctx, [hourly], at("2026-10-25T00:30:05+00:00"))) == 1
    assert len(fire_due(ctx, [hourly], at("2026-10-25T01:30:05+00:00"))) == 1


@pytest.mark.parametrize(
    "cron", ["* * * * *", "*/2 * * * *", "*/1 3 * * *", "0,59 * * * *", "58,1 2,3 * * *"]
)
def test_a_repository_file_may_not_fire_more_often_than_every_five_minutes(cron: str) -> None:
    # its writers would spend the service's workers and GitHub rate limit every minute (GitHub Actions: 5 min)
    found, problems = parse_file("octo/app", f'- name: often\n  cron: "{cron}"\n')
    assert found == () and "every 5 minutes" in problems[0]
    assert (
        parse_schedule_list([{"name": "a", "repository": "o/r", "cron": cron}], "x")[1] == []
    )  # the operator may


@pytest.mark.parametrize("cron", ["*/5 * * * *", "0 3 * * *", "55 2 * * *", "0,30 * * * *", "@hourly"])
def test_a_repository_file_may_fire_every_five_minutes(cron: str) -> None:
    found, problems = parse_file("octo/app", f'- name: often\n  cron: "{cron}"\n')
    assert problems == [] and len(found) == 1


@pytest.mark.parametrize(
    "inputs",
    [{"environment": "a\nb"}, {"environment": "x" * 501}, {"bad name": "x"}, {"environment": "\x1b[2J"}],
)
def test_schedule_inputs_follow_the_rules_of_a_manual_runs(inputs: dict[str, str]) -> None:
    # a manual run refuses these with a 400; a schedule passed them to every run it started
    [problem] = parse_schedule_list(
        [{"name": "a", "repository": "o/r", "cron": "@daily", "inputs": inputs}], "x"
    )[1]
    assert "inputs" in problem


def test_the_next_slot_shown_is_not_the_repeat_that_will_not_run() -> None:
    twice = Schedule("half-past-two", "octo/app", "30 2 * * *", "main", "Europe/Berlin")
    # after 02:30 summer time ran: the next run is the 26th's, not 02:30 winter time on the 25th
    assert twice.next_slot(at("2026-10-25T00:45:00+00:00")) == at("2026-10-26T01:30:00+00:00")
    assert twice.next_slot(at("2026-10-24T12:00:00+00:00")) == at("2026-10-25T00:30:00+00:00")
