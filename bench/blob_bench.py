"""Benchmark of build outputs: artifact upload/download and cache restore on each blob store backend.

    .venv/bin/python bench/blob_bench.py [--artifact-mb 100] [--cache-mb 200] [--sandbox bubblewrap|off]

Backends: the directory store and S3 through boto3 against moto's S3 server in a process of its own
(the test stand-in for S3; it keeps objects in memory; real S3 is network-bound instead). The physical limit beside them, measured in the
same run on the same disk: a raw copy of the same bytes (`shutil.copyfile` for the artifact, `cp -a`
of the same tree for the cache).

Then a second run's wall time, with and without the cache: a step that creates a virtualenv and
installs boto3 (with botocore, ~30 MB in ~2,000 files) from a local wheelhouse (downloaded once from
PyPI into data/bench-wheelhouse), against the same step when the cache was saved by the first run:
restore (fetch + untar in the step sandbox) and skip the install. Checkout and scheduling are left out:
they are the same in both. Prints numbers, never asserts.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
import redis

from statemachines.blob_store import DIRECTORY, S3, BlobSettings, BlobStore, open_blob_store
from statemachines.caches import CacheStore, Scope
from statemachines.step_outputs import CacheSpec
from tests.harness.ports import free_port, wait_for_port
from tests.harness.redis_server import RedisServer
from workers import cache_transfer
from workers.sandbox import BUBBLEWRAP, Sandbox

PROJECT = Path(__file__).resolve().parents[1]
WHEELHOUSE = PROJECT / "data" / "bench-wheelhouse"
PACKAGES = ["boto3==1.44.8"]
MB = 1024 * 1024
REPEATS = 3


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def rate(size: int, seconds: float) -> str:
    return f"{seconds:7.2f} s  {size / MB / seconds:8.0f} MB/s"


@contextmanager
def backends(scratch: Path) -> Iterator[dict[str, BlobStore]]:
    port = free_port()
    # its own process, as S3 is: in this one it would share the GIL with the client it serves
    moto = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port)
        keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys).create_bucket(
            Bucket="bench"
        )
        s3 = BlobSettings(
            S3, bucket="bench", prefix="ci", endpoint_url=endpoint,
            access_key_id="bench", secret_access_key="bench",
        )  # fmt: skip
        yield {
            "directory": open_blob_store(BlobSettings(DIRECTORY, scratch / "blobs")),
            "s3 (moto)": open_blob_store(s3),
        }
    finally:
        server.terminate()
        server.wait(10)


def make_tree(top: Path, total: int, file_size: int = 64 * 1024) -> int:
    """A tree of incompressible files, like an installed dependency tree (many small files)."""
    written = 0
    for n in range(max(total // file_size, 1)):
        folder = top / f"pkg{n // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{n % 100:02d}.py").write_bytes(os.urandom(file_size))
        written += file_size
    return written


class StepPlace:
    """A task directory with src/ and home/, and the step sandbox to pack and unpack caches in."""

    def __init__(self, root: Path, sandbox: Sandbox) -> None:
        self.root = root
        self.source, self.home, self.tmp = root / "src", root / "home", root / "tmp"
        for directory in (self.source, self.home, self.tmp):
            directory.mkdir(parents=True, exist_ok=True)
        (root / "event.json").write_text("{}")
        self.sandbox = sandbox
        self.seen = sandbox.paths(self.source, self.home, self.tmp, root / "event.json")
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.seen.home)}

    def prepare(self) -> None:
        self.sandbox.prepare([self.source, self.home, self.tmp], None)

    def wrap(self, args: list[str], env: Mapping[str, str]) -> tuple[list[str], Mapping[str, str]]:
        where = (self.source, self.home, self.tmp, self.root / "event.json", None)
        return self.sandbox.wrap(args, *where, network=False, env=env)

    @property
    def base(self) -> Path:
        return self.seen.source.parent


def bench_artifact(stores: dict[str, BlobStore], scratch: Path, size: int) -> None:
    source = scratch / "artifact.bin"
    with source.open("wb") as out:
        for _ in range(size // MB):
            out.write(os.urandom(MB))
    print(f"\nartifact of {size // MB} MB (incompressible)")
    copy = scratch / "artifact-copy.bin"
    print(
        f"  {'raw disk copy (shutil.copyfile)':34} {rate(size, timed(lambda: shutil.copyfile(source, copy)))}"
    )
    copy.unlink()
    for name, store in stores.items():
        up = timed(functools.partial(store.put_file, "artifacts/trusted/run/build/app.bin", source))
        down = timed(functools.partial(store.get_file, "artifacts/trusted/run/build/app.bin", copy))
        print(f"  {name + ' upload':34} {rate(size, up)}")
        print(f"  {name + ' download':34} {rate(size, down)}")
        copy.unlink()


def bench_cache_restore(
    stores: dict[str, BlobStore], client: redis.Redis, scratch: Path, size: int, sandbox: Sandbox
) -> None:
    print(
        f"\ncache of {size // MB} MB ({size // (64 * 1024)} files of 64 KiB), packed and unpacked in the step sandbox"
    )
    first = StepPlace(scratch / "cache-first", sandbox)
    written = make_tree(first.source / ".venv", size)
    first.prepare()
    raw = scratch / "raw-copy"
    took = timed(lambda: subprocess.run(["cp", "-a", str(first.source / ".venv"), str(raw)], check=True))
    print(f"  {'raw disk copy (cp -a)':34} {rate(written, took)}")
    shutil.rmtree(raw)
    spec = CacheSpec("bench", (".venv",))
    archive = first.root / "save.tar"
    names = cache_transfer.members(spec, first.source, first.home)
    packed = 0

    def pack() -> None:
        nonlocal packed
        packed = cache_transfer.pack(first.wrap, first.env, names, first.base, archive, 1 << 40)

    print(f"  {'pack (tar in the sandbox)':34} {rate(written, timed(pack))}")
    for name, store in stores.items():
        restore_one(name, CacheStore(client, store), scratch, sandbox, archive, packed, written)
    archive.unlink()


def restore_one(
    name: str, caches: CacheStore, scratch: Path, sandbox: Sandbox, archive: Path, packed: int, written: int
) -> None:
    scope = Scope(f"bench/{name.split()[0]}", True)
    save = timed(lambda: caches.save(scope, "bench", archive, packed, 1 << 40))
    place = StepPlace(scratch / f"restore-{name.split()[0]}", sandbox)
    place.prepare()
    fetched = place.root / "restore.tar"
    hit = caches.find(scope, "bench")
    assert hit is not None
    fetch = timed(lambda: caches.fetch(scope, hit, fetched))
    unpack = timed(lambda: cache_transfer.unpack(place.wrap, place.env, fetched, place.base))
    print(f"  {name + ' save (upload)':34} {rate(packed, save)}")
    print(f"  {name + ' restore: fetch':34} {rate(packed, fetch)}")
    print(f"  {name + ' restore: untar':34} {rate(written, unpack)}")
    print(f"  {name + ' restore: total':34} {rate(written, fetch + unpack)}")


def ensure_wheelhouse() -> None:
    if WHEELHOUSE.is_dir() and any(WHEELHOUSE.glob("boto3-*.whl")):
        return
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-q",
        "--only-binary=:all:",
        "-d",
        str(WHEELHOUSE),
        *PACKAGES,
    ]
    subprocess.run(pip, check=True)


def install_step(place: StepPlace) -> float:
    """The step's slow part: a virtualenv and boto3 from the wheelhouse, in the work tree."""
    venv = place.source / ".venv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--isolated",
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "-q",
    ]
    subprocess.run([*pip, "--no-index", "--find-links", str(WHEELHOUSE), *PACKAGES], check=True)
    return time.perf_counter() - started


