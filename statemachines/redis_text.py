"""What Redis answers read as text: bytes or str, whichever the client was made to return."""

from __future__ import annotations

from typing import Any


def redis_text(value: Any) -> str:
    """A reply as str: clients made with decode_responses=True answer str, the others bytes.

    Bytes that are not UTF-8 (a hostile step's log line) become U+FFFD instead of raising.
    """
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
