"""Run inputs: the fields a pipeline declares in its top-level `Comment`, with defaults, as `$.inputs`.

    "Comment": "Deploy. inputs: environment=staging, version=latest, dry_run=false"

declares three inputs. A manual run (dashboard form, `POST /api/runs`, `python -m service.manual_run`) or a
schedule may give values; every run of a pipeline that declares inputs gets all of them in its execution
input (`$.inputs.environment`), a push or pull request run the defaults. The Comment, as for concurrency
groups (service/concurrency.py), because AWS accepts no other top-level field and keeps the Comment as
written, so it works the same on AWS. A default runs to the next comma, space or `;` (it may be empty).
"""

from __future__ import annotations

import re
from typing import Any

from service.errors import RunRequestError

NAME = r"[A-Za-z_][A-Za-z0-9_]{0,39}"
PAIR = rf"{NAME}=[^\s,;]{{0,200}}"
DECLARATION = re.compile(rf"\binputs:\s*(?P<pairs>{PAIR}(?:\s*,\s*{PAIR})*)", re.IGNORECASE)
MAX_INPUTS = 20
MAX_VALUE = 500
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def declared_inputs(definition: dict[str, Any]) -> dict[str, str]:
    """name -> default of the inputs a pipeline's Comment declares ({} when it declares none)."""
    comment = definition.get("Comment")
    match = DECLARATION.search(comment) if isinstance(comment, str) else None
    if match is None:
        return {}
    inputs: dict[str, str] = {}
    for pair in re.split(r"\s*,\s*", match["pairs"])[:MAX_INPUTS]:
        name, _, default = pair.partition("=")
        inputs.setdefault(name, default)
    return inputs


def check_inputs(given: Any, declared: dict[str, str]) -> dict[str, str]:
    """The given values, checked against what the pipeline declares; RunRequestError (400) names the problem."""
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise RunRequestError("inputs", "must be an object of names to strings")
    checked = {}
    for name, value in given.items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise RunRequestError(
                f"inputs.{str(name)[:40]}", f"the pipeline declares no such input (it declares: {known})"
            )
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        if not isinstance(value, str) or len(value) > MAX_VALUE or CONTROL.search(value):
            raise RunRequestError(
                f"inputs.{name}", f"must be text of at most {MAX_VALUE} characters, one line"
            )
        checked[name] = value
    return checked


def fill_inputs(execution_input: dict[str, Any], declared: dict[str, str], given: Any) -> dict[str, Any]:
    """The execution input with `inputs` (defaults, then the run's own values) when the pipeline declares any."""
    if not declared:
        return execution_input
    # a re-run copies the execution input, not the record's inputs: keep the values it ran with
    given = given or execution_input.get("inputs") or {}
    values = {name: value for name, value in given.items() if name in declared}
    return {**execution_input, "inputs": {**declared, **values}}
