"""verify_signature against GitHub's real signed deliveries and against hmac computed here."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import SignatureError
from service.signatures import verify_signature
from tests.service.github_events import FIXTURES


@pytest.mark.parametrize("name", ["pull_request__opened.cogni", "pull_request__synchronize.cogni"])
def test_recorded_github_delivery_verifies_and_a_flipped_byte_does_not(name):
    recorded = json.loads((FIXTURES / "deliveries" / f"{name}.headers.json").read_text())
    body = (FIXTURES / recorded["body_file"]).read_bytes()
    header = recorded["headers"]["x-hub-signature-256"]
    verify_signature(recorded["secret"], body, header)
    flipped = bytes([body[0] ^ 1]) + body[1:]
    with pytest.raises(SignatureError):
        verify_signature(recorded["secret"], flipped, header)
    with pytest.raises(SignatureError):
        verify_signature("another-secret", body, header)


@pytest.mark.parametrize(
    "header",
    [None, "", "sha1=abc", "sha256=", "sha256=" + "0" * 64, "sha256=" + "z" * 64, "sha256=é" + "0" * 63],
)
def test_missing_or_malformed_signatures_are_refused(header):
    with pytest.raises(SignatureError):
        verify_signature("s3cret", b"{}", header)


def test_no_secret_never_verifies():
    with pytest.raises(SignatureError):
        verify_signature("", b"{}", "sha256=" + hmac.new(b"", b"{}", hashlib.sha256).hexdigest())


@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=2000))
def test_any_body_signed_with_hmac_verifies(secret, body):
    header = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    verify_signature(secret, body, header)
