"""Run claims: what the service vouches for about a run it started, for workers to check a task against.

A task's input is the pipeline's to write: a pipeline could name another run (its id is public on the
dashboard), another repository or another commit, to post that run's statuses or receive that
repository's secrets. When the service starts a run it records the run's claim, and adds a ticket to
the execution input: a random value only that run's execution carries. A worker treats a task as the
run it names only when its `run` matches the claim, ticket included; the dashboard never shows a
ticket (`redact`), and steps never receive it (not in their environment, nor in their event file).

A task naming a run the service recorded but vouches for by no claim (a run not started yet, one that
never started: skipped or invalid, or one whose claim expired before its record) is refused as well:
only runs the service never recorded (an execution started by hand) run unvouched.

Redis (the one home of these keys):
    stepline:claim:<run_id>  JSON {"repository", "clone_url", "sha", "ref", "branch", "tag", "pull_request",
                             "trusted", "ticket"}, 30 days

The ref, branch, tag and pull request are claimed too: with the ticket in its execution input, a fork's
pipeline can build its own `run` and change the rest; the pull request scopes an untrusted run's step
groups (statemachines/step_concurrency.py) and the ref its cache keys' {branch}. A claim recorded
before they were claimed is checked on the fields it holds.
    stepline:run:<run_id>    the service's run record (service/run_index.py writes it; workers only look)
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

CLAIM_KEY = "stepline:claim:"
TICKET = "run_ticket"  # the execution input's field
TTL_SECONDS = 30 * 24 * 3600
FIELDS = ("repository", "clone_url", "sha", "ref", "branch", "tag", "pull_request")
RUN_RECORD_KEY = "stepline:run:"


def run_record_key(run_id: str) -> str:
    return RUN_RECORD_KEY + run_id


def claim_ticket(client: redis.Redis, run_id: str, run: Mapping[str, Any], trusted: bool) -> str:
    """Record the claim of a run about to start (once: a retried start keeps the first ticket); its ticket."""
    key = CLAIM_KEY + run_id
    claim = {field: run.get(field) for field in FIELDS} | {"trusted": trusted}
    fresh = json.dumps(claim | {TICKET: secrets.token_urlsafe(24)})
    client.set(key, fresh, nx=True, ex=TTL_SECONDS)
    stored = client.get(key)
    return str(json.loads(stored or fresh)[TICKET])


def ticket_of(client: redis.Redis, run_id: str) -> str | None:
    raw = client.get(CLAIM_KEY + run_id)
    return str(json.loads(raw)[TICKET]) if raw else None


@dataclass(frozen=True)
class Verdict:
    """What a worker may take a task's `run` for: `verified` (its claim matches) or not; `refusal` says why not."""

    verified: bool
    refusal: str = ""


def check_run(client: redis.Redis, run: Mapping[str, Any], trusted: bool) -> Verdict:
    """Compare a task's `run` with the claim of the run it names.

    No claim: not a run the service started (an execution started by hand): nothing is vouched for.
    A claim that does not match (or a ticket that is wrong) is a task pretending to be another run.
    """
    run_id = str(run.get("run_id") or "")
    raw = client.get(CLAIM_KEY + run_id)
    if raw is None:
        if client.exists(run_record_key(run_id)):
            return Verdict(False, f"the task names run {run_id}, which no claim vouches for")
        return Verdict(False)
    claim = json.loads(raw)
    ticket = run.get(TICKET)
    if not isinstance(ticket, str) or not hmac.compare_digest(ticket.encode(), str(claim[TICKET]).encode()):
        return Verdict(False, f"the task names run {run_id} without that run's ticket")
    if any(run.get(field) != claim[field] for field in FIELDS if field in claim):
        return Verdict(False, f"the task's repository, commit, ref or pull request is not run {run_id}'s")
    if claim.get("trusted") is not trusted:
        return Verdict(False, f"run {run_id} was started {'' if claim.get('trusted') else 'un'}trusted")
    return Verdict(True)


def without_ticket(run: Mapping[str, Any]) -> dict[str, Any]:
    """The execution input as a step may see it."""
    return {key: value for key, value in run.items() if key != TICKET}


def redact(value: Any, ticket: str | None) -> Any:
    """`value` (JSON-like) with every occurrence of the ticket replaced by `***`."""
    if not ticket:
        return value
    return json.loads(json.dumps(value).replace(ticket, "***"))
