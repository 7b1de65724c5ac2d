"""The blob store on both backends: a directory, and S3 on moto's server."""

from __future__ import annotations

import pytest

from statemachines.blob_store import S3, BlobSettings, open_blob_store, read_blob_settings
from statemachines.errors import BlobError, BlobMissing, TransferStopped
from statemachines.settings import EnvReader


def test_put_read_list_delete(blob_settings, tmp_path):
    store = open_blob_store(blob_settings)
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * (9 << 20) + b"end")  # above boto3's multipart threshold
    store.put_file("artifacts/run-1/build/dist/app.whl", source)
    store.put_bytes("logs/run-1/build/1.jsonl", b"one\ntwo\n")
    store.put_bytes("logs/run-2/build/1.jsonl", b"other")

    with store.open("logs/run-1/build/1.jsonl") as blob:
        assert blob.read() == b"one\ntwo\n"
    copy = tmp_path / "copy.bin"
    store.get_file("artifacts/run-1/build/dist/app.whl", copy)
    assert copy.read_bytes() == source.read_bytes()
    info = store.stat("artifacts/run-1/build/dist/app.whl")
    assert info is not None and info.size == (9 << 20) + 3
    assert sorted(i.key for i in store.list("logs/run-1/")) == ["logs/run-1/build/1.jsonl"]
    assert len(list(store.list("logs/"))) == 2

    assert store.delete(["logs/run-1/build/1.jsonl", "logs/run-9/none"]) >= 1
    assert store.stat("logs/run-1/build/1.jsonl") is None
    with pytest.raises(BlobMissing):
        store.open("logs/run-1/build/1.jsonl")
    with pytest.raises(BlobMissing):
        store.get_file("logs/run-1/build/1.jsonl", tmp_path / "gone")
    assert [i.key for i in store.list("logs/")] == ["logs/run-2/build/1.jsonl"]


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a"])
def test_keys_that_could_leave_the_store_are_refused(tmp_path, key):
    store = open_blob_store(read_blob_settings(EnvReader("test", {"STEPLINE_BLOB_DIR": str(tmp_path)})))
    with pytest.raises(BlobError):
        store.put_bytes(key, b"x")


def test_settings_name_every_problem():
    env = EnvReader("test", {"STEPLINE_BLOB_STORE": "s3"})
    read_blob_settings(env)
    env2 = EnvReader("test", {"STEPLINE_BLOB_STORE": "floppy"})
    read_blob_settings(env2)
    assert any("STEPLINE_BLOB_BUCKET" in p for p in env.problems)
    assert any("floppy" in p for p in env2.problems)


def test_s3_errors_are_blob_errors(moto_s3, tmp_path):
    settings = BlobSettings(
        S3,
        bucket="no-such-bucket",
        endpoint_url=moto_s3,
        access_key_id="testing",
        secret_access_key="testing",
    )
    store = open_blob_store(settings)
    with pytest.raises(BlobError) as raised:
        store.put_bytes("logs/x", b"x")
    assert "NoSuchBucket" in raised.value.reason
    with pytest.raises(BlobError):  # a download from nowhere: one error family for every caller
        store.get_file("logs/x", tmp_path / "x")


def test_a_transfer_stops_between_chunks_when_asked_and_stores_nothing(blob_settings, tmp_path):
    store = open_blob_store(blob_settings)
    big = tmp_path / "big"
    big.write_bytes(b"x" * (40 << 20))  # several chunks on both backends (16 MiB copies, 8 MiB parts)
    asked: list[int] = []

    def stop_after_first_chunk() -> bool:
        asked.append(1)
        return len(asked) > 1

    with pytest.raises(TransferStopped):
        store.put_file("stop/big", big, stop_after_first_chunk)
    assert store.stat("stop/big") is None
    store.put_file("stop/big", big, lambda: False)
    assert store.stat("stop/big").size == 40 << 20
    asked.clear()
    with pytest.raises(TransferStopped):
        store.get_file("stop/big", tmp_path / "back", stop_after_first_chunk)
