"""A fake of GitHub's REST API at its HTTP boundary: what PyGithub calls to post and read commit statuses
(and check runs: tests/harness/fake_checks.py).

A real HTTP server on loopback (not a mock object). It records every request in order and can be told
to fail the next N requests with a 502 or with a rate-limit answer, as GitHub does.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.harness.fake_checks import CHECK_ROUTES, ChecksState, FakeChecks
from tests.harness.ports import free_port

API_PREFIX = "/api/v3"  # GitHub Enterprise serves the same API under this prefix


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Failure:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeGitHubState:
    """Everything the fake knows; tests seed it and read it back."""

    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    contents: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # (repo, ref, path) -> bytes
    statuses: dict[tuple[str, str], list[dict[str, Any]]] = field(
        default_factory=dict
    )  # (repo, sha) -> newest last
    requests: list[RecordedRequest] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    lost: list[list[Any]] = field(default_factory=list)  # [method, path part, skip]: served, answer lost
    installation_tokens: list[str] = field(default_factory=list)
    installations: dict[str, int] = field(default_factory=dict)  # repository -> the App installation on it
    checks: ChecksState = field(default_factory=ChecksState)
    refs: dict[tuple[str, str], str] = field(default_factory=dict)  # (repo, "heads/main") -> sha
    history: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (repo, branch) -> its shas
    pulls: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (repo, number) -> PR


class FakeGitHub:
    """The server; `url` is the API base URL to give PyGithub (or `enterprise_url` for the /api/v3 prefix)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.state = FakeGitHubState()
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.checks = FakeChecks(self)
        handler = type("Handler", (_Handler,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def enterprise_url(self) -> str:
        return self.url + API_PREFIX

    def start(self) -> FakeGitHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.state = FakeGitHubState()

    # --- seeding and inspection -------------------------------------------------------------

    def add_repo(self, full_name: str, private: bool = False, clone_url: str | None = None) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        repo = {
            "id": next(self._ids),
            "name": name,
            "full_name": full_name,
            "owner": {"login": owner, "id": next(self._ids), "type": "User"},
            "private": private,
            "default_branch": "main",
            "clone_url": clone_url or f"https://github.example/{full_name}.git",
        }
        with self.lock:
            self.state.repos[full_name] = repo
        return repo

    def add_file(self, full_name: str, ref: str, path: str, content: bytes | str) -> None:
        data = content.encode() if isinstance(content, str) else content
        with self.lock:
            self.state.contents[(full_name, ref, path)] = data

    def add_ref(self, full_name: str, ref: str, sha: str, history: tuple[str, ...] = ()) -> None:
        """A branch (`heads/<b>`) or tag (`tags/<t>`) at `sha`; a branch's `history` holds its older commits."""
        with self.lock:
            self.state.refs[(full_name, ref)] = sha
            if ref.startswith("heads/"):
                self.state.history[(full_name, ref.removeprefix("heads/"))] = [sha, *history]

    def add_pull(self, full_name: str, number: int, head_sha: str, head_repo: str, head_ref: str) -> None:
        """Pull request `number` of `full_name` from `head_repo`'s branch `head_ref` (a fork when not the same)."""
        head = self.state.repos.get(head_repo) or {"full_name": head_repo, "name": head_repo.split("/")[-1]}
        pull = {
            "number": number, "state": "open", "title": f"PR {number}", "draft": False,
            "user": {"login": head_repo.split("/")[0], "id": 1}, "author_association": "CONTRIBUTOR",
            "head": {"sha": head_sha, "ref": head_ref, "repo": head}, "base": {"ref": "main", "sha": head_sha},
        }  # fmt: skip
        with self.lock:
            self.state.pulls[(full_name, number)] = pull

    def statuses(self, full_name: str, sha: str) -> list[dict[str, Any]]:
        """Every status posted for that commit, oldest first."""
        with self.lock:
            return list(self.state.statuses.get((full_name, sha), []))

    def latest_statuses(self, full_name: str, sha: str) -> dict[str, dict[str, Any]]:
        """The newest status per context, as GitHub's combined status shows them."""
        return {s["context"]: s for s in self.statuses(full_name, sha)}

    def requests(self, method: str | None = None, path_contains: str = "") -> list[RecordedRequest]:
        with self.lock:
            found = list(self.state.requests)
        return [r for r in found if (method is None or r.method == method) and path_contains in r.path]

    def fail_next(self, count: int = 1, status: int = 502) -> None:
        """The next `count` requests answer `status` (e.g. 502 Bad Gateway) instead of being served."""
        with self.lock:
            self.state.failures += [Failure(status, {}, {"message": "Server Error"})] * count

    def lose_next_answer(self, method: str, path_contains: str, skip: int = 0) -> None:
        """The next such request after `skip` of them is served, then answered 502 (a proxy lost the answer)."""
        with self.lock:
            self.state.lost.append([method, path_contains, skip])

    def rate_limit_next(self, count: int = 1, status: int = 403, retry_after: int = 1) -> None:
        """The next `count` requests answer a secondary rate limit, with Retry-After as GitHub sends."""
        reset = int((datetime.now(UTC) + timedelta(seconds=retry_after)).timestamp())
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        }
        body = {
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        }
        with self.lock:
            self.state.failures += [Failure(status, headers, body)] * count

    # --- the API ----------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.state.requests.append(request)
            if self.state.failures:
                failure = self.state.failures.pop(0)
                return failure.status, failure.headers, failure.body
        path = request.path.removeprefix(API_PREFIX)
        for method, pattern, route in ROUTES:
            match = pattern.fullmatch(path)
            if match and method == request.method:
                answer = route(self, request, **match.groupdict())
                with self.lock:
                    lost = next((x for x in self.state.lost if x[0] == method and x[1] in path), None)
                    if lost is not None and lost[2] > 0:
                        lost[2] -= 1
                    elif lost is not None:
                        self.state.lost.remove(lost)
                        return 502, {}, {"message": "Server Error"}
                return answer
        return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}

    def base_for(self, request: RecordedRequest) -> str:
        return self.url + (API_PREFIX if request.path.startswith(API_PREFIX) else "")

    def get_repo(self, request: RecordedRequest, owner: str, repo: str):
        # as GitHub: any case finds the repository, which answers with its own name and URL
        wanted = f"{owner}/{repo}".lower()
        found = next((r for name, r in self.state.repos.items() if name.lower() == wanted), None)
        if found is None:
            return 404, {}, {"message": "Not Found"}
        return 200, {}, {**found, "url": f"{self.base_for(request)}/repos/{found['full_name']}"}

    def get_commit(self, request: RecordedRequest, owner: str, repo: str, sha: str):
        if f"{owner}/{repo}" not in self.state.repos:
            return 404, {}, {"message": "Not Found"}
        url = f"{self.base_for(request)}/repos/{owner}/{repo}/commits/{sha}"
        return 200, {}, {"sha": sha, "url": url, "commit": {"message": "", "url": url}, "files": []}

    def get_named_commit(self, request: RecordedRequest, owner: str, repo: str, kind: str, name: str):
        name = unquote(name)
        sha = self.state.refs.get((f"{owner}/{repo}", f"{kind}/{name}"))
        if sha is None:
            return 422, {}, {"message": f"No commit found for SHA: {kind}/{name}"}
        return self.get_commit(request, owner, repo, sha)

    def get_pull(self, request: RecordedRequest, owner: str, repo: str, number: str):
        pull = self.state.pulls.get((f"{owner}/{repo}", int(number)))
        if pull is None:
            return 404, {}, {"message": "Not Found"}
        return 200, {}, {**pull, "url": f"{self.base_for(request)}/repos/{owner}/{repo}/pulls/{number}"}

    def compare(self, request: RecordedRequest, owner: str, repo: str, base: str, head: str):
        history = self.state.history.get((f"{owner}/{repo}", base))
        if history is None:
            return 404, {}, {"message": "Not Found"}
        status = "identical" if history[0] == head else "behind" if head in history else "diverged"
        return (
            200,
            {},
            {"status": status, "ahead_by": 0, "behind_by": 0, "total_commits": 0, "commits": [], "files": []},
        )

    def create_status(self, request: RecordedRequest, owner: str, repo: str, sha: str):
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("state") not in {"error", "failure", "pending", "success"}:
            return (
                422,
                {},
                {"message": "Validation Failed", "errors": [{"field": "state", "code": "invalid"}]},
            )
        if len(body.get("description") or "") > 140:
            return (
                422,
                {},
                {"message": "Validation Failed", "errors": [{"field": "description", "code": "custom"}]},
            )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status_id = next(self._ids)
        status = {
            "id": status_id,
            "url": f"{self.base_for(request)}/repos/{owner}/{repo}/statuses/{sha}",
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context") or "default",
            "created_at": now,
            "updated_at": now,
        }
        with self.lock:
            self.state.statuses.setdefault((f"{owner}/{repo}", sha), []).append(status)
        return 201, {}, status

    def list_statuses(self, request: RecordedRequest, owner: str, repo: str, sha: str):
        return 200, {}, list(reversed(self.statuses(f"{owner}/{repo}", sha)))

    def combined_status(self, request: RecordedRequest, owner: str, repo: str, sha: str):
        latest = list(self.latest_statuses(f"{owner}/{repo}", sha).values())
        states = {s["state"] for s in latest}
        overall = (
            "failure"
            if states & {"failure", "error"}
            else "pending"
            if "pending" in states or not latest
            else "success"
        )
        return 200, {}, {"state": overall, "sha": sha, "total_count": len(latest), "statuses": latest}

    def get_contents(self, request: RecordedRequest, owner: str, repo: str, path: str):
        ref = (request.query.get("ref") or ["main"])[0]
        data = self.state.contents.get((f"{owner}/{repo}", ref, path))
        known = self.state.repos.get(f"{owner}/{repo}")
        # as GitHub does: a private repository is "Not Found" to anyone without credentials
        if known and known.get("private") and not request.headers.get("authorization"):
            return 404, {}, {"message": "Not Found"}
        if data is None:
            return 404, {}, {"message": "Not Found"}
        return (
            200,
            {},
            {
                "type": "file",
                "encoding": "base64",
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "size": len(data),
                "sha": hashlib.sha1(data).hexdigest(),  # noqa: S324 - git's blob naming, not security
                "content": base64.b64encode(data).decode(),
                "url": f"{self.base_for(request)}/repos/{owner}/{repo}/contents/{path}?ref={ref}",
            },
        )

    def set_installation(self, full_name: str, installation_id: int) -> None:
        with self.lock:
            self.state.installations[full_name] = installation_id

    def get_repo_installation(self, request: RecordedRequest, owner: str, repo: str):
        if not request.headers.get("authorization", "").lower().startswith("bearer "):
            return 401, {}, {"message": "A JSON web token could not be decoded"}
        found = self.state.installations.get(f"{owner}/{repo}")
        if found is None:
            return 404, {}, {"message": "Not Found"}
        return 200, {}, {"id": found, "account": {"login": owner}, "app_id": 1, "target_type": "Organization"}

    def create_installation_token(self, request: RecordedRequest, installation_id: str):
        if not request.headers.get("authorization", "").lower().startswith("bearer "):
            return 401, {}, {"message": "A JSON web token could not be decoded"}
        token = f"ghs_fake{next(self._ids):08d}"
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.lock:
            self.state.installation_tokens.append(token)
        return 201, {}, {"token": token, "expires_at": expires, "permissions": {"statuses": "write"}}


REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], Callable[..., tuple[int, dict[str, str], Any]]]] = [
    # PyGithub sends `heads/main` URL-encoded (heads%2Fmain), as GitHub accepts it
    (
        "GET",
        re.compile(REPO + r"/commits/(?P<kind>heads|tags)(?:/|%2F)(?P<name>.+)"),
        FakeGitHub.get_named_commit,
    ),
    ("GET", re.compile(REPO + r"/pulls/(?P<number>\d+)"), FakeGitHub.get_pull),
    ("GET", re.compile(REPO + r"/compare/(?P<base>.+?)\.\.\.(?P<head>.+)"), FakeGitHub.compare),
    ("GET", re.compile(REPO), FakeGitHub.get_repo),
    ("GET", re.compile(REPO + r"/installation"), FakeGitHub.get_repo_installation),
    ("GET", re.compile(REPO + r"/commits/(?P<sha>[^/]+)"), FakeGitHub.get_commit),
    ("POST", re.compile(REPO + r"/statuses/(?P<sha>[^/]+)"), FakeGitHub.create_status),
    ("GET", re.compile(REPO + r"/commits/(?P<sha>[^/]+)/statuses"), FakeGitHub.list_statuses),
    ("GET", re.compile(REPO + r"/statuses/(?P<sha>[^/]+)"), FakeGitHub.list_statuses),
    ("GET", re.compile(REPO + r"/commits/(?P<sha>[^/]+)/status"), FakeGitHub.combined_status),
    ("GET", re.compile(REPO + r"/contents/(?P<path>.+)"), FakeGitHub.get_contents),
    (
        "POST",
        re.compile(r"/app/installations/(?P<installation_id>\d+)/access_tokens"),
        FakeGitHub.create_installation_token,
    ),
]
ROUTES += CHECK_ROUTES


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not access logs
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = RecordedRequest(self.command, parts.path, parse_qs(parts.query), headers, body)
        status, extra, payload = self.fake.handle(request)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-RateLimit-Limit", "5000")
        for key, value in extra.items():
            self.send_header(key, value)
        if "X-RateLimit-Remaining" not in extra:
            self.send_header("X-RateLimit-Remaining", "4999")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve
