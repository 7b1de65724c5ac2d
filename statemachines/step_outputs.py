"""What a build step declares about build outputs: `artifacts` to keep, `needs` to receive, a `cache`.

    "artifacts": ["dist/*.whl", "coverage.xml"]   globs relative to the work tree (`**` spans directories)
    "needs": ["build", "test-py*"]                earlier steps of the run whose artifacts this step gets
    "cache": {"key": "pip-{hash:requirements.txt}", "restore_keys": ["pip-"], "paths": [".venv"]}

Checked here, once, for the worker (contract.parse_step_task) and for a pipeline before it is
deployed (contract.check_pipeline). PIPELINES.md, "Artifacts and caches", is the author's guide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 50
MAX_PATTERN_CHARS = 300
KEY_TEMPLATE = re.compile(r"^(?:[A-Za-z0-9._-]|\{(?:branch|os|arch|step|hash:[^{}]{1,200})\})+$")
NEEDS_PATTERN = re.compile(r"^[A-Za-z0-9*?\[\]._/ -]{1,80}$")


@dataclass(frozen=True)
class CacheSpec:
    """A step's cache: restored before its commands by `key` (else the newest of a `restore_keys`
    prefix), saved after a success when `key` missed."""

    key: str
    paths: tuple[str, ...]
    restore_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepOutputs:
    artifacts: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    cache: CacheSpec | None = field(default=None)


def relative_pattern_problem(pattern: Any, what: str) -> str | None:
    """Why a path or glob cannot name something inside the work tree (or HOME, with `~/`), else None."""
    if not isinstance(pattern, str) or not 0 < len(pattern) <= MAX_PATTERN_CHARS or "\x00" in pattern:
        return f"{what} must be a non-empty string of at most {MAX_PATTERN_CHARS} characters"
    body = pattern.removeprefix("~/")
    if body.startswith("/") or "\\" in body or ".." in body.split("/") or body in ("", "."):
        return f"{what} {pattern!r} must be relative to the work tree, without '..'"
    return None


def parse_step_outputs(data: dict[str, Any]) -> StepOutputs:
    """The declarations of a task input (or a Task's Parameters); ValueError names the field."""
    # a pattern reaching out of the work tree is refused by the worker, in the step's log, where it shows
    artifacts = _strings(data.get("artifacts"), "artifacts")
    needs = _strings(data.get("needs"), "needs")
    for name in needs:
        if not NEEDS_PATTERN.match(name):
            raise ValueError(f"'needs' entry {name!r} must be a step name (or an fnmatch pattern of one)")
    return StepOutputs(tuple(artifacts), tuple(needs), _parse_cache(data.get("cache")))


def _strings(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ENTRIES or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'{name}' must be a list of at most {MAX_ENTRIES} strings")
    return list(value)


def _parse_cache(value: Any) -> CacheSpec | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"key", "restore_keys", "paths"}:
        raise ValueError("'cache' must be an object of key, restore_keys and paths")
    key = value.get("key")
    if not isinstance(key, str) or len(key) > 200 or not KEY_TEMPLATE.match(key):
        raise ValueError(
            "'cache.key' must be letters, digits, '.', '_', '-' and {branch}, {os}, {arch}, {step} or "
            "{hash:<glob>} (at most 200 characters)"
        )
    restore = _strings(value.get("restore_keys"), "cache.restore_keys")
    if not all(KEY_TEMPLATE.match(prefix) for prefix in restore):
        raise ValueError("'cache.restore_keys' entries are key templates, as 'cache.key'")
    paths = _strings(value.get("paths"), "cache.paths")
    if not paths:
        raise ValueError("'cache.paths' must name at least one path")
    for path in paths:
        if problem := relative_pattern_problem(path, "'cache.paths' entry"):
            raise ValueError(problem)
    return CacheSpec(key, tuple(paths), tuple(restore))