def bench_second_run(
    stores: dict[str, BlobStore], client: redis.Redis, scratch: Path, sandbox: Sandbox
) -> None:
    ensure_wheelhouse()
    spec = CacheSpec("deps", (".venv",))
    print(
        f"\na second run's wall time: venv + pip install {' '.join(PACKAGES)} (local wheelhouse) vs its cache"
    )
    for name, store in stores.items():
        caches = CacheStore(client, store)
        scope = Scope(f"second/{name.split()[0]}", True)
        cold = StepPlace(scratch / f"cold-{name.split()[0]}", sandbox)
        install = install_step(cold)
        cold.prepare()
        archive = cold.root / "save.tar"
        names = cache_transfer.members(spec, cold.source, cold.home)
        started = time.perf_counter()
        size = cache_transfer.pack(cold.wrap, cold.env, names, cold.base, archive, 1 << 40)
        caches.save(scope, "deps", archive, size, 1 << 40)
        saving = time.perf_counter() - started

        restores = []
        for attempt in range(REPEATS):
            warm = StepPlace(scratch / f"warm-{name.split()[0]}-{attempt}", sandbox)
            warm.prepare()
            started = time.perf_counter()
            hit = caches.find(scope, "deps")
            assert hit is not None
            fetched = warm.root / "restore.tar"
            caches.fetch(scope, hit, fetched)
            cache_transfer.unpack(warm.wrap, warm.env, fetched, warm.base)
            restores.append(time.perf_counter() - started)
        restored = statistics.median(restores)
        check = [str(warm.source / ".venv" / "bin" / "python"), "-c", "import boto3"]
        ok = subprocess.run(check, capture_output=True, check=False).returncode == 0
        print(f"  {name}: cache {size / MB:.0f} MB")
        print(
            f"    without cache (first run): install {install:6.2f} s + save {saving:5.2f} s = {install + saving:6.2f} s"
        )
        print(
            f"    with cache (second run):   restore {restored:6.2f} s, median of {REPEATS} (its venv imports boto3: {ok})"
        )
        print(f"    second run / uncached run: {restored / install:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--artifact-mb", type=int, default=100)
    parser.add_argument("--cache-mb", type=int, default=200)
    parser.add_argument("--sandbox", default=BUBBLEWRAP, choices=(BUBBLEWRAP, "off"))
    args = parser.parse_args()
    sandbox = Sandbox(args.sandbox, 64000, 64000, [PROJECT])
    with tempfile.TemporaryDirectory(prefix="blob-bench-", dir=PROJECT / "data") as name:
        scratch = Path(name)
        redis_server = RedisServer(scratch / "redis")
        redis_server.start()
        try:
            client = redis_server.client()
            with backends(scratch) as stores:
                print(
                    f"blob bench: scratch on {scratch} (same disk for every number), sandbox {args.sandbox}"
                )
                bench_artifact(stores, scratch, args.artifact_mb * MB)
                bench_cache_restore(stores, client, scratch, args.cache_mb * MB, sandbox)
                bench_second_run(stores, client, scratch, sandbox)
        finally:
            redis_server.stop()


if __name__ == "__main__":
    main()
