"""The blob store of build outputs (finished logs, artifacts, caches): a local directory or S3, one interface.

Chosen by STEPLINE_BLOB_STORE: `directory` (files under STEPLINE_BLOB_DIR; one machine) or `s3`
(STEPLINE_BLOB_BUCKET, keys under STEPLINE_BLOB_PREFIX, any S3-compatible endpoint through
STEPLINE_BLOB_ENDPOINT_URL; credentials from boto3's usual chain). Workers, the web and the jobs
process read the same settings through `read_blob_settings` in their config modules.

Keys are `/`-separated relative names made by the stores that own them (log_archive.py,
artifacts.py, caches.py); a key never starts with `/` and holds no `.` or `..` part.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from statemachines.errors import BlobError, BlobMissing, TransferStopped
from statemachines.settings import EnvReader

log = logging.getLogger(__name__)

DIRECTORY = "directory"
S3 = "s3"
BACKENDS = (DIRECTORY, S3)
DELETE_BATCH = 1000  # S3's DeleteObjects takes at most 1000 keys
COPY_CHUNK = 16 << 20  # a stoppable directory copy asks `stop` this often
Stop = Callable[[], bool]  # asked between chunks of a transfer: True ends it with TransferStopped


@dataclass(frozen=True)
class BlobSettings:
    """Where blobs live; one setting picks the backend."""

    backend: str = DIRECTORY
    directory: Path = Path("data/blobs")
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)


def read_blob_settings(env: EnvReader, region: str = "us-east-1") -> BlobSettings:
    """The STEPLINE_BLOB_* settings; a problem is added to `env` (every process checks them alike)."""
    backend = (env.text("STEPLINE_BLOB_STORE") or DIRECTORY).lower()
    settings = BlobSettings(
        backend=backend,
        directory=Path(env.text("STEPLINE_BLOB_DIR") or "data/blobs").absolute(),
        bucket=env.text("STEPLINE_BLOB_BUCKET"),
        prefix=env.text("STEPLINE_BLOB_PREFIX").strip("/"),
        endpoint_url=env.url("STEPLINE_BLOB_ENDPOINT_URL"),
        region=region,
        access_key_id=env.text("STEPLINE_BLOB_ACCESS_KEY_ID"),
        secret_access_key=env.text("STEPLINE_BLOB_SECRET_ACCESS_KEY"),
    )
    if backend not in BACKENDS:
        env.problems.append(f"STEPLINE_BLOB_STORE={backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == S3 and not settings.bucket:
        env.problems.append("STEPLINE_BLOB_STORE=s3 needs STEPLINE_BLOB_BUCKET")
    return settings


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: float  # epoch seconds


class BlobStore(Protocol):
    """What every backend does; `open` streams, so a big blob never sits in memory."""

    def put_file(self, key: str, path: Path, stop: Stop | None = None) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def open(self, key: str) -> IO[bytes]: ...
    def get_file(self, key: str, path: Path, stop: Stop | None = None) -> None: ...
    def stat(self, key: str) -> BlobInfo | None: ...
    def list(self, prefix: str) -> Iterator[BlobInfo]: ...
    def delete(self, keys: Iterable[str]) -> int: ...


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\x00" in key:
        raise BlobError(key, "not a relative key of non-empty parts")
    return key


class DirectoryStore:
    """Blobs as files under one directory; a blob appears whole (written beside it, then renamed)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, path: Path, stop: Stop | None = None) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        os.close(fd)
        try:
            _copy(path, Path(temporary), key, stop)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda target: target.write(data))

    def _write(self, key: str, fill: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as target:
                fill(target)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> IO[bytes]:
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise BlobMissing(key, "no such blob") from None

    def get_file(self, key: str, path: Path, stop: Stop | None = None) -> None:
        try:
            _copy(self._path(key), path, key, stop)
        except FileNotFoundError:
            if not self._path(key).exists():
                raise BlobMissing(key, "no such blob") from None
            raise

    def stat(self, key: str) -> BlobInfo | None:
        try:
            found = self._path(key).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(key, found.st_size, found.st_mtime)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        top = self.root / prefix.rstrip("/") if prefix.rstrip("/") else self.root
        base = top if top.is_dir() else top.parent
        for directory, _, files in os.walk(base):
            for name in files:
                key = Path(directory, name).relative_to(self.root).as_posix()
                if key.startswith(prefix) and not name.startswith(".part-"):
                    if info := self.stat(key):
                        yield info

    def delete(self, keys: Iterable[str]) -> int:
        deleted = 0
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
                deleted += 1
            except FileNotFoundError:
                continue
            for parent in path.parents:  # leave no empty directories behind
                if parent == self.root or not parent.is_relative_to(self.root):
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break
        return deleted


class S3Store:
    """Blobs as S3 objects under `prefix/` of one bucket, through boto3 (any S3-compatible endpoint)."""

    def __init__(self, settings: BlobSettings, client: Any = None) -> None:
        import boto3

        self.bucket = settings.bucket
        self.prefix = f"{settings.prefix}/" if settings.prefix else ""
        options: dict[str, Any] = {"region_name": settings.region}
        if settings.endpoint_url:
            options["endpoint_url"] = settings.endpoint_url
        if settings.access_key_id:
            options["aws_access_key_id"] = settings.access_key_id
            options["aws_secret_access_key"] = settings.secret_access_key
        self.s3 = client or boto3.client("s3", **options)

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put_file(self, key: str, path: Path, stop: Stop | None = None) -> None:
        with _s3_errors(key):  # multipart above 8 MB; a stop aborts it (s3transfer drops the parts)
            self.s3.upload_file(str(path), self.bucket, self._name(key), Callback=_progress(key, stop))

    def put_bytes(self, key: str, data: bytes) -> None:
        with _s3_errors(key):
            self.s3.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)

    def open(self, key: str) -> IO[bytes]:
        with _s3_errors(key):
            reply = self.s3.get_object(Bucket=self.bucket, Key=self._name(key))
        return reply["Body"]

    def get_file(self, key: str, path: Path, stop: Stop | None = None) -> None:
        with _s3_errors(key):
            self.s3.download_file(self.bucket, self._name(key), str(path), Callback=_progress(key, stop))

    def stat(self, key: str) -> BlobInfo | None:
        try:
            with _s3_errors(key):
                head = self.s3.head_object(Bucket=self.bucket, Key=self._name(key))
        except BlobMissing:
            return None
        return BlobInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        with _s3_errors(prefix):
            for page in pages:
                for item in page.get("Contents") or []:
                    key = item["Key"][len(self.prefix) :]
                    yield BlobInfo(key, int(item["Size"]), item["LastModified"].timestamp())

    def delete(self, keys: Iterable[str]) -> int:
        names = [self._name(key) for key in keys]
        deleted = 0
        for start in range(0, len(names), DELETE_BATCH):
            batch = [{"Key": name} for name in names[start : start + DELETE_BATCH]]
            with _s3_errors(batch[0]["Key"]):
                reply = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            deleted += len(batch) - len(reply.get("Errors") or [])
        return deleted


