"""Reading a state machine definition: JSON or YAML text to a validated dict, and AWS's error text."""

from __future__ import annotations

from typing import Any

import yaml

from statemachines import nesting

from .errors import Diagnostic, InvalidDefinitionError
from .validation import validate_definition


def _reject_constant(name: str) -> Any:
    raise ValueError(f"Non-standard token '{name}'")


def _load_yaml(text: str) -> Any:
    # deviation: AWS takes JSON only; our YAML has no aliases (a few lines of them expand to gigabytes)
    try:
        return nesting.load_yaml(text)
    except nesting.TooDeep:
        raise _too_deep() from None
    except nesting.YamlAliasRefused as exc:
        raise InvalidDefinitionError([Diagnostic("INVALID_JSON_DESCRIPTION", str(exc), "/")]) from None
    except yaml.YAMLError:
        return None


def _too_deep() -> InvalidDefinitionError:
    message = f"The definition is nested more than {nesting.MAX_DEPTH} levels deep"
    return InvalidDefinitionError([Diagnostic("TOO_DEEPLY_NESTED", message, "/")])


def parse_definition(text: str) -> dict[str, Any]:
    """The definition as a dict; JSON first, then YAML (a superset AWS tooling accepts)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidDefinitionError([Diagnostic("MISSING_DESCRIPTION", "Received an empty definition", "/")])
    try:
        doc = nesting.loads(text, parse_constant=_reject_constant)
    except nesting.TooDeep:
        raise _too_deep() from None
    except ValueError as json_error:
        # Text that looks like JSON gets JSON's error; anything else may be a YAML mapping.
        doc = None if text.lstrip()[:1] in ("{", "[") else _load_yaml(text)
        if not isinstance(doc, dict):
            raise InvalidDefinitionError(
                [Diagnostic("INVALID_JSON_DESCRIPTION", str(json_error), "/")]
            ) from None
    if not isinstance(doc, dict):
        raise InvalidDefinitionError(
            [Diagnostic("INVALID_JSON_DESCRIPTION", "The definition must be a JSON object", "/")]
        )
    return doc


def load_definition(text: str, machine_type: str = "STANDARD") -> dict[str, Any]:
    """Parse and validate; raises InvalidDefinitionError carrying every error diagnostic."""
    doc = parse_definition(text)
    errors = [d for d in validate_definition(doc, machine_type) if d.severity == "ERROR"]
    if errors:
        raise InvalidDefinitionError(errors)
    return doc


def format_definition_error(diagnostics: list[Diagnostic]) -> str:
    """CreateStateMachine's InvalidDefinition message, e.g.
    "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: ... at /States/X'"."""
    parts = [f"{d.code}: {d.message} at {d.location}" for d in diagnostics if d.severity == "ERROR"]
    return f"Invalid State Machine Definition: '{', '.join(parts)}'"
