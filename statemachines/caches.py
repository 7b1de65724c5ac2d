"""Caches: a step's dependency directories saved under a key, restored by later runs of the same repository.

    blob  caches/<trusted|untrusted>/<repository>/<key>.tar
    stepline:caches:<side>:<repository>      Hash key -> JSON {"size", "created"}
    stepline:cache-used:<side>:<repository>  Sorted set key -> last restored or saved (epoch seconds): LRU order
    stepline:cache-scopes                    Set of "<side>:<repository>" holding caches (for retention)

A scope is one repository and one side: the side is the trust of the worker that polled the task (its
activity), never the pipeline's word, and a run reads and writes its own side only, so a cache an
untrusted run wrote is never restored into a trusted one (cache poisoning) and a trusted cache never
reaches a fork's code. Lookup follows GitHub's cache action: the exact key, else, for each restore key
in order, the newest cache whose key starts with it. Each scope stays under a byte limit by evicting
the least recently used caches when one is saved.

Forks' pull requests share the untrusted side, but never each other's caches: their keys (and restore
keys) start with `pr-<number>/` (`partition`), so a fork cannot poison the cache that another pull
request's checks restore, as GitHub scopes a pull request's caches to its own ref. The number is the
run's claimed one (statemachines/run_claims.py), not the pipeline's word.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis

from statemachines.blob_store import BlobStore, Stop
from statemachines.redis_text import redis_text

log = logging.getLogger(__name__)

SCOPES_KEY = "stepline:cache-scopes"
TRIM_BATCH = 200


@dataclass(frozen=True)
class Scope:
    repository: str
    trusted: bool

    @property
    def name(self) -> str:
        return f"{'trusted' if self.trusted else 'untrusted'}:{self.repository}"

    @property
    def entries_key(self) -> str:
        return f"stepline:caches:{self.name}"

    @property
    def used_key(self) -> str:
        return f"stepline:cache-used:{self.name}"

    def blob_key(self, key: str) -> str:
        side = "trusted" if self.trusted else "untrusted"
        return f"caches/{side}/{quote(self.repository, safe='')}/{quote(key, safe='')}.tar"

    @classmethod
    def parse(cls, name: str) -> Scope:
        side, _, repository = name.partition(":")
        return cls(repository, side == "trusted")


def partition(run: Mapping[str, Any], trusted: bool) -> str:
    """What an untrusted run's cache keys start with: its pull request's own part of the side."""
    if trusted:
        return ""
    pull = run.get("pull_request")
    number = pull.get("number") if isinstance(pull, dict) else pull
    return f"pr-{number or 'none'}/"


@dataclass(frozen=True)
class Hit:
    key: str
    size: int
    exact: bool  # the step's own key, not a restore-key fallback


class CacheStore:
    """Find, fetch, save and evict caches of one scope at a time."""

    def __init__(self, client: redis.Redis, store: BlobStore) -> None:
        self.redis = client
        self.store = store

    def find(self, scope: Scope, key: str, restore_keys: tuple[str, ...] = ()) -> Hit | None:
        exact = self.redis.hget(scope.entries_key, key)
        if exact is not None:
            return Hit(key, int(json.loads(exact)["size"]), True)
        if not restore_keys:
            return None
        entries = {
            redis_text(k): json.loads(v) for k, v in (self.redis.hgetall(scope.entries_key) or {}).items()
        }
        for prefix in restore_keys:
            candidates = [k for k in entries if k.startswith(prefix)]
            if candidates:
                newest = max(candidates, key=lambda k: (entries[k]["created"], k))
                return Hit(newest, int(entries[newest]["size"]), False)
        return None

    def fetch(self, scope: Scope, hit: Hit, path: Path, stop: Stop | None = None) -> None:
        """Download a cache's tar to `path` and count it as used (LRU)."""
        self.store.get_file(scope.blob_key(hit.key), path, stop)
        self.redis.zadd(scope.used_key, {hit.key: time.time()})

    def save(
        self, scope: Scope, key: str, path: Path, size: int, max_scope_bytes: int, stop: Stop | None = None
    ) -> list[str]:
        """Store a tar under `key`, then evict least recently used caches over the limit; the evicted keys."""
        self.store.put_file(scope.blob_key(key), path, stop)
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(scope.entries_key, key, json.dumps({"size": size, "created": now}))
        pipe.zadd(scope.used_key, {key: now})
        pipe.sadd(SCOPES_KEY, scope.name)
        pipe.execute()
        return self._evict(scope, max_scope_bytes)

    def _evict(self, scope: Scope, max_bytes: int) -> list[str]:
        entries = {
            redis_text(k): json.loads(v) for k, v in (self.redis.hgetall(scope.entries_key) or {}).items()
        }
        total = sum(int(e["size"]) for e in entries.values())
        evicted: list[str] = []
        for raw in self.redis.zrange(scope.used_key, 0, -1):  # least recently used first
            if total <= max_bytes:
                break
            key = redis_text(raw)
            total -= int(entries.get(key, {}).get("size", 0))
            evicted.append(key)
        if evicted:
            self.forget(scope, evicted)
            log.info(
                "caches of %s: evicted %s (least recently used) to stay under %d bytes",
                scope.name,
                evicted,
                max_bytes,
            )
        return evicted

    def forget(self, scope: Scope, keys: list[str]) -> None:
        self.store.delete([scope.blob_key(key) for key in keys])
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(scope.entries_key, *keys)
        pipe.zrem(scope.used_key, *keys)
        pipe.execute()

    def trim(self, retention_days: float, now: float | None = None, limit: int = 1000) -> int:
        """Delete up to `limit` caches unused for over `retention_days` (0: never); how many went."""
        if retention_days <= 0:
            return 0
        cutoff = (time.time() if now is None else now) - retention_days * 86_400
        done = 0
        for name in sorted(redis_text(n) for n in self.redis.smembers(SCOPES_KEY)):
            scope = Scope.parse(name)
            stale = [
                redis_text(k) for k in self.redis.zrangebyscore(scope.used_key, "-inf", cutoff, 0, TRIM_BATCH)
            ]
            stale = stale[: limit - done]
            if stale:
                self.forget(scope, stale)
                done += len(stale)
            if not self.redis.exists(scope.entries_key):
                self.redis.srem(SCOPES_KEY, name)
            if done >= limit:
                break
        if done:
            log.info("retention: %d cache(s) unused for %s day(s) deleted", done, retention_days)
        return done

    def usage(self) -> dict[str, int]:
        """Caches and their bytes over every scope (for /metrics)."""
        count = size = 0
        for name in self.redis.smembers(SCOPES_KEY):
            values = self.redis.hvals(Scope.parse(redis_text(name)).entries_key) or []
            count += len(values)
            size += sum(int(json.loads(v)["size"]) for v in values)
        return {"entries": count, "bytes": size}
