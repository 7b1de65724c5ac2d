"""Artifact downloads: a hostile step chooses its files' names; the download's headers stay well-formed."""

from __future__ import annotations

import dataclasses

import pytest

from service.app import create_app
from statemachines.artifacts import ArtifactStore, blob_key
from statemachines.blob_store import BlobSettings, DirectoryStore
from tests.service.dashboard_seed import seed_run

NAMES = ["report\r\nSet-Cookie: session=evil.html", "résumé ☃.svg", 'a";b.txt']


@pytest.mark.parametrize("name", NAMES)
def test_a_hostile_file_name_downloads_as_an_attachment(name, service_config, redis_client, tmp_path):
    run = seed_run(redis_client)
    store = ArtifactStore(redis_client, DirectoryStore(tmp_path))
    path = f"dist/{name}"
    key = blob_key(run["run_id"], "build", path, False)
    store.store.put_bytes(key, b"<svg onload=alert(1)>")
    store.record(
        run["run_id"],
        "build",
        {"trusted": False, "attempt": 1, "files": [{"path": path, "size": 21, "key": key}]},
    )
    client = create_app(
        dataclasses.replace(service_config, blob=BlobSettings(directory=tmp_path))
    ).test_client()
    listed = client.get(f"/api/runs/{run['run_id']}/artifacts").json["artifacts"]
    got = client.get(listed[0]["url"])
    assert got.status_code == 200 and got.data == b"<svg onload=alert(1)>"
    assert got.mimetype == "application/octet-stream"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    disposition = got.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "\r" not in disposition and "\n" not in disposition
    assert "Set-Cookie" not in got.headers
    disposition.encode("latin-1")  # what a WSGI server must send
