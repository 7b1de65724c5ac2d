"""A run's execution graph: the state machine definition plus its execution history -> nodes, edges, status.

Node ids are state paths as `contract.walk_states` names them (`Build`, `Tests/0/Unit`, `Deploy/Each`), so
Parallel branches and Map processors are groups. Each state gets one status, the colour on the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from service.choice_labels import rule_label

START, END = "__start__", "__end__"
GROUP_TYPES = {"Parallel", "Map"}
TERMINAL_TYPES = {"Succeed", "Fail"}
OPEN = "RUNNING"
MAX_TEXT = 64 * 1024  # inputs and outputs are shown, not archived: bound what one page load carries

# History event types -> what they say about the state they belong to.
FAILURE_EVENTS = {
    "TaskFailed",
    "TaskTimedOut",
    "TaskStartFailed",
    "TaskSubmitFailed",
    "ActivityFailed",
    "ActivityTimedOut",
    "ActivityScheduleFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "LambdaFunctionScheduleFailed",
    "LambdaFunctionStartFailed",
    "ParallelStateFailed",
    "MapStateFailed",
    "MapRunFailed",
}
SUCCESS_EVENTS = {
    "TaskSucceeded",
    "ActivitySucceeded",
    "LambdaFunctionSucceeded",
    "ParallelStateSucceeded",
    "MapStateSucceeded",
}
EXECUTION_END = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}


@dataclass
class Visit:
    """One entry into a state: what it got, what it gave, and the failures (retries) in between."""

    entered_at: float
    input: str | None = None
    exited_at: float | None = None
    output: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    succeeded: bool = False
    abandoned: bool = False  # left open by a failed execution that was then redriven

    def to_dict(self) -> dict[str, Any]:
        return {
            "entered_at": self.entered_at,
            "exited_at": self.exited_at,
            "input": _bounded(self.input),
            "output": _bounded(self.output),
            "failures": self.failures,
            "retries": max(0, len(self.failures) - (0 if self.succeeded or not self.failures else 1)),
        }


def _bounded(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… cut: {len(text) - MAX_TEXT} more characters"


def build_graph(definition: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """The graph model the run page draws: {"nodes", "edges", "status", "error", "cause"}."""
    nodes, edges = _layout_model(definition)
    types = {node["name"]: node["type"] for node in nodes if node["kind"] == "state"}
    visits, execution = _visits_by_state(events, types)
    by_name = {node["name"]: node for node in nodes if node["kind"] == "state"}
    for name, state_visits in visits.items():
        if name in by_name:
            by_name[name]["visits"] = [visit.to_dict() for visit in state_visits]
    for node in by_name.values():
        node["status"] = _status(node, visits.get(node["name"], []), execution)
    _mark_skipped(nodes, edges, execution)
    _mark_ends(nodes, execution)
    return {"nodes": nodes, "edges": edges, **execution}


# --- the definition: nodes and edges ----------------------------------------------------------------


def _layout_model(definition: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes: list[dict[str, Any]] = [_pseudo(START, "Start"), _pseudo(END, "End")]
    edges: list[dict[str, Any]] = []
    start = definition.get("StartAt")
    if isinstance(start, str):
        edges.append(_edge(START, start, "start"))
    for node_id, parent, name, state in _states(definition, "", None):
        nodes.append(_node(node_id, parent, name, state))
        edges += _edges_of(node_id, parent, state, _scope_of(node_id, name))
        edges += [_edge(node_id, first, "group_start") for first in _group_starts(node_id, state)]
        if parent is None and (state.get("End") or state.get("Type") in TERMINAL_TYPES):
            edges.append(_edge(node_id, END, "end"))
    known = {node["id"] for node in nodes}
    edges = [edge for edge in edges if edge["source"] in known and edge["target"] in known]
    return nodes, edges


def _states(
    definition: dict[str, Any], prefix: str, parent: str | None
) -> Iterator[tuple[str, Any, str, Any]]:
    """(node id, parent group id, name, state), each group before its children."""
    for name, state in (definition.get("States") or {}).items():
        if not isinstance(state, dict):
            continue
        node_id = prefix + name
        yield node_id, parent, name, state
        for child_prefix, child in _group_children(node_id, state):
            yield from _states(child, child_prefix, node_id)


def _group_children(node_id: str, state: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A Parallel's branches (`Tests/0/`, `Tests/1/`) or a Map's processor (`Each/`), as walk_states names them."""
    found = [(f"{node_id}/{i}/", b) for i, b in enumerate(state.get("Branches") or []) if isinstance(b, dict)]
    processor = state.get("ItemProcessor") or state.get("Iterator")
    if isinstance(processor, dict):
        found.append((f"{node_id}/", processor))
    return found


