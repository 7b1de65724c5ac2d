"""Liveness and readiness: `GET /healthz` reports whether Redis answers."""

from __future__ import annotations

import logging

import redis
from flask import Blueprint, current_app, jsonify

log = logging.getLogger(__name__)
health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    client: redis.Redis = current_app.extensions["redis"]
    try:
        client.ping()
        redis_ok = True
    except redis.RedisError as exc:
        log.warning("healthz: redis unreachable: %s", exc)
        redis_ok = False
    body = {"status": "ok" if redis_ok else "degraded", "redis": "reachable" if redis_ok else "unreachable"}
    return jsonify(body), 200 if redis_ok else 503
