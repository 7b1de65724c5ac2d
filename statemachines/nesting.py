"""How deep JSON and YAML may nest wherever they come in: webhooks, pipeline files, the engine's API.

Python's parsers and everything that walks a document after them recurse once per level or more:
200,000 nested arrays fit in 400 KB and raise RecursionError, in the parser or far from it (a
validator, an encoder, a template walk). Every document that arrives from outside is read through
`loads` or `load_yaml`, which refuse one nested deeper than MAX_DEPTH with TooDeep (a ValueError,
so callers turn it into their own 4xx or AWS-shaped error as they do any other unparsable text).
GitHub's payloads nest under 10 levels and our deepest pipelines about 25.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

MAX_DEPTH = 100

# bytes that are not brackets, dropped in one C-speed translate; { } counted as [ ]
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


class TooDeep(ValueError):
    """Raised when a document nests deeper than MAX_DEPTH."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"the document is nested more than {limit} levels deep")
        self.limit = limit


class YamlAliasRefused(ValueError):
    """Raised when YAML uses an alias (*name): a few lines of them expand to gigabytes."""

    def __init__(self) -> None:
        super().__init__("YAML aliases (*name) are not allowed")


def loads(text: str | bytes, limit: int = MAX_DEPTH, **options: Any) -> Any:
    """json.loads that raises TooDeep for a document nested deeper than `limit` (before parsing it)."""
    if deeper_than(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"), limit):
        raise TooDeep(limit)
    try:
        return json.loads(text, **options)
    except RecursionError:  # only reachable with a limit near the interpreter's own
        raise TooDeep(limit) from None


def deeper_than(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the brackets of JSON text nest deeper than `limit` (those inside strings not counted).

    Text with no more than `limit` opening brackets cannot be deeper: that is every small document.
    Else, all in C-speed bytes operations (a third of json.loads's own time on a 500 KB document):
    escapes go, strings are the odd pieces between quotes, every byte but a bracket goes, and each
    pass drops the innermost pairs. Malformed nesting is left for the parser to report.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[0::2]).translate(_ONE_KIND, _NOT_BRACKETS)
    for _ in range(limit):
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return False
        brackets = shorter
    return b"[]" in brackets


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when a parsed value (dicts and lists) nests deeper than `limit`; iterative."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if depth > limit:
            raise TooDeep(limit)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))


def load_yaml(text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader, limit: int = MAX_DEPTH) -> Any:
    """yaml.load with `loader`, refusing aliases (YamlAliasRefused) and nesting deeper than `limit`.

    The events are read first (PyYAML's parser keeps its own stack, so it cannot overflow), then
    composed: the composer and constructor recurse per level. Raises yaml.YAMLError for bad YAML.
    """
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            raise YamlAliasRefused()
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limit:
                raise TooDeep(limit)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader (or subclass) by signature
