"""Annotations a step prints: GitHub Actions' workflow commands `::error file=app.py,line=3::message`.

Shared by the reporter (annotations on the step's check run) and the dashboard (highlighted log lines),
so both read a log the same way. The syntax, as GitHub Actions' toolkit writes it:

    ::<error|warning|notice>[ <key>=<value>[,<key>=<value>…]]::<message>

Keys: file, line, endLine, col, endColumn, title (unknown keys are ignored). In the message `%25`,
`%0D` and `%0A` stand for `%`, CR and LF; in a value also `%3A` and `%2C` for `:` and `,`. A line that
does not parse is an ordinary log line: nothing a step prints can make the reader fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

LEVELS = ("error", "warning", "notice")
# GitHub's annotation_level for each command: "failure" is what an ::error becomes
CHECK_LEVELS = {"error": "failure", "warning": "warning", "notice": "notice"}
COMMAND = re.compile(r"^\s*::(error|warning|notice)(?: ([^:]*))?::(.*)$")
MAX_MESSAGE = 64 * 1024  # GitHub's limit on one annotation's message
MAX_TITLE = 255
DATA_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
PROPERTY_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))


@dataclass(frozen=True)
class Annotation:
    """One workflow command read from a log line (`index`: the line's place in what was read)."""

    level: str
    message: str
    index: int = 0
    file: str = ""
    line: int | None = None
    end_line: int | None = None
    col: int | None = None
    end_column: int | None = None
    title: str = ""

    def to_check(self) -> dict[str, object] | None:
        """The annotation as GitHub's Checks API takes it; None without a file (GitHub needs a path)."""
        if not self.file:
            return None
        start = self.line or 1
        end = max(self.end_line or start, start)
        found: dict[str, object] = {
            "path": self.file,
            "start_line": start,
            "end_line": end,
            "annotation_level": CHECK_LEVELS[self.level],
            "message": self.message or self.level,
        }
        # columns only on one line, as GitHub requires
        if self.col is not None and start == end:
            found["start_column"] = self.col
            found["end_column"] = max(self.end_column or self.col, self.col)
        if self.title:
            found["title"] = self.title
        return found

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index, "level": self.level, "message": self.message, "file": self.file,
            "line": self.line, "title": self.title,
        }  # fmt: skip


def parse_line(text: str, index: int = 0) -> Annotation | None:
    """The annotation a log line asks for, or None for any other line."""
    match = COMMAND.match(text)
    if match is None:
        return None
    level, raw_properties, raw_message = match.groups()
    properties = _properties(raw_properties or "")
    return Annotation(
        level=level,
        message=_unescape(raw_message, DATA_ESCAPES)[:MAX_MESSAGE],
        index=index,
        file=properties.get("file", "").strip().removeprefix("./"),
        line=_number(properties.get("line")),
        end_line=_number(properties.get("endLine")),
        col=_number(properties.get("col")),
        end_column=_number(properties.get("endColumn")),
        title=properties.get("title", "")[:MAX_TITLE],
    )


def parse_lines(lines: Iterable[str], start: int = 0) -> list[Annotation]:
    """Every annotation in `lines`, each with its index counted from `start`."""
    found = []
    for offset, text in enumerate(lines):
        annotation = parse_line(text, start + offset)
        if annotation is not None:
            found.append(annotation)
    return found


def _properties(raw: str) -> dict[str, str]:
    properties = {}
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            properties[key.strip()] = _unescape(value, PROPERTY_ESCAPES)
    return properties


def _unescape(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    # `%25` last, so an escaped `%0A` (written `%250A`) stays the text `%0A`
    for escaped, plain in escapes:
        text = re.sub(re.escape(escaped), plain.replace("\\", "\\\\"), text, flags=re.IGNORECASE)
    return text


def _number(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    number = int(value.strip())
    return number if 0 < number < 10_000_000 else None
