"""Schedules fire each slot once: injected clocks (never a sleep for the slot), real Redis, real git, the fake GitHub.

Racing ticks are threads of this process and `python -m service.scheduler tick --now …` processes; the
jobs process's own scheduler thread is in test_manual_runs_e2e.py.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from rq import Queue

from service.job_context import JobContext, job_context, use_config
from service.repository_schedules import parse_file, schedules_of
from service.run_index import RunIndex
from service.scheduler import describe, fire_due, last_fired, tick
from service.schedules import Schedule, parse_schedules
from tests.harness.processes import PROJECT

NIGHTLY = Schedule("nightly", "octo/app", "0 3 * * *", "main", "Europe/Berlin", (("environment", "prod"),))


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture
def ctx(schedules_context: Callable[..., JobContext]) -> JobContext:
    return schedules_context(NIGHTLY)


def runs(ctx: JobContext) -> list[dict[str, Any]]:
    return RunIndex(ctx.redis).list_runs(limit=100)


def test_a_slot_fires_once_in_its_time_zone_as_a_trusted_audited_run(ctx: JobContext) -> None:
    assert fire_due(ctx, [NIGHTLY], at("2026-12-06T01:00:00+00:00")) == []  # first seen: nothing due since
    assert fire_due(ctx, [NIGHTLY], at("2026-12-06T01:59:59+00:00")) == []  # 02:59:59 in Berlin
    [run_id] = fire_due(ctx, [NIGHTLY], at("2026-12-06T02:00:03+00:00"))  # 03:00:03 in Berlin
    assert fire_due(ctx, [NIGHTLY], at("2026-12-06T02:00:20+00:00")) == []
    run = RunIndex(ctx.redis).get(run_id)
    assert (run["event"], run["branch"], run["trusted"], run["schedule"]) == (
        "schedule",
        "main",
        True,
        "nightly",
    )
    assert run["status_reason"] == "schedule nightly (2026-12-06T02:00:00Z)"
    assert run["inputs"] == {"environment": "prod"} and run["status"] == "QUEUED"
    assert [(e["action"], e["by"]) for e in RunIndex(ctx.redis).audit(run_id)] == [
        ("created by schedule", "schedule nightly")
    ]
    assert f"run-{run_id}" in Queue("runs", connection=ctx.redis).get_job_ids()
    assert last_fired(ctx.redis, NIGHTLY)["run_id"] == run_id


def test_after_downtime_only_the_newest_missed_slot_runs(ctx: JobContext) -> None:
    fire_due(ctx, [NIGHTLY], at("2026-12-01T00:00:00+00:00"))
    [first] = fire_due(ctx, [NIGHTLY], at("2026-12-01T02:00:00+00:00"))
    # down from the 1st to the 5th: four slots missed, one run (the 5th's), once
    [late] = fire_due(ctx, [NIGHTLY], at("2026-12-05T09:30:00+00:00"))
    assert fire_due(ctx, [NIGHTLY], at("2026-12-05T09:30:15+00:00")) == []
    assert RunIndex(ctx.redis).get(late)["status_reason"] == "schedule nightly (2026-12-05T02:00:00Z)"
    assert {r["run_id"] for r in runs(ctx)} == {first, late}


def test_summer_time_moves_the_slot_with_the_zone(ctx: JobContext) -> None:
    fire_due(ctx, [NIGHTLY], at("2026-07-01T00:00:00+00:00"))
    assert fire_due(ctx, [NIGHTLY], at("2026-07-01T00:59:59+00:00")) == []  # 02:59:59 summer time
    [run_id] = fire_due(ctx, [NIGHTLY], at("2026-07-01T01:00:01+00:00"))  # 03:00:01 summer time
    assert RunIndex(ctx.redis).get(run_id)["status_reason"] == "schedule nightly (2026-07-01T01:00:00Z)"


def test_ticks_racing_in_threads_start_one_run(ctx: JobContext) -> None:
    fire_due(ctx, [NIGHTLY], at("2026-12-06T00:00:00+00:00"))
    barrier = threading.Barrier(8)
    started: list[str] = []

    def tick() -> None:
        barrier.wait()
        started.extend(fire_due(ctx, [NIGHTLY], at("2026-12-06T02:00:01+00:00")))

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(started) == 1 and len(runs(ctx)) == 1
    assert Queue("runs", connection=ctx.redis).count == 1


def test_tick_processes_racing_start_one_run(ctx: JobContext, redis_url: str, fake_github: Any) -> None:
    settings = {
        "REDIS_URL": redis_url, "GITHUB_API_URL": fake_github.url, "GITHUB_TOKEN": "t",
        "STEPLINE_INSECURE_ACCEPT_UNSIGNED_WEBHOOKS": "true", "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",
        "STEPLINE_SCHEDULES": '[{"name": "nightly", "repository": "octo/app", "branch": "main",'
                              ' "cron": "0 3 * * *", "timezone": "Europe/Berlin"}]',
        "PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING",
    }  # fmt: skip

    def tick(now: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "service.scheduler", "tick", "--now", now]
        return subprocess.Popen(command, cwd=PROJECT, env=settings, stdout=subprocess.PIPE, text=True)

    first = tick("2026-12-06T01:00:00+00:00")
    assert first.communicate(timeout=60)[0] == ""
    racing = [tick("2026-12-06T02:00:02+00:00") for _ in range(4)]
    printed = [p.communicate(timeout=60)[0].split() for p in racing]
    assert all(p.returncode == 0 for p in racing)
    assert sorted(len(ids) for ids in printed) == [0, 0, 0, 1]
    assert [r["run_id"] for r in runs(ctx)] == [ids[0] for ids in printed if ids]
    command = [sys.executable, "-m", "service.scheduler", "list"]
    listed = subprocess.run(command, cwd=PROJECT, env=settings, capture_output=True, text=True, timeout=60)
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["name"], row["last_run_id"], row["source"]) == ("nightly", runs(ctx)[0]["run_id"], "settings")


def test_a_branch_that_vanished_waits_for_the_next_tick(ctx: JobContext) -> None:
    gone = dataclasses.replace(NIGHTLY, name="gone", branch="deleted")
    fire_due(ctx, [gone], at("2026-12-06T00:00:00+00:00"))
    assert fire_due(ctx, [gone], at("2026-12-06T02:00:01+00:00")) == []
    assert runs(ctx) == [] and last_fired(ctx.redis, gone) is None


def test_the_schedules_page_and_api_list_next_and_last_runs(ctx: JobContext, service_config: Any) -> None:
    from service.app import create_app

    assert fire_due(ctx, [NIGHTLY], at("2026-12-06T00:00:00+00:00")) == []
    fire_due(ctx, [NIGHTLY], at("2026-12-06T02:00:01+00:00"))
    [row] = describe(ctx.redis, ctx.index, [NIGHTLY], at("2026-12-06T02:00:02+00:00"))
    assert row["next_at"] == at("2026-12-07T02:00:00+00:00") and row["last_slot"] == at(
        "2026-12-06T02:00:00+00:00"
    )
    client = create_app(ctx.config).test_client()
    listed = client.get("/api/schedules").json["schedules"]
    assert listed[0]["name"] == "nightly" and listed[0]["last_run_id"] == row["last_run_id"]
    page = client.get("/schedules").get_data(as_text=True)
    assert "0 3 * * *" in page and "Europe/Berlin" in page and f"/runs/{row['last_run_id']}" in page


def test_schedule_settings_name_every_problem() -> None:
    text = (
        '[{"name": "a", "repository": "o/r", "cron": "*/5 * * * *"}, {"name": "$(x)", "repository": "o",'
        ' "cron": "61 * * * *", "timezone": "Mars/Olympus", "branch": "a..b", "extra": 1}, 3]'
    )
    schedules, problems = parse_schedules(text)
    assert schedules == (Schedule("a", "o/r", "*/5 * * * *"),)
    assert len(problems) == 7, problems
    assert parse_schedules("[")[1][0].startswith("STEPLINE_SCHEDULES is not JSON")
    assert parse_schedules('[{"name": "a", "repository": "o/r", "cron": "* * * * * *"}]')[
        1
    ]  # no seconds field
    twice = '[{"name": "a", "repository": "o/r", "cron": "@daily"}, {"name": "a", "repository": "o/r", "cron": "@daily"}]'
    assert parse_schedules(twice)[1] == ["STEPLINE_SCHEDULES: o/r:a is named twice"]


LIB_SCHEDULES = """
- name: hourly
  cron: "0 * * * *"
  inputs: {environment: lib}
