"""The publisher: posts the newest claimed status of a context to GitHub (a commit status or a check run:
service/github_reporting.py), as an rq job on "statuses".

- 5xx answers, timeouts and connection errors raise StatusPostError: rq retries the job after
  STEPLINE_STATUS_RETRY_INTERVALS (exponential backoff); the last failure is recorded for the dashboard.
- 403/429 rate limits defer the job: a new job at GitHub's Retry-After or x-ratelimit-reset, and a
  shared pause so the other status jobs wait too, instead of a worker sleeping.
- Other 4xx answers (no access, validation) cannot succeed later: recorded, never retried.
- Without credentials (development) the status is only recorded in Redis (the dashboard shows it).
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta

import redis
import requests
from github import GithubException, RateLimitExceededException
from github.Requester import Requester
from rq import Retry, get_current_job

from service.errors import NoInstallationError, StatusPostError
from service.github_reporting import GitHubReporting
from service.job_context import JobContext, job_context
from service.status_contexts import PHASE_FINAL, StatusUpdate
from service.status_ledger import ContextRef, StatusLedger
from statemachines.run_stages import FINAL_POSTED, PENDING_POSTED, RunStages

log = logging.getLogger(__name__)

PAUSE_KEY = "stepline:github:paused-until"
LOCK_SECONDS = 60  # longer than a post can take (10 s timeout + token refresh)
LOCK_BUSY_DELAY = 1  # another job is posting this context: look again shortly
MAX_POSTS_PER_JOB = 5  # newer claims arriving while we post are posted by the same job, up to this
MAX_DEFERRALS = 30  # rate-limit deferrals before a status is declared failed
MAX_RATE_WAIT = 3600
TRANSIENT_STATUSES = {408, 500, 502, 503, 504}


def submit(ctx: JobContext, updates: list[StatusUpdate]) -> int:
    """Claim each update and enqueue a publish job for those that are now the newest; returns how many."""
    ledger = StatusLedger(ctx.redis)
    claimed = [update for update in updates if ledger.claim(update)]
    for update in claimed:
        enqueue_publish(ctx, ContextRef.of(update))
    return len(claimed)


def enqueue_publish(ctx: JobContext, ref: ContextRef, delay: float = 0, deferrals: int = 0) -> None:
    intervals = list(ctx.config.status_retry_intervals)
    options = {
        "retry": Retry(max=len(intervals), interval=intervals),
        "job_timeout": 120,
        "result_ttl": 300,
        "failure_ttl": 7 * 24 * 3600,  # rq keeps failures a year by default; the ledger keeps the error
    }
    args = (ref.repository, ref.sha, ref.context, deferrals)
    if delay > 0:
        ctx.statuses.enqueue_in(timedelta(seconds=delay), publish_status, *args, **options)
    else:
        ctx.statuses.enqueue(publish_status, *args, **options)


def publish_status(repository: str, sha: str, context: str, deferrals: int = 0) -> str:
    """rq job: post the context's newest wanted status unless it is already posted; returns what it did."""
    ctx = job_context()
    ref = ContextRef(repository, sha, context)
    ledger = StatusLedger(ctx.redis)
    if ledger.next_to_post(ref) is None:
        return "up to date"
    paused = _paused_for(ctx.redis)
    if paused > 0:
        return _defer(ctx, ref, paused, deferrals)
    token = ledger.lock(ref, LOCK_SECONDS)
    if token is None:
        enqueue_publish(ctx, ref, LOCK_BUSY_DELAY, deferrals)
        return "busy"
    try:
        return _post_newest(ctx, ledger, ref, deferrals)
    finally:
        ledger.unlock(ref, token)


def _post_newest(ctx: JobContext, ledger: StatusLedger, ref: ContextRef, deferrals: int) -> str:
    github = GitHubReporting(ctx.config, ctx.redis)
    done = "up to date"
    for _ in range(MAX_POSTS_PER_JOB):
        update = ledger.next_to_post(ref)
        if update is None:
            return done
        if not github.enabled:
            ledger.mark_posted(update, recorded_only=True)
            _stamp_posted(ctx, update)
            done = "recorded"
        elif github.unchanged(update, ledger.posted(ref)):
            ledger.mark_posted(update)  # GitHub already shows exactly this: don't spend a status on it
            _stamp_posted(ctx, update)
            done = "unchanged"
        else:
            outcome = _post(ctx, github, ledger, update, deferrals)
            if outcome != "posted":
                return outcome
            done = outcome
    enqueue_publish(ctx, ref)  # still newer claims: keep going in a fresh job
    return done


def _post(
    ctx: JobContext, github: GitHubReporting, ledger: StatusLedger, update: StatusUpdate, deferrals: int
) -> str:
    try:
        github.post(update)
    except GithubException as exc:
        return _on_github_error(ctx, github, ledger, update, exc, deferrals)
    except requests.RequestException as exc:  # timeouts, refused connections, urllib3's RetryError
        _retry_or_fail(ctx, ledger, update, f"{type(exc).__name__}: {exc}")
    except NoInstallationError as exc:
        return _fail(ctx, ledger, update, str(exc))
    ledger.mark_posted(update)
    _stamp_posted(ctx, update)
    log.info(
        "%s: %s %s -> %s (%s)",
        update.run_id,
        update.repository,
        update.context,
        update.state,
        update.description,
    )
    return "posted"


