"""SigV4: with ENGINE_ACCESS_KEYS set, only correctly signed requests of known keys are answered."""

from __future__ import annotations

import datetime
import socket
import urllib.error
import urllib.request
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from .conftest import EngineProcess, make_client


@pytest.fixture(scope="module")
def signed_engine(redis_proc, tmp_path_factory):
    proc = EngineProcess(
        redis_proc.url,
        tmp_path_factory.mktemp("sigv4") / "engine.log",
        ENGINE_ACCESS_KEYS="AKIDGOOD:goodsecret,AKIDTWO:second",
    )
    proc.start()
    yield proc
    proc.stop()


def test_signed_requests_of_known_keys_pass(signed_engine):
    for key, secret in (("AKIDGOOD", "goodsecret"), ("AKIDTWO", "second")):
        client = make_client(signed_engine.endpoint, key, secret)
        assert "stateMachines" in client.list_state_machines()


def test_unknown_key_is_unrecognized(signed_engine):
    client = make_client(signed_engine.endpoint, "AKIDNOPE", "goodsecret")
    with pytest.raises(ClientError) as excinfo:
        client.list_state_machines()
    assert excinfo.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_wrong_secret_is_an_invalid_signature(signed_engine):
    client = make_client(signed_engine.endpoint, "AKIDGOOD", "wrongsecret")
    with pytest.raises(ClientError) as excinfo:
        client.list_state_machines()
    assert excinfo.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_unsigned_request_is_refused(signed_engine):
    request = urllib.request.Request(signed_engine.endpoint + "/", data=b"{}", method="POST")
    request.add_header("X-Amz-Target", "AWSStepFunctions.ListStateMachines")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=5)
    assert excinfo.value.code == 403
    assert b"MissingAuthenticationTokenException" in excinfo.value.read()


def test_open_engine_accepts_any_key_on_loopback(sfn):
    assert "stateMachines" in sfn.list_state_machines()


def signed_request(endpoint: str, body: bytes, when: datetime.datetime) -> AWSRequest:
    """A ListStateMachines request signed by botocore's signer at a chosen time."""
    request = AWSRequest(method="POST", url=endpoint + "/", data=body)
    request.headers["X-Amz-Target"] = "AWSStepFunctions.ListStateMachines"
    request.headers["Content-Type"] = "application/x-amz-json-1.0"
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(Credentials("AKIDGOOD", "goodsecret"), "states", "us-east-1").add_auth(request)
    return request


def send(request: AWSRequest, body: bytes) -> tuple[int, bytes]:
    raw = urllib.request.Request(request.url, data=body, method="POST", headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(raw, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_tampered_body_and_stale_dates_are_rejected(signed_engine):
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    good = signed_request(signed_engine.endpoint, b"{}", now)
    assert send(good, b"{}")[0] == 200
    status, answer = send(good, b'{"maxResults": 1}')
    assert status == 400 and b"InvalidSignatureException" in answer
    stale = signed_request(signed_engine.endpoint, b"{}", now - datetime.timedelta(minutes=20))
    status, answer = send(stale, b"{}")
    assert status == 400 and b"Signature expired" in answer


def own_address() -> str | None:
    """This host's non-loopback address (a UDP connect sends nothing), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, only picks the interface
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_open_engine_refuses_other_hosts(redis_proc, tmp_path_factory):
    address = own_address()
    if address is None:
        pytest.skip("no non-loopback interface")
    proc = EngineProcess(
        redis_proc.url, tmp_path_factory.mktemp("open") / "engine.log", ENGINE_HOST="0.0.0.0"
    )
    proc.start()
    try:
        request = urllib.request.Request(f"http://{address}:{proc.port}/", data=b"{}", method="POST")
        request.add_header("X-Amz-Target", "AWSStepFunctions.ListStateMachines")
        with pytest.raises(urllib.error.HTTPError) as excinfo:
            urllib.request.urlopen(request, timeout=5)
        assert excinfo.value.code == 403 and b"AccessDeniedException" in excinfo.value.read()
        assert "stateMachines" in make_client(proc.endpoint).list_state_machines()  # loopback still answered
    finally:
        proc.stop()