def _group_starts(node_id: str, state: dict[str, Any]) -> list[str]:
    children = _group_children(node_id, state)
    return [prefix + child["StartAt"] for prefix, child in children if isinstance(child.get("StartAt"), str)]


def _scope_of(node_id: str, name: str) -> str:
    return node_id[: len(node_id) - len(name)]


def _pseudo(node_id: str, label: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "kind": "terminal",
        "name": label,
        "type": label,
        "parent": None,
        "status": "not_reached",
    }


def _node(node_id: str, parent: str | None, name: str, state: dict[str, Any]) -> dict[str, Any]:
    params = state.get("Parameters") or state.get("Arguments") or {}
    step = params.get("step") if isinstance(params, dict) else None
    node: dict[str, Any] = {
        "id": node_id,
        "kind": "state",
        "name": name,
        "type": state.get("Type", "?"),
        "parent": parent,
        "group": state.get("Type") in GROUP_TYPES,
        "step": step if isinstance(step, str) else None,
        "comment": state.get("Comment") if isinstance(state.get("Comment"), str) else None,
        "status": "not_reached",
        "visits": [],
    }
    if state.get("Type") == "Wait":
        node["detail"] = _wait_detail(state)
    return node


def _wait_detail(state: dict[str, Any]) -> str:
    for key in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath"):
        if key in state:
            return f"{key}: {state[key]}"
    return ""


