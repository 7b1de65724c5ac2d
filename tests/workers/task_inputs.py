"""Build-step task inputs as pipelines produce them (Parameters with "run.$": "$$.Execution.Input")."""

from __future__ import annotations

import json
from typing import Any

SHA = "0123456789abcdef0123456789abcdef01234567"


def execution_input(**fields: Any) -> dict[str, Any]:
    """A normalised push event, as PIPELINES.md documents it."""
    run = {
        "run_id": "run-1",
        "delivery_id": "d-1",
        "event": "push",
        "repository": "octo/app",
        "clone_url": "https://github.com/octo/app.git",
        "private": False,
        "ref": "refs/heads/main",
        "branch": "main",
        "tag": None,
        "sha": SHA,
        "before": "0" * 40,
        "pull_request": None,
        "fork": False,
        "trusted": True,
        "message": "Fix the widget",
        "author": "Ada",
    }
    return run | fields


def task_input(
    step: str = "test", commands: list[str] | None = None, run: dict[str, Any] | None = None, **params: Any
) -> str:
    data = {"step": step, "commands": commands or ["true"], "run": execution_input(**(run or {}))}
    return json.dumps(data | params)
