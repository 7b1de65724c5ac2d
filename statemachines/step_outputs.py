"""What a build step declares about build outputs: `artifacts` to keep, `needs` to receive, a `cache`.

    "artifacts": ["dist/*.whl", "coverage.xml"]   globs relative to the work tree (`**` spans directories)
    "needs": ["build", "test-py*"]                earlier steps of the run whose artifacts this step gets
    "cache": {"key": "pip-{hash:requirements.txt}", "restore_keys": ["pip-"], "paths": [".venv"]}
    "artifacts_when": "always"                    keep them after success (default), failure or always

Checked here, once, for the worker (contract.parse_step_task) and for a pipeline before it is
deployed (contract.check_pipeline, which also reports every `output_problems` and checks that each
`needs` names a step of the pipeline). An artifact pattern out of the work tree does not stop the
worker (it refuses that pattern in the step's log, `artifact_pattern_problem`); the check reports it.
PIPELINES.md, "Artifacts and caches", is the author's guide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_ENTRIES = 50
MAX_PATTERN_CHARS = 300
KEY_TEMPLATE = re.compile(r"^(?:[A-Za-z0-9._-]|\{(?:branch|os|arch|step|hash:[^{}]{1,200})\})+$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
KNOWN_PLACEHOLDERS = "{branch}, {os}, {arch}, {step} or {hash:<glob>}"
ARTIFACTS_WHEN = ("success", "failure", "always")  # after the step passed, failed (or timed out), either
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
    artifacts_when: str = "success"


def relative_pattern_problem(pattern: Any, what: str) -> str | None:
    """Why a path or glob cannot name something inside the work tree (or HOME, with `~/`), else None."""
    if not isinstance(pattern, str) or not 0 < len(pattern) <= MAX_PATTERN_CHARS or "\x00" in pattern:
        return f"{what} must be a non-empty string of at most {MAX_PATTERN_CHARS} characters"
    body = pattern.removeprefix("~/")
    if body.startswith("/") or "\\" in body or ".." in body.split("/") or body in ("", "."):
        return f"{what} {pattern!r} must be relative to the work tree, without '..'"
    return None


def artifact_pattern_problem(pattern: Any) -> str | None:
    """Why an `artifacts` glob can name nothing the worker keeps (absolute, `..`, HOME), else None."""
    problem = relative_pattern_problem(pattern, "pattern")
    if problem is None and pattern.startswith("~"):
        problem = f"pattern {pattern!r} names HOME; artifacts come from the work tree"
    return problem


def parse_step_outputs(data: dict[str, Any]) -> StepOutputs:
    """The declarations of a task input (or a Task's Parameters); ValueError names the field."""
    # a pattern reaching out of the work tree is refused by the worker, in the step's log, where it shows
    return StepOutputs(
        tuple(_strings(data.get("artifacts"), "artifacts")),
        _parse_needs(data.get("needs")),
        _parse_cache(data.get("cache")),
        _parse_when(data.get("artifacts_when")),
    )


def output_problems(data: dict[str, Any]) -> list[str]:
    """Every problem of a step's declarations, each naming its field, for a check before deploying."""
    problems = []
    for field_name, parse in (
        ("artifacts", lambda v: _strings(v, "artifacts")),
        ("needs", _parse_needs),
        ("cache", _parse_cache),
        ("artifacts_when", _parse_when),
    ):
        try:
            parse(data.get(field_name))
        except ValueError as exc:
            problems.append(str(exc))
    artifacts = data.get("artifacts")
    for index, pattern in enumerate(artifacts if isinstance(artifacts, list) else []):
        if problem := artifact_pattern_problem(pattern):
            problems.append(f"'artifacts' entry {index}: {problem} (the worker would refuse it)")
    return problems


def _parse_needs(value: Any) -> tuple[str, ...]:
    needs = _strings(value, "needs")
    for name in needs:
        if not NEEDS_PATTERN.match(name):
            raise ValueError(f"'needs' entry {name!r} must be a step name (or an fnmatch pattern of one)")
    return tuple(needs)


def _parse_when(value: Any) -> str:
    if value is None:
        return "success"
    if value not in ARTIFACTS_WHEN:
        raise ValueError(f"'artifacts_when' must be one of {', '.join(ARTIFACTS_WHEN)}, not {value!r}")
    return str(value)


def _check_template(template: Any, what: str) -> str:
    """A key template's problem as ValueError: its characters, an unknown placeholder, a hash glob out of the tree."""
    if not isinstance(template, str) or not 0 < len(template) <= 200:
        raise ValueError(f"{what} must be a key template of at most 200 characters")
    for name in PLACEHOLDER.findall(template):
        if name.startswith("hash:"):
            if problem := relative_pattern_problem(name.removeprefix("hash:"), "the {hash:} glob"):
                raise ValueError(f"{what}: {problem}")
        elif name not in ("branch", "os", "arch", "step"):
            raise ValueError(f"{what} has an unknown placeholder {{{name}}}: known are {KNOWN_PLACEHOLDERS}")
    if not KEY_TEMPLATE.match(template):
        raise ValueError(
            f"{what} must be letters, digits, '.', '_', '-' and {KNOWN_PLACEHOLDERS} (at most 200 characters)"
        )
    return template


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
    key = _check_template(value.get("key"), "'cache.key'")
    restore = _strings(value.get("restore_keys"), "cache.restore_keys")
    for index, prefix in enumerate(restore):
        _check_template(prefix, f"'cache.restore_keys' entry {index}")
    paths = _strings(value.get("paths"), "cache.paths")
    if not paths:
        raise ValueError("'cache.paths' must name at least one path")
    for path in paths:
        if problem := relative_pattern_problem(path, "'cache.paths' entry"):
            raise ValueError(problem)
    return CacheSpec(key, tuple(paths), tuple(restore))
