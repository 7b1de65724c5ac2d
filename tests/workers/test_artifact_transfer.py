"""Artifact collection and restore on the worker: nothing outside the work tree is read or written."""

from __future__ import annotations

import os

import pytest

from statemachines.artifacts import ArtifactStore
from statemachines.blob_store import DirectoryStore, TransferStopped
from workers.artifact_transfer import collect, restore, upload


def test_collect_keeps_files_inside_and_refuses_links_out_and_oversize(tmp_path):
    tree, outside = tmp_path / "src", tmp_path / "secret"
    (tree / "dist" / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "key.pem").write_text("secret")
    (tree / "dist" / "a.whl").write_bytes(b"a" * 10)
    (tree / "dist" / "sub" / "b.txt").write_bytes(b"b" * 10)
    (tree / "dist" / "big.bin").write_bytes(b"c" * 100)
    os.symlink(outside / "key.pem", tree / "dist" / "key.whl")
    os.symlink(outside, tree / "linked")
    os.symlink("a.whl", tree / "dist" / "same.whl")  # a link inside the tree is its target's content
    said: list[str] = []
    found = collect(tree, ("dist", "linked/*", "missing/*"), 50, said.append)
    assert [(rel, size) for rel, _, size in found.files] == [
        ("dist/a.whl", 10),
        ("dist/same.whl", 10),
        ("dist/sub/b.txt", 10),
    ]
    assert any("dist/key.whl is a symlink leaving the work tree" in line for line in said)
    assert any("linked/key.pem is a symlink leaving the work tree" in line for line in said)
    assert any("dist/big.bin (100 bytes) is over the step's limit" in line for line in said)
    assert "[stepline] artifacts: nothing matches 'missing/*'" in said


def test_restore_never_writes_through_a_link_and_keeps_trust_apart(redis_client, tmp_path):
    artifacts = ArtifactStore(redis_client, DirectoryStore(tmp_path / "blobs"))
    built = tmp_path / "built"
    (built / "dist").mkdir(parents=True)
    (built / "dist" / "app.whl").write_text("wheel")
    upload(artifacts, collect(built, ("dist/*",), 1 << 20, print), "run-1", "build", 1, trusted=True)
    upload(artifacts, collect(built, ("dist/*",), 1 << 20, print), "run-1", "fork-build", 1, trusted=False)

    tree, elsewhere = tmp_path / "next", tmp_path / "elsewhere"
    tree.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, tree / "dist")  # the checkout put a link where the artifact goes
    said: list[str] = []
    assert restore(artifacts, "run-1", ("build",), True, tree, said.append) == 0
    assert list(elsewhere.iterdir()) == []
    assert any("not placed: the work tree has a link there" in line for line in said)

    clean = tmp_path / "clean"
    clean.mkdir()
    said.clear()
    assert restore(artifacts, "run-1", ("*build",), True, clean, said.append) == 1
    assert (clean / "dist" / "app.whl").read_text() == "wheel"
    assert any(
        "fork-build: its artifacts come from an untrusted run; not handed over" in line for line in said
    )
    assert restore(artifacts, "run-2", ("build",), True, clean, said.append) == 0  # another run: nothing


def test_an_artifact_retention_deleted_is_said_not_a_crash(redis_client, tmp_path):
    artifacts = ArtifactStore(redis_client, DirectoryStore(tmp_path / "blobs"))
    built = tmp_path / "built"
    (built / "dist").mkdir(parents=True)
    (built / "dist" / "app.whl").write_text("wheel")
    entry = upload(artifacts, collect(built, ("dist/*",), 1 << 20, print), "run-1", "build", 1, trusted=True)
    artifacts.store.delete([entry["files"][0]["key"]])
    said: list[str] = []
    (tmp_path / "next").mkdir()
    assert restore(artifacts, "run-1", ("build",), True, tmp_path / "next", said.append) == 0
    assert "[stepline] needs build: dist/app.whl is no longer stored (retention)" in said


def test_a_cancelled_upload_or_restore_stops_between_files_and_lists_nothing(redis_client, tmp_path):
    artifacts = ArtifactStore(redis_client, DirectoryStore(tmp_path / "blobs"))
    built = tmp_path / "built"
    (built / "dist").mkdir(parents=True)
    for name in ("a.whl", "b.whl", "c.whl"):
        (built / "dist" / name).write_text(name)
    found = collect(built, ("dist/*",), 1 << 20, print)
    asked: list[int] = []

    def stop_at_the_second_file() -> bool:
        asked.append(1)
        return len(asked) > 2  # asked before each file and by its copy

    with pytest.raises(TransferStopped):
        upload(artifacts, found, "run-1", "build", 1, True, stop_at_the_second_file)
    assert artifacts.listing("run-1") == {}  # nothing half-kept is listed for a later step
    upload(artifacts, found, "run-1", "build", 1, True)
    (tmp_path / "next").mkdir()
    with pytest.raises(TransferStopped):
        restore(artifacts, "run-1", ("build",), True, tmp_path / "next", print, lambda: True)
    assert not (tmp_path / "next" / "dist").exists() or not any((tmp_path / "next" / "dist").iterdir())
