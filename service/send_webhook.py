"""Development command: send Stepline a correctly signed push webhook for a local git repository.

    python -m service.send_webhook [--repo PATH] [--branch NAME] [--url http://127.0.0.1:8080]

The web process must run with STEPLINE_ALLOW_LOCAL_REPOSITORIES=true (file:// clone URLs); the
secret is GITHUB_WEBHOOK_SECRET or, as `make run` keeps it, data/webhook-secret.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from service.config import DevelopmentDefaults
from service.signatures import sign_body

ZERO_SHA = "0" * 40


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed in {repo}: {result.stderr.strip()}")
    return result.stdout.strip()


def push_payload(repo: Path, branch: str, full_name: str) -> dict[str, Any]:
    """A push event for the tip of `branch`, shaped as GitHub sends it."""
    sha = git(repo, "rev-parse", f"refs/heads/{branch}^{{commit}}")
    parents = git(repo, "rev-list", "--parents", "-n", "1", sha).split()[1:]
    head = {
        "id": sha,
        "message": git(repo, "log", "-1", "--format=%B", sha),
        "author": {
            "name": git(repo, "log", "-1", "--format=%an", sha),
            "email": git(repo, "log", "-1", "--format=%ae", sha),
        },
    }
    return {
        "ref": f"refs/heads/{branch}", "before": parents[0] if parents else ZERO_SHA, "after": sha,
        "created": False, "deleted": False, "forced": False, "head_commit": head, "commits": [head],
        "repository": {"full_name": full_name, "name": full_name.split("/")[-1], "private": True,
                       "clone_url": repo.resolve().as_uri()},
    }  # fmt: skip


def send(url: str, secret: str, body: bytes) -> tuple[int, str]:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "local",
        "User-Agent": "Stepline-send-webhook",
    }
    if secret:
        headers["X-Hub-Signature-256"] = sign_body(secret, body)
    target = url.rstrip("/") + "/webhooks/github"
    request = urllib.request.Request(target, data=body, headers=headers, method="POST")  # noqa: S310 - the developer's URL
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the developer's URL
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SystemExit(
            f"cannot reach Stepline at {target}: {reason} (is `make run` running? --url sets the address)"
        ) from None


def settings() -> tuple[str, str]:
    """(secret, web URL) as `make run` sets them: PORT and GITHUB_WEBHOOK_SECRET, when given."""
    defaults = DevelopmentDefaults.from_env()
    return defaults.webhook_secret, defaults.web_url


def run(argv: list[str] | None = None) -> int:
    secret, url = settings()
    parser = argparse.ArgumentParser(
        prog="python -m service.send_webhook", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repo", type=Path, default=Path("."), help="the local git repository (default: .)")
    parser.add_argument("--branch", help="the branch to build (default: the checked-out one)")
    parser.add_argument("--repository", help="owner/name to report as (default: local/<directory name>)")
    parser.add_argument("--url", default=url, help=f"Stepline's web address (default: {url})")
    parser.add_argument("--secret-file", type=Path, default=Path("data/webhook-secret"))
    args = parser.parse_args(argv)
    if not secret and args.secret_file.is_file():
        secret = args.secret_file.read_text().strip()
    branch = args.branch or git(args.repo, "rev-parse", "--abbrev-ref", "HEAD")
    full_name = args.repository or "local/" + (
        re.sub(r"[^A-Za-z0-9_.-]", "-", args.repo.resolve().name) or "repo"
    )
    body = json.dumps(push_payload(args.repo, branch, full_name)).encode()
    status, answer = send(args.url, secret, body)
    print(f"{status} {answer.strip()}")
    return 0 if status < 300 else 1


if __name__ == "__main__":
    sys.exit(run())
