"""SigV4: with ENGINE_ACCESS_KEYS set, only correctly signed requests of known keys are answered."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
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
