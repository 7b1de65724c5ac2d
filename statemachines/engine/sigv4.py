"""AWS Signature Version 4 checks, recomputed with botocore's own signer so both sides agree."""

from __future__ import annotations

import datetime
import hmac
import re
from collections.abc import Mapping

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .api_errors import (
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

MAX_SKEW = datetime.timedelta(minutes=15)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,\s*"
    r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$"
)


def verify_request(
    keys: Mapping[str, str], method: str, host: str, path: str, headers: Mapping[str, str], body: bytes
) -> str:
    """Check the request's SigV4 signature against `keys`; return the access key id that signed it.

    Raises MissingAuthenticationTokenException (no signature), UnrecognizedClientException (unknown key)
    or InvalidSignatureException (wrong signature, scope or a date off by more than 15 minutes).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    match = _AUTH.match(lower.get("authorization", "").strip())
    if match is None:
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    key_id, day, region, service, signed, signature = match.groups()
    secret = keys.get(key_id)
    if secret is None:
        raise UnrecognizedClientException("The security token included in the request is invalid.")
    amz_date = lower.get("x-amz-date", "")
    _check_date(amz_date, day)
    names = signed.split(";")
    if "host" not in names or any(name not in lower and name != "host" for name in names):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided."
        )
    request = AWSRequest(method=method, url=f"http://{host}{path}", data=body)
    for name in names:
        request.headers[name] = host if name == "host" else lower[name]
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(key_id, secret), service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, signature):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return key_id


def _check_date(amz_date: str, day: str) -> None:
    try:
        when = datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=datetime.UTC)
    except ValueError as exc:
        raise InvalidSignatureException("The request must carry a valid X-Amz-Date header.") from exc
    now = datetime.datetime.now(datetime.UTC)
    if abs(now - when) > MAX_SKEW or not amz_date.startswith(day):
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier or later than the allowed 15 minutes of "
            f"{now.strftime(SIGV4_TIMESTAMP)}."
        )