- name: nightly
  cron: "0 3 * * *"
"""


def test_a_repository_declares_schedules_in_its_default_branchs_file(
    ctx: JobContext, make_repo: Any, fake_github: Any
) -> None:
    lib = make_repo("lib")
    lib.commit({".stepline/schedules.yaml": LIB_SCHEDULES}, "schedules")
    lib.push("main")
    lib.checkout("feature", create_from="main")  # another branch's file never counts
    lib.commit({".stepline/schedules.yaml": '- {name: sneaky, cron: "* * * * *"}'}, "more")
    lib.push("feature")
    bad = make_repo("bad")
    bad.commit({".stepline/schedules.yaml": '- {name: x, cron: "every day"}'}, "bad")
    bad.push("main")
    fake_github.add_repo("octo/lib", clone_url=lib.url)
    fake_github.add_repo("octo/bad", clone_url=bad.url)
    config = dataclasses.replace(ctx.config, schedule_repositories=("octo/lib", "octo/bad"))
    use_config(config)
    lib_ctx = job_context()
    assert tick(config, lib_ctx, at("2026-12-06T00:30:00+00:00")) == []  # read the files; nothing due yet
    schedules, problems = schedules_of(config, lib_ctx.redis)
    assert sorted(s.key for s in schedules) == ["octo/app:nightly", "octo/lib:hourly", "octo/lib:nightly"]
    assert "cron 'every day' is not five cron fields" in problems["octo/bad"]
    [run_id] = tick(config, lib_ctx, at("2026-12-06T01:00:05+00:00"))
    run = RunIndex(lib_ctx.redis).get(run_id)
    assert (run["repository"], run["branch"], run["schedule"], run["inputs"]) == (
        "octo/lib",
        "main",
        "hourly",
        {"environment": "lib"},
    )
    assert [
        row["source"]
        for row in describe(lib_ctx.redis, lib_ctx.index, schedules, at("2026-12-06T01:00:06+00:00"))
    ] == ["settings", ".stepline/schedules.yaml", ".stepline/schedules.yaml"]


def test_a_settings_schedule_wins_over_the_files_of_the_same_name(ctx: JobContext) -> None:
    same = parse_file("octo/app", '- {name: nightly, cron: "*/5 * * * *"}')[0]
    assert same[0].key == NIGHTLY.key and same[0].source == ".stepline/schedules.yaml"
    ctx.redis.set(
        "stepline:schedules:repo:octo/app", json.dumps({"text": '- {name: nightly, cron: "*/5 * * * *"}'})
    )
    config = dataclasses.replace(ctx.config, schedule_repositories=("octo/app",))
    assert schedules_of(config, ctx.redis)[0] == [NIGHTLY]
    assert parse_file("octo/app", "- {name: x, repository: other/repo, cron: '@daily'}")[1] == [
        ".stepline/schedules.yaml[1]: a repository schedules only itself"
    ]
    assert parse_file("octo/app", "a: &x 1\nb: *x")[1][0].startswith(".stepline/schedules.yaml is not YAML")


def test_list_says_when_there_are_no_schedules(redis_url: str, monkeypatch: Any, capsys: Any) -> None:
    from service.scheduler import main

    for name in ("STEPLINE_SCHEDULES", "STEPLINE_SCHEDULE_REPOSITORIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "secret")
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no schedules: STEPLINE_SCHEDULES is empty" in err
