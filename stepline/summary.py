"""The end of a local run on the terminal: one row per step (status, attempt, duration) and the graph's outcome.

Rows come from the run's step logs (what each attempt of a step ended as, from the worker), in
pipeline order, then the steps named at run time (a Map's family) in the order they started. A step
with no log did not run: a Choice took another way, `--only` skipped it, or the run ended first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

NOT_RUN = "not run"
RUNNING = "unfinished"


@dataclass(frozen=True)
class StepRow:
    """One line of the summary."""

    step: str
    status: str
    attempt: str = "-"
    duration: str = "-"


def step_rows(
    steps: Iterable[str], logs: list[dict[str, Any]], decided: Mapping[str, str], skipped: Iterable[str] = ()
) -> list[StepRow]:
    """A row per step: `steps` in pipeline order, then steps only the logs know; `decided`: approvals' outcomes."""
    latest: dict[str, dict[str, Any]] = {}
    for meta in logs:  # oldest first: a later attempt replaces an earlier one
        if meta["attempt"] >= latest.get(meta["step"], {}).get("attempt", 0):
            latest[meta["step"]] = meta
    names = list(dict.fromkeys([*steps, *(meta["step"] for meta in logs), *decided]))
    passed_over = set(skipped)
    rows = []
    for name in names:
        if name in latest:
            rows.append(_row_of(latest[name]))
        else:
            why = decided.get(name) or ("skipped (--only)" if name in passed_over else NOT_RUN)
            rows.append(StepRow(name, why))
    return rows


def _row_of(meta: dict[str, Any]) -> StepRow:
    status = (meta.get("status") or RUNNING) if meta["finished"] else RUNNING
    if status in ("failed", "errored") and meta.get("exit_code") is not None:
        status += f" (exit {meta['exit_code']})"
    duration = "-"
    if meta.get("finished_ms") and meta.get("started_ms"):
        duration = f"{(meta['finished_ms'] - meta['started_ms']) / 1000:.1f}s"
    return StepRow(meta["step"], status, str(meta["attempt"]), duration)


def print_summary(out: TextIO, rows: list[StepRow], outcome: str, seconds: float) -> None:
    """The table, then the outcome line."""
    header = StepRow("STEP", "STATUS", "ATTEMPT", "DURATION")
    table = [header, *rows]
    widths = [max(len(getattr(row, field)) for row in table) for field in ("step", "status", "attempt")]
    out.write("\n")
    for row in table:
        out.write(
            f"{row.step:<{widths[0]}}  {row.status:<{widths[1]}}  {row.attempt:>{widths[2]}}  {row.duration}\n"
        )
    # after an error's cause, "in 0.4s" would read as the failed command's time
    took = f"(after {seconds:.1f}s)" if ": " in outcome else f"in {seconds:.1f}s"
    out.write(f"\n{outcome} {took}\n")
    out.flush()


def outcome_line(described: Mapping[str, Any]) -> str:
    """`pipeline SUCCEEDED`, or `pipeline FAILED: <error>: <cause>` from DescribeExecution."""
    status = str(described.get("status") or "UNKNOWN")
    error, cause = described.get("error"), described.get("cause")
    # a failed step's cause repeats its log's last lines, shown above already: its first line says it
    cause = str(cause).splitlines()[0] if cause else cause
    detail = ": ".join(str(part) for part in (error, cause) if part)
    if len(detail) > 500:
        detail = detail[:500] + "…"
    return f"pipeline {status}" + (f": {detail}" if detail else "")
