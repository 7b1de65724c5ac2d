"""The pipeline of a commit: the repository's own definition at that sha, else the service's default.

Read through GitHub's contents API (PyGithub), or with git for file:// repositories when
STEPLINE_ALLOW_LOCAL_REPOSITORIES is on; parsed (JSON or YAML) and validated before anything starts.
An untrusted run's pipeline is also checked against what untrusted runs may use (`check_untrusted`).
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import yaml
from github import Auth, Github, GithubException, GithubRetry, UnknownObjectException

from service.config import ServiceConfig
from service.errors import InvalidPipelineError, PipelineSourceError, UntrustedPipelineError
from service.run_record import RunRecord
from statemachines import nesting
from statemachines.contract import (
    PLACEHOLDER,
    activity_pools,
    check_pipeline,
    pipeline_steps,
    substitute_activities,
    walk_states,
)
from statemachines.deploy import untrusted_uses

# imported here, not per call: the jobs process imports once, before rq forks a work horse per job
from statemachines.engine.asl.validation import validate_definition
from statemachines.pipeline_check import MAX_DEFINITION_BYTES, STAND_IN_ARN
from statemachines.step_defaults import fill_step_defaults

log = logging.getLogger(__name__)

PIPELINE_PATHS = (".stepline/pipeline.asl.json", ".stepline/pipeline.asl.yaml")
ReadAuth = Callable[[], Auth.Token | None]  # asked only when the file is read from GitHub
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "statemachines" / "pipelines" / "default.asl.json"
DEFAULT_NAME = "default"


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline: where it came from, its definition (with placeholders) and its steps."""

    name: str
    path: str
    definition: dict[str, Any]
    steps: list[str]
    # contract problems that do not stop the run but will hurt (no heartbeat: a lost worker hangs it)
    warnings: tuple[str, ...] = ()


def load_pipeline(config: ServiceConfig, run: RunRecord, auth: ReadAuth | None = None) -> Pipeline:
    """The run's pipeline; raises InvalidPipelineError (not retried) or PipelineSourceError (retried).

    `auth` gives how to read the run's repository on GitHub (app_installations.repository_auth), asked only
    when GitHub is read; without it, the token.
    """
    found = read_pipeline_text(config, run, auth)
    path, text = found if found else (DEFAULT_NAME, DEFAULT_PATH.read_text())
    return parse_pipeline(path, text)


def read_pipeline_text(
    config: ServiceConfig, run: RunRecord, auth: ReadAuth | None = None
) -> tuple[str, str] | None:
    """(path, text) of the repository's own pipeline at the run's sha, or None when it has none."""
    code = _code_repository(run)
    # the base repository's installation token reads only the base repository, not a fork
    auth = auth if code == run["repository"] else None
    for path in PIPELINE_PATHS:
        text = read_repository_file(config, code, run["clone_url"], run["sha"], path, auth)
        if text is not None:
            return path, text
    return None


def read_repository_file(
    config: ServiceConfig,
    repository: str,
    clone_url: str,
    sha: str,
    path: str,
    auth: ReadAuth | None = None,
) -> str | None:
    """A file of the repository at `sha` (None when there is none): git for file:// URLs, else GitHub's API."""
    if clone_url.startswith("file://") and config.allow_local_repositories:
        return _read_git(clone_url, sha, path)
    return _read_github(config, repository, sha, path, auth)


def parse_pipeline(path: str, text: str) -> Pipeline:
    """Parse and validate a definition; every problem is a diagnostic of InvalidPipelineError."""
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        raise InvalidPipelineError(
            path, [_diagnostic("DEFINITION_TOO_LARGE", "the definition is over 1 MiB", "/")]
        )
    # checked, shown and deployed as Step Functions will run it: with the build-step defaults filled in
    definition = fill_step_defaults(_parse(path, text))
    stray = _stray_placeholders(definition)
    problems = _contract_problems(definition, stray)
    # a stand-in ARN for every placeholder, also those in the wrong place (a contract problem above)
    pools = activity_pools(definition) | {text[len("${activity:") : -1] for _, text in stray}
    arns = {pool: STAND_IN_ARN.format(pool=pool) for pool in pools}
    problems += _asl_problems(substitute_activities(definition, arns))
    if problems:
        raise InvalidPipelineError(path, problems)
    steps = [spec.step for spec in pipeline_steps(definition)]
    return Pipeline("ci", path, definition, steps, tuple(check_pipeline(definition)))


def check_untrusted(pipeline: Pipeline, allowed_pools: tuple[str, ...], why_untrusted: str) -> None:
    """Raise UntrustedPipelineError naming every state that reaches what an untrusted run may not use."""
    setting = f"STEPLINE_UNTRUSTED_POOLS={','.join(allowed_pools)}"
    problems = []
    for state_path, field, resource in untrusted_uses(pipeline.definition, allowed_pools):
        match = PLACEHOLDER.match(resource)
        if match:
            why = f"uses pool {match.group(1)!r}, which untrusted runs may not use ({setting})"
        else:
            why = f"names {resource!r}, but an untrusted run may name only ${{activity:<pool>}} resources"
        state = f"state {state_path}" + ("" if field == "Resource" else f" ({field})")
        location = f"/States/{state_path}/{field}"
        problems.append(_diagnostic("UNTRUSTED_RESOURCE", f"{state} {why}", location))
    if problems:
        raise UntrustedPipelineError(pipeline.path, why_untrusted, problems)


