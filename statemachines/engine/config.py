"""Configuration of the engine service process, read once from the environment."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")


class ConfigError(ValueError):
    """Raised when the environment holds one or more invalid settings; the message lists them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid engine configuration: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class EngineConfig:
    """Every setting of `python -m statemachines.engine`."""

    host: str = "127.0.0.1"
    port: int = 8083
    redis_url: str = "redis://127.0.0.1:6379/0"
    # access key id -> secret; empty means no SigV4 check (loopback-only use)
    access_keys: Mapping[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    log_level: str = "INFO"
    # deviation: AWS holds GetActivityTask up to 60 s, exactly botocore's default read timeout,
    # so a task handed out in the last instant can be lost by a default client; stop at 55 s
    poll_seconds: float = 55.0
    # names this process's in-flight activity list; stable across restarts so a restarted
    # engine recovers the tasks it was handing out when it died
    engine_id: str = ""
    timer_interval_s: float = 0.05
    # processes answering on the one port (each uses one core); 1: no parent process at all
    processes: int = 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineConfig:
        """Build the config from `env` (default os.environ); raise ConfigError naming every problem."""
        env = os.environ if env is None else env
        problems: list[str] = []
        host = env.get("ENGINE_HOST", cls.host)
        port = _int(env, "ENGINE_PORT", cls.port, problems)
        if not 0 <= port <= 65535:
            problems.append(f"ENGINE_PORT={port} is not a TCP port")
        redis_url = env.get("REDIS_URL", cls.redis_url)
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            problems.append("REDIS_URL must start with redis://, rediss:// or unix://")
        keys = _access_keys(env.get("ENGINE_ACCESS_KEYS", ""), problems)
        region = env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", cls.region))
        if not _REGION_RE.match(region):
            problems.append(f"AWS_REGION={region!r} is not a region name")
        account = env.get("ENGINE_ACCOUNT_ID", cls.account_id)
        if not _ACCOUNT_RE.match(account):
            problems.append("ENGINE_ACCOUNT_ID must be 12 digits")
        level = env.get("LOG_LEVEL", cls.log_level).upper()
        if level not in LOG_LEVELS:
            problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        poll = _float(env, "ENGINE_POLL_SECONDS", cls.poll_seconds, problems)
        if not 0 < poll <= 60:
            problems.append("ENGINE_POLL_SECONDS must be in (0, 60]")
        engine_id = env.get("ENGINE_ID") or f"{socket.gethostname()}:{port}"
        processes = _int(env, "ENGINE_PROCESSES", cls.processes, problems)
        if not 1 <= processes <= 64:
            problems.append("ENGINE_PROCESSES must be from 1 to 64")
        if problems:
            raise ConfigError(problems)
        return cls(
            host=host,
            port=port,
            redis_url=redis_url,
            access_keys=keys,
            region=region,
            account_id=account,
            log_level=level,
            poll_seconds=poll,
            engine_id=engine_id,
            processes=processes,
        )


def _int(env: Mapping[str, str], name: str, default: int, problems: list[str]) -> int:
    try:
        return int(env.get(name, default))
    except ValueError:
        problems.append(f"{name} must be an integer")
        return default


def _float(env: Mapping[str, str], name: str, default: float, problems: list[str]) -> float:
    try:
        return float(env.get(name, default))
    except ValueError:
        problems.append(f"{name} must be a number")
        return default


def _access_keys(text: str, problems: list[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id or not secret:
            problems.append("ENGINE_ACCESS_KEYS must be a comma-separated list of KEYID:secret")
            break
        keys[key_id] = secret
    return keys
