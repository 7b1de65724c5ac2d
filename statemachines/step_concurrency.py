"""Step concurrency groups: at most one step of a group runs at a time per repository, across runs.

A build or deploy step names its group in its `Parameters`, with the grammar of the pipeline-level
declaration (service/concurrency.py): `"concurrency": "deploy-production"` (queue) or
`"concurrency": "deploy-{branch} newest-wins"` (`cancel-in-progress` is a synonym). The worker takes a
lease before it runs the step; while another run's step holds it, the worker answers the task with
`Stepline.ConcurrencyWait`, which the step's default Retry (statemachines/step_defaults.py) retries with
a back-off: a waiting step holds no worker slot. Only the newest run waits: an older waiter, or a run
older than the newest that held the group, is superseded by the service (the worker asks it with the
SUPERSEDE_FOR_STEP_GROUP job; only the service may stop executions, on AWS too). In newest-wins mode
the waiter asks the service to supersede the holder as well, and takes the group once its step ended.

Redis (the one home of these keys; <group> is `untrusted/pr-<n>/<name>` for an untrusted run):
    stepline:step-concurrency:<repository>:<group>          the holder: JSON {run_id, step, order, lease},
                                                           its TTL renewed with the step's heartbeat
    stepline:step-concurrency:<repository>:<group>:waiting  the newest waiter: JSON {run_id, step, order}
    stepline:step-concurrency:<repository>:<group>:newest   the newest run that held it: JSON {run_id, order}
    stepline:step-concurrency:told:<run_id>:<step>          the waiting status last reported (once per change)
    stepline:step-concurrency:unvouched:<repository>:<group>  (and its :waiting, :newest) for a task whose
                                                           run no claim vouches for (started by hand, or a
                                                           pipeline's own `run`): never a vouched run's group
`order` is the run's creation time (the service's run record), so "newer" means what it means for runs.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

KEY = "stepline:step-concurrency:"
WAITING, NEWEST = ":waiting", ":newest"
UNVOUCHED = "unvouched:"  # the key's part before the repository for a task no claim vouches for
QUEUE, NEWEST_WINS = "queue", "newest-wins"
MODES = {"queue": QUEUE, "newest-wins": NEWEST_WINS, "cancel-in-progress": NEWEST_WINS}
DECLARATION = re.compile(
    r"^(?P<group>[A-Za-z0-9{][A-Za-z0-9._/{}-]{0,99})(?:\s+(?P<mode>queue|newest-wins|cancel-in-progress))?$",
    re.IGNORECASE,
)
WAITING_TTL_SECONDS = 600  # a waiter retries far more often (MaxDelaySeconds); a vanished one is forgotten
NEWEST_TTL_SECONDS = 30 * 24 * 3600
HOLD, WAIT, MOOT = "hold", "wait", "moot"
WAITING_WORDS = "waiting for concurrency group"  # a waiting step's status starts so (the run page reads it)

_RENEW = """
local held = redis.call('GET', KEYS[1])
if not held or cjson.decode(held)['lease'] ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
_RELEASE = """
local held = redis.call('GET', KEYS[1])
if not held or cjson.decode(held)['lease'] ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


@dataclass(frozen=True)
class Declaration:
    """A step's `concurrency` as written: the group (maybe with `{branch}`) and the mode."""

    group: str
    mode: str


def parse_declaration(value: Any) -> Declaration | None:
    """A step's `concurrency` parameter; None when absent; ValueError naming what is wrong."""
    if value is None:
        return None
    match = DECLARATION.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            "'concurrency' must be a group name (letters, digits, '.', '_', '/', '-', '{branch}'; at most 100),"
            " optionally followed by a space and 'queue' or 'newest-wins'"
        )
    return Declaration(match["group"], MODES[(match["mode"] or QUEUE).lower()])


def group_key(
    declaration: Declaration, run: Mapping[str, Any], trusted: bool, vouched: bool = True
) -> tuple[str, str]:
    """(the group's name for this run, its Redis key): branch filled in, an untrusted run's kept apart,
    and a run no claim vouches for (statemachines/run_claims.py) kept apart from every run that has one."""
    name = declaration.group.replace("{branch}", str(run.get("branch") or run.get("tag") or ""))
    if not trusted:
        # a fork writes its own Parameters: its group must never be the repository's (nor another PR's)
        pr = run.get("pull_request")
        number = pr.get("number") if isinstance(pr, dict) else pr
        name = f"untrusted/pr-{number or 'none'}/{name}"  # as the pipeline-level groups
    if not vouched:
        # a pipeline that writes its own `run` names any repository, pull request and branch it likes:
        # it must not hold another repository's deploy group; no GitHub owner has a ':' in its name
        return f"unvouched/{name}", f"{KEY}{UNVOUCHED}{run.get('repository')}:{name}"
    return name, f"{KEY}{run.get('repository')}:{name}"


