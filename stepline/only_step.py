"""`--only STEP`: the pipeline with every other step's Task turned into a state that passes, its flow kept.

Choices still decide, Parallels and Maps still fan out, and what a skipped step would have added to
the state is a `{"step", "status": "skipped"}` result at its ResultPath, so later states find the
path they read. A skipped Task's Retry goes with it; one with a Catch becomes a Parallel of one Pass
instead, so the states only its Catch leads to stay reachable (the validator refuses unreachable
states). The change is made before deploying, and the changed definition is validated again.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from statemachines.contract import StepSpec, pipeline_steps, walk_states
from stepline.errors import UnknownStep

SKIPPED = "skipped"
# what a Pass keeps of a Task; JSONata's Assign and Output may read $states.result, which a Pass has not
KEPT_FIELDS = ("Comment", "InputPath", "OutputPath", "ResultPath", "Next", "End", "QueryLanguage")


def find_step(definition: dict[str, Any], name: str) -> StepSpec:
    """The step `name` names: a step's name, a Map's family by its template (`test-py{}`) or by one
    of its names (`test-py3.12`: the whole family runs, its names are only known at run time)."""
    steps = pipeline_steps(definition, include_dynamic=True)
    for spec in steps:
        if spec.step == name:
            return spec
    for spec in steps:
        if spec.dynamic and spec.matches(name):
            return spec
    raise UnknownStep(name, [spec.step for spec in steps])


def only_step(definition: dict[str, Any], keep: StepSpec) -> dict[str, Any]:
    """A copy of `definition` in which only the Task of `keep` still runs a step."""
    skipped = {spec.state_path: spec.step for spec in pipeline_steps(definition, include_dynamic=True)}
    skipped.pop(keep.state_path)
    result = copy.deepcopy(definition)
    for path, _, state in walk_states(result):
        if path in skipped:
            _to_pass(state, path, skipped[path], _query_language(result, path))
    return result


def _to_pass(state: dict[str, Any], path: str, step: str, language: str) -> None:
    kept = {field: state[field] for field in KEPT_FIELDS if field in state}
    catchers = state.get("Catch")
    state.clear()
    result = {"step": step, "status": SKIPPED}
    jsonata = language == "JSONata"
    if not catchers:
        state.update({"Type": "Pass", **kept})
        if not jsonata:  # a JSONata Pass passes its input on; Result is JSONPath's
            state["Result"] = result
    else:
        # a Pass cannot catch: a Parallel of one Pass keeps the Catch, so its handlers stay reachable
        # state names are unique across a whole definition, nested ones included
        name = f"Skipped {hashlib.sha256(path.encode()).hexdigest()[:12]}"
        branch = {"StartAt": name, "States": {name: {"Type": "Pass", "End": True}}}
        state.update({"Type": "Parallel", **kept, "Branches": [branch], "Catch": catchers})
        state.update({"Output": "{% $states.input %}"} if jsonata else {"ResultSelector": result})
    state.setdefault("Comment", f"step {step}: skipped by --only")


def _query_language(definition: dict[str, Any], path: str) -> str:
    """The query language of the state at `path`: its own, else the definition's (JSONPath by default)."""
    for state_path, _, state in walk_states(definition):
        if state_path == path and state.get("QueryLanguage"):
            return str(state["QueryLanguage"])
    return str(definition.get("QueryLanguage") or "JSONPath")
