"""The status ledger in Redis: per (repository, sha, context) the newest wanted status and the one posted.

Why: status jobs run, retry and get deferred in any order, and GitHub shows whatever was posted last.
So a job never posts its own arguments; it *claims* its update here (kept only when its order key is
newer than the wanted one, compared under WATCH), then whoever holds the context's lock posts the
newest wanted status and records it as posted. A stale job finds nothing newer to post and stops.

Keys (read by the dashboard through `run_statuses` and `errors`):
- `stepline:status:<repository>:<sha>:<context>` hash: `wanted`, `posted` (StatusUpdate JSON),
  `wanted_at`, `posted_at`, `error` (the last reporting failure), `recorded_only` (no credentials)
- `stepline:status:run:<run_id>` set of the contexts a run claimed (`[repository, sha, context]` JSON)
- `stepline:status:dirty` sorted set: contexts whose wanted status is not posted yet, by claim time
- `stepline:status:errors:<run_id>` and `stepline:status:errors` lists: reporting failures, newest first
- `stepline:status:redrives:<run_id>`: a redriven execution's count, so its reports outrank the last end

A run's own keys (claimed set, errors, redrive count) go with it when retention trims it (`forget_runs`).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import redis

from service.status_contexts import StatusUpdate
from statemachines.redis_text import redis_text

PREFIX = "stepline:status:"
DIRTY = PREFIX + "dirty"
ERRORS = PREFIX + "errors"
REDRIVES = PREFIX + "redrives:"
# GitHub keeps statuses forever; we only need them while runs are looked at. Every key here expires
# (a run's own keys also go when retention trims the run: forget_runs)
KEEP_SECONDS = 30 * 24 * 3600
MAX_ERRORS = 200
UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class ContextRef(NamedTuple):
    """One status context of one commit: what GitHub orders statuses by."""

    repository: str
    sha: str
    context: str

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.repository}:{self.sha}:{self.context}"

    @classmethod
    def of(cls, update: StatusUpdate) -> ContextRef:
        return cls(update.repository, update.sha, update.context)


class StatusLedger:
    """Claims, posts and failures of commit statuses; every write is atomic per context."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client
        self._unlock = redis_client.register_script(UNLOCK)

    def claim(self, update: StatusUpdate) -> bool:
        """Make `update` the wanted status of its context unless an equal or newer one is already wanted."""
        ref = ContextRef.of(update)

        def apply(pipe: Any) -> bool:
            wanted = _decode(pipe.hget(ref.key, "wanted"))
            if wanted is not None and wanted.order >= update.order:
                return False
            now = time.time()
            pipe.multi()
            pipe.hset(ref.key, mapping={"wanted": json.dumps(update.to_dict()), "wanted_at": now})
            pipe.expire(ref.key, KEEP_SECONDS)
            pipe.zadd(DIRTY, {_member(ref): now})
            pipe.sadd(f"{PREFIX}run:{update.run_id}", _member(ref))
            pipe.expire(f"{PREFIX}run:{update.run_id}", KEEP_SECONDS)
            return True

        return self._watched(ref.key, apply)

    def _watched(self, key: str, apply: Callable[[Any], bool]) -> bool:
        """Run `apply` under WATCH of `key`: it reads, then writes after `multi()`; again if `key` changed."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    result = apply(pipe)
                    if pipe.explicit_transaction:
                        pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def wanted(self, ref: ContextRef) -> StatusUpdate | None:
        return _decode(self.redis.hget(ref.key, "wanted"))

    def posted(self, ref: ContextRef) -> StatusUpdate | None:
        return _decode(self.redis.hget(ref.key, "posted"))

    def next_to_post(self, ref: ContextRef) -> StatusUpdate | None:
        """The wanted status when it is newer than the posted one, else None (nothing to do)."""
        wanted, posted = (_decode(raw) for raw in self.redis.hmget(ref.key, "wanted", "posted"))
        if wanted is None or (posted is not None and posted.order >= wanted.order):
            return None
        return wanted

    def mark_posted(self, update: StatusUpdate, recorded_only: bool = False) -> None:
        """Record `update` as what GitHub shows; the context is clean once it is also the wanted one."""
        ref = ContextRef.of(update)

        def apply(pipe: Any) -> bool:
            posted = _decode(pipe.hget(ref.key, "posted"))
            wanted = _decode(pipe.hget(ref.key, "wanted"))
            pipe.multi()
            if posted is None or update.order > posted.order:
                fields = {"posted": json.dumps(update.to_dict()), "posted_at": time.time()}
                pipe.hset(ref.key, mapping={**fields, "recorded_only": int(recorded_only)})
                pipe.hdel(ref.key, "error")
                # the claim's TTL may have run out meanwhile (a day of retries): HSET alone would
                # recreate the hash without one, and it would never go
                pipe.expire(ref.key, KEEP_SECONDS)
            if wanted is None or wanted.order <= update.order:
                pipe.zrem(DIRTY, _member(ref))
            return True

        self._watched(ref.key, apply)

    def give_up(self, ref: ContextRef) -> None:
        """Stop trying to post this context (GitHub refused it for good); its error stays recorded."""
        self.redis.zrem(DIRTY, _member(ref))

    def wanted_for(self, ref: ContextRef) -> float:
        """Seconds since the context's wanted status was claimed (0 when unknown)."""
        raw = self.redis.hget(ref.key, "wanted_at")
        return time.time() - float(raw) if raw else 0.0

    def give_up_old(self, ref: ContextRef, reason: str) -> None:
        """Stop trying a status that never got through, and say so where the dashboard looks."""
        update = self.wanted(ref)
        if update is not None:
            self.record_error(update, reason)
        self.give_up(ref)

    def touch_dirty(self, ref: ContextRef) -> None:
        """Restart the wait before a sweep posts this context again (a publish job was just enqueued)."""
        self.redis.zadd(DIRTY, {_member(ref): time.time()}, xx=True)

    def lock(self, ref: ContextRef, seconds: int) -> str | None:
        """Posting of one context is serial: a token when this caller may post, None when another does."""
        token = secrets.token_hex(8)
        return token if self.redis.set(f"{ref.key}:lock", token, nx=True, ex=seconds) else None

    def unlock(self, ref: ContextRef, token: str) -> None:
        self._unlock(keys=[f"{ref.key}:lock"], args=[token])

    def dirty(self, claimed_before: float) -> list[tuple[ContextRef, float]]:
        """Contexts claimed before that time and still not posted (their job crashed or is still retrying)."""
        found: list[Any] = self.redis.zrangebyscore(DIRTY, "-inf", claimed_before, withscores=True)
        return [(ContextRef(*json.loads(redis_text(member))), float(score)) for member, score in found]

    def record_error(self, update: StatusUpdate, reason: str) -> None:
        """Keep a reporting failure where the dashboard shows it: on the context, the run and a global list."""
        entry = json.dumps(
            {"at": time.time(), "run_id": update.run_id, "context": update.context, "state": update.state}
            | {"repository": update.repository, "sha": update.sha, "error": reason[:500]}
        )
        pipe = self.redis.pipeline()
        pipe.hset(ContextRef.of(update).key, "error", reason[:500])
        pipe.expire(ContextRef.of(update).key, KEEP_SECONDS)  # as in mark_posted: never a key without TTL
        for key in (f"{ERRORS}:{update.run_id}", ERRORS):
            pipe.lpush(key, entry)
            pipe.ltrim(key, 0, MAX_ERRORS - 1)
        pipe.expire(f"{ERRORS}:{update.run_id}", KEEP_SECONDS)
        pipe.execute()

    def errors(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Reporting failures, newest first: of one run, or of every run."""
        key = f"{ERRORS}:{run_id}" if run_id else ERRORS
        return [json.loads(item) for item in self.redis.lrange(key, 0, MAX_ERRORS - 1)]

    def redrives(self, run_id: str) -> int:
        """How often the run's execution was redriven, as far as the reporter saw (0: never)."""
        return int(self.redis.get(REDRIVES + run_id) or 0)

    def note_redrives(self, run_id: str, count: int) -> None:
        self.redis.set(REDRIVES + run_id, count, ex=KEEP_SECONDS)

    def forget_runs(self, pipe: Any, run_ids: list[str]) -> None:
        """Queue on `pipe` the deletion of the runs' own keys (contexts stay: other runs share them)."""
        for run_id in run_ids:
            pipe.delete(f"{PREFIX}run:{run_id}", f"{ERRORS}:{run_id}", REDRIVES + run_id)

    def claimed(self, run_id: str) -> list[ContextRef]:
        """Every context the run ever claimed, in context order (steps named at run time included)."""
        members = self.redis.smembers(f"{PREFIX}run:{run_id}")
        return sorted(ContextRef(*json.loads(redis_text(member))) for member in members)

    def run_statuses(self, run_id: str) -> list[dict[str, Any]]:
        """What the dashboard shows for a run: each context it claimed, wanted vs posted, and any error."""
        pipe = self.redis.pipeline(transaction=False)
        for ref in self.claimed(run_id):
            pipe.hgetall(ref.key)
        rows = []
        for raw in pipe.execute():
            fields = {redis_text(k): redis_text(v) for k, v in raw.items()}
            wanted, posted = _decode(fields.get("wanted")), _decode(fields.get("posted"))
            if wanted is None or wanted.run_id != run_id:
                continue  # a newer run of the same commit owns this context now
            rows.append(_row(wanted, posted, fields))
        return rows


def _row(wanted: StatusUpdate, posted: StatusUpdate | None, fields: dict[str, str]) -> dict[str, Any]:
    up_to_date = posted is not None and posted.order >= wanted.order
    return {
        "context": wanted.context,
        "state": wanted.state,
        "description": wanted.description,
        "target_url": wanted.target_url,
        "posted": up_to_date and fields.get("recorded_only") != "1",
        "recorded_only": up_to_date and fields.get("recorded_only") == "1",
        "error": fields.get("error"),
    }


def _member(ref: ContextRef) -> str:
    return json.dumps(list(ref))


def _decode(raw: bytes | str | None) -> StatusUpdate | None:
    return StatusUpdate.from_dict(json.loads(raw)) if raw else None
