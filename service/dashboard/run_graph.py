"""A run's execution graph: the state machine definition plus its execution history -> nodes, edges, status.

Node ids are state paths as `contract.walk_states` names them (`Build`, `Tests/0/Unit`, `Deploy/Each`), so
Parallel branches and Map processors are groups. Each state gets one status, the colour on the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from service.dashboard.choice_labels import rule_label
from service.state_visits import GROUP_TYPES, OPEN, state_status, visits_by_state
from statemachines.contract import APPROVAL_POOL, pool_of_activity
from statemachines.worker_presence import waiting_words

START, END = "__start__", "__end__"
TERMINAL_TYPES = {"Succeed", "Fail"}
MAX_VISITS = 10  # a Map over 1,000 items visits its states 1,000 times: the page gets the last few


def build_graph(
    definition: dict[str, Any],
    events: list[dict[str, Any]],
    served: Callable[[str], bool] | None = None,
    prefix: str = "stepline",
) -> dict[str, Any]:
    """The graph model the run page draws: {"nodes", "edges", "status", "error", "cause"}.

    `served` tells whether some worker serves an activity (statemachines/worker_presence.py): a step
    waiting on an activity nobody serves is `no_worker`, not merely `waiting`.
    """
    nodes, edges = _layout_model(definition)
    types = {node["name"]: node["type"] for node in nodes if node["kind"] == "state"}
    visits, execution = visits_by_state(events, types)
    by_name = {node["name"]: node for node in nodes if node["kind"] == "state"}
    for name, state_visits in visits.items():
        if name in by_name:
            by_name[name]["visits"] = [visit.to_dict() for visit in state_visits[-MAX_VISITS:]]
            by_name[name]["visit_count"] = len(state_visits)
    for node in by_name.values():
        node["status"] = state_status(node, visits.get(node["name"], []), execution)
        if node["status"] == "waiting":
            _waiting_detail(node, visits[node["name"]], served, prefix)
    _mark_skipped(nodes, edges, execution)
    _mark_ends(nodes, execution)
    return {"nodes": nodes, "edges": edges, **execution}


def _waiting_detail(
    node: dict[str, Any], visits: list[Any], served: Callable[[str], bool] | None, prefix: str
) -> None:
    arn = next(v.waiting_on for v in reversed(visits) if v.waiting_on)
    name = str(arn).rsplit(":", 1)[-1]
    pool = pool_of_activity(name, prefix)  # an untrusted run's pool reads "build", as its author wrote it
    is_served = pool == APPROVAL_POOL or served is None or served(name)
    node["detail"] = waiting_words(pool, is_served)
    if not is_served:
        node["status"] = "no_worker"


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
        "visit_count": 0,
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
