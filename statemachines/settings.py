"""Reading settings from the environment: typed getters that collect every problem before failing."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from statemachines.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_REGION = "us-east-1"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class EnvReader:
    """Typed access to one process's environment; each config.py uses one and calls `check()` last.

    Problems are collected instead of raised so a misconfigured process names all of them at once.
    """

    def __init__(self, process: str, environ: Mapping[str, str]) -> None:
        self.process = process
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default).strip()

    def required(self, name: str, why: str) -> str:
        value = self.text(name)
        if not value:
            self.problems.append(f"{name} is not set ({why})")
        return value

    def integer(self, name: str, default: int, low: int | None = None, high: int | None = None) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a whole number")
            return default
        if (low is not None and value < low) or (high is not None and value > high):
            self.problems.append(f"{name}={value} is outside {low}..{high}")
            return default
        return value

    def number(self, name: str, default: float, low: float = 0.0) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a number")
            return default
        if value < low:
            self.problems.append(f"{name}={value} is below {low}")
            return default
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.environ.get(name)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        self.problems.append(f"{name}={raw!r} is not a boolean (use true or false)")
        return default

    def url(self, name: str, default: str = "", schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.text(name, default).rstrip("/")
        if value and (urlsplit(value).scheme not in schemes or not urlsplit(value).netloc):
            self.problems.append(f"{name}={value!r} is not a {'/'.join(schemes)} URL")
        return value

    def region(self) -> str:
        """AWS_REGION, else AWS_DEFAULT_REGION (as boto3 reads them), else us-east-1."""
        return self.text("AWS_REGION") or self.text("AWS_DEFAULT_REGION") or DEFAULT_REGION

    def log_level(self, default: str = "INFO") -> str:
        level = self.text("LOG_LEVEL", default).upper() or default
        if level not in LOG_LEVELS:
            self.problems.append(f"LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")
        return level

    def items(self, name: str, default: str = "") -> list[str]:
        return [item.strip() for item in self.text(name, default).split(",") if item.strip()]

    def check(self) -> None:
        """Raise one ConfigError naming every problem found so far."""
        if self.problems:
            raise ConfigError(self.process, self.problems)


def check_redis(reader: EnvReader, name: str, url: str) -> None:
    """Add a problem to `reader` when the Redis at `url` cannot be reached (a short, bounded ping)."""
    problem = redis_problem(url)
    if problem:
        reader.problems.append(
            f"{name}={redact_url(url)} {problem}" if problem.startswith("is ") else f"{name}: {problem}"
        )


def redact_url(url: str) -> str:
    """`url` with its password shown as `***`: a Redis URL carries its password, logs must not."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user_info.partition(':')[0]}:***@{host}"))


def redis_problem(url: str) -> str | None:
    """Why the Redis at `url` is not usable (not a redis URL, unreachable), or None when it answers PING."""
    import redis

    if not url.startswith(("redis://", "rediss://", "unix://")):
        return f"{url!r} is not a redis:// URL"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except (redis.RedisError, ValueError, OSError) as exc:
        return f"is unreachable: {exc}"
    return None
