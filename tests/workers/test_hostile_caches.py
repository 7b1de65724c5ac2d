"""Through `python -m workers` and its sandbox: a hostile cache archive (`..`, absolute names, a link then
a file through it) reaches nothing outside the step's own directories, and the step still runs."""

from __future__ import annotations

import io
import tarfile

from statemachines.blob_store import DirectoryStore
from statemachines.caches import CacheStore, Scope
from tests.workers.conftest import build_step, wait_execution
from tests.workers.test_build_outputs_worker import vouched
from tests.workers.test_worker_process import log_lines


def hostile_tar(outside: str) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.GNU_FORMAT) as archive:

        def add(name: str, body: bytes = b"pwned", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
            member = tarfile.TarInfo(name)
            member.type, member.linkname = kind, link
            member.size = len(body) if kind == tarfile.REGTYPE else 0
            archive.addfile(member, io.BytesIO(body) if kind == tarfile.REGTYPE else None)

        add("src/deps/ok.txt", b"ok")
        add("src/out", kind=tarfile.SYMTYPE, link=outside)
        add("src/out/pwned-through-link")
        add("../../../pwned-dotdot")
        add(f"{outside}/pwned-absolute")
        add("src/deps/hard", kind=tarfile.LNKTYPE, link=f"{outside}/victim")
    return data.getvalue()


def test_a_hostile_cache_archive_writes_nothing_outside_the_step(
    make_repo, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("the worker's file")
    archive = tmp_path / "hostile.tar"
    archive.write_bytes(hostile_tar(str(outside)))
    caches = CacheStore(redis_client, DirectoryStore(tmp_path / "blobs"))
    caches.save(Scope("octo/app", True), "deps-1", archive, archive.stat().st_size, 1 << 30)
    start_worker()
    step = build_step(
        ["ls deps || true", "echo ran"], heartbeat=30, cache={"key": "deps-1", "paths": ["deps"]}
    )
    arn = run_pipeline(step, **vouched(redis_client, repo, sha))
    assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
    lines = log_lines(redis_client)
    assert "ran" in lines and any(line.startswith("[stepline] cache: not restored: ") for line in lines), (
        lines
    )
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "the worker's file"
    assert not list(tmp_path.rglob("pwned*"))