def _code_repository(run: RunRecord) -> str:
    # a fork's commits are read from the fork while it exists; refs/pull/N/head lives in the base repository
    pr = (run.get("execution_input") or {}).get("pull_request") or {}
    return pr.get("head_repository") or run["repository"]


def _read_git(clone_url: str, sha: str, path: str) -> str | None:
    repo = unquote(urlsplit(clone_url).path)
    known = subprocess.run(
        ["git", "-C", repo, "cat-file", "-e", f"{sha}^{{commit}}"], capture_output=True, check=False
    )
    if known.returncode != 0:
        raise PipelineSourceError(repo, sha, "the commit is not in the local repository")
    shown = subprocess.run(["git", "-C", repo, "show", f"{sha}:{path}"], capture_output=True, check=False)
    return shown.stdout.decode("utf-8", "replace") if shown.returncode == 0 else None


def _read_github(
    config: ServiceConfig, repository: str, sha: str, path: str, read_auth: ReadAuth | None = None
) -> str | None:
    try:
        auth = read_auth() if read_auth else None
    except (GithubException, requests.RequestException, OSError) as exc:  # retried, as GitHub down is
        raise PipelineSourceError(repository, sha, f"no installation token from GitHub: {exc}") from exc
    auth = auth or (Auth.Token(config.github_token) if config.github_token else None)
    github = Github(
        base_url=config.github_api_url, auth=auth, timeout=10, retry=GithubRetry(total=3), lazy=True
    )
    try:
        content = github.get_repo(repository).get_contents(path, ref=sha)
    except UnknownObjectException:
        return None
    except GithubException as exc:
        raise PipelineSourceError(repository, sha, f"GitHub answered {exc.status}") from exc
    except (requests.RequestException, OSError) as exc:  # retries exhausted, timeouts, refused connections
        raise PipelineSourceError(repository, sha, f"GitHub unreachable: {exc}") from exc
    finally:
        github.close()
    if isinstance(content, list):
        raise InvalidPipelineError(path, [_diagnostic("NOT_A_FILE", f"{path} is a directory", "/")])
    return content.decoded_content.decode("utf-8", "replace")


def _parse(path: str, text: str) -> dict[str, Any]:
    # no YAML aliases (a few lines of them expand to gigabytes), nothing nested over 100 levels
    # (everything that reads a pipeline recurses per level)
    try:
        doc = nesting.load_yaml(text) if path.endswith(".yaml") else nesting.loads(text)
    except nesting.TooDeep as exc:
        raise InvalidPipelineError(
            path, [_diagnostic("TOO_DEEPLY_NESTED", f"cannot parse: {exc}", "/")]
        ) from None
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidPipelineError(
            path, [_diagnostic("INVALID_JSON_DESCRIPTION", f"cannot parse: {exc}", "/")]
        ) from None
    if not isinstance(doc, dict):
        raise InvalidPipelineError(
            path, [_diagnostic("SCHEMA_VALIDATION_FAILED", "the definition must be an object", "/")]
        )
    return doc


def _contract_problems(definition: dict[str, Any], stray: list[tuple[str, str]]) -> list[dict[str, Any]]:
    problems = []
    for state_path, _, state in walk_states(definition):
        resource = state.get("Resource")
        if (
            isinstance(resource, str)
            and resource.startswith("${activity:")
            and not PLACEHOLDER.match(resource)
        ):
            message = f"{resource!r} is not ${{activity:<pool>}} (pool: a-z, 0-9 and '-')"
            problems.append(
                _diagnostic("INVALID_ACTIVITY_PLACEHOLDER", message, f"/States/{state_path}/Resource")
            )
    for location, text in stray:
        # deploy substitutes only the pools Tasks name: one elsewhere would fail every start of the run
        message = f"{text!r}: ${{activity:<pool>}} may only be a Task's Resource"
        problems.append(_diagnostic("INVALID_ACTIVITY_PLACEHOLDER", message, location or "/"))
    return problems


def _stray_placeholders(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """(JSON pointer, text) of every `${activity:<pool>}` string that is not a state's own Resource."""
    return _placeholders_outside_resources(definition, {id(s) for _, _, s in walk_states(definition)}, "")


def _placeholders_outside_resources(value: Any, states: set[int], location: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(location, value)] if PLACEHOLDER.match(value) else []
    if isinstance(value, list):
        items: Any = enumerate(value)
    elif isinstance(value, dict):
        items = ((k, v) for k, v in value.items() if not (k == "Resource" and id(value) in states))
    else:
        return []
    return [
        found
        for key, item in items
        for found in _placeholders_outside_resources(item, states, f"{location}/{key}")
    ]


def _asl_problems(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The engine's validation (what CreateStateMachine would refuse), errors only."""
    found = validate_definition(definition)
    return [_diagnostic(d.code, d.message, d.location) for d in found if d.severity == "ERROR"]


def _diagnostic(code: str, message: str, location: str) -> dict[str, Any]:
    return {"code": code, "message": message, "location": location, "severity": "ERROR"}
