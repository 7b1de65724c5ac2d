"""Commit-status contexts: their names, descriptions and dashboard links, and the order of updates."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import quote

from service.run_record import RunRecord
from statemachines.outcomes import OUTCOMES

MAX_DESCRIPTION = 140  # GitHub answers 422 to a longer description
STATES = ("pending", "success", "failure", "error")
TERMINAL_STATES = ("success", "failure", "error")

# Phases of a run, in the order their updates may replace each other (see `order_key`).
PHASE_STARTED = 0  # report_run_started: every owned context pending
PHASE_STEP_PENDING = 1  # a worker took the step
PHASE_STEP_DONE = 2  # a worker finished the step
PHASE_FINAL = 3  # the run ended: reconcile, skip, invalid or cancel


@dataclass(frozen=True)
class StatusUpdate:
    """One commit status to post for one context, with the key that orders it against the others."""

    repository: str
    sha: str
    context: str
    state: str
    description: str
    target_url: str
    run_id: str
    order: tuple[Any, ...]
    installation_id: int | None = None
    # statemachines/outcomes.py; None in ledger entries written before it was carried (read from the words)
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "order": list(self.order)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StatusUpdate:
        known = {f.name for f in fields(cls)}  # a field a newer release added is not this one's to read
        return cls(**{k: v for k, v in data.items() if k in known} | {"order": tuple(data["order"])})

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def phase(self) -> int:
        """The phase of its run this update belongs to (PHASE_STARTED … PHASE_FINAL; see `order_key`)."""
        return int(self.order[3])

    def same_post(self, other: StatusUpdate | None) -> bool:
        """True when posting self after other would change nothing GitHub shows."""
        return other is not None and (self.state, self.description, self.target_url) == (
            other.state,
            other.description,
            other.target_url,
        )


def overall_context(prefix: str, pipeline: str) -> str:
    """The context of a whole run, e.g. `stepline/ci`: stable across runs so branch protection can require it."""
    return f"{prefix}/{pipeline}"


def step_context(prefix: str, pipeline: str, step: str) -> str:
    """The context of one build step, e.g. `stepline/ci/test`."""
    return f"{prefix}/{pipeline}/{step}"


def run_url(public_url: str, run_id: str) -> str:
    return f"{public_url.rstrip('/')}/runs/{quote(run_id, safe='')}"


def step_url(public_url: str, run_id: str, step: str) -> str:
    """The step's anchor on the run page: `#step-<step>` with the step name percent-encoded."""
    return f"{run_url(public_url, run_id)}#step-{quote(step, safe='')}"


def cut_description(text: str) -> str:
    """At most 140 characters, one line; a longer text ends with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_DESCRIPTION else line[: MAX_DESCRIPTION - 1].rstrip() + "…"


def format_duration(seconds: float | None) -> str:
    """`45s`, `3m 05s`, `1h 02m`: short enough to leave room for a reason."""
    if seconds is None or seconds < 0:
        return ""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def order_key(run: RunRecord, phase: int, at_ms: int) -> tuple[Any, ...]:
    """The order of an update among all updates of one (repository, sha, context).

    A newer run owns the context (a re-run or another event on the same commit); within a run a later
    phase wins, so a terminal state is never replaced by a pending one of the same run; within a phase
    the later event wins. The run id only breaks ties between runs created in the same millisecond.
    """
    created_ms = int(float(run.get("created_at") or 0) * 1000)
    redrives = int(run.get("redrive_count") or 0)  # a redriven execution reports its steps again
    return (created_ms, str(run["run_id"]), redrives, phase, int(at_ms))


@dataclass(frozen=True)
class RunContexts:
    """The contexts one run owns (its pipeline's overall context and one per step) and their updates."""

    run: RunRecord
    prefix: str
    public_url: str

    @property
    def pipeline(self) -> str:
        return str(self.run.get("pipeline") or "ci")

    @property
    def steps(self) -> list[str]:
        return [str(step) for step in self.run.get("steps") or []]

    def step_of(self, context: str) -> str | None:
        """The step a context of this pipeline names (None for the overall context or another pipeline's)."""
        head = step_context(self.prefix, self.pipeline, "")
        return context[len(head) :] if context.startswith(head) and len(context) > len(head) else None

    def overall(
        self, state: str, description: str, phase: int, at_ms: int, outcome: str | None = None
    ) -> StatusUpdate:
        context = overall_context(self.prefix, self.pipeline)
        url = run_url(self.public_url, self.run["run_id"])
        return self._update(context, state, description, url, phase, at_ms, outcome)

    def step(
        self, step: str, state: str, description: str, phase: int, at_ms: int, outcome: str | None = None
    ) -> StatusUpdate:
        context = step_context(self.prefix, self.pipeline, step)
        url = step_url(self.public_url, self.run["run_id"], step)
        return self._update(context, state, description, url, phase, at_ms, outcome)

    def every(
        self, state: str, description: str, phase: int, at_ms: int, outcome: str | None = None
    ) -> list[StatusUpdate]:
        """The same state for the overall context and every step."""
        steps = [self.step(step, state, description, phase, at_ms, outcome) for step in self.steps]
        return [self.overall(state, description, phase, at_ms, outcome), *steps]

    def _update(
        self,
        context: str,
        state: str,
        description: str,
        url: str,
        phase: int,
        at_ms: int,
        outcome: str | None,
    ) -> StatusUpdate:
        if state not in STATES:
            raise ValueError(f"{state!r} is not a commit status state ({', '.join(STATES)})")
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"{outcome!r} is not an outcome ({', '.join(OUTCOMES)})")
        installation = self.run.get("installation_id")
        return StatusUpdate(
            repository=self.run["repository"],
            sha=self.run["sha"],
            context=context,
            state=state,
            description=cut_description(description),
            target_url=url,
            run_id=self.run["run_id"],
            order=order_key(self.run, phase, at_ms),
            installation_id=int(installation) if installation else None,
            outcome=outcome,
        )
