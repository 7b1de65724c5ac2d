"""Repositories' schedule files: a push re-reads one at once, and a tick fires from what was read, re-reading
only a few old files (real Redis, real git, the webhook through the Flask app, rq jobs in a real worker)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from rq import Queue, SimpleWorker

from service.app import create_app
from service.job_context import JobContext, job_context, use_config
from service.repository_schedules import (
    KEY,
    LOCK_KEY,
    READ_KEY,
    REFRESH_SECONDS,
    REFRESHES_PER_MINUTE,
    refresh,
    schedules_of,
)
from service.scheduler import tick
from service.schedules import Schedule
from tests.service.github_events import deliver, push_payload

NIGHTLY = Schedule("nightly", "octo/app", "0 3 * * *", "main", "Europe/Berlin")
HOURLY = '- {name: hourly, cron: "0 * * * *"}\n'


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture
def ctx(schedules_context: Callable[..., JobContext]) -> JobContext:
    return schedules_context(NIGHTLY)


def opt_in(ctx: JobContext, *repositories: str) -> JobContext:
    use_config(dataclasses.replace(ctx.config, schedule_repositories=repositories))
    return job_context()


def keys(ctx: JobContext) -> list[str]:
    return sorted(schedule.key for schedule in schedules_of(ctx.config, ctx.redis)[0])


def test_a_tick_fires_what_was_read_and_re_reads_only_a_few_old_files_oldest_first(
    ctx: JobContext, fake_github: Any
) -> None:
    many = [
        f"octo/r{number:02d}" for number in range(2 * REFRESHES_PER_MINUTE + 2)
    ]  # unknown to GitHub: 404s
    ctx = opt_in(ctx, "octo/app", *many)
    start = at("2026-12-06T00:30:00+00:00")
    # octo/app's file was read a moment ago (by a push): it is not due, and fires from Redis
    ctx.redis.set(KEY + "octo/app", json.dumps({"text": HOURLY, "sha": "", "error": "", "read_at": start}))
    ctx.redis.zadd(READ_KEY, {"octo/app": start + 5})
    assert tick(ctx.config, ctx, start) == []  # first seen: nothing due yet
    assert sorted(ctx.redis.zrange(READ_KEY, 0, -1)) == sorted(
        [b"octo/app", *(r.encode() for r in many[:REFRESHES_PER_MINUTE])]
    )  # never-read files first, at most REFRESHES_PER_MINUTE of them
    requests = len(fake_github.requests())

    [run_id] = tick(ctx.config, ctx, at("2026-12-06T01:00:02+00:00"))  # octo/app's hourly slot
    assert ctx.index.get(run_id)["schedule"] == "hourly"
    # the tick read the next REFRESHES_PER_MINUTE files (a few GitHub calls each), not all of them
    assert len(fake_github.requests()) - requests < 8 * REFRESHES_PER_MINUTE + 4
    assert (
        refresh(ctx.config, ctx.redis, at("2026-12-06T01:00:17+00:00")) == []
    )  # the minute's reads are spent
    assert refresh(ctx.config, ctx.redis, at("2026-12-06T01:01:02+00:00")) == many[2 * REFRESHES_PER_MINUTE :]
    assert refresh(ctx.config, ctx.redis, at("2026-12-06T01:02:02+00:00")) == []  # all read lately
    later = start + REFRESH_SECONDS + 60
    ctx.redis.delete(*ctx.redis.keys(LOCK_KEY + "*"))  # they expire in real seconds: hours passed
    assert (
        refresh(ctx.config, ctx.redis, later) == many[:REFRESHES_PER_MINUTE]
    )  # the oldest reads come back first


def test_a_push_to_the_default_branch_re_reads_the_file_at_once(
    ctx: JobContext, make_repo: Any, fake_github: Any
) -> None:
    lib = make_repo("lib")
    lib.commit({".stepline/schedules.yaml": HOURLY}, "schedules")
    lib.push("main")
    fake_github.add_repo("octo/lib", clone_url=lib.url)
    ctx = opt_in(ctx, "octo/lib")
    tick(ctx.config, ctx, at("2026-12-06T00:30:00+00:00"))  # the periodic read: not due again for hours
    assert keys(ctx) == ["octo/app:nightly", "octo/lib:hourly"]
    client = create_app(ctx.config).test_client()
    jobs = Queue("default", connection=ctx.redis)

    def push(branch: str) -> None:
        payload = push_payload(lib, branch, full_name="octo/lib")
        payload["repository"]["default_branch"] = "main"
        assert deliver(client, "push", payload).status_code in (200, 202)

    lib.checkout("feature", create_from="main")
    lib.commit(
        {".stepline/schedules.yaml": '- {name: sneaky, cron: "*/5 * * * *"}'}, "not the default branch"
    )
    lib.push("feature")
    push("feature")
    assert jobs.count == 0  # another branch's file never counts: nothing to read

    lib.checkout("main")
    lib.commit({".stepline/schedules.yaml": HOURLY + '- {name: weekly, cron: "@weekly"}\n'}, "[skip ci] more")
    lib.push("main")
    push("main")
    assert jobs.count == 1
    SimpleWorker([jobs], connection=ctx.redis).work(burst=True)
    assert keys(ctx) == ["octo/app:nightly", "octo/lib:hourly", "octo/lib:weekly"]
