"""Schedules: cron expressions per repository and branch, with time zones, from STEPLINE_SCHEDULES.

(Or from a repository's own `.stepline/schedules.yaml`, the same fields without `repository`:
service/repository_schedules.py.)

STEPLINE_SCHEDULES is a JSON list, e.g.

    [{"name": "nightly", "repository": "octo/app", "branch": "main", "cron": "0 3 * * *",
      "timezone": "Europe/Berlin", "inputs": {"environment": "staging"}}]

`branch` defaults to the repository's default branch, `timezone` to UTC (an IANA name), `inputs` to none.
`cron` has five fields (minute hour day-of-month month day-of-week) or is one of @hourly, @daily,
@weekly, @monthly, @yearly; croniter reads it, in the schedule's time zone (so `0 3 * * *` in
Europe/Berlin is 03:00 there, summer and winter). service/scheduler.py fires the slots.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from service import run_inputs

NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
# a git branch or tag name, narrowed: no shell or revision syntax ($, (, ~, ^, :, spaces, "..", "@{")
REF_NAME = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/+@-]{1,200}(?<![./])(?<!\.lock)$")
# croniter's R (random) and H (hashed) fields: R is drawn afresh at each reading, so the due slot would move
# at every tick and fire again and again
RANDOM_FIELD = re.compile(r"(?<![A-Za-z])[RrHh](?![A-Za-z])")
INPUT_NAME = re.compile(run_inputs.NAME)
NICKNAMES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
FIELDS = ("name", "repository", "branch", "cron", "timezone", "inputs")
SETTINGS = "settings"
# a repository's own file fires at most this often (GitHub Actions' limit too): its writers spend the service's
# workers and GitHub rate limit; the operator's STEPLINE_SCHEDULES may fire every minute
MIN_FILE_INTERVAL_MINUTES = 5
MAX_SCHEDULES = 50


@dataclass(frozen=True)
class Schedule:
    """One schedule: which branch of which repository runs when (hashable: it is part of the settings)."""

    name: str
    repository: str
    cron: str
    branch: str = ""  # "": the repository's default branch
    timezone: str = "UTC"
    inputs: tuple[tuple[str, str], ...] = ()
    source: str = "settings"  # or the repository's .stepline/schedules.yaml (service/repository_schedules.py)

    @property
    def key(self) -> str:
        return f"{self.repository}:{self.name}"

    def latest_slot(self, now: float) -> float:
        """The newest slot at or before `now` (epoch seconds).

        A fixed-hour slot in the hour repeated when clocks go back is its first instant, so it runs once, as
        cron runs it; a schedule of every hour (hour field `*`) keeps both, as cron does.
        """
        # croniter's get_prev is strictly before its start: start a second on, so a slot at `now` counts
        zone = ZoneInfo(self.timezone)
        start = datetime.fromtimestamp(math.floor(now) + 1, zone)
        slot = croniter(self.cron, start).get_prev(datetime)
        if slot.fold and not self._every_hour():
            return slot.replace(fold=0).timestamp()
        return slot.timestamp()

    def _every_hour(self) -> bool:
        fields = self.cron.split()
        return self.cron.lower() == "@hourly" or (len(fields) == 5 and fields[1].startswith("*"))

    def next_slot(self, now: float) -> float:
        """The first slot after `now` that runs (not the repeat of a fixed-hour slot: see latest_slot)."""
        start = datetime.fromtimestamp(math.floor(now), ZoneInfo(self.timezone))
        slots = croniter(self.cron, start)
        slot = slots.get_next(datetime)
        if slot.fold and not self._every_hour() and slot.replace(fold=0).timestamp() < slot.timestamp():
            slot = slots.get_next(datetime)
        return slot.timestamp()


def parse_schedules(text: str) -> tuple[tuple[Schedule, ...], list[str]]:
    """(schedules, problems) of STEPLINE_SCHEDULES's JSON; every problem names its schedule and field."""
    if not text.strip():
        return (), []
    try:
        items = json.loads(text)
    except ValueError as exc:
        return (), [f"STEPLINE_SCHEDULES is not JSON: {exc}"]
    return parse_schedule_list(items, "STEPLINE_SCHEDULES")