def _stamp_posted(ctx: JobContext, update: StatusUpdate) -> None:
    """The run's timeline: its first pending status shown, and the last of those saying how it ended
    (statemachines/run_stages.py); a step's own result, posted while the run goes on, is neither."""
    if update.state == "pending":
        RunStages(ctx.redis).stamp(update.run_id, PENDING_POSTED)
    elif update.phase == PHASE_FINAL:
        RunStages(ctx.redis).stamp(update.run_id, FINAL_POSTED)


def _on_github_error(
    ctx: JobContext,
    github: GitHubReporting,
    ledger: StatusLedger,
    update: StatusUpdate,
    exc: GithubException,
    deferrals: int,
) -> str:
    ref = ContextRef.of(update)
    delay = rate_limit_delay(exc, time.time())
    if delay is not None:
        ctx.redis.set(PAUSE_KEY, time.time() + delay, ex=int(delay) + 1)
        return _defer(ctx, ref, delay, deferrals)
    if exc.status == 401 and (installation := github.installation_of(update)):
        github.tokens.forget(installation)  # revoked or rotated: the retry makes a new one
        _retry_or_fail(ctx, ledger, update, f"GitHub answered 401: {_message(exc)}")
    if exc.status in TRANSIENT_STATUSES or exc.status >= 500:
        _retry_or_fail(ctx, ledger, update, f"GitHub answered {exc.status}: {_message(exc)}")
    return _fail(ctx, ledger, update, f"GitHub refused the status ({exc.status}): {_message(exc)}")


def rate_limit_delay(exc: GithubException, now: float) -> float | None:
    """Seconds GitHub asks us to wait when `exc` is a rate-limit answer (403 or 429), else None."""
    if exc.status not in (403, 429):
        return None
    headers = {key.lower(): value for key, value in (exc.headers or {}).items()}
    retry_after = headers.get("retry-after")
    reset = headers.get("x-ratelimit-reset")
    limited = (
        exc.status == 429
        or isinstance(exc, RateLimitExceededException)
        or Requester.isRateLimitError(_message(exc))
        or retry_after is not None
        or headers.get("x-ratelimit-remaining") == "0"
    )
    if not limited:
        return None  # a 403 for missing permissions: waiting does not help
    if retry_after and retry_after.strip().isdigit():
        delay = float(retry_after)
    elif reset and reset.strip().isdigit():
        delay = float(reset) - now + 1  # the reset second itself may still be limited
    else:
        delay = 60.0  # GitHub's advice for a secondary limit without headers
    return min(max(delay, 1.0), MAX_RATE_WAIT)


def _defer(ctx: JobContext, ref: ContextRef, delay: float, deferrals: int) -> str:
    ledger = StatusLedger(ctx.redis)
    if deferrals >= MAX_DEFERRALS:
        update = ledger.wanted(ref)
        if update is not None:
            _record(ctx, ledger, update, f"still rate limited after {deferrals} waits")
        return "rate limited: gave up"
    # rq keeps scheduled times in whole seconds, rounded down: a job due in 0.4 s would run at once,
    # find the pause still on and spend another deferral. Due at the first whole second after it.
    now = time.time()
    delay = math.ceil(now + delay) - now
    log.warning(
        "%s@%s %s: rate limited, posting again in %.1fs", ref.repository, ref.sha[:12], ref.context, delay
    )
    enqueue_publish(ctx, ref, delay, deferrals + 1)
    return "rate limited: deferred"


def _retry_or_fail(ctx: JobContext, ledger: StatusLedger, update: StatusUpdate, reason: str) -> None:
    """Raise so rq retries with backoff; on the last attempt record the failure first (never silent)."""
    job = get_current_job()
    if job is None or not job.retries_left:
        _record(ctx, ledger, update, f"{reason} (no retries left)")
    else:
        log.warning("%s: %s %s: %s; rq retries it", update.run_id, update.repository, update.context, reason)
    raise StatusPostError(update.repository, update.sha, update.context, reason)


def _fail(ctx: JobContext, ledger: StatusLedger, update: StatusUpdate, reason: str) -> str:
    _record(ctx, ledger, update, reason)
    ledger.give_up(ContextRef.of(update))
    return "failed"


def _record(ctx: JobContext, ledger: StatusLedger, update: StatusUpdate, reason: str) -> None:
    """Never silent: the log, the context, the run's error list and a copy on the run record."""
    log.error(
        "%s: status %s %s for %s@%s not posted: %s",
        update.run_id, update.context, update.state, update.repository, update.sha[:12], reason,
    )  # fmt: skip
    ledger.record_error(update, reason)
    # a copy on the run for the dashboard's run list; the ledger's list stays the full record
    ctx.index.update(update.run_id, reporting_errors=ledger.errors(update.run_id)[:20])


def _paused_for(client: redis.Redis) -> float:
    raw = client.get(PAUSE_KEY)
    return max(0.0, float(raw) - time.time()) if raw else 0.0


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    return str(data.get("message") or exc.message or "")[:200]
