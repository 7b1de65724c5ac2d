"""A run record as the dashboard shows it: trigger, short sha, duration, status look, links to GitHub."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from service.run_record import RunRecord
from service.status_contexts import format_duration as status_duration

OPEN_STATUSES = {"QUEUED", "RUNNING"}
# status -> (css class, icon, words); the icon is text so it needs no image and survives copy-paste
STATUS_LOOK = {
    "QUEUED": ("queued", "◷", "queued"),
    "RUNNING": ("running", "●", "running"),
    "SUCCEEDED": ("succeeded", "✓", "succeeded"),
    "FAILED": ("failed", "✗", "failed"),
    "TIMED_OUT": ("failed", "⌛", "timed out"),
    "ABORTED": ("aborted", "■", "cancelled"),
    "SKIPPED": ("skipped", "↷", "skipped"),
    "INVALID": ("failed", "!", "invalid pipeline"),
    "SUPERSEDED": ("aborted", "⇥", "superseded"),
    "ERRORED": ("failed", "!", "could not start"),
}
UNKNOWN_LOOK = ("queued", "?", "unknown")
MAX_MESSAGE = 10_000  # a commit message is shown whole up to this; the webhook already bounds it


def status_look(status: str | None) -> dict[str, str]:
    css, icon, words = STATUS_LOOK.get(status or "", UNKNOWN_LOOK)
    return {"class": css, "icon": icon, "words": words}


def trigger_of(run: RunRecord) -> str:
    """What started the run, in words: `push to main`, `PR #12`, `tag v1.0`, `push to main (re-run)`."""
    pr = pr_number(run)
    if pr is not None:
        words = f"PR #{pr}"
    elif run.get("tag"):
        words = f"tag {run['tag']}"
    else:
        words = f"{run.get('event') or 'push'} to {run.get('branch') or run.get('ref') or '?'}"
    if run.get("event") == "manual":  # started by a person (service/manual_runs.py)
        words = "manual run of " + (words.removeprefix("manual to ") if pr is None else words)
    elif run.get("event") == "schedule":
        name = f"schedule {run['schedule']}" if run.get("schedule") else "schedule"  # a re-run has no name
        words = f"{name} of {run.get('branch') or run.get('ref') or '?'}"
    return words + " (re-run)" if run.get("rerun_of") else words


def pr_number(run: RunRecord) -> int | None:
    pr = run.get("pull_request")
    if isinstance(pr, dict):
        pr = pr.get("number")
    return pr if isinstance(pr, int) and not isinstance(pr, bool) else None


def duration_seconds(run: RunRecord, now: float | None = None) -> float | None:
    started = run.get("started_at") or None
    if not started:
        return None
    finished = run.get("finished_at") or (now or time.time())
    return max(0.0, float(finished) - float(started))


def format_duration(seconds: float | None) -> str:
    """The same words as the commit statuses use, with a dash for "not known"."""
    return status_duration(seconds) if seconds is not None and seconds >= 0 else "-"


def github_links(run: RunRecord, web_url: str) -> dict[str, str]:
    """Links to the repository, commit, branch or tag and PR on GitHub (quoted: names may hold anything)."""
    repo = str(run.get("repository") or "")
    if repo.count("/") != 1:
        return {}
    base = f"{web_url.rstrip('/')}/{quote(repo, safe='/')}"
    links = {"repository": base}
    if run.get("sha"):
        links["commit"] = f"{base}/commit/{quote(str(run['sha']), safe='')}"
    pr = pr_number(run)
    if pr is not None:
        links["pull_request"] = f"{base}/pull/{pr}"
    elif run.get("tag"):
        links["ref"] = f"{base}/releases/tag/{quote(str(run['tag']), safe='')}"
    elif run.get("branch"):
        links["ref"] = f"{base}/tree/{quote(str(run['branch']), safe='/')}"
    return links


def run_summary(run: RunRecord, web_url: str, now: float | None = None) -> dict[str, Any]:
    """The fields the runs list and the run header show, computed once (JSON API and templates alike)."""
    seconds = duration_seconds(run, now)
    message = str(run.get("message") or "")[:MAX_MESSAGE]
    return {
        "run_id": run.get("run_id"),
        "repository": run.get("repository"),
        "branch": run.get("branch"),
        "tag": run.get("tag"),
        "pull_request": pr_number(run),
        "ref": run.get("ref"),
        "sha": run.get("sha"),
        "short_sha": str(run.get("sha") or "")[:7],
        "message": message,
        "title": message.splitlines()[0][:200] if message else "",
        "author": run.get("author"),
        "event": run.get("event"),
        "trigger": trigger_of(run),
        "pipeline": run.get("pipeline"),
        "status": run.get("status"),
        "status_reason": run.get("status_reason"),
        # the runs this one is tied to, for links: the newer run that superseded it, the run it re-runs
        "superseded_by": run.get("superseded_by"),
        "rerun_of": run.get("rerun_of"),
        "pipeline_warnings": list(run.get("pipeline_warnings") or []),
        "look": status_look(run.get("status")),
        "active": run.get("status") in OPEN_STATUSES,
        "created_at": run.get("created_at"),
        "started_at": run.get("started_at"),
        "finished_at": run.get("finished_at"),
        "duration_seconds": seconds,
        "duration": format_duration(seconds),
        "execution_arn": run.get("execution_arn"),
        "links": github_links(run, web_url),
    }
