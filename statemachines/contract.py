"""The pipeline contract: activity placeholders, build-step task input and step results.

Shared by the service (which deploys pipelines and reports their status contexts) and the workers
(which run the steps). Documented for pipeline authors in statemachines/PIPELINES.md.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from statemachines.errors import ContractError
from statemachines.step_concurrency import parse_declaration
from statemachines.step_errors import CONCURRENCY_WAIT
from statemachines.step_outputs import StepOutputs, output_problems, parse_step_outputs

# A Task's Resource names a worker pool; deploy substitutes the pool's activity ARN. A pool's name never
# starts with "untrusted-": that is where an untrusted run's tasks of the same pool go (activity_name).
PLACEHOLDER = re.compile(r"^\$\{activity:((?!untrusted-)[a-z0-9][a-z0-9-]{0,39})\}$")
APPROVAL_POOL = "approval"  # polled by the service itself: a human decides, no build worker is held
UNTRUSTED = "untrusted"
STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/ -]{0,79}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_COMMANDS = 200
# `"step.$": "States.Format('test-py{}', $.version)"`: the literal template names a family of steps
FORMAT_TEMPLATE = re.compile(r"^States\.Format\(\s*'((?:[^'\\]|\\.)*)'")


def activity_name(pool: str, prefix: str = "stepline", trusted: bool = True) -> str:
    """The activity that serves a pool, e.g. `stepline-build`; for untrusted runs `stepline-untrusted-build`.

    Trust travels in the activity, which the service chooses when it deploys a run's pipeline: a
    pipeline cannot change which activity its Task resolves to, and a worker decides secrets and
    sandbox from the activity it polled, never from task input.
    """
    return f"{prefix}-{pool}" if trusted else f"{prefix}-{UNTRUSTED}-{pool}"


def pool_of_activity(name: str, prefix: str = "stepline") -> str:
    """The pool an activity (by name or ARN) serves: `activity_name`'s inverse, trust left out."""
    pool = name.rsplit(":", 1)[-1].removeprefix(prefix + "-")
    return pool.removeprefix(UNTRUSTED + "-")


def walk_states(definition: dict[str, Any], path: str = "") -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every state of a definition, nested Parallel branches and Map processors included: (path, name, state)."""
    for name, state in (definition.get("States") or {}).items():
        if not isinstance(state, dict):
            continue
        yield path + name, name, state
        for index, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                yield from walk_states(branch, f"{path}{name}/{index}/")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, dict):
            yield from walk_states(processor, f"{path}{name}/")


def pool_of(state: dict[str, Any]) -> str | None:
    resource = state.get("Resource")
    match = PLACEHOLDER.match(resource) if isinstance(resource, str) else None
    return match.group(1) if match else None


def activity_pools(definition: dict[str, Any]) -> set[str]:
    """The pools a pipeline's Tasks name; each needs its activity before the state machine is created."""
    return {pool for _, _, state in walk_states(definition) if (pool := pool_of(state))}


def substitute_activities(value: Any, arns: dict[str, str]) -> Any:
    """A copy of a definition whose `${activity:pool}` Resources are replaced by activity ARNs."""
    if isinstance(value, dict):
        return {key: substitute_activities(item, arns) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_activities(item, arns) for item in value]
    if isinstance(value, str) and (match := PLACEHOLDER.match(value)):
        return arns[match.group(1)]
    return value


@dataclass(frozen=True)
class StepSpec:
    """A build or approval step found in a pipeline: its state, its status-context name and its pool.

    A step named per iteration (`"step.$": "States.Format('test-py{}', $.version)"` in a Map) is
    `dynamic`: `step` is then the template (`test-py{}`), and `prefix` its static part.
    """

    state_path: str
    state_name: str
    step: str
    pool: str
    dynamic: bool = False

    @property
    def prefix(self) -> str:
        return self.step.split("{}", 1)[0] if self.dynamic else self.step

    def matches(self, name: str) -> bool:
        """Whether a concrete step name (as a worker receives it) is this step."""
        if not self.dynamic:
            return name == self.step
        pattern = ".+".join(re.escape(part) for part in self.step.split("{}"))
        return re.fullmatch(pattern, name) is not None


def step_name_of(params: Any) -> tuple[str, bool] | None:
    """A Task's step name and whether it is computed at run time, or None when it names no step."""
    if not isinstance(params, dict):
        return None
    if isinstance(params.get("step"), str):
        return params["step"], False
    expression = params.get("step.$")
    if not isinstance(expression, str):
        return None
    template = FORMAT_TEMPLATE.match(expression)
    # a bare path ("$.name") gives no static part at all
    return (template.group(1).replace("\\'", "'") if template else "{}"), True


