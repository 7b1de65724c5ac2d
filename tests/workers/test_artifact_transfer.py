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
    # a link out is never walked: `linked/*` names nothing beyond it (no name of the machine in the log)
    assert "[stepline] artifacts: nothing matches 'linked/*'" in said
    assert any("dist/big.bin (100 bytes) is over the step's limit" in line for line in said)
    assert "[stepline] artifacts: nothing matches 'missing/*'" in said


def test_collect_never_walks_through_a_link_out_nor_names_what_lies_beyond(tmp_path):
    tree, outside = tmp_path / "src", tmp_path / "host"
    (outside / "other-task" / "secret-dir").mkdir(parents=True)
    (outside / "other-task" / "secret-dir" / "x.whl").write_text("x")
    tree.mkdir()
    os.symlink(outside, tree / "link")
    said: list[str] = []
    found = collect(tree, ("*/**", "link/**/*.whl", "*"), 1 << 20, said.append)
    assert found.files == []
    assert not any("other-task" in line or "secret-dir" in line or str(outside) in line for line in said)
    assert "[stepline] artifact refused: link is a symlink leaving the work tree" in said


def test_collect_says_broken_links_loops_and_fifos_instead_of_crashing(tmp_path):
    tree = tmp_path / "src"
    (tree / "dist").mkdir(parents=True)
    (tree / "dist" / "ok.whl").write_text("ok")
    os.symlink("missing", tree / "dist" / "dangling")
    os.symlink("loop", tree / "dist" / "loop")
    os.mkfifo(tree / "dist" / "fifo")
    (tree / "dist" / "new\nline.txt").write_text("n")
    said: list[str] = []
    found = collect(tree, ("dist/*",), 1 << 20, said.append)
    assert [rel for rel, _, _ in found.files] == ["dist/new\nline.txt", "dist/ok.whl"]
    assert "[stepline] artifact refused: dist/dangling is a broken symlink" in said
    assert "[stepline] artifact refused: dist/loop is a broken symlink" in said
    assert "[stepline] artifact refused: dist/fifo is not a regular file" in said


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


def test_the_recorded_entry_keeps_the_first_refusals_and_their_count(redis_client, tmp_path):
    # a refusal per entry of a hostile tree (10 patterns x 10,000 broken links) must not land in Redis
    tree = tmp_path / "src"
    (tree / "junk").mkdir(parents=True)
    for n in range(50):
        os.symlink(f"missing-{n}", tree / "junk" / f"link-{n:02}")
    artifacts = ArtifactStore(redis_client, DirectoryStore(tmp_path / "blobs"))
    entry = upload(artifacts, collect(tree, ("junk/*",), 1 << 20, print), "run-1", "build", 1, trusted=False)
    recorded = artifacts.listing("run-1")["build"]
    assert recorded == entry and recorded["refused_count"] == 50 and len(recorded["refused"]) == 20
    assert recorded["refused"][0] == "junk/link-00 is a broken symlink"
