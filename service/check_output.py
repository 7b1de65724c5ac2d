"""What a check run shows: its title, Markdown summary and annotations, read from the run, its log and the ledger.

Built when the check run is posted (not when its update is claimed), so the summary holds the log as it is
then. A step's summary: status, attempt, duration, worker pool and the last log lines; the pipeline's: each
step's status. Annotations are the workflow commands the step printed (statemachines/workflow_commands.py),
read once the step has ended. GitHub takes at most 65,535 characters of summary: the log tail gives way.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import redis

from service.run_record import RunRecord
from service.status_contexts import RunContexts, StatusUpdate, format_duration
from service.status_ledger import StatusLedger
from statemachines.step_logs import StepLogReader
from statemachines.workflow_commands import Annotation, parse_lines

log = logging.getLogger(__name__)

MAX_SUMMARY = 65_535  # GitHub answers 422 to a longer output.summary
TAIL_LINES = 30
MAX_ANNOTATIONS = 500  # per check run: ten updates of GitHub's 50; more are counted in the summary
MAX_LOG_PAGES = 100  # of 1000 lines: a log past that is read no further for annotations
FENCE = "~~~~~"
MARKDOWN = re.compile(r"[\\`*_{}\[\]<>()#!|~&]")
STATE_WORDS = {"pending": "running", "success": "passed", "failure": "failed", "error": "error"}


@dataclass
class CheckOutput:
    """GitHub's `output` of a check run, and the annotations to send with it (all of them, in log order)."""

    title: str
    summary: str
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def body(self, annotations: list[dict[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {"title": self.title, "summary": self.summary}
        return found | ({"annotations": annotations} if annotations else {})


@dataclass
class StepLog:
    """What a step's latest log says: its meta, last lines and the annotations it printed."""

    meta: dict[str, Any] | None
    tail: list[str]
    annotations: list[Annotation]


def build_output(
    client: redis.Redis, run: RunRecord | None, contexts: RunContexts, update: StatusUpdate
) -> CheckOutput:
    """The output of the check run of `update`'s context: its step's, or the pipeline's when it names none."""
    step = contexts.step_of(update.context)
    if step is None:
        return _pipeline_output(client, update, contexts.pipeline)
    step_log = read_step_log(client, update.run_id, step, with_annotations=update.terminal)
    return _step_output(run or {}, step, update, step_log)


def read_step_log(client: redis.Redis, run_id: str, step: str, with_annotations: bool) -> StepLog:
    reader = StepLogReader(client)
    try:
        meta = reader.meta(run_id, step)
        if meta is None:
            return StepLog(None, [], [])
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        annotations: list[Annotation] = []
        cursor, seen = "0", 0
        for _ in range(MAX_LOG_PAGES):
            lines, cursor, finished = reader.read(run_id, step, meta["attempt"], cursor, 1000)
            if with_annotations:
                annotations += parse_lines(lines, seen)
            seen += len(lines)
            tail.extend(lines)
            if finished or not lines:
                break
        return StepLog(meta, list(tail), annotations)
    except redis.RedisError as exc:  # the check run still gets its status; the log part says why not
        log.warning("%s: step %s: log not read for its check run: %s", run_id, step, exc)
        return StepLog(None, ["(the log could not be read)"], [])


def _step_output(run: RunRecord, step: str, update: StatusUpdate, step_log: StepLog) -> CheckOutput:
    meta = step_log.meta or {}
    rows = [("Status", update.description or STATE_WORDS.get(update.state, update.state))]
    if meta:
        rows.append(("Attempt", str(meta.get("attempt") or 1)))
        rows.append(("Duration", _duration(meta) or "—"))
    pool = (run.get("step_pools") or {}).get(step)
    if pool:
        rows.append(("Worker pool", str(pool)))
    if meta.get("worker"):
        rows.append(("Worker", str(meta["worker"])))
    head = ["| | |", "|---|---|", *(f"| {name} | {_cell(value)} |" for name, value in rows)]
    found = [a.to_check() for a in step_log.annotations]
    annotations = [a for a in found if a is not None]
    loose = [a for a in step_log.annotations if a.file == ""]
    notes = []
    if loose:
        # the step's words: in a code block, like its log, so none is a mention, an image or a link
        texts = [
            " ".join(f"{a.level}: {a.title + ': ' if a.title else ''}{a.message}".split()) for a in loose
        ]
        notes += ["", "**Annotations without a file**", "", _fenced([_code(t[:1000]) for t in texts[:50]])]
    if len(annotations) > MAX_ANNOTATIONS:
        notes += ["", f"{len(annotations) - MAX_ANNOTATIONS} more annotations are in the log, not here."]
    summary = _fit("\n".join(head + notes), step_log.tail)
    title = f"{step}: {update.description or STATE_WORDS.get(update.state, update.state)}"
    return CheckOutput(title[:255], summary, annotations[:MAX_ANNOTATIONS])


def _pipeline_output(client: redis.Redis, update: StatusUpdate, pipeline: str) -> CheckOutput:
    rows = ["| Step | Status |", "|---|---|"]
    try:
        statuses = StatusLedger(client).run_statuses(update.run_id)
    except redis.RedisError:
        statuses = []
    for row in statuses:
        context = str(row["context"])
        if context != update.context and context.startswith(update.context + "/"):
            name = context[len(update.context) + 1 :]
            rows.append(f"| {_cell(name)} | {_cell(STATE_WORDS.get(row['state'], row['state']))}: "
                        f"{_cell(row['description'])} |")  # fmt: skip
    text = f"**{_cell(update.description or STATE_WORDS[update.state])}**\n\n" + "\n".join(rows)
    if update.target_url:
        text += f"\n\n[The run on Stepline]({update.target_url})"
    title = f"{pipeline}: {update.description or STATE_WORDS.get(update.state, update.state)}"
    return CheckOutput(title[:255], text[:MAX_SUMMARY])


def _fit(head: str, tail: list[str]) -> str:
    """The head, then as many of the last log lines as fit in GitHub's limit, in a fence none can close."""
    if not tail:
        return head[:MAX_SUMMARY]
    lines = [_code(line) for line in tail]
    while lines:
        text = f"{head}\n\n**Last {len(lines)} log lines**\n\n" + _fenced(lines)
        if len(text) <= MAX_SUMMARY:
            return text
        if len(lines) == 1:
            lines[0] = lines[0][: max(0, MAX_SUMMARY - len(head) - 200)]
            if len(lines[0]) == 0:
                break
            continue
        lines = lines[1:]
    return head[:MAX_SUMMARY]


def _code(line: str) -> str:
    """A line a code block can hold: it keeps no run of the fence's five tildes, so it cannot close it."""
    return line.replace(FENCE, "~~~~ ~")


def _fenced(lines: list[str]) -> str:
    return f"{FENCE}text\n" + "\n".join(lines) + f"\n{FENCE}"


def _duration(meta: dict[str, Any]) -> str:
    start = meta.get("started_ms")
    end = meta.get("finished_ms") or meta.get("updated_ms")
    try:
        return format_duration((int(end) - int(start)) / 1000) if start and end else ""
    except (TypeError, ValueError):
        return ""


def _cell(text: Any) -> str:
    """One Markdown table cell, as text: no pipe or line break ends it, no mark formats, links or mentions."""
    flat = " ".join(str(text).split())[:1000]
    # a backslash makes any ASCII punctuation literal; a zero-width space after @ stops a mention or team ping
    return MARKDOWN.sub(r"\\\g<0>", flat).replace("@", "@\u200b")
