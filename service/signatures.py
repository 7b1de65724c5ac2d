"""Webhook signatures: GitHub's X-Hub-Signature-256, an HMAC-SHA256 of the raw request body."""

from __future__ import annotations

import hashlib
import hmac

from service.errors import SignatureError

PREFIX = "sha256="


def sign_body(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for `body` (used by the developer command)."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    """Raise SignatureError unless `header` is the HMAC-SHA256 of `body` with `secret`."""
    if not secret:
        raise SignatureError("no webhook secret is configured")
    if not header:
        raise SignatureError("X-Hub-Signature-256 header is missing")
    if not header.startswith(PREFIX) or len(header) != len(PREFIX) + 64:
        raise SignatureError("X-Hub-Signature-256 is not of the form sha256=<64 hex digits>")
    # compare_digest: the time taken must not tell an attacker how many leading characters matched
    if not hmac.compare_digest(sign_body(secret, body).encode(), header.encode("ascii", "replace")):
        raise SignatureError("X-Hub-Signature-256 does not match the body")