def parse_schedule_list(
    items: object, where: str, repository: str | None = None, source: str = SETTINGS
) -> tuple[tuple[Schedule, ...], list[str]]:
    """(schedules, problems) of a list of schedule objects; with `repository`, each is that repository's."""
    if not isinstance(items, list):
        return (), [f"{where} must be a list of schedules"]
    schedules: list[Schedule] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, item in enumerate(items[:MAX_SCHEDULES], 1):
        if repository is not None and isinstance(item, dict):
            if item.get("repository", repository) != repository:
                problems.append(f"{where}[{number}]: a repository schedules only itself")
                continue
            item = {**item, "repository": repository}
        found = _schedule(item, f"{where}[{number}]", problems, source)
        if found is None:
            continue
        if found.key in seen:
            problems.append(f"{where}: {found.key} is named twice")
        seen.add(found.key)
        schedules.append(found)
    if len(items) > MAX_SCHEDULES:
        problems.append(f"{where}: more than {MAX_SCHEDULES} schedules (the rest are ignored)")
    return tuple(schedules), problems


def _schedule(item: object, where: str, problems: list[str], source: str) -> Schedule | None:
    if not isinstance(item, dict):
        problems.append(f"{where} must be an object")
        return None
    before = len(problems)
    unknown = set(item) - set(FIELDS)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    name, repository = item.get("name"), item.get("repository")
    branch, cron = item.get("branch", ""), item.get("cron")
    timezone, inputs = item.get("timezone", "UTC"), item.get("inputs", {})
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{where}: name must be 1-64 letters, digits, '.', '_' or '-'")
    if not isinstance(repository, str) or not REPOSITORY.match(repository):
        problems.append(f"{where}: repository must be 'owner/name'")
    if not isinstance(branch, str) or (branch and not REF_NAME.match(branch)):
        problems.append(f"{where}: branch {str(branch)[:80]!r} is not a branch name")
    if not isinstance(cron, str) or not _valid_cron(cron):
        problems.append(f"{where}: cron {str(cron)[:80]!r} is not five cron fields or @daily-like")
    elif not _has_slots(cron):
        problems.append(f"{where}: cron {cron[:80]!r} never fires (no such day, e.g. 31 February)")
    elif source != SETTINGS and _shortest_gap_minutes(cron) < MIN_FILE_INTERVAL_MINUTES:
        problems.append(
            f"{where}: cron {cron[:80]!r} fires more often than every {MIN_FILE_INTERVAL_MINUTES} minutes"
        )
    if not isinstance(timezone, str) or not _valid_zone(timezone):
        problems.append(
            f"{where}: timezone {str(timezone)[:80]!r} is not an IANA time zone, e.g. Europe/Berlin"
        )
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        problems.append(f"{where}: inputs must be an object of names to strings")
    elif not all(_valid_input(name, value) for name, value in inputs.items()):
        problems.append(
            f"{where}: inputs must be names (letters, digits, '_') to one line of at most "
            f"{run_inputs.MAX_VALUE} characters, as a manual run's"
        )
    if len(problems) > before:
        return None
    pairs = tuple(sorted((str(k), v) for k, v in inputs.items()))
    return Schedule(str(name), str(repository), str(cron).strip(), str(branch), str(timezone), pairs, source)


def _valid_cron(expression: str) -> bool:
    expression = expression.strip()
    if expression.lower() in NICKNAMES:
        return True
    # five fields only: croniter would take a sixth as seconds and a seventh as years
    fields = expression.split()
    return len(fields) == 5 and not RANDOM_FIELD.search(expression) and croniter.is_valid(expression)


def _has_slots(expression: str) -> bool:
    """False for a valid cron that names no day (croniter searches years, then gives up at every tick)."""
    try:
        croniter(expression.strip(), datetime(2000, 1, 1)).get_next(float)
    except CroniterError:
        return False
    return True


def _shortest_gap_minutes(expression: str) -> int:
    """The fewest minutes between two slots (an hour's last minute to the next hour's first counts)."""
    minute_field, hour_field = croniter(expression.strip()).expanded[:2]
    minutes = list(range(60)) if minute_field == ["*"] else sorted(int(m) for m in minute_field)
    hours = set(range(24)) if hour_field == ["*"] else {int(h) for h in hour_field}
    gaps = [later - earlier for earlier, later in pairwise(minutes)]
    if any((hour + 1) % 24 in hours for hour in hours):
        gaps.append(60 - minutes[-1] + minutes[0])
    return min(gaps, default=60)


def _valid_input(name: object, value: str) -> bool:
    return (
        isinstance(name, str)
        and INPUT_NAME.fullmatch(name) is not None
        and len(value) <= run_inputs.MAX_VALUE
        and not run_inputs.CONTROL.search(value)
    )


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
