"""Pagination: opaque nextToken values and page slicing, as every List* operation uses them."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from .api_errors import InvalidToken

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def page_size(params: Mapping[str, Any]) -> int:
    """`maxResults`, where 0 or absent means AWS's default of 100."""
    size = int(params.get("maxResults") or DEFAULT_PAGE)
    return min(size, MAX_PAGE)


def encode_token(offset: int, scope: str, after: str | None = None) -> str:
    """A token naming where the next page starts; `scope` ties it to one listing, `after` (the
    last item shown) keeps the position when newer items push the offsets along."""
    raw = json.dumps({"o": offset, "s": scope, "a": after}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_position(token: str | None, scope: str) -> tuple[int, str | None]:
    """(offset, last item shown) of a token; InvalidToken for anything we did not issue for this listing."""
    if not token:
        return 0, None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset, after = (data["o"], data.get("a")) if data["s"] == scope else (None, None)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise InvalidToken(f"Invalid Token: '{token[:64]}'") from exc
    if not isinstance(offset, int) or offset < 0 or not isinstance(after, str | None):
        raise InvalidToken(f"Invalid Token: '{token[:64]}'")
    return offset, after


def decode_token(token: str | None, scope: str) -> int:
    """The offset a token names; InvalidToken for anything we did not issue for this listing."""
    return decode_position(token, scope)[0]


def next_token(offset: int, size: int, total: int, scope: str) -> str | None:
    """The token of the page after [offset, offset + size), or None when that was the last."""
    return encode_token(offset + size, scope) if offset + size < total else None