def _edges_of(node_id: str, parent: str | None, state: dict[str, Any], scope: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(state.get("Next"), str):
        found.append(_edge(node_id, scope + state["Next"], "next"))
    for rule in state.get("Choices") or []:
        if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
            found.append(_edge(node_id, scope + rule["Next"], "choice", rule_label(rule)))
    if isinstance(state.get("Default"), str):
        found.append(_edge(node_id, scope + state["Default"], "default", "Default"))
    for catcher in state.get("Catch") or []:
        if isinstance(catcher, dict) and isinstance(catcher.get("Next"), str):
            errors = ", ".join(str(e) for e in catcher.get("ErrorEquals") or [])
            found.append(_edge(node_id, scope + catcher["Next"], "catch", f"Catch: {errors}"))
    if parent is not None and (state.get("End") or state.get("Type") in TERMINAL_TYPES):
        found.append(_edge(node_id, parent, "group_end"))
    return found


def _edge(source: str, target: str, kind: str, label: str = "") -> dict[str, Any]:
    return {"source": source, "target": target, "kind": kind, "label": label}


# --- the history: visits and status ----------------------------------------------------------------


def _visits_by_state(
    events: list[dict[str, Any]], types: dict[str, str]
) -> tuple[dict[str, list[Visit]], dict[str, Any]]:
    """Visits per state name (names are unique in a state machine) and the execution's own outcome."""
    visits: dict[str, list[Visit]] = {}
    entered: dict[int, tuple[str, Visit]] = {}  # StateEntered event id -> its visit
    by_id: dict[int, dict[str, Any]] = {}
    execution: dict[str, Any] = {"status": OPEN, "error": None, "cause": None, "redrives": 0}
    for event in events:
        by_id[event.get("id", -1)] = event
        kind, details = str(event.get("type", "")), _details(event)
        name = details.get("name", "")
        if kind.endswith("StateEntered"):
            visit = Visit(event.get("timestamp", 0), input=details.get("input"))
            visits.setdefault(name, []).append(visit)
            entered[event["id"]] = (name, visit)
        elif kind.endswith("StateExited"):
            open_visit = next((v for v in reversed(visits.get(name, [])) if v.exited_at is None), None)
            if open_visit is not None:
                open_visit.exited_at, open_visit.output = event.get("timestamp", 0), details.get("output")
        elif kind.startswith("Execution"):
            _execution_event(kind, details, execution, visits)
        elif kind in FAILURE_EVENTS or kind in SUCCESS_EVENTS:
            owner = _owner_of(event, by_id, entered, types)
            if owner is not None:
                _record_outcome(owner[1], kind, event, details)
    return visits, execution


def _owner_of(
    event: dict[str, Any],
    by_id: dict[int, dict[str, Any]],
    entered: dict[int, tuple[str, Visit]],
    types: dict[str, str],
) -> tuple[str, Visit] | None:
    """The visit an event belongs to, following previousEventId (AWS's causal link: branches interleave).

    Task events belong to the nearest entered state; Parallel/Map events to the nearest entered group.
    """
    want_group = str(event.get("type", "")).startswith(("Parallel", "Map"))
    current = by_id.get(event.get("previousEventId", -1))
    for _ in range(len(by_id)):
        if current is None:
            return None
        found = entered.get(current.get("id", -1))
        if found is not None and (not want_group or types.get(found[0]) in GROUP_TYPES):
            return found
        current = by_id.get(current.get("previousEventId", -1))
    return None


def _record_outcome(visit: Visit, kind: str, event: dict[str, Any], details: dict[str, Any]) -> None:
    if kind in FAILURE_EVENTS:
        visit.failures.append(
            {
                "type": kind,
                "timestamp": event.get("timestamp"),
                "error": details.get("error"),
                "cause": _bounded(details.get("cause")),
            }
        )
        visit.succeeded = False
    else:
        visit.succeeded = True


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _execution_event(
    kind: str, details: dict[str, Any], execution: dict[str, Any], visits: dict[str, list[Visit]]
) -> None:
    if kind in EXECUTION_END:
        execution["status"] = kind.removeprefix("Execution").upper().replace("TIMEDOUT", "TIMED_OUT")
        execution["error"] = details.get("error")
        execution["cause"] = _bounded(details.get("cause"))
    elif kind == "ExecutionRedriven":
        execution.update(status=OPEN, error=None, cause=None, redrives=execution["redrives"] + 1)
        for state_visits in visits.values():  # what failed before the redrive is history, not running
            for visit in state_visits:
                if visit.exited_at is None:
                    visit.abandoned = True


def _status(node: dict[str, Any], visits: list[Visit], execution: dict[str, Any]) -> str:
    """not_reached, running, succeeded, failed, caught, retried or aborted (skipped is decided afterwards)."""
    if not visits:
        return "not_reached"
    still_open = [visit for visit in visits if visit.exited_at is None and not visit.abandoned]
    if still_open:
        if execution["status"] == OPEN:
            return "running"
        if node["type"] == "Fail" or any(visit.failures for visit in still_open):
            return "failed"
        return "failed" if execution["status"] == "TIMED_OUT" else "aborted"
    last = visits[-1]
    if last.abandoned or (last.failures and not last.succeeded):
        return "caught" if not last.abandoned else "failed"
    if any(visit.failures or visit.abandoned for visit in visits):
        return "retried"
    return "succeeded"


def _mark_skipped(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]], execution: dict[str, Any]
) -> None:
    """States a decided Choice did not take (and what only they lead to) are skipped, not merely not reached."""
    by_id = {node["id"]: node for node in nodes}
    taken_from: dict[str, set[str]] = {}
    for edge in edges:
        taken_from.setdefault(edge["target"], set()).add(edge["source"])
    finished_ok = execution["status"] == "SUCCEEDED"
    for node in nodes:
        if node["kind"] != "state" or node["status"] != "not_reached":
            continue
        if finished_ok or _only_behind_decided_choices(node["id"], by_id, taken_from, set()):
            node["status"] = "skipped"
    for node in nodes:  # a group's children follow the group when it was skipped as a whole
        parent = by_id.get(node["parent"]) if node["parent"] else None
        if parent and parent["status"] == "skipped" and node["status"] == "not_reached":
            node["status"] = "skipped"


def _only_behind_decided_choices(
    node_id: str, by_id: dict[str, dict[str, Any]], sources: dict[str, set[str]], seen: set[str]
) -> bool:
    if node_id in seen:
        return True  # a loop back to itself decides nothing
    seen.add(node_id)
    incoming = sources.get(node_id, set())
    if not incoming:
        return False
    for source_id in incoming:
        source = by_id[source_id]
        if source["kind"] != "state":
            return False
        decided_choice = source["type"] == "Choice" and any(v["exited_at"] for v in source.get("visits", []))
        if decided_choice:
            continue
        if source["status"] != "not_reached" and source["status"] != "skipped":
            return False
        if not _only_behind_decided_choices(source_id, by_id, sources, seen):
            return False
    return True


def _mark_ends(nodes: list[dict[str, Any]], execution: dict[str, Any]) -> None:
    started = any(node["status"] != "not_reached" for node in nodes if node["kind"] == "state")
    for node in nodes:
        if node["id"] == START and started:
            node["status"] = "succeeded"
        elif node["id"] == END and execution["status"] != OPEN:
            node["status"] = {"SUCCEEDED": "succeeded", "ABORTED": "aborted"}.get(
                execution["status"], "failed"
            )
