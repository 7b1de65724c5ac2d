"""GitHub's buttons on Stepline's check runs: Re-run all, Re-run (a step), and an approval gate's Approve / Reject.

Web side: `parse_check_event` turns a check_suite `rerequested`, a check_run `rerequested` or a check_run
`requested_action` delivery into a CheckRequest (any other action is ignored with the reason), and
`record_check_request` records it once per delivery (service/deliveries.py) with its job, as a push is.
Job side, `handle_check_request` on the runs queue: the sender must be able to write to the repository
(GitHub's collaborator permission, asked as the App installation; the webhook's word is not enough), then
the dashboard's own action runs, audited as by "<login> on GitHub":
- check_suite rerequested: the commit's latest run is re-run (Actions.rerun);
- check_run rerequested: a step's check run re-runs that step and what depends on it, reusing every other
  step that passed (Actions.rerun_step); the pipeline's check run re-runs the failed steps (Actions.redrive);
- check_run requested_action `approve` / `reject`: the step's pending approval is decided (Actions.decide).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis
from github import GithubException
from rq import Queue, Retry

from service.approvals import ApprovalStore
from service.check_runs import APPROVE, REJECT, parse_external_id
from service.config import ServiceConfig
from service.deliveries import DeliveryLog
from service.errors import (
    ActionNotAllowedError,
    ApprovalNotPendingError,
    DashboardError,
    MalformedPayloadError,
    NoInstallationError,
)
from service.github_client import GitHubStatuses
from service.job_context import JobContext, job_context
from service.publisher import rate_limit_delay
from service.run_actions import Actions
from service.run_record import RunRecord
from service.triggers import Ignored
from statemachines import queues

log = logging.getLogger(__name__)

CHECK_EVENTS = ("check_run", "check_suite")
ACTIONS = {"check_suite": ("rerequested",), "check_run": ("rerequested", "requested_action")}
WRITE_PERMISSIONS = ("admin", "maintain", "write")
RERUN_CLAIM = "stepline:checks:rerun-of:"
RERUN_WINDOW = 300  # seconds
JOB_RETRY = Retry(max=3, interval=[2, 10, 30])  # the permission look-up may meet a rate limit or a 502


@dataclass(frozen=True)
class CheckRequest:
    """A person pressed one of GitHub's buttons on a check run or check suite of Stepline's."""

    event: str
    action: str
    delivery_id: str
    repository: str
    sender: str
    head_sha: str
    installation_id: int | None = None
    run_id: str = ""  # from the check run's external_id (a check suite names none: its commit's latest run)
    step: str | None = None
    identifier: str = ""  # requested_action: which button

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_check_event(
    event: str, payload: dict[str, Any], delivery_id: str, config: ServiceConfig
) -> CheckRequest | Ignored:
    """The request a check_run or check_suite delivery makes, or why it starts nothing."""
    action = payload.get("action")
    if action not in ACTIONS[event]:
        return Ignored(f"{event} action {action!r} starts nothing (Stepline's own check runs send these)")
    body = payload.get(event)
    repository = payload.get("repository")
    sender = payload.get("sender")
    if not isinstance(body, dict) or not isinstance(repository, dict) or not isinstance(sender, dict):
        raise MalformedPayloadError(f"{event} event without {event}, repository and sender objects")
    app = body.get("app")
    app_id = app.get("id") if isinstance(app, dict) else None
    if config.github_app_id and str(app_id) != str(config.github_app_id):
        return Ignored(f"the {event} is another app's")
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    request = CheckRequest(
        event=event,
        action=str(action),
        delivery_id=delivery_id,
        repository=_text(repository.get("full_name"), "repository.full_name"),
        sender=_text(sender.get("login"), "sender.login"),
        head_sha=_text(body.get("head_sha"), f"{event}.head_sha"),
        installation_id=installation_id if isinstance(installation_id, int) else None,
    )
    if event == "check_suite":
        return request
    run_id, step = parse_external_id(str(body.get("external_id") or ""))
    if not run_id:
        return Ignored("the check run is not one of Stepline's (no external_id)")
    identifier = ""
    if action == "requested_action":
        wanted = payload.get("requested_action")
        identifier = str(wanted.get("identifier") or "") if isinstance(wanted, dict) else ""
        if identifier not in (APPROVE, REJECT) or step is None:
            return Ignored(f"no action {identifier[:20]!r} on this check run")
    return CheckRequest(
        **{**request.to_dict(), "run_id": run_id[:64], "step": step, "identifier": identifier}
    )


def record_check_request(
    client: redis.Redis, request: CheckRequest, hook_id: str
) -> tuple[bool, dict[str, Any]]:
    """Record the delivery once and enqueue its job in the same step; (False, the first record) when redelivered."""
    queue = Queue(queues.RUNS, connection=client)
    outcome = {"action": f"{request.event} {request.action}", "reason": f"by {request.sender}"}

    def then(pipe: Any) -> None:
        queue.enqueue_call(
            queues.HANDLE_CHECK_REQUEST, args=(request.to_dict(),), retry=JOB_RETRY, pipeline=pipe
        )

    first, record = DeliveryLog(client).record_once(hook_id, request.delivery_id, outcome, then)
    if first:
        log.info("delivery %s: %s by %s queued", request.delivery_id, outcome["action"], request.sender)
    return first, record


def handle_check_request(data: dict[str, Any]) -> str:
    """rq job: check the sender may write, then re-run or decide as asked; returns what it did."""
    ctx = job_context()
    request = CheckRequest(**data)
    run = _find_run(ctx, request)
    if run is None:
        log.warning(
            "delivery %s: %s names no run of %s", request.delivery_id, request.action, request.repository
        )
        return "no such run"
    run_id = run["run_id"]
    permission = _permission(ctx, request)
    if permission not in WRITE_PERMISSIONS:
        log.warning("%s: %s by %s refused: permission %r", run_id, request.action, request.sender, permission)
        ctx.index.add_audit(
            run_id, {"action": f"refused {request.action}", "by": f"{request.sender} on GitHub",
                     "reason": f"no write access ({permission})"},
        )  # fmt: skip
        return f"refused: {permission}"
    user = f"{request.sender} on GitHub"
    actions = Actions(ctx, ApprovalStore(ctx.redis))
    try:
        return _act(actions, ctx, request, run_id, user)
    except (ActionNotAllowedError, ApprovalNotPendingError) as exc:
        log.warning("%s: %s %s: %s", run_id, request.action, user, exc)
        return f"not done: {exc}"
    except DashboardError as exc:  # Step Functions did not answer: rq tries again
        log.warning("%s: %s %s failed, retrying: %s", run_id, request.action, user, exc)
        raise


def _act(actions: Actions, ctx: JobContext, request: CheckRequest, run_id: str, user: str) -> str:
    if request.event == "check_suite":
        return "re-run " + actions.rerun(run_id, user)["run_id"]
    if request.action == "rerequested":
        # "Re-run failed checks" sends one delivery per failed check run: one re-run covers them all
        # (a re-run reuses only what passed), so the first of them within RERUN_WINDOW re-runs
        claim = f"{RERUN_CLAIM}{run_id}"
        if not ctx.redis.set(claim, request.delivery_id, nx=True, ex=RERUN_WINDOW):
            holder = ctx.redis.get(claim)
            if (holder.decode() if isinstance(holder, bytes) else holder) != request.delivery_id:
                return f"already re-run: {run_id}"  # (a retry of this very job goes on)
        try:
            if request.step:
                return "re-run step " + actions.rerun_step(run_id, user, request.step)["run_id"]
            return "re-run failed " + actions.redrive(run_id, user)["run_id"]
        except ActionNotAllowedError:
            ctx.redis.delete(claim)  # nothing was re-run: a later press may
            raise
    pending = [a for a in ApprovalStore(ctx.redis).for_run(run_id) if a["step"] == request.step]
    if not pending:
        raise ApprovalNotPendingError(f"{run_id}:{request.step}")
    decided = actions.decide(pending[0]["approval_id"], request.identifier == APPROVE, user)
    return f"{decided['decision']} {request.step}"


def _find_run(ctx: JobContext, request: CheckRequest) -> RunRecord | None:
    """The run the button is about, only if it is of the delivery's repository and commit."""
    if request.run_id:
        run = ctx.index.get(request.run_id)
    else:
        runs = ctx.index.runs_for_sha(request.repository, request.head_sha)
        run = max(runs, key=lambda r: float(r.get("created_at") or 0), default=None)
    if run is None or run.get("repository") != request.repository or run.get("sha") != request.head_sha:
        return None
    return run


def _permission(ctx: JobContext, request: CheckRequest) -> str:
    """The sender's permission on the repository as GitHub says it; raises for rq to retry when GitHub fails."""
    github = GitHubStatuses(ctx.config, ctx.redis)
    if not github.enabled:
        return "unknown (no GitHub credentials to ask with)"
    installation = request.installation_id or ctx.config.github_app_installation_id or None
    try:
        repo = github.client(installation if github.uses_app else None).get_repo(request.repository)
        return str(repo.get_collaborator_permission(request.sender))
    except NoInstallationError:  # nobody to ask as: GitHub's word is missing, which is a no
        return "unknown (no App installation to ask as)"
    except GithubException as exc:
        # 404: the App cannot see the repository; a 403 that is no rate limit: no access. Else rq retries.
        if exc.status == 404 or (exc.status == 403 and rate_limit_delay(exc, time.time()) is None):
            return f"none ({exc.status})"
        raise


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise MalformedPayloadError(f"{name} must be a non-empty string")
    return value
