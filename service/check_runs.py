"""Check runs: each status context of a commit as a GitHub check run (Checks API), when Stepline is a GitHub App.

The status ledger stays the one record of what each context should say (service/status_ledger.py): the
publisher posts its newest wanted update here instead of (or beside) a commit status, with the same
retries, deferrals and reconciliation, so every check run Stepline opens is completed as every status ends.

Per (repository, sha, context) Redis keeps the check run posted for it (`stepline:checks:<repository>:<sha>:
<context>` hash: `id`, `run_id`, `completed`, `annotations` sent, and `creating`: the run whose create was
last asked for, so a retry after a lost answer adopts the check run GitHub made instead of opening another).
A newer run of the context (a re-run, a new event on the commit) gets a new check run; the older one, if
still open, is completed as cancelled first, so no check run is left in progress behind a newer one. Annotations go once the step has ended, 50 per
request as GitHub allows; the count sent is kept, so a retried job sends none twice (and a batch whose answer
was lost is counted from GitHub's annotations_count).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, NamedTuple

import redis
from github import Github

from service.check_output import CheckOutput, build_output
from service.run_index import RunIndex
from service.status_contexts import PHASE_STARTED, PHASE_STEP_PENDING, RunContexts, StatusUpdate
from service.status_ledger import KEEP_SECONDS, ContextRef
from statemachines import outcomes
from statemachines.contract import APPROVAL_POOL
from statemachines.redis_text import redis_text

log = logging.getLogger(__name__)

PREFIX = "stepline:checks:"
ANNOTATIONS_PER_REQUEST = 50  # GitHub's limit for one create or update
CANCEL_WORDS = ("superseded", "cancelled", "canceled", "aborted", "stopped")
APPROVE, REJECT = "approve", "reject"  # the identifiers of an approval gate's buttons (requested_action)
APPROVAL_ACTIONS = [
    {"label": "Approve", "description": "Approve this step; the pipeline goes on", "identifier": APPROVE},
    {"label": "Reject", "description": "Reject this step; the pipeline fails", "identifier": REJECT},
]


class CheckState(NamedTuple):
    """What a check run says: GitHub's status, and the conclusion once it is completed."""

    status: str
    conclusion: str | None = None
    actions: bool = False  # the approval buttons


CHECK_STATES = {
    outcomes.QUEUED: CheckState("queued"),
    outcomes.RUNNING: CheckState("in_progress"),
    outcomes.AWAITING_APPROVAL: CheckState("completed", "action_required", True),
    outcomes.PASSED: CheckState("completed", "success"),
    outcomes.FAILED: CheckState("completed", "failure"),
    outcomes.TIMED_OUT: CheckState("completed", "timed_out"),
    outcomes.CANCELLED: CheckState("completed", "cancelled"),
    outcomes.SKIPPED: CheckState("completed", "skipped"),
}


def check_state(update: StatusUpdate, waits_for_approval: bool, overall: bool) -> CheckState:
    """The check run's status and conclusion for an update of the same context: from its outcome."""
    state = CHECK_STATES.get(update.outcome or "")
    if state is None:  # a ledger entry or a job from before outcomes were carried
        return check_state_from_words(update, waits_for_approval, overall)
    if overall and update.outcome == outcomes.SKIPPED:
        return CheckState("completed", "neutral")  # a skipped pipeline ([skip ci]) neither passed nor failed
    return state


def check_state_from_words(update: StatusUpdate, waits_for_approval: bool, overall: bool) -> CheckState:
    """The check run's state read from an update that names no outcome: its state, phase and words."""
    words = update.description.lower()
    if update.state == "pending":
        if waits_for_approval and update.order[3] >= PHASE_STEP_PENDING:
            return CheckState("completed", "action_required", True)
        if update.order[3] == PHASE_STARTED and not overall:
            return CheckState("queued")
        return CheckState("in_progress")
    if update.state == "success":
        if words.startswith("skipped"):
            return CheckState("completed", "neutral" if overall else "skipped")
        return CheckState("completed", "success")
    if update.state == "error" and words.startswith("not run:"):
        # after another step's failure (or an invalid pipeline) it was skipped; else the run was stopped
        skipped = words.endswith((" failed", "invalid pipeline"))
        return CheckState("completed", "skipped" if skipped else "cancelled")
    if "timed out" in words:
        return CheckState("completed", "timed_out")
    if update.state == "error" and any(word in words for word in CANCEL_WORDS):
        return CheckState("completed", "cancelled")
    return CheckState("completed", "failure")


def external_id(run_id: str, step: str | None) -> str:
    """What a check run carries back in GitHub's webhooks: `<run id>:<step>` (no step: the pipeline's)."""
    return f"{run_id}:{step or ''}"


def parse_external_id(value: str) -> tuple[str, str | None]:
    run_id, _, step = value.partition(":")
    return run_id, step or None