@dataclass(frozen=True)
class Claimant:
    """A step asking for a group: its run, its name and its run's order (creation time)."""

    run_id: str
    step: str
    order: float

    def record(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "step": self.step, "order": self.order}


@dataclass(frozen=True)
class Decision:
    """What a claim decided: HOLD (`lease` is ours), WAIT for `holder`, or MOOT (a newer run: `by`).

    `supersede` names the runs the service is to supersede in favour of the claimant.
    """

    kind: str
    holder: dict[str, Any] | None = None
    by: dict[str, Any] | None = None
    lease: str = ""
    supersede: list[str] = field(default_factory=list)


def claim(
    client: redis.Redis,
    key: str,
    me: Claimant,
    mode: str,
    ttl_ms: int,
    ended: Callable[[str], bool] = lambda run_id: False,
) -> Decision:
    """Take the group, or be told to wait for its holder, or that a newer run made this one moot.

    `ended(run_id)` tells a waiter whose run has ended (cancelled, superseded): it waits no more.
    """
    for _ in range(20):  # a compare-and-set loop: another step may claim the group meanwhile
        with client.pipeline() as pipe:
            try:
                pipe.watch(key, key + WAITING, key + NEWEST)
                holder, waiter, newest = (_load(pipe.get(k)) for k in (key, key + WAITING, key + NEWEST))
                gone = waiter is not None and waiter["run_id"] != me.run_id and ended(waiter["run_id"])
                waiter = None if gone else waiter
                decision = decide(me, holder, waiter, newest, mode)
                pipe.multi()
                if decision.kind == HOLD:
                    pipe.set(key, json.dumps(me.record() | {"lease": decision.lease}), px=ttl_ms)
                    if newest is None or newest["order"] <= me.order:
                        pipe.set(key + NEWEST, json.dumps(me.record()), ex=NEWEST_TTL_SECONDS)
                    if gone or (waiter is not None and waiter["run_id"] == me.run_id):
                        pipe.delete(key + WAITING)
                elif decision.kind == WAIT and holder is not None and holder["run_id"] != me.run_id:
                    pipe.set(key + WAITING, json.dumps(me.record()), ex=WAITING_TTL_SECONDS)
                pipe.execute()
                return decision
            except redis.WatchError:
                continue
    raise redis.WatchError(f"step concurrency group {key} kept changing")


def decide(
    me: Claimant,
    holder: dict[str, Any] | None,
    waiter: dict[str, Any] | None,
    newest: dict[str, Any] | None,
    mode: str,
) -> Decision:
    """The rules, on the group's three records (pure, for `claim`)."""

    def newer(other: dict[str, Any] | None) -> bool:
        return other is not None and other["run_id"] != me.run_id and float(other["order"]) > me.order

    if newer(newest):  # a newer run's step held the group: this older one must never run after it
        return Decision(MOOT, holder, by=newest)
    if newer(waiter):  # only the newest waits
        return Decision(MOOT, holder, by=waiter)
    if holder is None or (holder["run_id"], holder["step"]) == (me.run_id, me.step):
        # free, or held by this very step's earlier attempt (its worker was lost): take it
        return Decision(HOLD, holder, lease=secrets.token_hex(8))
    if holder["run_id"] == me.run_id:  # another step of this run: wait, superseding nobody
        return Decision(WAIT, holder)
    if float(holder["order"]) > me.order:
        return Decision(MOOT, holder, by=holder)
    supersede = [waiter["run_id"]] if waiter is not None and waiter["run_id"] != me.run_id else []
    if mode == NEWEST_WINS:
        supersede.append(holder["run_id"])
    return Decision(WAIT, holder, supersede=supersede)


def first_told(client: redis.Redis, run_id: str, step: str, description: str | None) -> bool:
    """Whether this waiting status is news for the step (a waiting step asks again every few seconds);
    None: the step holds its group now, a later wait is news again."""
    key = f"{KEY}told:{run_id}:{step}"
    if description is None:
        return bool(client.delete(key))
    return _text(client.set(key, description, ex=WAITING_TTL_SECONDS, get=True)) != description


def renew(client: redis.Redis, key: str, lease: str, ttl_ms: int) -> bool:
    """Extend our lease; False when it is no longer ours (it expired and another step took the group)."""
    return bool(client.eval(_RENEW, 1, key, lease, ttl_ms))


def release(client: redis.Redis, key: str, lease: str) -> None:
    """Free the group if we still hold it."""
    client.eval(_RELEASE, 1, key, lease)


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _load(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None
