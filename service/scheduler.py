"""The scheduler: a thread of every jobs process that starts each due slot of every schedule once.

Schedules come from STEPLINE_SCHEDULES and from the `.stepline/schedules.yaml` of the repositories in
STEPLINE_SCHEDULE_REPOSITORIES (service/repository_schedules.py: kept in Redis, re-read on a push to the
default branch and, a few a tick, when old).

Each tick (STEPLINE_SCHEDULE_TICK_SECONDS) looks at every schedule (service/schedules.py): its due slot is
the newest cron slot at or before now. When that slot has not run, the branch is resolved to its head
commit (service/ref_resolver.py) and, in one Redis transaction, the slot is claimed, the run created
(a trusted run of that branch, `event` "schedule", audited "by schedule <name>") and its start job
enqueued. Only the newest slot runs: slots missed while no jobs process ran (or Redis was away) are
skipped, and the newest of them runs once when a tick comes back. A slot before the schedule was first
seen never runs (a new schedule does not fire its last slot at once).

Exactly once, with any number of jobs processes and restarts: the claim is `SET NX` on a key naming the
schedule and the slot, inside a MULTI that WATCHes it, so of two ticks racing for a slot one creates
the run and the other's transaction fails. The claim expires after 8 days; `last` (no expiry) keeps a
slot from running again after that. After a Redis failover that lost the last writes, the slot may be
claimed again, but its execution name is derived from the schedule and slot, so StartExecution answers
ExecutionAlreadyExists (Step Functions keeps names 90 days, on AWS too): no second execution starts.

Redis (this module is the one home of these keys):
    stepline:schedules:since:<repository>:<name>        epoch first seen: earlier slots never run
    stepline:schedules:last:<repository>:<name>         JSON {slot, run_id, fired_at}: the newest slot run
    stepline:schedules:slot:<repository>:<name>:<slot>  the claim of one slot (8 days)

`python -m service.scheduler list` prints the schedules with their next and last runs;
`python -m service.scheduler tick [--now 2026-12-06T03:00:00Z]` runs one tick (at that time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import redis
from croniter import CroniterError

from service.app_installations import repository_installation
from service.config import ServiceConfig
from service.errors import DashboardError
from service.job_context import JobContext, job_context, use_config
from service.manual_runs import SCHEDULE, make_run, queue_run
from service.ref_resolver import RefRequest, RefResolver
from service.repository_schedules import PATH, refresh, schedules_of
from service.run_index import RunIndex
from service.run_record import RunRecord
from service.schedule_problems import clear_problem, note_problem, schedule_problems
from service.schedules import Schedule
from statemachines.errors import ConfigError

log = logging.getLogger(__name__)

KEY = "stepline:schedules:"
CLAIM_SECONDS = 8 * 24 * 3600


def since_key(schedule: Schedule) -> str:
    return f"{KEY}since:{schedule.key}"


def last_key(schedule: Schedule) -> str:
    return f"{KEY}last:{schedule.key}"


def slot_key(schedule: Schedule, slot: float) -> str:
    return f"{KEY}slot:{schedule.key}:{int(slot)}"


def last_fired(client: redis.Redis, schedule: Schedule) -> dict[str, Any] | None:
    raw = client.get(last_key(schedule))
    return json.loads(raw) if raw else None


def fire_due(ctx: JobContext, schedules: Iterable[Schedule], now: float) -> list[str]:
    """One tick: start every schedule's due slot that has not run; the ids of the runs this tick started."""
    resolver = RefResolver(ctx.config, ctx.redis)
    started = []
    for schedule in schedules:
        try:
            run_id = fire_schedule(ctx, resolver, schedule, now)
        except DashboardError as exc:  # unknown branch, GitHub away: the slot stays due for the next tick
            note_problem(ctx.redis, schedule, str(exc))
            continue
        except CroniterError as exc:  # a cron with no slot (checked when read): it alone stops
            note_problem(ctx.redis, schedule, f"no slot: {exc}", logging.ERROR)
            continue
        if run_id:
            clear_problem(ctx.redis, schedule)
            started.append(run_id)
    return started