class CheckRunStore:
    """The check run posted for each context of a commit."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def get(self, ref: ContextRef) -> dict[str, Any] | None:
        raw = self.redis.hgetall(_key(ref))
        if not raw or (b"id" not in raw and "id" not in raw):
            return None
        fields = {redis_text(k): redis_text(v) for k, v in raw.items()}
        return {
            "id": int(fields["id"]),
            "run_id": fields.get("run_id", ""),
            "completed": fields.get("completed") == "1",
            "annotations": int(fields.get("annotations") or 0),
            "annotating": int(fields.get("annotating") or 0),
        }

    def creating(self, ref: ContextRef) -> str:
        """The run whose check run was last asked for here: if no id came back, GitHub may have made it."""
        return redis_text(self.redis.hget(_key(ref), "creating") or "")

    def save(self, ref: ContextRef, **fields: Any) -> None:
        values: dict[Any, Any] = {
            key: int(value) if isinstance(value, bool) else value for key, value in fields.items()
        }
        pipe = self.redis.pipeline()
        pipe.hset(_key(ref), mapping=values)
        pipe.expire(_key(ref), KEEP_SECONDS)
        pipe.execute()


class GitHubChecks:
    """Posts one context's update as its check run: created, updated, or a new one for a newer run."""

    def __init__(self, client: redis.Redis, public_url: str, prefix: str) -> None:
        self.redis = client
        self.store = CheckRunStore(client)
        self.index = RunIndex(client)
        self.public_url = public_url
        self.prefix = prefix

    def post(self, github: Github, update: StatusUpdate) -> None:
        """Raises PyGithub's GithubException or a requests error when GitHub does not take it."""
        ref = ContextRef.of(update)
        run = self.index.get(update.run_id)
        contexts = RunContexts(run or {"run_id": update.run_id}, self.prefix, self.public_url)
        step = contexts.step_of(update.context)
        pool = ((run or {}).get("step_pools") or {}).get(step) if step else None
        state = check_state(update, pool == APPROVAL_POOL, step is None)
        output = build_output(self.redis, run, contexts, update)
        repo = github.get_repo(update.repository)  # lazy: the check-run request is the only one
        current = self.store.get(ref)
        if current is not None and current["run_id"] != update.run_id:
            self._close_replaced(repo, ref, current, update)
            current = None
        fields = _fields(update, state)
        if current is None:
            current = self._adopt(repo, ref, update, step)
        if current is None:
            self.store.save(ref, creating=update.run_id)  # before asking: the answer may be lost
            first = output.annotations[:ANNOTATIONS_PER_REQUEST] if state.status == "completed" else []
            created = repo.create_check_run(
                name=update.context,
                head_sha=update.sha,
                external_id=external_id(update.run_id, step),
                output=output.body(first),
                **fields,
            )
            current = {"id": created.id, "annotations": len(first)}
            self.store.save(ref, id=created.id, run_id=update.run_id, completed=False, annotations=len(first))
        else:
            repo.get_check_run(current["id"]).edit(output=output.body([]), **fields)
        if state.status == "completed":
            self._send_annotations(repo, ref, current, output)
        self.store.save(ref, completed=state.status == "completed")
        log.info(
            "%s: check run %s %s -> %s %s",
            update.run_id, current["id"], update.context, state.status, state.conclusion or "",
        )  # fmt: skip

    def _adopt(
        self, repo: Any, ref: ContextRef, update: StatusUpdate, step: str | None
    ) -> dict[str, Any] | None:
        """The check run an earlier try created for this run when GitHub's answer was lost (a 502 from a proxy,
        a timeout), so a retry opens no second one left in progress; None when no try is unanswered."""
        if self.store.creating(ref) != update.run_id:
            return None
        wanted = external_id(update.run_id, step)
        for found in repo.get_commit(update.sha).get_check_runs(check_name=update.context):
            if found.external_id == wanted and found.name == update.context:
                sent = int(found.output.annotations_count or 0) if found.output else 0
                self.store.save(ref, id=found.id, run_id=update.run_id, completed=False, annotations=sent)
                log.info(
                    "%s: check run %s %s adopted after a lost answer", update.run_id, found.id, update.context
                )
                return {"id": found.id, "annotations": sent}
        return None

    def _send_annotations(
        self, repo: Any, ref: ContextRef, current: dict[str, Any], output: CheckOutput
    ) -> None:
        """The annotations not sent yet, 50 a request; each batch counted once GitHub took it."""
        sent = int(current.get("annotations") or 0)
        if sent < len(output.annotations) and int(current.get("annotating") or 0) > sent:
            # an earlier try's batch got no answer: GitHub's count says whether it was taken
            found = repo.get_check_run(current["id"]).output
            sent = max(sent, int(found.annotations_count or 0) if found else 0)
        while sent < len(output.annotations):
            batch = output.annotations[sent : sent + ANNOTATIONS_PER_REQUEST]
            self.store.save(ref, annotating=sent + len(batch))  # before asking: the answer may be lost
            repo.get_check_run(current["id"]).edit(output=output.body(batch))
            sent += len(batch)
            self.store.save(ref, annotations=sent)

    def _close_replaced(
        self, repo: Any, ref: ContextRef, current: dict[str, Any], update: StatusUpdate
    ) -> None:
        if current["completed"]:
            return
        summary = f"Run {current['run_id']} was replaced by run {update.run_id} on this commit."
        repo.get_check_run(current["id"]).edit(
            status="completed",
            conclusion="cancelled",
            completed_at=datetime.now(UTC),
            output={"title": "superseded by a newer run", "summary": summary},
            actions=[],
        )
        self.store.save(ref, completed=True)
        log.info(
            "%s: check run %s of run %s closed: superseded", update.run_id, current["id"], current["run_id"]
        )


def _fields(update: StatusUpdate, state: CheckState) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": state.status, "actions": APPROVAL_ACTIONS if state.actions else []}
    if update.target_url.startswith(("http://", "https://")):
        fields["details_url"] = update.target_url
    if state.conclusion is not None:
        fields["conclusion"] = state.conclusion
        fields["completed_at"] = datetime.fromtimestamp(update.order[4] / 1000, UTC)
    return fields


def _key(ref: ContextRef) -> str:
    return f"{PREFIX}{ref.repository}:{ref.sha}:{ref.context}"
