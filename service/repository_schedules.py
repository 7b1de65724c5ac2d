"""Schedules a repository declares itself, in `.stepline/schedules.yaml` on its default branch.

Read for each repository in STEPLINE_SCHEDULE_REPOSITORIES (the operator opts a repository in: its
schedules spend the service's workers). The file is a YAML list of schedules with the fields of
STEPLINE_SCHEDULES (service/schedules.py) but no `repository`:

    - name: nightly
      cron: "0 3 * * *"
      timezone: Europe/Berlin
      branch: main            # default: the default branch
      inputs: {environment: staging}

Only the default branch's file counts, so only people who may push there declare schedules (a pull
request's or a fork's copy never does), and none fires more often than every 5 minutes (its writers spend the
service's workers and GitHub rate limit). A schedule of STEPLINE_SCHEDULES with the same repository and
name wins. The scheduler fires from the files kept in Redis, never waiting for GitHub. A push to a
repository's default branch re-reads its file at once (the webhook enqueues `refresh_repository`);
besides, each tick re-reads at most REFRESH_PER_TICK files not read for REFRESH_SECONDS, the oldest
first (a backstop for a lost delivery), one jobs process each (a lock key), and at most
REFRESHES_PER_MINUTE however many jobs processes tick:

    stepline:schedules:repo:<repository>          JSON {"text", "sha", "error", "read_at"} of the last read
    stepline:schedules:repo-lock:<repository>     taken (SET NX, LOCK_SECONDS) by the process re-reading it
    stepline:schedules:repo-read                  sorted set: repository -> when its file was last read
    stepline:schedules:repo-reads:<minute>        periodic reads begun in that minute (all processes)
A read that fails (GitHub away) keeps the last good schedules; an invalid file has none, and says why.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
import yaml

from service.config import ServiceConfig
from service.errors import DashboardError, InvalidPipelineError, PipelineSourceError
from service.job_context import job_context
from service.pipeline_source import read_repository_file
from service.ref_resolver import RefRequest, RefResolver
from service.schedules import Schedule, parse_schedule_list
from statemachines import nesting

log = logging.getLogger(__name__)

PATH = ".stepline/schedules.yaml"
KEY = "stepline:schedules:repo:"
LOCK_KEY = "stepline:schedules:repo-lock:"
READ_KEY = "stepline:schedules:repo-read"
READS_KEY = "stepline:schedules:repo-reads:"
# A read is 3-4 GitHub calls. Pushes re-read a file at once, so the periodic read is only a backstop: at
# most 8 a minute is ~1,700 calls an hour of GitHub's 5,000 whatever the number of repositories (1,000 are
# first read within ~2 hours of a start; each read again after 6 hours)
REFRESH_SECONDS = 6 * 3600
REFRESHES_PER_MINUTE = 8
# longer than a read (four calls of at most 10 s, retried); once read, repo-read says the file is fresh
LOCK_SECONDS = 120
MAX_BYTES = 64 * 1024


def schedules_of(config: ServiceConfig, client: redis.Redis) -> tuple[list[Schedule], dict[str, str]]:
    """(every schedule: the settings' and the repositories' last read files, problems per repository)."""
    schedules = list(config.schedules)
    taken = {schedule.key for schedule in schedules}
    problems: dict[str, str] = {}
    for repository in config.schedule_repositories:
        record = _cached(client, repository)
        if record is None:
            continue
        found, errors = parse_file(repository, record.get("text") or "")
        error = record.get("error") or "; ".join(errors)
        if error:
            problems[repository] = error
        schedules.extend(schedule for schedule in found if schedule.key not in taken)
    return schedules, problems


def refresh(config: ServiceConfig, client: redis.Redis, now: float) -> list[str]:
    """Re-read files not read for REFRESH_SECONDS, never read ones and then the oldest first (one process
    each), while this minute's REFRESHES_PER_MINUTE last; the repositories this call read."""
    resolver = RefResolver(config, client)
    read: list[str] = []
    budget = READS_KEY + str(int(now // 60))
    for repository in stale_repositories(config, client, now):
        if not client.set(LOCK_KEY + repository, now, nx=True, ex=LOCK_SECONDS):
            continue
        pipe = client.pipeline()
        pipe.incr(budget)
        pipe.expire(budget, 120)
        if pipe.execute()[0] > REFRESHES_PER_MINUTE:
            client.delete(LOCK_KEY + repository)
            break
        read_file(config, client, resolver, repository, now)
        read.append(repository)
    return read


def stale_repositories(config: ServiceConfig, client: redis.Redis, now: float) -> list[str]:
    """The opted-in repositories whose file was not read for REFRESH_SECONDS: never read first, then oldest."""
    repositories = list(config.schedule_repositories)
    pipe = client.pipeline(transaction=False)
    for repository in repositories:
        pipe.zscore(READ_KEY, repository)
    read_at = [float(score) if score is not None else 0.0 for score in pipe.execute()]
    stale = [(at, r) for at, r in zip(read_at, repositories, strict=True) if at <= now - REFRESH_SECONDS]
    return [repository for _, repository in sorted(stale)]


def refresh_repository(repository: str) -> bool:
    """rq job (a push to the repository's default branch): re-read its file now; False if not opted in."""
    ctx = job_context()
    if repository not in ctx.config.schedule_repositories:
        return False
    read_file(ctx.config, ctx.redis, RefResolver(ctx.config, ctx.redis), repository, time.time())
    return True


def read_file(
    config: ServiceConfig, client: redis.Redis, resolver: RefResolver, repository: str, now: float
) -> None:
    """Read the repository's file from its default branch's head and keep it (or why it was not read)."""
    record = _cached(client, repository) or {}
    try:
        record = {**_read(config, resolver, repository), "error": "", "read_at": now}
    except (DashboardError, PipelineSourceError, InvalidPipelineError) as exc:
        log.warning("schedules of %s: %s not read: %s", repository, PATH, exc)
        record = {**record, "error": f"{PATH} not read: {exc}"[:500], "read_at": now}
    pipe = client.pipeline()
    pipe.set(KEY + repository, json.dumps(record))
    pipe.zadd(READ_KEY, {repository: now})
    pipe.execute()


def schedule_file_pushed(config: ServiceConfig, payload: Any) -> str | None:
    """The opted-in repository whose default branch a push delivery updated (its file may have changed)."""
    repository = payload.get("repository") if isinstance(payload, dict) else None
    if not isinstance(repository, dict) or not config.schedule_repositories:
        return None
    name, branch = repository.get("full_name"), repository.get("default_branch")
    if (
        not isinstance(name, str)
        or not isinstance(branch, str)
        or payload.get("ref") != f"refs/heads/{branch}"
    ):
        return None
    return next((r for r in config.schedule_repositories if r.lower() == name.lower()), None)


def parse_file(repository: str, text: str) -> tuple[tuple[Schedule, ...], list[str]]:
    """The schedules of a repository's file (none when it is empty or absent)."""
    if not text.strip():
        return (), []
    if len(text.encode()) > MAX_BYTES:
        return (), [f"{PATH} is over {MAX_BYTES} bytes"]
    try:
        items = nesting.load_yaml(text)
    except (yaml.YAMLError, nesting.TooDeep, ValueError) as exc:
        return (), [f"{PATH} is not YAML: {str(exc)[:200]}"]
    return parse_schedule_list(items, PATH, repository=repository, source=PATH)


def _read(config: ServiceConfig, resolver: RefResolver, repository: str) -> dict[str, Any]:
    branch = resolver.default_branch(repository)
    source = resolver.resolve(RefRequest(repository, branch=branch))
    text = read_repository_file(config, repository, source.clone_url, source.sha, PATH) or ""
    return {"text": text[: MAX_BYTES + 1], "sha": source.sha}


def _cached(client: redis.Redis, repository: str) -> dict[str, Any] | None:
    raw = client.get(KEY + repository)
    return json.loads(raw) if raw else None
