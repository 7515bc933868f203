"""The release store on S3-compatible object storage: blobs as objects, HEAD committed by a conditional write.

Layout under s3://bucket/prefix:
  blobs/ab/cd/<sha256>          immutable, content-addressed (data files, manifests, state, plans, results)
  HEAD.json                     the pointer document, replaced only with If-Match on the ETag read
                                (If-None-Match: * for the first one): of two racing committers exactly
                                one wins, the other re-reads and re-checks its preconditions
  index/<manifest sha>.sqlite   a snapshot of one dataset's account index at that release (derived)

Nothing here needs a shared filesystem. A local directory per process holds staging work dirs and a
bounded cache of the objects that must be mapped or seeked (zip archives, CSVs being rewritten).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import random
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from .errors import EngineError, PublishConflict
from .store import EMPTY_HEAD, Store, canonical_json, map_file

# Big files go up in parts of this size, several at once; small ones in one PUT.
TRANSFER = TransferConfig(multipart_threshold=64 * 1024 * 1024, multipart_chunksize=64 * 1024 * 1024,
                          max_concurrency=4, use_threads=True)
SMALL_OBJECT = 8 * 1024 * 1024  # below this a blob goes up in one PUT without a look first
READ_CHUNK = 8 * 1024 * 1024  # one ranged GET per this many bytes read
PRESIGN_MAX_SECONDS = 15 * 60  # a download link to the store lives at most this long
COMMIT_ATTEMPTS = 50  # conditional-write retries before a commit gives up (each re-checks preconditions)
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix without slashes) of an s3://bucket/prefix URL; EngineError when malformed."""
    u = urlparse(url)
    if u.scheme != "s3" or not u.netloc:
        raise EngineError(f"expected a store URL like s3://bucket/prefix, got {url!r}")
    return u.netloc, u.path.strip("/")


def make_client(endpoint_url: str | None = None):
    """A thread-safe S3 client; credentials come from the standard AWS variables or files."""
    session = boto3.session.Session()
    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                 retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=16)
    return session.client("s3", endpoint_url=endpoint_url or None, config=cfg,
                          region_name=session.region_name or "us-east-1")


def _is_conflict(exc: ClientError) -> bool:
    err = exc.response.get("Error", {})
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return err.get("Code") in _CONFLICT_CODES or status in ("409", "412")


def _is_missing(exc: ClientError) -> bool:
    err = exc.response.get("Error", {})
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return err.get("Code") in ("NoSuchKey", "404", "NotFound") or status == "404"


def _check_sha(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"bad blob id {sha256!r}")
    return sha256


class _RangeReader(io.RawIOBase):
    """An object read by ranged GETs, seekable: what zipfile and the CSV readers need."""

    def __init__(self, client, bucket: str, key: str, size: int):
        self.client, self.bucket, self.key, self.size, self.pos = client, bucket, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, b) -> int:
        n = min(len(b), self.size - self.pos)
        if n <= 0:
            return 0
        body = self.client.get_object(Bucket=self.bucket, Key=self.key,
                                      Range=f"bytes={self.pos}-{self.pos + n - 1}")["Body"]
        view = memoryview(b)
        got = 0
        while got < n:
            chunk = body.read(n - got)
            if not chunk:
                raise OSError(f"{self.key}: short read at {self.pos + got}")
            view[got:got + len(chunk)] = chunk
            got += len(chunk)
        self.pos += got
        return got


