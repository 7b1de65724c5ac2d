"""Hostile or careless schedules: crons croniter takes but that never fire or fire at random, a slot repeated by
the autumn clock change, and one broken schedule among good ones (real Redis, real git, the fake GitHub)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.job_context import JobContext, job_context, use_config
from service.repository_schedules import parse_file
from service.schedule_problems import schedule_problems
from service.scheduler import fire_due
from service.schedules import Schedule, parse_schedule_list, parse_schedules
from tests.harness.git_repos import git
from tests.harness.processes import PROJECT

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


def test_a_vanished_branch_or_repository_is_told_once_and_shown_until_its_slot_starts(
    ctx: JobContext, redis_url: str, fake_github: Any, service_config: Any
) -> None:
    settings = {
        "REDIS_URL": redis_url, "GITHUB_API_URL": fake_github.url, "GITHUB_TOKEN": "t",
        "STEPLINE_INSECURE_ACCEPT_UNSIGNED_WEBHOOKS": "true", "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",
        "STEPLINE_SCHEDULES": json.dumps([
            {"name": "gone-branch", "repository": "octo/app", "branch": "deleted", "cron": "0 3 * * *"},
            {"name": "gone-repo", "repository": "octo/vanished", "cron": "0 3 * * *"},
        ]),
        "PATH": "/usr/bin:/bin", "LOG_LEVEL": "INFO",
    }  # fmt: skip

    def tick(now: str) -> str:
        command = [sys.executable, "-m", "service.scheduler", "tick", "--now", now]
        done = subprocess.run(command, cwd=PROJECT, env=settings, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout == "", done.stderr
        return done.stderr

    tick("2026-12-06T01:00:00+00:00")  # first seen
    first = tick("2026-12-06T03:00:02+00:00")  # due: neither can start
    assert (
        "octo/app:gone-branch: slot not started" in first
        and "octo/vanished:gone-repo: slot not started" in first
    )
    for now in ("2026-12-06T03:00:17+00:00", "2026-12-06T03:00:32+00:00"):  # the next ticks (other processes)
        assert "slot not started" not in tick(now)

    use_config(
        dataclasses.replace(service_config, schedules=parse_schedules(settings["STEPLINE_SCHEDULES"])[0])
    )
    client = create_app(job_context().config).test_client()
    problems = client.get("/api/schedules").json["problems"]
    assert (
        "deleted" in problems["octo/app:gone-branch"]
        and "octo/vanished" in problems["octo/vanished:gone-repo"]
    )
    page = client.get("/schedules").get_data(as_text=True)
    assert page.count('class="flash error schedule-problem"') == 2 and "octo/app:gone-branch:" in page

    ctx.redis.delete(
        "stepline:schedules:problem:octo/app:gone-branch"
    )  # it expires a day after: say it again
    assert "octo/app:gone-branch: slot not started" in tick("2026-12-06T03:00:47+00:00")


def test_a_schedule_whose_branch_comes_back_starts_and_shows_no_problem(
    ctx: JobContext, tmp_path: Path
) -> None:
    later = Schedule("later", "octo/app", "0 3 * * *", "later", "Europe/Berlin")
    fire_due(ctx, [later], at("2026-12-06T00:00:00+00:00"))
    assert fire_due(ctx, [later], at("2026-12-06T02:00:01+00:00")) == []
    assert list(schedule_problems(ctx.redis, [later])) == ["octo/app:later"]
    git(
        "push", "origin", "main:refs/heads/later", cwd=tmp_path / "git" / "app-work"
    )  # the fixture's octo/app
    assert len(fire_due(ctx, [later], at("2026-12-06T02:00:16+00:00"))) == 1
    assert schedule_problems(ctx.redis, [later]) == {}
