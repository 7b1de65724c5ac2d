"""The fake GitHub's Checks API and collaborator permissions, shaped and validated as GitHub's REST docs show them.

Create a check run (POST /repos/{o}/{r}/check-runs), update it (PATCH …/check-runs/{id}: a conclusion
completes it; annotations add up, at most 50 a request), get it, list its annotations and a commit's check
runs; and GET /repos/{o}/{r}/collaborators/{login}/permission. Each check run also keeps the history of its
(status, conclusion), so tests can tell that none went back or stayed open.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.harness.fake_github import FakeGitHub, RecordedRequest


@dataclass
class ChecksState:
    """Check runs by id (GitHub's object, plus `_repo`), their (status, conclusion) history and annotations."""

    runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    history: dict[int, list[tuple[str, str | None]]] = field(default_factory=dict)
    annotations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    permissions: dict[tuple[str, str], str] = field(default_factory=dict)  # (repo, login) -> admin/write/read


class FakeChecks:
    """Seeding and inspection, as `fake_github.checks`."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake

    def runs(self, full_name: str, sha: str) -> dict[str, dict[str, Any]]:
        """The newest check run of each name on that commit (what a pull request shows)."""
        return {r["name"]: r for r in sorted(self.all_runs(full_name, sha), key=lambda r: r["id"])}

    def all_runs(self, full_name: str, sha: str) -> list[dict[str, Any]]:
        with self.fake.lock:
            found = self.fake.state.checks.runs.values()
            return [dict(r) for r in found if r["head_sha"] == sha and r["_repo"] == full_name]

    def history(self, check_run_id: int) -> list[tuple[str, str | None]]:
        with self.fake.lock:
            return list(self.fake.state.checks.history.get(check_run_id, []))

    def annotations(self, check_run_id: int) -> list[dict[str, Any]]:
        with self.fake.lock:
            return list(self.fake.state.checks.annotations.get(check_run_id, []))

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        with self.fake.lock:
            self.fake.state.checks.permissions[(full_name, login)] = permission


CHECK_STATUSES = {"queued", "in_progress", "completed"}
CONCLUSIONS = {
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
}
ANNOTATION_LEVELS = {"notice", "warning", "failure"}


def _invalid(field_name: str, code: str = "invalid") -> tuple[int, dict[str, str], Any]:
    return (
        422,
        {},
        {
            "message": "Validation Failed",
            "errors": [{"resource": "CheckRun", "field": field_name, "code": code}],
        },
    )


def _check_problem(body: dict[str, Any], creating: bool) -> tuple[int, dict[str, str], Any] | None:
    """GitHub's validation of a check run create or update (docs: "Create a check run", "Update a check run")."""
    if creating and (not isinstance(body.get("name"), str) or not isinstance(body.get("head_sha"), str)):
        return _invalid("name" if not isinstance(body.get("name"), str) else "head_sha", "missing_field")
    if "status" in body and body["status"] not in CHECK_STATUSES:
        return _invalid("status")
    if "conclusion" in body and body["conclusion"] not in CONCLUSIONS:
        return _invalid("conclusion")
    if body.get("status") == "completed" and "conclusion" not in body:
        return _invalid("conclusion", "missing_field")
    if body.get("conclusion") == "action_required" and not body.get("details_url"):
        return _invalid("details_url", "missing_field")
    output = body.get("output")
    if output is not None:
        if (
            not isinstance(output, dict)
            or not isinstance(output.get("title"), str)
            or not isinstance(output.get("summary"), str)
        ):
            return _invalid("output", "missing_field")
        if len(output["summary"]) > 65535:
            return _invalid("output.summary", "too_long")
        annotations = output.get("annotations") or []
        if len(annotations) > 50:
            return _invalid("output.annotations", "too_many")
        for item in annotations:
            if not all(
                key in item for key in ("path", "start_line", "end_line", "annotation_level", "message")
            ):
                return _invalid("output.annotations", "missing_field")
            if item["annotation_level"] not in ANNOTATION_LEVELS:
                return _invalid("output.annotations.annotation_level")
    actions = body.get("actions") or []
    if len(actions) > 3 or any(
        len(a.get("label", "")) > 20
        or len(a.get("description", "")) > 40
        or len(a.get("identifier", "")) > 20
        for a in actions
    ):
        return _invalid("actions")
    return None


def create_check_run(fake: FakeGitHub, request: RecordedRequest, owner: str, repo: str):
    body = request.body if isinstance(request.body, dict) else {}
    if f"{owner}/{repo}" not in fake.state.repos:
        return 404, {}, {"message": "Not Found"}
    problem = _check_problem(body, creating=True)
    if problem is not None:
        return problem
    check_id = next(fake._ids)
    base = f"{fake.base_for(request)}/repos/{owner}/{repo}"
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run: dict[str, Any] = {
        "id": check_id, "node_id": f"CR_{check_id}", "head_sha": body["head_sha"], "name": body["name"],
        "external_id": body.get("external_id", ""), "url": f"{base}/check-runs/{check_id}",
        "html_url": f"https://github.example/{owner}/{repo}/runs/{check_id}", "details_url": body.get("details_url"),
        "status": "queued", "conclusion": None, "started_at": now, "completed_at": None,
        "output": {"title": None, "summary": None, "text": None, "annotations_count": 0,
                   "annotations_url": f"{base}/check-runs/{check_id}/annotations"},
        "check_suite": {"id": 1}, "app": {"id": 1, "slug": "stepline"}, "pull_requests": [], "actions": [],
        "_repo": f"{owner}/{repo}",
    }  # fmt: skip
    with fake.lock:
        fake.state.checks.runs[check_id] = run
        fake.state.checks.annotations[check_id] = []
        fake.state.checks.history[check_id] = []
    return 201, {}, _apply_check(fake, run, body)


def update_check_run(fake: FakeGitHub, request: RecordedRequest, owner: str, repo: str, check_id: str):
    body = request.body if isinstance(request.body, dict) else {}
    run = fake.state.checks.runs.get(int(check_id))
    if run is None or run["_repo"] != f"{owner}/{repo}":
        return 404, {}, {"message": "Not Found"}
    problem = _check_problem(body, creating=False)
    if problem is not None:
        return problem
    return 200, {}, _apply_check(fake, run, body)


def _apply_check(fake: FakeGitHub, run: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    with fake.lock:
        for key in ("name", "details_url", "external_id", "started_at", "completed_at", "actions"):
            if key in body:
                run[key] = body[key]
        if "conclusion" in body:  # "Providing conclusion will automatically set the status to completed"
            run["conclusion"], run["status"] = body["conclusion"], "completed"
        elif "status" in body:
            run["status"] = body["status"]
            if body["status"] != "completed":
                run["conclusion"] = None
        output = body.get("output")
        if isinstance(output, dict):
            run["output"] = {
                **run["output"],
                "title": output["title"],
                "summary": output["summary"],
                "text": output.get("text"),
            }
            fake.state.checks.annotations[run["id"]] += list(output.get("annotations") or [])
            run["output"]["annotations_count"] = len(fake.state.checks.annotations[run["id"]])
        fake.state.checks.history[run["id"]].append((run["status"], run["conclusion"]))
        return {k: v for k, v in run.items() if not k.startswith("_")}


def get_check_run(fake: FakeGitHub, request: RecordedRequest, owner: str, repo: str, check_id: str):
    run = fake.state.checks.runs.get(int(check_id))
    if run is None or run["_repo"] != f"{owner}/{repo}":
        return 404, {}, {"message": "Not Found"}
    return 200, {}, {k: v for k, v in run.items() if not k.startswith("_")}


def list_check_annotations(fake: FakeGitHub, request: RecordedRequest, owner: str, repo: str, check_id: str):
    return 200, {}, fake.checks.annotations(int(check_id))


def list_check_runs_for_ref(fake: FakeGitHub, request: RecordedRequest, owner: str, repo: str, sha: str):
    runs = [
        {k: v for k, v in r.items() if not k.startswith("_")}
        for r in fake.checks.all_runs(f"{owner}/{repo}", sha)
    ]
    return 200, {}, {"total_count": len(runs), "check_runs": runs}


def get_permission(fake: FakeGitHub, request: RecordedRequest, owner: str, repo: str, login: str):
    permission = fake.state.checks.permissions.get((f"{owner}/{repo}", login), "read")
    user = {"login": login, "id": 1, "type": "User"}
    return 200, {}, {"permission": permission, "role_name": permission, "user": user}


REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
CHECK_ROUTES: list[tuple[str, re.Pattern[str], Callable[..., tuple[int, dict[str, str], Any]]]] = [
    ("POST", re.compile(REPO + r"/check-runs"), create_check_run),
    ("PATCH", re.compile(REPO + r"/check-runs/(?P<check_id>\d+)"), update_check_run),
    ("GET", re.compile(REPO + r"/check-runs/(?P<check_id>\d+)"), get_check_run),
    ("GET", re.compile(REPO + r"/check-runs/(?P<check_id>\d+)/annotations"), list_check_annotations),
    ("GET", re.compile(REPO + r"/commits/(?P<sha>[^/]+)/check-runs"), list_check_runs_for_ref),
    ("GET", re.compile(REPO + r"/collaborators/(?P<login>[^/]+)/permission"), get_permission),
]
