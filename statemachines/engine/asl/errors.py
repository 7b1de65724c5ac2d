"""Errors of the ASL interpreter: definition problems and runtime errors named as AWS names them."""

from __future__ import annotations

from dataclasses import dataclass, field


class EngineError(Exception):
    """Base class of every error raised by the local engine's pure core."""


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a definition, shaped like ValidateStateMachineDefinition's diagnostics."""

    code: str  # e.g. SCHEMA_VALIDATION_FAILED, MISSING_TRANSITION_TARGET
    message: str
    location: str  # JSON path of the offending field, e.g. /States/Build/Next
    severity: str = "ERROR"  # ERROR or WARNING


@dataclass
class InvalidDefinitionError(EngineError):
    """Raised when a state machine definition cannot be parsed or fails validation."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{d.code}: {d.message} at {d.location}" for d in self.diagnostics)


class StatesError(EngineError):
    """Raised when a state fails at run time with an ASL error name (States.Runtime, a task's own error, ...).

    `name` is what Retry/Catch `ErrorEquals` matches; `cause` is the human text AWS puts beside it.
    """

    def __init__(self, name: str, cause: str | None = None) -> None:
        super().__init__(f"{name}: {cause}" if cause else name)
        self.name = name
        self.cause = cause
