"""Re-running failed steps: which of the earlier run's passed steps a re-run reuses instead of running.

"Re-run failed steps" (and "re-run this step") is a new run of the same commit and pipeline with
`reuse_from` = the run it repeats. Before its execution starts, `plan_reuse` writes its reuse plan
(statemachines/step_reuse.py): every step that passed in that run, unless it depends on something that
did not pass. "Depends" is read from the definition: a state is downstream of a failed state when a
transition (Next, Catch, Choice, Default, or leaving a Parallel branch or Map iteration, which is how an
error or an end moves on) leads to it. So in `parallel.asl.json`, a failed unit-tests step makes the
Parallel, cleanup and the Fail state downstream, while lint and build (other branches) are reused; in a
Map, the other iterations of the failed one are reused. What failed is read from the earlier
execution's history (GetExecutionHistory: the same on AWS). Approval steps are never reused (no worker
answers them): a re-run asks again.

A plan is made only from a run of the same repository, commit and trust; the re-run's own record carries
the trust decision unchanged, so its Tasks reach the same (trusted or untrusted) activities.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from service.job_context import JobContext
from service.reconcile import read_history
from service.run_record import RunRecord
from service.state_visits import visits_by_state
from statemachines.contract import pipeline_steps, walk_states
from statemachines.step_reuse import results_of, write_plan

log = logging.getLogger(__name__)

SAME_SOURCE = ("repository", "clone_url", "sha")


def plan_reuse(ctx: JobContext, run: RunRecord, definition: dict[str, Any]) -> int:
    """Write the reuse plan of a re-run (`reuse_from` set) before its execution starts; steps it reuses."""
    earlier_id = run.get("reuse_from")
    if not earlier_id:
        return 0
    earlier = ctx.index.get(str(earlier_id))
    steps: dict[str, dict[str, Any]] = {}
    if earlier is not None and _same_source(run, earlier):
        try:
            failed = failed_states(ctx, earlier, definition)
        except (ClientError, BotoCoreError) as exc:  # raised: rq retries the start rather than re-run all
            log.warning("%s: cannot read run %s's history: %s", run["run_id"], earlier_id, exc)
            raise
        forced = set(run.get("rerun_steps") or [])
        steps = reusable_steps(definition, results_of(ctx.redis, earlier["run_id"]), failed, forced)
        steps = {
            name: entry | {"from_run": entry["from_run"] or earlier["run_id"]}
            for name, entry in steps.items()
        }
    else:
        log.warning(
            "%s: run %s is not of the same commit and trust: nothing reused", run["run_id"], earlier_id
        )
    write_plan(ctx.redis, run["run_id"], str(earlier_id), run, steps)
    log.info("%s: re-run of %s reuses %d step(s): %s", run["run_id"], earlier_id, len(steps), sorted(steps))
    return len(steps)


def reusable_steps(
    definition: dict[str, Any],
    recorded: dict[str, dict[str, Any]],
    failed: set[str],
    forced: set[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """step -> {"fingerprint", "result", "from_run"} of the recorded passes no failed state leads to.

    `forced` names steps to run again whatever they did (and so what depends on them).
    """
    specs = pipeline_steps(definition, include_dynamic=True)
    forced = forced or set()
    starts = failed | {spec.state_name for spec in specs if any(spec.matches(name) for name in forced)}
    downstream = downstream_states(definition, starts)
    plan = {}
    for name, record in recorded.items():
        result = record.get("result") or {}
        states = {spec.state_name for spec in specs if spec.matches(name)}
        if name in forced or result.get("status") != "succeeded" or not states or states & downstream:
            continue
        plan[name] = {
            "fingerprint": record["fingerprint"],
            "result": result,
            "from_run": result.get("reused_from"),
        }
    return plan


def failed_states(ctx: JobContext, earlier: RunRecord, definition: dict[str, Any]) -> set[str]:
    """States of the earlier execution that failed (caught or not) or never finished (stopped, timed out)."""
    arn = earlier.get("execution_arn")
    if not arn:
        return {name for _, name, _ in walk_states(definition)}  # never started: nothing to trust
    try:
        events = read_history(ctx.sfn, arn)
    except ctx.sfn.exceptions.ExecutionDoesNotExist:
        return {name for _, name, _ in walk_states(definition)}
    types = {name: str(state.get("Type")) for _, name, state in walk_states(definition)}
    visits, _ = visits_by_state(events, types)
    return {
        name
        for name, state_visits in visits.items()
        if any(v.exited_at is None or (v.failures and not v.succeeded) for v in state_visits)
    }


def downstream_states(definition: dict[str, Any], starts: set[str]) -> set[str]:
    """Every state a transition from one of `starts` can lead to (not `starts` themselves, unless in a loop).

    A failed Parallel or Map leads on from its end, not into its own branches again.
    """
    graph, entries = successor_graph(definition)
    seen: set[str] = set()
    queue = deque(next_state for start in starts for next_state in graph.get(start, ()))
    while queue:
        name = queue.popleft()
        if name not in seen:
            seen.add(name)
            queue.extend(graph.get(name, set()) | entries.get(name, set()))
    return seen


def successor_graph(
    definition: dict[str, Any], exits: frozenset[str] = frozenset()
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(state -> the states it leads to, group -> its branches' first states).

    A state in a branch or iteration may also leave it (by ending or failing) to whatever follows its
    Parallel or Map (`exits`).
    """
    graph: dict[str, set[str]] = {}
    entries: dict[str, set[str]] = {}
    for name, state in (definition.get("States") or {}).items():
        if not isinstance(state, dict):
            continue
        targets = {state.get("Next"), state.get("Default")}
        targets |= {rule.get("Next") for rule in state.get("Choices") or [] if isinstance(rule, dict)}
        targets |= {catcher.get("Next") for catcher in state.get("Catch") or [] if isinstance(catcher, dict)}
        own = {target for target in targets if isinstance(target, str)}
        graph[name] = own | exits
        inner = [*(state.get("Branches") or []), state.get("ItemProcessor") or state.get("Iterator")]
        for machine in inner:
            if isinstance(machine, dict):
                entries.setdefault(name, set()).add(str(machine.get("StartAt")))
                inner_graph, inner_entries = successor_graph(machine, frozenset(own | exits))
                graph.update(inner_graph)
                entries.update(inner_entries)
    return graph, entries


def _same_source(run: RunRecord, earlier: RunRecord) -> bool:
    """Reuse only what ran on the same code with the same trust: never widen what a result vouches for."""
    same_trust = (run.get("trusted") is True) == (earlier.get("trusted") is True)
    return same_trust and all(run.get(field) == earlier.get(field) for field in SAME_SOURCE)
