"""Blob stores for tests: a directory, and S3 on moto's server (the one fake of AWS's object store)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from statemachines.blob_store import DIRECTORY, S3, BlobSettings
from tests.harness.ports import free_port

REGION = "us-east-1"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """moto's S3 server on a free port; its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def make_bucket(endpoint: str) -> str:
    """A fresh bucket, so tests never see each other's blobs."""
    name = f"stepline-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(params=[DIRECTORY, S3])
def blob_settings(request: pytest.FixtureRequest, tmp_path: Path) -> BlobSettings:
    """Each test that asks runs twice: on a directory, and on S3 (moto)."""
    if request.param == DIRECTORY:
        return BlobSettings(DIRECTORY, tmp_path / "blobs")
    endpoint = request.getfixturevalue("moto_s3")
    return BlobSettings(
        S3, bucket=make_bucket(endpoint), prefix="ci", endpoint_url=endpoint, region=REGION,
        access_key_id=KEYS["AWS_ACCESS_KEY_ID"], secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip


def blob_env(settings: BlobSettings) -> dict[str, str]:
    """The STEPLINE_BLOB_* settings of a process that should use `settings`."""
    if settings.backend == DIRECTORY:
        return {"STEPLINE_BLOB_STORE": DIRECTORY, "STEPLINE_BLOB_DIR": str(settings.directory)}
    return {
        "STEPLINE_BLOB_STORE": S3, "STEPLINE_BLOB_BUCKET": settings.bucket,
        "STEPLINE_BLOB_PREFIX": settings.prefix, "STEPLINE_BLOB_ENDPOINT_URL": settings.endpoint_url,
        "STEPLINE_BLOB_ACCESS_KEY_ID": settings.access_key_id,
        "STEPLINE_BLOB_SECRET_ACCESS_KEY": settings.secret_access_key,
    }  # fmt: skip