class S3BlobStore:
    """Blobs as objects under <prefix>/blobs/ab/cd/<sha256>, with a bounded local cache for map/local_path."""

    remote = True

    def __init__(self, client, bucket: str, prefix: str, cache_dir: Path, cache_bytes: int = 2 << 30):
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache_bytes = cache_bytes

    def key(self, sha256: str) -> str:
        """The object key of a blob."""
        _check_sha(sha256)
        return f"{self.prefix}blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
            return True
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise

    def size(self, sha256: str) -> int | None:
        """The stored object's size, or None when absent."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))["ContentLength"]
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise

    def upload(self, src: Path, sha256: str) -> bool:
        """Upload one file under its content address unless it is already there; True when uploaded.

        Objects appear whole or not at all (a multipart upload is invisible until completed),
        so an interrupted upload leaves nothing a reader could take for the blob.
        """
        size = os.path.getsize(src)
        if size < SMALL_OBJECT:  # one PUT: cheaper than asking first, and the same bytes either way
            with open(src, "rb") as f:
                self.client.put_object(Bucket=self.bucket, Key=self.key(sha256), Body=f)
            return True
        if self.size(sha256) == size:
            return False  # content-addressed: the same bytes are already there
        self.client.upload_file(str(src), self.bucket, self.key(sha256), Config=TRANSFER)
        return True

    def put_many(self, items: list[tuple[Path, str]]) -> None:
        """Store each (finished file, its sha256); the local files are consumed."""
        for src, sha256 in items:
            self.upload(Path(src), sha256)
            os.unlink(src)

    def stage_bytes(self, data: bytes, tmp_dir: Path) -> tuple[Path, str]:
        """Write small bytes to a file in tmp_dir, for put_many; return (file, sha256)."""
        tmp = Path(tmp_dir) / f".blob-{uuid.uuid4().hex}"
        tmp.write_bytes(data)
        return tmp, hashlib.sha256(data).hexdigest()

    def get(self, sha256: str) -> bytes:
        """The blob's bytes (for small documents)."""
        cached = self.cache_dir / sha256
        if cached.exists():
            return cached.read_bytes()
        return self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))["Body"].read()

    def open(self, sha256: str):
        """A seekable, buffered reader of the blob by ranged GETs: never the whole file in memory
        (zip archives seek to their central directory)."""
        cached = self.cache_dir / sha256
        if cached.exists():
            return open(cached, "rb")
        size = self.size(sha256)
        if size is None:
            raise FileNotFoundError(f"no object {self.key(sha256)}")
        return io.BufferedReader(_RangeReader(self.client, self.bucket, self.key(sha256), size),
                                 buffer_size=READ_CHUNK)

    def local_path(self, sha256: str) -> Path:
        """A local copy of the blob, downloaded once into the cache and checked against its address."""
        dest = self.cache_dir / _check_sha(sha256)
        if dest.exists():
            os.utime(dest)  # recently used: evicted last
            return dest
        tmp = self.cache_dir / f".{sha256}.{uuid.uuid4().hex}.part"
        try:
            self.client.download_file(self.bucket, self.key(sha256), str(tmp), Config=TRANSFER)
            h = hashlib.sha256()
            with open(tmp, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != sha256:
                raise EngineError(f"object {self.key(sha256)} does not hash to its address")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        self._evict(keep=dest)
        return dest

    def map(self, sha256: str):
        """The blob's bytes as a read-only memory map of its cached copy (b"" when empty)."""
        return map_file(self.local_path(sha256))

    def forget(self, sha256: str) -> None:
        """Drop the cached copy (a file job is done with its source)."""
        (self.cache_dir / _check_sha(sha256)).unlink(missing_ok=True)

    def _evict(self, keep: Path) -> None:
        # Oldest first until the cache fits; a file still mapped elsewhere stays readable (unlink).
        files = [p for p in self.cache_dir.iterdir() if not p.name.startswith(".")]
        stats = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in files if p.exists()), key=lambda t: t[0])
        total = sum(s for _, s, _ in stats)
        for _, size, p in stats:
            if total <= self.cache_bytes:
                break
            if p != keep:
                p.unlink(missing_ok=True)
                total -= size

    def presigned_url(self, sha256: str, filename: str, seconds: int) -> str:
        """A GET URL for the blob, signed for at most 15 minutes, that saves it as `filename`."""
        seconds = max(1, min(int(seconds), PRESIGN_MAX_SECONDS))
        safe = filename.replace('"', "")
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key(sha256),
                    "ResponseContentDisposition": f'attachment; filename="{safe}"',
                    "ResponseCacheControl": "private, no-store"},
            ExpiresIn=seconds,
        )

    def iter_shas(self):
        """Every blob id in the bucket (for migrate-store and checks)."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"):
            for obj in page.get("Contents", []):
                yield obj["Key"].rsplit("/", 1)[-1]


class S3Store(Store):
    """HEAD + blobs in a bucket; staging and the object cache in a local work dir (not shared)."""

    remote = True

    def __init__(self, work_dir: Path, url: str, endpoint_url: str | None = None, cache_bytes: int = 2 << 30,
                 client=None):
        self.bucket, self.prefix = parse_url(url)
        self.url = url
        self.client = client or make_client(endpoint_url)
        blobs = S3BlobStore(self.client, self.bucket, self.prefix, Path(work_dir) / "cache", cache_bytes)
        super().__init__(work_dir, blobs=blobs)
        self.head_key = f"{self.prefix}/HEAD.json" if self.prefix else "HEAD.json"

    def _index_key(self, manifest_sha: str) -> str:
        return f"{self.prefix}/index/{_check_sha(manifest_sha)}.sqlite" if self.prefix else f"index/{manifest_sha}.sqlite"

    # -- HEAD -------------------------------------------------------------
    def read_head_etag(self) -> tuple[dict, str | None]:
        """(the pointer document, its ETag) or (the empty document, None) before the first commit."""
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.head_key)
        except ClientError as exc:
            if _is_missing(exc):
                return copy.deepcopy(EMPTY_HEAD), None
            raise
        return json.loads(obj["Body"].read()), obj["ETag"]

    def read_head(self) -> dict:
        """The current pointer document (a fresh copy)."""
        return self.read_head_etag()[0]

    def publish(self, update) -> dict:
        """Commit a new HEAD with a conditional write on the ETag read; on a lost race, re-read and
        call update() again on the winner's document (it re-checks its preconditions)."""
        for attempt in range(COMMIT_ATTEMPTS):
            cur, etag = self.read_head_etag()
            new = update(copy.deepcopy(cur))
            new["generation"] = cur.get("generation", 0) + 1
            cond = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.head_key, Body=canonical_json(new),
                                       ContentType="application/json", **cond)
                return new
            except ClientError as exc:
                if not _is_conflict(exc):
                    raise
            time.sleep(min(1.0, 0.02 * (attempt + 1)) * random.random())
        raise PublishConflict(f"HEAD changed {COMMIT_ATTEMPTS} times while committing; try again")

    # -- index snapshots ----------------------------------------------------
    def put_index_snapshot(self, manifest_sha: str, path: Path) -> None:
        """Publish a dataset's index at a release, for other processes to fetch instead of re-scanning."""
        self.client.upload_file(str(path), self.bucket, self._index_key(manifest_sha), Config=TRANSFER)

    def get_index_snapshot(self, manifest_sha: str, dest: Path) -> bool:
        """Download the index snapshot of a release into dest; False when there is none."""
        try:
            self.client.download_file(self.bucket, self._index_key(manifest_sha), str(dest), Config=TRANSFER)
            return True
        except ClientError as exc:
            if _is_missing(exc) or str(exc.response.get("Error", {}).get("Code")) == "404":
                return False
            raise

    def clean_stale_staging(self) -> int:
        """Remove local staging dirs whose owner died (the bucket has no temporary objects)."""
        n = 0
        for d in list(self.staging_root.iterdir()):
            n += _remove_if_unlocked(d)
        return n


def _remove_if_unlocked(d: Path) -> int:
    import fcntl
    import shutil

    try:
        fh = open(d / ".lock", "a")
    except OSError:
        if time.time() - d.stat().st_mtime > 60:
            shutil.rmtree(d, ignore_errors=True)
            return 1
        return 0
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return 0
    shutil.rmtree(d, ignore_errors=True)
    fh.close()
    return 1
