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
name wins. The file is read again every REFRESH_SECONDS by one jobs process (a lock key), and kept in
Redis for the others and for the dashboard:

    stepline:schedules:repo:<repository>          JSON {"text", "sha", "error", "read_at"} of the last read
    stepline:schedules:repo-lock:<repository>     taken (SET NX, REFRESH_SECONDS) by the process re-reading it
A read that fails (GitHub away) keeps the last good schedules; an invalid file has none, and says why.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
import yaml

from service.config import ServiceConfig
from service.errors import DashboardError, InvalidPipelineError, PipelineSourceError
from service.pipeline_source import read_repository_file
from service.ref_resolver import RefRequest, RefResolver
from service.schedules import Schedule, parse_schedule_list
from statemachines import nesting

log = logging.getLogger(__name__)

PATH = ".stepline/schedules.yaml"
KEY = "stepline:schedules:repo:"
LOCK_KEY = "stepline:schedules:repo-lock:"
REFRESH_SECONDS = 300
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


def refresh(config: ServiceConfig, client: redis.Redis, now: float) -> int:
    """Re-read the files not read for REFRESH_SECONDS (one process each); how many this call read."""
    resolver, read = RefResolver(config, client), 0
    for repository in config.schedule_repositories:
        if not client.set(LOCK_KEY + repository, now, nx=True, ex=REFRESH_SECONDS):
            continue
        read += 1
        record = _cached(client, repository) or {}
        try:
            record = {**_read(config, resolver, repository), "error": "", "read_at": now}
        except (DashboardError, PipelineSourceError, InvalidPipelineError) as exc:
            log.warning("schedules of %s: %s not read: %s", repository, PATH, exc)
            record = {**record, "error": f"{PATH} not read: {exc}"[:500], "read_at": now}
        client.set(KEY + repository, json.dumps(record))
    return read


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
