"""Everything the run page and its JSON API show for one run, gathered from the run index, Step Functions and logs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.approvals import ApprovalStore
from service.dashboard.execution_reader import ExecutionReader
from service.dashboard.run_graph import build_graph
from service.dashboard.run_view import format_duration, run_summary
from service.errors import RunNotFoundError, StepFunctionsUnavailableError
from service.run_index import OPEN_STATUSES, STATUSES, RunIndex
from service.run_outcome import Verdict, task_phases, unreached_verdict
from service.run_record import RunRecord
from service.status_contexts import RunContexts
from service.status_ledger import StatusLedger
from statemachines.contract import APPROVAL_POOL, StepSpec, pool_of_activity
from statemachines.run_stages import RunStages
from statemachines.step_concurrency import WAITING_WORDS as GROUP_WAITING_WORDS
from statemachines.step_logs import StepLogReader
from statemachines.worker_presence import waiting_words

log = logging.getLogger(__name__)

PAGE_SIZE = 25
HISTORY_ROWS = 2000  # the history table shows the newest this many events
DETAIL_CHARS = 600
WAITING = "waiting"  # a step with no log yet; once the run has ended it is "skipped" or "not run"
# while the run is live, a step with no log is one of these (from the execution's history)
NOT_REACHED, NO_WORKER, STARTING = "not reached", "no worker", "starting"
GROUP_WAIT = "waiting for group"  # its step concurrency group is held (statemachines/step_concurrency.py)


@dataclass(frozen=True)
class RunFilters:
    """The runs page's filters, from the query string (unknown or malformed values are ignored)."""

    repository: str | None = None
    branch: str | None = None
    pull_request: int | None = None
    status: str | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args: Any) -> RunFilters:
        pr = args.get("pr", "").strip().lstrip("#")
        status = args.get("status", "").strip().upper()
        page = args.get("page", "1")
        return cls(
            repository=args.get("repository", "").strip()[:200] or None,
            branch=args.get("branch", "").strip()[:250] or None,
            pull_request=int(pr) if pr.isdigit() and len(pr) < 10 else None,
            status=status if status in STATUSES else None,
            page=max(1, min(int(page), 100_000)) if page.isdigit() and len(page) < 7 else 1,
        )

    def query(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments of these filters (for links to other pages of the same list)."""
        values = {"repository": self.repository, "branch": self.branch, "pr": self.pull_request}
        values |= {"status": self.status, "page": self.page if self.page > 1 else None, **changes}
        return {key: value for key, value in values.items() if value not in (None, "")}


class RunDetails:
    """Reads for the dashboard; one per app (clients and caches are shared by its threads)."""

    def __init__(
        self,
        index: RunIndex,
        reader: ExecutionReader,
        logs: StepLogReader,
        store: ApprovalStore,
        ledger: StatusLedger,
        status_prefix: str = "stepline",
        served: Callable[[str], bool] | None = None,
        activity_prefix: str = "stepline",
    ) -> None:
        self.served = served  # whether a worker serves an activity (statemachines/worker_presence.py)
        self.activity_prefix = activity_prefix
        self.index = index
        self.reader = reader
        self.logs = logs
        self.approvals = store
        self.ledger = ledger
        self.status_prefix = status_prefix

    def runs(self, filters: RunFilters, web_url: str) -> tuple[list[dict[str, Any]], bool]:
        """(summaries of one page of runs, whether a next page exists), newest first."""
        offset = (filters.page - 1) * PAGE_SIZE
        found = self.index.list_runs(
            limit=PAGE_SIZE + 1,
            offset=offset,
            repository=filters.repository,
            branch=filters.branch,
            pull_request=filters.pull_request,
            status=filters.status,
        )
        summaries = [self._with_approvals(run_summary(run, web_url)) for run in found[:PAGE_SIZE]]
        return summaries, len(found) > PAGE_SIZE

    def _with_approvals(
        self, summary: dict[str, Any], approvals: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A running run that waits for a person says so, not merely "running"."""
        if summary["status"] != "RUNNING":
            return summary
        if approvals is None:
            approvals = self.approvals.for_run(str(summary["run_id"]))
        if approvals:
            summary["look"] = {**summary["look"], "words": "awaiting approval"}
        return summary

    def run(self, run_id: str) -> RunRecord:
        run = self.index.get(run_id) if len(run_id) <= 200 else None
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def overview(self, run_id: str, web_url: str) -> dict[str, Any]:
        """The run page's header, steps, pending approvals and audit trail (no Step Functions calls)."""
        run = self.run(run_id)
        approvals = self.approvals.for_run(run_id)
        audit = self.index.audit(run_id)
        steps = _with_decisions(self.steps(run), approvals, audit)
        # what GitHub was told (or could not be told): a failed status post is never silent
        statuses = self.ledger.run_statuses(run_id)
        if run.get("status") not in OPEN_STATUSES:
            _mark_unreached(steps, RunContexts(run, self.status_prefix, ""), statuses)
        elif run.get("status") == "RUNNING" and any(step["status"] == WAITING for step in steps):
            self._mark_waiting(run, steps, statuses)
        return {
            "run": self._with_approvals(run_summary(run, web_url), approvals),
            "record": run,
            "steps": steps,
            "approvals": approvals,
            "audit": list(reversed(audit)),
            "statuses": statuses,
            "stages": RunStages(self.index.redis).timeline(run_id),  # where the run's time went
        }

    def steps(self, run: RunRecord) -> list[dict[str, Any]]:
        """The run's build steps in pipeline order, each with its latest log attempt and duration."""
        latest: dict[str, dict[str, Any]] = {}
        for meta in self.logs.list_logs(run["run_id"]):
            if meta["attempt"] >= latest.get(meta["step"], {}).get("attempt", 0):
                latest[meta["step"]] = meta
        return [_step_row(name, latest.get(name)) for name in step_order(run, latest)]

    def _mark_waiting(
        self, run: RunRecord, steps: list[dict[str, Any]], statuses: list[dict[str, Any]]
    ) -> None:
        """A live run's steps without a log: not reached yet, waiting for a worker, no worker, or starting,
        or waiting for its concurrency group (between its retries no task is open: its status tells).

        Best effort: with Step Functions unreachable they stay "waiting" (the page still shows).
        """
        try:
            events, _ = self.reader.history(run)
        except StepFunctionsUnavailableError:
            return
        phases = task_phases(events)
        contexts = RunContexts(run, self.status_prefix, "")
        group_waits = {
            contexts.step_of(row["context"]): str(row["description"])
            for row in statuses
            if row["state"] == "pending" and str(row["description"] or "").startswith(GROUP_WAITING_WORDS)
        }
        for step in steps:
            if step["status"] != WAITING:
                continue
            if waiting_for := group_waits.get(step["step"]):
                step["status"], step["reason"] = GROUP_WAIT, waiting_for.removeprefix("waiting for ")
                continue
            phase, arn = phases.get(step["step"], ("", ""))
            if not phase:
                step["status"] = NOT_REACHED
                continue
            if phase == "started":
                step["status"], step["reason"] = STARTING, "a worker took it: checking out"
                continue
            pool = pool_of_activity(arn, self.activity_prefix)
            is_served = pool == APPROVAL_POOL or self.served is None or self.served(arn)
            step["status"] = WAITING if is_served else NO_WORKER
            step["reason"] = waiting_words(pool, is_served)

    def graph(self, run_id: str) -> dict[str, Any]:
        """The graph model and the history table (Step Functions calls; cached once the execution ended)."""
        run = self.run(run_id)
        try:
            definition = self.reader.definition(run)
            events, cut = self.reader.history(run)
        except StepFunctionsUnavailableError as exc:
            return {"graph": None, "history": [], "history_cut": False, "error": exc.reason}
        if definition is None:
            return {"graph": None, "history": [], "history_cut": False, "error": None}
        return {
            "graph": build_graph(definition, events, self.served, self.activity_prefix),
            "history": [_history_row(event) for event in events[-HISTORY_ROWS:]],
            "history_cut": cut or len(events) > HISTORY_ROWS,
            "error": None,
        }


def step_order(run: RunRecord, logged: dict[str, dict[str, Any]]) -> list[str]:
    """Pipeline order: each Map iteration (a step named at run time) right after what precedes its family.

    Iterations of one family keep the order they started in; a logged name no family claims (a run
    recorded before families were) comes last, as before.
    """
    known = list(run.get("steps") or [])
    extra = sorted((n for n in logged if n not in known), key=lambda n: logged[n].get("started_ms", 0))
    placed: dict[str | None, list[str]] = {}
    for template, before in run.get("step_families") or []:
        family = StepSpec("", "", str(template), "", dynamic=True)
        members = [name for name in extra if family.matches(name)]
        placed.setdefault(before if before in known else None, []).extend(members)
        extra = [name for name in extra if name not in members]
    order = placed.get(None, [])
    for name in known:
        order += [name, *placed.get(name, [])]
    return order + extra


def _with_decisions(
    steps: list[dict[str, Any]], approvals: list[dict[str, Any]], audit: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Approval steps write no log: their status comes from the pending list and the audit trail."""
    decided = {e.get("step"): e for e in audit if e.get("action") in {"approve", "reject"} and e.get("step")}
    waiting = {a["step"] for a in approvals}
    for step in steps:
        if step["attempt"] is not None:
            continue
        if step["step"] in waiting:
            step["status"] = "waiting for approval"
        elif step["step"] in decided:
            entry = decided[step["step"]]
            step["status"] = (
                f"{'approved' if entry['action'] == 'approve' else 'rejected'} by {entry.get('by')}"
            )
    return steps


def _mark_unreached(
    steps: list[dict[str, Any]], contexts: RunContexts, statuses: list[dict[str, Any]]
) -> None:
    """An ended run's steps that never ran say what their GitHub status says: skipped, or not run.

    The reconciler decided that when the run ended (the ledger keeps it); without a recorded status
    (no reporting yet, or the statuses expired) the reconciler's own rule decides from the run's status.
    """
    told = {contexts.step_of(row["context"]) or "": row for row in statuses if row["state"] != "pending"}
    for step in steps:
        if step["status"] != WAITING:
            continue
        row = told.get(step["step"])
        verdict = (
            Verdict(row["state"], row["description"] or "")
            if row
            else unreached_verdict(
                str(contexts.run.get("status")), str(contexts.run.get("status_reason") or "")
            )
        )
        words = _unreached_words(verdict)
        step["status"], step["detail"] = words, verdict.description
        step["reason"] = verdict.description.removeprefix(f"{words}: ")  # "skipped: not on this run's path"


def _unreached_words(verdict: Verdict) -> str:
    if verdict.description.startswith("skipped"):
        return "skipped"
    return {"success": "succeeded", "failure": "failed"}.get(verdict.state, "not run")


def _step_row(name: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    if meta is None:
        return {
            "step": name,
            "status": WAITING,
            "attempt": None,
            "duration": "-",
            "lines": 0,
            "cut": False,
        }
    end_ms = meta.get("finished_ms") or meta.get("updated_ms") or meta["started_ms"]
    seconds = max(0, end_ms - meta["started_ms"]) / 1000
    return {
        "step": name,
        "status": meta.get("status") or ("finished" if meta["finished"] else "running"),
        "attempt": meta["attempt"],
        "duration_seconds": seconds,
        "duration": format_duration(seconds),
        "finished": meta["finished"],
        "exit_code": meta.get("exit_code"),
        "lines": meta["lines"],
        "cut": meta["cut_bytes"] > 0,
        "worker": meta.get("worker"),
    }


def _history_row(event: dict[str, Any]) -> dict[str, Any]:
    details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
    shown = {k: v for k, v in details.items() if not k.endswith("Details")}
    text = ", ".join(f"{k}={v}" for k, v in shown.items() if k != "name")
    return {
        "id": event.get("id"),
        "previous": event.get("previousEventId"),
        "type": event.get("type"),
        "timestamp": event.get("timestamp"),
        "state": details.get("name"),
        "detail": text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…",
    }
