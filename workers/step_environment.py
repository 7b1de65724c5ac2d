"""A step's environment: clean, with the event data in STEPLINE_* variables and secrets for trusted runs only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from statemachines.contract import StepTask
from workers.sandbox import StepPaths

# execution input field -> variable; event data reaches steps only this way, never in command text
RUN_VARIABLES = {
    "run_id": "STEPLINE_RUN_ID",
    "delivery_id": "STEPLINE_DELIVERY_ID",
    "event": "STEPLINE_EVENT",
    "repository": "STEPLINE_REPOSITORY",
    "clone_url": "STEPLINE_CLONE_URL",
    "private": "STEPLINE_PRIVATE",
    "ref": "STEPLINE_REF",
    "branch": "STEPLINE_BRANCH",
    "tag": "STEPLINE_TAG",
    "sha": "STEPLINE_SHA",
    "before": "STEPLINE_BEFORE",
    "fork": "STEPLINE_FORK",
    "trusted": "STEPLINE_TRUSTED",
    "message": "STEPLINE_MESSAGE",
    "author": "STEPLINE_AUTHOR",
}
PULL_REQUEST_VARIABLES = {
    "number": "STEPLINE_PR_NUMBER",
    "base_ref": "STEPLINE_PR_BASE_REF",
    "head_ref": "STEPLINE_PR_HEAD_REF",
    "head_repository": "STEPLINE_PR_HEAD_REPOSITORY",
    "draft": "STEPLINE_PR_DRAFT",
}
MAX_VALUE_CHARS = 64 * 1024  # a commit message is the longest; the whole environment must fit ARG_MAX


def build_environment(
    task: StepTask,
    places: StepPaths,
    path: str,
    secrets: Mapping[str, str],
    extra: Mapping[str, str],
    trusted: bool,
) -> dict[str, str]:
    """The whole environment of the step's commands: nothing is inherited from the worker.

    `trusted` is the activity's word (the service chose it); the input's `trusted` and `fork` fields
    are the pipeline's to write, so STEPLINE_TRUSTED tells the activity's, whatever the input says.
    """
    env = {
        "PATH": path,
        "HOME": str(places.home),
        "TMPDIR": str(places.tmp),
        "LANG": "C.UTF-8",
        "CI": "true",
        "STEPLINE": "true",
    }
    env.update(task.env)
    if trusted:
        env.update(secrets)
    env.update(run_variables(task.run))
    env["STEPLINE_TRUSTED"] = "true" if trusted else "false"
    env.update({"STEPLINE_STEP": task.step, "STEPLINE_WORKSPACE": str(places.source)})
    env["STEPLINE_EVENT_PATH"] = str(places.event_file)
    env.update(extra)
    return {name: _clean(value) for name, value in env.items()}


def run_variables(run: Mapping[str, Any]) -> dict[str, str]:
    """STEPLINE_* variables for the execution input's fields (absent or null fields become "")."""
    found = {variable: _value(run.get(name)) for name, variable in RUN_VARIABLES.items()}
    pull = run.get("pull_request")
    pull = pull if isinstance(pull, dict) else {}
    found |= {variable: _value(pull.get(name)) for name, variable in PULL_REQUEST_VARIABLES.items()}
    return found


def _value(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _clean(value: str) -> str:
    # a NUL byte cannot be in an environment; an unbounded value could overflow exec's limit
    return value.replace("\x00", "")[:MAX_VALUE_CHARS]