def pipeline_steps(definition: dict[str, Any], include_dynamic: bool = False) -> list[StepSpec]:
    """The steps a pipeline owns, in definition order; each is one GitHub status context.

    Steps named at run time (a Map's `test-py{}` family) are left out unless `include_dynamic`:
    their contexts are only known once an iteration runs.
    """
    steps: list[StepSpec] = []
    seen: set[str] = set()
    for path, name, state in walk_states(definition):
        pool = pool_of(state)
        named = step_name_of(state.get("Parameters") or state.get("Arguments"))
        if pool and named and named[0] not in seen and (include_dynamic or not named[1]):
            seen.add(named[0])
            steps.append(StepSpec(path, name, named[0], pool, dynamic=named[1]))
    return steps


def check_pipeline(definition: dict[str, Any]) -> list[str]:
    """Contract problems of a pipeline (the ASL itself is the validator's job), each naming its state path."""
    problems: list[str] = []
    steps = pipeline_steps(definition, include_dynamic=True)
    for path, _, state in walk_states(definition):
        pool = pool_of(state)
        if state.get("Type") != "Task" or pool is None:
            continue
        params = state.get("Parameters") or state.get("Arguments")
        if not isinstance(params, dict) or step_name_of(params) is None:
            problems.append(f'{path}: Parameters must name the step ("step" or "step.$")')
            continue
        if params.get("run.$") != "$$.Execution.Input":
            problems.append(f'{path}: Parameters must pass "run.$": "$$.Execution.Input"')
        if pool != APPROVAL_POOL:
            problems.extend(f"{path}: {problem}" for problem in _build_step_problems(state, params))
            # artifacts, needs and cache are checked before deploy, not only by the worker
            problems.extend(f"{path}: {problem}" for problem in output_problems(params))
            problems.extend(f"{path}: {problem}" for problem in _needs_problems(params.get("needs"), steps))
        problems.extend(f"{path}: {problem}" for problem in _concurrency_problems(state, params, pool))
    return problems


def _concurrency_problems(state: dict[str, Any], params: dict[str, Any], pool: str) -> list[str]:
    if "concurrency.$" in params:
        return ["'concurrency' must be written as is, not computed ('concurrency.$')"]
    if "concurrency" not in params:
        return []
    if pool == APPROVAL_POOL:
        return ["an approval step takes no 'concurrency' (name the group on the deploy step)"]
    try:
        parse_declaration(params["concurrency"])
    except ValueError as exc:
        return [str(exc)]
    retriers = state.get("Retry")
    retried = retriers if isinstance(retriers, list) else []
    if not any(isinstance(r, dict) and CONCURRENCY_WAIT in (r.get("ErrorEquals") or []) for r in retried):
        return [f"a step with a concurrency group needs a Retry on {CONCURRENCY_WAIT} (the default has one)"]
    return []


def _needs_problems(needs: Any, steps: list[StepSpec]) -> list[str]:
    """A `needs` entry that names no step of the pipeline would hand over nothing: a typo, said before deploy."""
    if not isinstance(needs, list):
        return []
    names = ", ".join(spec.step for spec in steps)
    return [
        f"'needs' entry {index} ({pattern!r}) names no step of this pipeline (its steps: {names})"
        for index, pattern in enumerate(needs)
        if isinstance(pattern, str) and not any(_may_match(pattern, spec) for spec in steps)
    ]


def _may_match(pattern: str, spec: StepSpec) -> bool:
    """Whether a `needs` name or fnmatch pattern can match the step (any iteration of a family)."""
    if not spec.dynamic:
        return fnmatch.fnmatchcase(spec.step, pattern)
    head = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    if head == pattern:  # a concrete name: one iteration of the family
        return spec.matches(pattern)
    return head.startswith(spec.prefix) or spec.prefix.startswith(head)


