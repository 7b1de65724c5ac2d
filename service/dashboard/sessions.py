"""Sign-in sessions kept on the server, and the count of failed sign-ins that throttles guessing.

A signed cookie alone cannot be taken back: a copy kept after signing out acted for its whole 12 h.
Here the cookie carries a random session id, and the session lives only while Redis holds it:
signing out deletes it, `python -m service.dashboard.auth revoke <user>` deletes every session of a user.
Redis holds the id's hash, so what Redis holds signs nobody in.

Keys (this module is their only reader and writer):

| key | type | holds |
|---|---|---|
| `stepline:session:<sha256 of the id>` | string | the user; expires with the session |
| `stepline:user-sessions:<user>` | set | that user's session keys (revocation) |
| `stepline:signin-failures:<kind>:<sha256 of address or user>` | string | failed sign-ins in the window |

Throttling: after MAX_FAILURES_PER_ADDRESS failed sign-ins from one address, or
MAX_FAILURES_PER_USER for one user name, within FAILURE_WINDOW_SECONDS of the first, further
attempts are refused (429, Retry-After) until the window ends; a success clears the user's count.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

SESSION_SECONDS = 12 * 3600
FAILURE_WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_ADDRESS = 20
MAX_FAILURES_PER_USER = 5
_PREFIX = "stepline:session:"
_USER_SESSIONS = "stepline:user-sessions:"
_FAILURES = "stepline:signin-failures:"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _session_key(session_id: str) -> str:
    return _PREFIX + _hash(session_id)


def start_session(redis: Any, user: str) -> str:
    """A new session of `user`; returns its id (for the cookie)."""
    session_id = secrets.token_urlsafe(32)
    key = _session_key(session_id)
    pipe = redis.pipeline()
    pipe.set(key, user, ex=SESSION_SECONDS)
    pipe.sadd(_USER_SESSIONS + user, key)
    pipe.expire(_USER_SESSIONS + user, SESSION_SECONDS)
    pipe.execute()
    return session_id


def session_user(redis: Any, session_id: str) -> str | None:
    """The user a live session belongs to, or None (signed out, revoked, expired, or never was)."""
    value = redis.get(_session_key(session_id))
    return value.decode() if isinstance(value, bytes) else value


def end_session(redis: Any, session_id: str) -> None:
    """Sign one session out: its cookie, wherever copied, opens nothing any more."""
    key = _session_key(session_id)
    user = session_user(redis, session_id)
    pipe = redis.pipeline()
    pipe.delete(key)
    if user:
        pipe.srem(_USER_SESSIONS + user, key)
    pipe.execute()


def revoke_sessions(redis: Any, user: str | None = None) -> int:
    """End every session of `user` (of everyone when None); returns how many there were."""
    if user is not None:
        keys = [k.decode() if isinstance(k, bytes) else k for k in redis.smembers(_USER_SESSIONS + user)]
        live = sum(redis.delete(key) for key in keys)
        redis.delete(_USER_SESSIONS + user)
        return int(live)
    ended = 0
    for pattern in (_PREFIX + "*", _USER_SESSIONS + "*"):
        for key in redis.scan_iter(match=pattern, count=500):
            counted = redis.delete(key)
            ended += counted if pattern.startswith(_PREFIX) else 0
    return ended


def _failure_keys(address: str, user: str | None) -> list[tuple[str, int]]:
    keys = [(_FAILURES + "address:" + _hash(address), MAX_FAILURES_PER_ADDRESS)]
    if user:
        keys.append((_FAILURES + "user:" + _hash(user), MAX_FAILURES_PER_USER))
    return keys


def throttled_for(redis: Any, address: str, user: str | None) -> int:
    """Seconds until sign-ins from `address` (or as `user`) are allowed again; 0 when they are now."""
    wait = 0
    for key, most in _failure_keys(address, user):
        count = redis.get(key)
        if count is not None and int(count) >= most:
            wait = max(wait, int(redis.ttl(key)), 1)
    return wait


def count_failure(redis: Any, address: str, user: str | None) -> None:
    """One more failed sign-in from `address` as `user`; each count lasts the window from its first."""
    pipe = redis.pipeline()
    for key, _ in _failure_keys(address, user):
        pipe.incr(key)
        pipe.expire(key, FAILURE_WINDOW_SECONDS, nx=True)
    pipe.execute()


def clear_failures(redis: Any, user: str) -> None:
    """A successful sign-in: the user's count starts again (the address's does not)."""
    redis.delete(_FAILURES + "user:" + _hash(user))