def _copy(source: Path, target: Path, key: str, stop: Stop | None) -> None:
    """Copy a file in the kernel; with `stop`, chunk by chunk, asking it in between."""
    if stop is None:
        shutil.copyfile(source, target)  # copy_file_range / sendfile on Linux
        return
    with open(source, "rb") as src, open(target, "wb") as dst:
        while True:
            if stop():
                raise TransferStopped(key, "stopped")
            if os.sendfile(dst.fileno(), src.fileno(), None, COPY_CHUNK) == 0:
                return


def _progress(key: str, stop: Stop | None) -> Callable[[int], None] | None:
    """boto3's transfer callback, called per chunk sent or received; raising in it ends the transfer."""
    if stop is None:
        return None

    def progress(_: int) -> None:
        if stop():
            raise TransferStopped(key, "stopped")

    return progress


@contextmanager
def _s3_errors(key: str) -> Iterator[None]:
    """botocore's and boto3's errors as BlobMissing (404) or BlobError, so callers handle one family."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        # upload_file wraps S3's answer (S3UploadFailedError): S3's own code says more than the wrapper
        answer = exc if isinstance(exc, ClientError) else exc.__context__
        if not isinstance(answer, ClientError):
            raise BlobError(key, f"S3 unreachable or refused: {exc}") from None
        code = str(answer.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey"):
            raise BlobMissing(key, "no such blob") from None
        # 403 is also what S3 answers for a missing key to a role without s3:ListBucket on its prefix
        raise BlobError(key, f"S3 answered {code or 'an error'}: {answer}") from None


def open_blob_store(settings: BlobSettings) -> BlobStore:
    """The backend the settings name."""
    if settings.backend == S3:
        return S3Store(settings)
    return DirectoryStore(settings.directory)
