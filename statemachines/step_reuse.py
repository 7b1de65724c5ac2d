"""Step results a re-run may reuse: what each build step of a run returned, and each re-run's reuse plan.

"Re-run failed steps" starts a new execution (a new run, `rerun_of` the old one). The steps that passed
in the old run must not run again: when the service starts the re-run it writes a reuse plan, the old
run's recorded results of the steps that passed and depend on nothing that failed. A worker receiving a
task of that run whose step is in the plan, with the same fingerprint (the task input but its `run`, and
the pool), answers at once with the recorded result marked `"reused": true`: no checkout, no command.
Only Redis and SendTaskSuccess are involved, so it is the same on AWS Step Functions.

Who writes what: workers record results (only of tasks whose run claim they verified); only the service
writes plans, and only from a run of the same repository, commit and trust. A worker uses a plan only
for a task whose run claim it verified (its ticket), polled on an activity of the plan's trust.

Redis (the one home of these keys):
    stepline:step-results:<run_id>  Hash step -> JSON {"fingerprint", "result"}, 30 days
    stepline:reuse:<run_id>         JSON {"of", "repository", "sha", "trusted", "steps": {step: {"fingerprint",
                                    "result", "from_run"}}}, 30 days
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import redis

from statemachines.redis_text import redis_text

RESULTS_KEY = "stepline:step-results:"
PLAN_KEY = "stepline:reuse:"
TTL_SECONDS = 30 * 24 * 3600
REUSED = "reused"  # the result's marker, and the log status of a reused step


def fingerprint(task_input: str | dict[str, Any], pool: str) -> str:
    """What makes two tasks the same step: their input but `run` (step, commands, env, …) and the pool."""
    data = json.loads(task_input) if isinstance(task_input, str) else task_input
    shown = {key: value for key, value in data.items() if key != "run"}
    return hashlib.sha256(json.dumps([pool, shown], sort_keys=True).encode()).hexdigest()


def record_result(client: redis.Redis, run_id: str, step: str, print_: str, result: dict[str, Any]) -> None:
    """A worker: the step passed in `run_id` with `result` (what SendTaskSuccess carried)."""
    key = RESULTS_KEY + run_id
    pipe = client.pipeline(transaction=False)
    pipe.hset(key, step, json.dumps({"fingerprint": print_, "result": result}))
    pipe.expire(key, TTL_SECONDS)
    pipe.execute()


def results_of(client: redis.Redis, run_id: str) -> dict[str, dict[str, Any]]:
    """Every recorded step result of a run: step -> {"fingerprint", "result"}."""
    raw = client.hgetall(RESULTS_KEY + run_id)
    return {redis_text(step): json.loads(value) for step, value in raw.items()}


def write_plan(
    client: redis.Redis, run_id: str, of: str, run: Mapping[str, Any], steps: dict[str, dict[str, Any]]
) -> None:
    """The service: what the re-run `run_id` of run `of` may reuse (before its execution starts)."""
    plan = {"of": of, "repository": run["repository"], "sha": run["sha"], "trusted": run["trusted"] is True}
    client.set(PLAN_KEY + run_id, json.dumps(plan | {"steps": steps}), ex=TTL_SECONDS)


def reusable(
    client: redis.Redis, run: dict[str, Any], step: str, print_: str, trusted: bool
) -> dict[str, Any] | None:
    """The plan's entry for this task ({"result", "from_run", …}), or None when the step must run.

    `run` is the task's verified execution input; `trusted` is the worker's word (the activity it polled).
    """
    raw = client.get(PLAN_KEY + str(run.get("run_id") or ""))
    if raw is None:
        return None
    plan = json.loads(raw)
    if (plan["repository"], plan["sha"], plan["trusted"]) != (run.get("repository"), run.get("sha"), trusted):
        return None
    entry = plan["steps"].get(step)
    if entry is None or entry.get("fingerprint") != print_:
        return None
    return dict(entry)