def _build_step_problems(state: dict[str, Any], params: dict[str, Any]) -> list[str]:
    # a lost worker is only noticed through the heartbeat, and AWS counts queue time in TimeoutSeconds
    problems = []
    if not isinstance(params.get("commands"), list) or not params["commands"]:
        problems.append("a build step needs a non-empty list of commands")
    heartbeat, timeout = state.get("HeartbeatSeconds"), state.get("TimeoutSeconds")
    if not isinstance(heartbeat, int) or not isinstance(timeout, int) or heartbeat >= timeout:
        problems.append("a build step needs HeartbeatSeconds and a larger TimeoutSeconds")
    retried = {name for retrier in state.get("Retry") or [] for name in retrier.get("ErrorEquals", [])}
    if not retried & {"States.HeartbeatTimeout", "States.ALL"}:
        problems.append("a build step needs a Retry on States.HeartbeatTimeout (a lost worker)")
    return problems


@dataclass(frozen=True)
class Source:
    """Where a step's code comes from: what the worker checks out."""

    repository: str
    clone_url: str
    sha: str
    ref: str = ""
    pull_request: int | None = None
    trusted: bool = False


@dataclass(frozen=True)
class StepTask:
    """A validated build-step task input, as a worker receives it from GetActivityTask."""

    step: str
    commands: list[str]
    source: Source
    env: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int | None = None
    run: dict[str, Any] = field(default_factory=dict)  # the execution input: exported as STEPLINE_* variables
    heartbeat_seconds: int | None = None  # the Task's HeartbeatSeconds when the pipeline passes it
    outputs: StepOutputs = field(default_factory=StepOutputs)  # artifacts, needs, cache (step_outputs.py)

    @property
    def run_id(self) -> str:
        """The run this step belongs to: its logs and GitHub statuses are keyed by it."""
        return str(self.run.get("run_id") or "")


def parse_step_task(text: str) -> StepTask:
    """Validate a task input against the contract; raise ContractError with a reason naming the field."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ContractError(f"task input is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ContractError("task input must be a JSON object")
    step = data.get("step")
    if not isinstance(step, str) or not STEP_NAME.match(step):
        raise ContractError("'step' must be a name of 1-80 letters, digits, '.', '_', '-', '/' or spaces")
    commands = data.get("commands")
    if not isinstance(commands, list) or not commands or len(commands) > MAX_COMMANDS:
        raise ContractError(f"'commands' must be a list of 1-{MAX_COMMANDS} strings")
    if not all(isinstance(c, str) and c.strip() and "\x00" not in c for c in commands):
        raise ContractError("every entry of 'commands' must be a non-empty string without NUL characters")
    run = data.get("run")
    if not isinstance(run, dict):
        raise ContractError('\'run\' must be the execution input (pass "run.$": "$$.Execution.Input")')
    run_id = run.get("run_id")
    if not isinstance(run_id, str) or not 0 < len(run_id) <= 200 or not run_id.isprintable():
        raise ContractError("'run.run_id' must be a non-empty string of at most 200 printable characters")
    source = _parse_source(run)
    env = _parse_env(data.get("env"))
    timeout = _parse_timeout(data.get("timeout_seconds"), "timeout_seconds")
    heartbeat = _parse_timeout(data.get("heartbeat_seconds"), "heartbeat_seconds")
    try:
        outputs = parse_step_outputs(data)
    except ValueError as exc:  # artifacts, needs or cache
        raise ContractError(str(exc)) from None
    return StepTask(step, commands, source, env, timeout, run, heartbeat, outputs)


def _parse_source(value: dict[str, Any]) -> Source:
    for key in ("repository", "clone_url", "sha"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise ContractError(f"'run.{key}' must be a non-empty string")
    if not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", value["sha"]):
        raise ContractError("'run.sha' must be a full hexadecimal commit id")
    pr_info = value.get("pull_request")
    pr = pr_info.get("number") if isinstance(pr_info, dict) else pr_info
    if pr is not None and (not isinstance(pr, int) or isinstance(pr, bool) or pr <= 0):
        raise ContractError("'run.pull_request.number' must be a positive number")
    ref = value.get("ref") or ""
    if not isinstance(ref, str):
        raise ContractError("'run.ref' must be a string")
    return Source(
        value["repository"], value["clone_url"], value["sha"], ref, pr, value.get("trusted") is True
    )


def _parse_env(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ContractError("'env' must be an object of names to strings")
    for key, item in value.items():
        if not ENV_NAME.match(key) or key.startswith("STEPLINE_") or not isinstance(item, str):
            raise ContractError(
                f"'env.{key}' must be a valid variable name (not STEPLINE_*) with a string value"
            )
    return dict(value)


def _parse_timeout(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 86_400:
        raise ContractError(f"'{name}' must be a whole number of seconds from 1 to 86400")
    return value
