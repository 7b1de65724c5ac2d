"""The artifact API follows the reading rule of logs (STEPLINE_READ_REQUIRES_LOGIN)."""

from __future__ import annotations

import dataclasses

from service.app import create_app
from statemachines.blob_store import BlobSettings
from tests.service.dashboard_seed import ADMIN_TOKEN, with_users


def test_private_dashboard_serves_artifacts_to_signed_in_readers_only(service_config, tmp_path):
    config = dataclasses.replace(
        service_config, read_requires_login=True, blob=BlobSettings(directory=tmp_path)
    )
    client = create_app(with_users(config)).test_client()
    for path in ("/api/runs/r1/artifacts", "/api/runs/r1/artifacts/download?step=build&path=a.whl"):
        assert client.get(path).status_code == 401
        assert client.get("/api/runs/r1/logs/build").status_code == 401  # the same rule as logs
        signed = client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert signed.status_code == 404 and "r1" in signed.json["error"]
