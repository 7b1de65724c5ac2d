"""`python -m statemachines check FILE...`: every problem of a pipeline file, offline.

No credentials, no engine, no network: the file is parsed, given the build-step defaults
(statemachines/step_defaults.py) as deploying would, then checked by the engine's ASL validator (what
CreateStateMachine refuses) and against the pipeline contract (`contract.check_pipeline`). Each problem
names its location as a JSON pointer into the definition, e.g. `/States/Checks/Branches/0/States/Lint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statemachines.catalog import parse_pipeline
from statemachines.contract import activity_pools, check_pipeline, substitute_activities
from statemachines.engine.asl.validation import validate_definition
from statemachines.errors import PipelineError
from statemachines.step_defaults import fill_step_defaults

MAX_DEFINITION_BYTES = 1024 * 1024  # AWS's limit on a state machine definition
# the validator needs ARNs where deploy would put them; any well-formed activity ARN will do
STAND_IN_ARN = "arn:aws:states:us-east-1:000000000000:activity:stepline-{pool}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline: where, what, and whether it stops a deploy (ERROR) or not."""

    location: str
    message: str
    severity: str = "ERROR"

    def __str__(self) -> str:
        return f"{self.location}: {self.severity.lower()}: {self.message}"


def check_file(path: Path) -> list[Problem]:
    """Every problem of the pipeline in `path`, errors and the validator's warnings."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem("/", f"cannot read the file: {exc}")]
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        return [Problem("/", "the definition is over 1 MiB (AWS's limit)")]
    try:
        definition = parse_pipeline(text, str(path))
    except PipelineError as exc:
        return [Problem("/", problem) for problem in exc.problems]
    return check_definition(definition)


def check_definition(definition: dict[str, Any]) -> list[Problem]:
    """The problems of a parsed definition, checked as it would be deployed (defaults filled in)."""
    filled = fill_step_defaults(definition)
    arns = {pool: STAND_IN_ARN.format(pool=pool) for pool in activity_pools(filled)}
    problems = [
        Problem(d.location or "/", d.message, d.severity)
        for d in validate_definition(substitute_activities(filled, arns))
    ]
    pointers = dict(_state_pointers(filled))
    for problem in check_pipeline(filled):
        state_path, _, message = problem.partition(": ")
        problems.append(Problem(pointers.get(state_path, "/"), message))
    return problems


def _state_pointers(definition: dict[str, Any], path: str = "", pointer: str = "") -> list[tuple[str, str]]:
    """(walk_states path, JSON pointer) of every state: `Checks/0/Lint` is `/States/Checks/Branches/0/States/Lint`."""
    found = []
    for name, state in (definition.get("States") or {}).items():
        if not isinstance(state, dict):
            continue
        here = f"{pointer}/States/{name}"
        found.append((path + name, here))
        for index, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                found += _state_pointers(branch, f"{path}{name}/{index}/", f"{here}/Branches/{index}")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                found += _state_pointers(state[key], f"{path}{name}/", f"{here}/{key}")
    return found