def fire_schedule(ctx: JobContext, resolver: RefResolver, schedule: Schedule, now: float) -> str | None:
    """Start the schedule's due slot unless it ran, or was before the schedule was seen; the run id."""
    client = ctx.redis
    client.set(since_key(schedule), now, nx=True)
    since = float(client.get(since_key(schedule)) or now)
    slot = schedule.latest_slot(now)
    last = last_fired(client, schedule)
    if slot < since or (last and last["slot"] >= slot) or client.exists(slot_key(schedule, slot)):
        return None
    branch = schedule.branch or resolver.default_branch(schedule.repository)
    source = resolver.resolve(RefRequest(schedule.repository, branch=branch))
    when = datetime.fromtimestamp(slot, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hashlib.sha256(schedule.key.encode()).hexdigest()[:10]
    # the same for every process and retry: a slot claimed twice still starts one execution
    delivery_id = f"schedule-{schedule.name}-{int(slot)}-{digest}"
    why = f"schedule {schedule.name} ({when})"
    run = make_run(source, dict(schedule.inputs), SCHEDULE, delivery_id, why)
    run["schedule"] = schedule.name
    run["installation_id"] = repository_installation(ctx.config, client, run["repository"])
    if not _claim_and_queue(ctx, schedule, slot, run, now):
        log.info("schedule %s: slot %s was started by another tick", schedule.key, when)
        return None
    if last and schedule.latest_slot(slot - 1) > last["slot"]:
        log.info("schedule %s: slots missed before %s are skipped (only the newest runs)", schedule.key, when)
    log.info(
        "%s: started by schedule %s for slot %s: %s@%s",
        run["run_id"],
        schedule.key,
        when,
        branch,
        source.sha[:12],
    )
    return str(run["run_id"])


def _claim_and_queue(ctx: JobContext, schedule: Schedule, slot: float, run: RunRecord, now: float) -> bool:
    claim = slot_key(schedule, slot)
    with ctx.redis.pipeline() as pipe:
        try:
            pipe.watch(claim, last_key(schedule))
            if pipe.exists(claim):
                return False
            pipe.multi()
            pipe.set(claim, run["run_id"], nx=True, ex=CLAIM_SECONDS)
            pipe.set(last_key(schedule), json.dumps({"slot": slot, "run_id": run["run_id"], "fired_at": now}))
            RunIndex(pipe).add_audit(
                run["run_id"], {"action": "created by schedule", "by": f"schedule {schedule.name}"}
            )
            queue_run(ctx, run, pipe)
            pipe.execute()
            return True
        except redis.WatchError:
            return False


def describe(
    client: redis.Redis, index: RunIndex, schedules: Iterable[Schedule], now: float
) -> list[dict[str, Any]]:
    """Each schedule with its next slot and its last run (what the dashboard's schedules page shows)."""
    rows = []
    for schedule in schedules:
        last = last_fired(client, schedule)
        run = index.get(last["run_id"]) if last else None
        rows.append(
            {
                "name": schedule.name, "repository": schedule.repository, "branch": schedule.branch or None,
                "cron": schedule.cron, "timezone": schedule.timezone, "inputs": dict(schedule.inputs),
                "source": schedule.source,
                "next_at": schedule.next_slot(now), "last_slot": last["slot"] if last else None,
                "last_run_id": last["run_id"] if last else None, "last_status": run["status"] if run else None,
            }
        )  # fmt: skip
    return rows


def tick(config: ServiceConfig, ctx: JobContext, now: float) -> list[str]:
    """Start the due slots of every schedule as last read, then re-read a few repositories' files
    (service/repository_schedules.py) and start what those now declare: GitHub never holds a slot back."""
    started = fire_due(ctx, schedules_of(config, ctx.redis)[0], now)
    read = set(refresh(config, ctx.redis, now))
    if read:
        fresh = [s for s in schedules_of(config, ctx.redis)[0] if s.repository in read and s.source == PATH]
        started += fire_due(ctx, fresh, now)
    return started


def start_scheduler(config: ServiceConfig, stop: threading.Event) -> threading.Thread | None:
    """The jobs process's scheduler thread; None when no schedule can be declared."""
    if not config.schedules and not config.schedule_repositories:
        return None

    def loop() -> None:
        failing = False
        while not stop.is_set():
            try:
                tick(config, job_context(), time.time())
                failing = False
            except redis.RedisError as exc:  # Redis restarting: the due slot is still due at the next tick
                if not failing and not stop.is_set():
                    log.warning("scheduler: Redis unavailable (%s); retrying", exc)
                failing = True
            except Exception:
                log.exception("scheduler: tick failed; trying again at the next one")
            stop.wait(config.schedule_tick_seconds)

    thread = threading.Thread(target=loop, name="stepline-scheduler", daemon=True)
    thread.start()
    log.info(
        "scheduler: %d schedule(s) in the settings, %d repositories' %s, a tick every %d s",
        len(config.schedules), len(config.schedule_repositories), PATH, config.schedule_tick_seconds,
    )  # fmt: skip
    return thread


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.scheduler", description="Stepline's schedules")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the schedules with their next and last runs")
    tick_parser = commands.add_parser("tick", help="start the due slots now (or at --now)")
    tick_parser.add_argument("--now", help="the time of the tick, ISO 8601 (e.g. 2026-12-06T03:00:00Z)")
    args = parser.parse_args(argv)
    try:
        config = ServiceConfig.from_env(process="scheduler")
        now = datetime.fromisoformat(args.now).timestamp() if getattr(args, "now", None) else time.time()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"--now: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    use_config(config)
    ctx = job_context()
    if args.command == "tick":
        for run_id in tick(config, ctx, now):
            print(run_id)
        return 0
    schedules, problems = schedules_of(config, ctx.redis)
    if not schedules and not problems:  # an empty answer would look like a broken command
        print(
            "no schedules: STEPLINE_SCHEDULES is empty here and no repository of STEPLINE_SCHEDULE_REPOSITORIES "
            "declares any (this command reads its own environment, not .env)",
            file=sys.stderr,
        )
    for row in describe(ctx.redis, ctx.index, schedules, now):
        print(json.dumps(row))
    for where, problem in (problems | schedule_problems(ctx.redis, schedules)).items():
        print(f"{where}: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
