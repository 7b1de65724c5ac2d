"""Command line: start a manual run through Stepline's API (`POST /api/runs`), as the dashboard's New run does.

    python -m service.run_client octo/app main [--input environment=production ...] [--branch B]
                                 [--url https://stepline.example] [--token TOKEN]

REF is a branch, `refs/tags/<t>`, a sha (with `--branch`: the branch it must be on to be trusted) or
`refs/pull/<n>/head`. It signs in with the admin token (`--token`, else STEPLINE_ADMIN_TOKEN) and prints
the run as JSON. Exit status: 0 started, 1 refused (the reason is printed), 2 usage, 3 Stepline unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import requests

from service.config import DevelopmentDefaults


def parse_args(argv: list[str], defaults: DevelopmentDefaults) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m service.run_client", description=__doc__.splitlines()[0])
    parser.add_argument("repository", help="owner/name")
    parser.add_argument("ref", help="branch, refs/tags/<t>, a sha or refs/pull/<n>/head")
    parser.add_argument(
        "--input", "-i", action="append", default=[], metavar="NAME=VALUE", help="an input value"
    )
    parser.add_argument("--branch", help="with a sha: the branch it must be on")
    parser.add_argument(
        "--url", default=defaults.web_url, help=f"Stepline's address (default {defaults.web_url})"
    )
    parser.add_argument(
        "--token", default=defaults.admin_token, help="admin token (default STEPLINE_ADMIN_TOKEN)"
    )
    return parser.parse_args(argv)


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    inputs = {}
    for item in args.input:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--input {item!r}: write NAME=VALUE")
        inputs[name] = value
    body: dict[str, Any] = {"repository": args.repository, "ref": args.ref, "inputs": inputs}
    if args.branch:
        body["branch"] = args.branch
    return body


def start(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer) of POST /api/runs."""
    response = requests.post(
        url.rstrip("/") + "/api/runs", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    try:
        answer = response.json()
    except ValueError:
        answer = {"error": response.text[:500]}
    return response.status_code, answer if isinstance(answer, dict) else {"error": answer}


def main(argv: list[str]) -> int:
    args = parse_args(argv, DevelopmentDefaults.from_env())
    if not args.token:
        print("no token: pass --token or set STEPLINE_ADMIN_TOKEN", file=sys.stderr)
        return 2
    if not args.url.startswith(("http://", "https://")):
        print(f"--url {args.url!r}: an http:// or https:// address", file=sys.stderr)
        return 2
    try:
        status, answer = start(args.url, args.token, request_body(args))
    except requests.RequestException as exc:
        print(f"Stepline at {args.url} is unreachable: {exc}", file=sys.stderr)
        return 3
    if status != 201:
        print(f"refused ({status}): {answer.get('error') or answer}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
