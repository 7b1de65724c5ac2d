"""Configuration of the engine service process, read once from the environment."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from statemachines.settings import DEFAULT_REGION, EnvReader

_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class EngineConfig:
    """Every setting of `python -m statemachines.engine`."""

    host: str = "127.0.0.1"
    port: int = 8083
    redis_url: str = "redis://127.0.0.1:6379/0"
    # access key id -> secret; empty means no SigV4 check (loopback-only use)
    access_keys: Mapping[str, str] = field(default_factory=dict)
    region: str = DEFAULT_REGION
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
        reader = EnvReader("engine", os.environ if env is None else env)
        host = reader.text("ENGINE_HOST", cls.host)
        port = reader.integer("ENGINE_PORT", cls.port, 0, 65535)
        redis_url = reader.text("REDIS_URL", cls.redis_url)
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            reader.problems.append("REDIS_URL must start with redis://, rediss:// or unix://")
        keys = _access_keys(reader.text("ENGINE_ACCESS_KEYS"), reader.problems)
        region = reader.region()
        if not _REGION_RE.match(region):
            reader.problems.append(f"AWS_REGION={region!r} is not a region name")
        account = reader.text("ENGINE_ACCOUNT_ID", cls.account_id)
        if not _ACCOUNT_RE.match(account):
            reader.problems.append("ENGINE_ACCOUNT_ID must be 12 digits")
        level = reader.log_level(cls.log_level)
        poll = reader.number("ENGINE_POLL_SECONDS", cls.poll_seconds)
        if not 0 < poll <= 60:
            reader.problems.append("ENGINE_POLL_SECONDS must be in (0, 60]")
        engine_id = reader.text("ENGINE_ID") or f"{socket.gethostname()}:{port}"
        processes = reader.integer("ENGINE_PROCESSES", cls.processes, 1, 64)
        reader.check()
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


def _access_keys(text: str, problems: list[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, secret = item.partition(":")
        if not sep or not key_id or not secret:
            problems.append("ENGINE_ACCESS_KEYS must be a comma-separated list of KEYID:secret")
            break
        keys[key_id] = secret
    return keys
